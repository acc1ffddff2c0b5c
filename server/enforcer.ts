// The enforcer: signals -> fusion (policies/, pure) -> actions on the SFU (kill, per-viewer gates),
// statements of reasons, review items, audit entries and events. It talks to the rest of the server
// through the small ports declared here; the composition root adapts the store and the event hub.
//
// SFU actions are applied synchronously in the call that delivers the signal (that is the latency
// that counts); the ports are called afterwards and may be async: their failures go to `onError`,
// never back into the media path.
import { randomUUID } from 'node:crypto';
import {
  buildStatement,
  compareShadow,
  createFusionState,
  EMPTY_SHADOW_TRACK,
  evidenceFor,
  fuse,
  gateFor,
  initialGateFor,
  applyAction,
  jurisdictionKey,
  restrictedBuckets,
  summarizeVerdict,
  restrictionKey,
  restrictionsOf,
  reviewItemFor,
  windowEvidence,
  withDueAt,
  type FusionResult,
  type FusionState,
  type Restriction,
  type ShadowDifference,
  type ShadowTrack,
} from '../policies/index.ts';
import type {
  Action,
  Bucket,
  Evidence,
  EvidenceRef,
  FilterMode,
  GateDecision,
  Policy,
  ReviewDecision,
  ReviewItem,
  SignalLike,
  StatementOfReasons,
  Verdict,
} from '../policies/types.ts';
import type { CloseReason, Stream, Viewer, ViewerGateState } from '../sfu/types.ts';
import type { EventAudience, EventMessage, StatementCreatedEvent } from './events.ts';
import type { AuditSink, PolicyStore } from './policy-store.ts';

// ---------------------------------------------------------------------------------------------
// Ports

/** Review queue (the store's enqueueReview fits). */
export interface ReviewSink {
  enqueue(item: ReviewItem): unknown;
}

/** Where the enforcer's WebSocket messages go (the event hub's broadcast fits). */
export interface EventSink {
  emit(audience: EventAudience, message: EventMessage): unknown;
}

/** Where statements and decisions are kept (the store's putStatement / putDecision, setBlock / clearBlock). */
export interface RecordSink {
  statement(statement: StatementOfReasons): unknown;
  decision(decision: DecisionLog): unknown;
  /** The stream may not publish again until unblocked (after a kill). */
  block?(streamId: string, reason: string, statementId: string): unknown;
  unblock?(streamId: string): unknown;
}

/**
 * Keeps the media around a restrictive decision (server/evidence.ts fits). Called synchronously as
 * the statement is issued, so the statement (and its audit entry) cites the clip; the clip itself
 * is written later, never on this call.
 */
export interface EvidencePort {
  capture(statement: StatementOfReasons): EvidenceRef[];
}

/** Where a shadow candidate's differences go (the store's appendShadowDifferences fits). */
export interface ShadowSink {
  record(differences: readonly ShadowDifference[]): unknown;
}

/** Finds live streams (the Sfu fits). */
export interface StreamDirectory {
  getStream(streamId: string): Stream | undefined;
}

/** One applied decision, for the store, the ops console and metrics. */
export interface DecisionLog {
  id: string;
  streamId: string;
  at: number;
  source: 'automated' | 'review' | 'appeal';
  kill: boolean;
  /** Jurisdiction -> bucket, for jurisdictions not green. */
  buckets: Record<string, Bucket>;
  restrictions: { action: Action; jurisdictions: string[]; statementId: string }[];
  lifted: { action: Action; jurisdictions: string[]; statementId: string }[];
  reviewItemId?: string;
  policyVersion: string;
  /** SFU calls made (gate changes, closes). */
  sfuActions: number;
  latency?: DecisionLatency;
}

export interface DecisionLatency {
  streamId: string;
  sampleSeq: number;
  kind: 'audio' | 'video';
  /** Sample's last packet at the server -> actions applied (ms). */
  fromArrivedMs: number;
  /** Signals complete -> actions applied (ms). */
  fromCompletedMs: number;
  kill: boolean;
  sfuActions: number;
}

export interface EnforcerOptions {
  streams: StreamDirectory;
  policies: PolicyStore;
  audit?: AuditSink;
  review?: ReviewSink;
  events?: EventSink;
  records?: RecordSink;
  evidence?: EvidencePort;
  shadow?: ShadowSink;
  /** Server clock (ms). Default performance.timeOrigin + performance.now(). */
  clock?: () => number;
  /** Default 'per_viewer'. */
  mode?: FilterMode;
  onDecision?: (decision: DecisionLog) => void;
  onError?: (error: unknown, context: string) => void;
}

const serverClock = (): number => performance.timeOrigin + performance.now();
const QUARANTINE_CLAUSE = 'fail mode quarantine';

// ---------------------------------------------------------------------------------------------
// Enforcer

interface InForce {
  restriction: Restriction;
  statementId: string;
  source: 'automated' | 'review';
}

interface StreamEnforcement {
  streamId: string;
  fusion: FusionState;
  verdict: Verdict | undefined;
  /** restrictionKey -> restriction in force with its statement. */
  inForce: Map<string, InForce>;
  /** Restrictions confirmed by a reviewer (kept for the session). */
  overrides: Map<string, InForce>;
  /** Actions lifted on appeal for this session: `${action}|${jurisdiction}`. */
  suppressed: Set<string>;
  killed: boolean;
  /** Viewers that joined while a quarantine fail mode was active; they stay blanked until signals recover. */
  quarantined: Set<string>;
  /** Manual gates set by an admin (server/control.ts owns them; given here so a verdict change keeps them): viewer jurisdiction ('*' all, 'default' none) -> gate. */
  manual: ReadonlyMap<string, ManualGate>;
  detach: (() => void) | undefined;
  /** The shadow candidate's fusion and open differences (issue 17); undefined while none runs. */
  shadow?: { version: string; fusion: FusionState; track: ShadowTrack };
}

/** A manual restriction for one jurisdiction's viewers: it adds to what the verdict asks, never lifts it. */
export interface ManualGate {
  video?: 'forward' | 'blank';
  audio?: 'forward' | 'mute';
  reason: string;
  statementId?: string;
}

export interface StreamBlockInfo {
  streamId: string;
  statementId: string;
  reason: string;
  at: number;
}

export interface EnforcementOutcome {
  verdict: Verdict;
  changed: boolean;
  decision?: DecisionLog;
  reviewItem?: ReviewItem;
}

export interface ViewerAdmission {
  allowed: boolean;
  /** Pass as ViewerOptions.initialGate. */
  gate: Partial<ViewerGateState>;
  /** Why the viewer is refused or filtered (HTTP 451 fits a refusal). */
  reason?: string;
  statementId?: string;
}

export class Enforcer {
  readonly policies: PolicyStore;
  mode: FilterMode;
  readonly #streams: StreamDirectory;
  readonly #audit: AuditSink | undefined;
  readonly #review: ReviewSink | undefined;
  readonly #events: EventSink | undefined;
  readonly #records: RecordSink | undefined;
  readonly #evidence: EvidencePort | undefined;
  readonly #shadow: ShadowSink | undefined;
  readonly #clock: () => number;
  readonly #onDecision: ((d: DecisionLog) => void) | undefined;
  readonly #onError: (error: unknown, context: string) => void;
  readonly #state = new Map<string, StreamEnforcement>();
  readonly #blocks = new Map<string, StreamBlockInfo>();
  #closed = false;

  constructor(options: EnforcerOptions) {
    this.#streams = options.streams;
    this.policies = options.policies;
    this.#audit = options.audit;
    this.#review = options.review;
    this.#events = options.events;
    this.#records = options.records;
    this.#evidence = options.evidence;
    this.#shadow = options.shadow;
    this.#clock = options.clock ?? serverClock;
    this.mode = options.mode ?? 'per_viewer';
    this.#onDecision = options.onDecision;
    this.#onError = options.onError ?? (() => undefined);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Current verdict of a stream (undefined before its first signal). */
  verdictOf(streamId: string): Verdict | undefined {
    return this.#state.get(streamId)?.verdict;
  }

  /** The samples this node's moderation holds for a stream (its fusion windows); undefined before its first signal. An operator's statement cites them. */
  evidenceOf(streamId: string): Evidence | undefined {
    const s = this.#state.get(streamId);
    return s && s.fusion.samples > 0 ? windowEvidence(s.fusion) : undefined;
  }

  /** Statements of the restrictions in force on a stream. */
  restrictionsInForce(streamId: string): { action: Action; jurisdictions: string[]; statementId: string }[] {
    const s = this.#state.get(streamId);
    if (!s) return [];
    return [...s.inForce.values(), ...s.overrides.values()].map((r) => ({
      action: r.restriction.action,
      jurisdictions: r.restriction.jurisdictions,
      statementId: r.statementId,
    }));
  }

  /** A killed stream may not publish again until the kill is overturned. */
  isBlocked(streamId: string): StreamBlockInfo | undefined {
    return this.#blocks.get(streamId);
  }

  /** An operator resumed the stream (control.ts): this node's kill block goes, automated or reviewed. Returns whether there was one. */
  liftBlock(streamId: string): boolean {
    const s = this.#state.get(streamId);
    if (s) {
      s.killed = false;
      s.inForce.delete('kill');
    }
    return this.#blocks.delete(streamId);
  }

  /**
   * Watches a live stream: gates every viewer that joins (a safety net behind `initialGate`),
   * recomputes gates on joins/leaves in strictest-intersection mode, drops state when it ends.
   */
  attachStream(stream: Stream): void {
    const s = this.#ensure(stream.id);
    if (s.detach) return;
    // The Stream contract has no `off`: the listeners go quiet once detached.
    let active = true;
    s.detach = () => {
      active = false;
    };
    stream.on('viewer', (viewer: Viewer) => {
      if (!active || this.#closed) return;
      this.#guard('viewer join', () => {
        if (this.mode === 'strictest_intersection') this.#applyGates(s, stream, viewer);
        else this.#applyViewer(s, viewer, stream, true);
      });
      viewer.on('close', () => {
        s.quarantined.delete(viewer.id);
        if (!active || this.#closed || stream.closed || this.mode !== 'strictest_intersection') return;
        this.#guard('viewer leave', () => this.#applyGates(s, stream));
      });
    });
    stream.on('close', () => {
      if (active) this.streamEnded(stream.id);
    });
    for (const viewer of stream.viewers.values()) this.#applyViewer(s, viewer, stream, true);
  }

  /** Drops a stream's moderation state (blocks stay). Safe to call twice. */
  streamEnded(streamId: string): void {
    const s = this.#state.get(streamId);
    if (!s) return;
    s.detach?.();
    this.#state.delete(streamId);
  }

  /**
   * The gate a viewer joining now needs from its first frame (WHEP: ViewerOptions.initialGate).
   * Includes quarantine while signals are unavailable. `{video:'closed', audio:'closed'}` when
   * the viewer must be refused (use admitViewer to get the reason).
   */
  /**
   * The stream's manual gates (all of them, replacing the previous set) are re-applied to every viewer
   * now and kept through later verdict changes. Before, control.ts set them on the viewers itself and
   * the next verdict change re-gated every viewer without them: the manual gate was undone.
   */
  setManualGates(streamId: string, gates: ReadonlyMap<string, ManualGate>): void {
    const s = this.#ensure(streamId);
    s.manual = new Map(gates);
    const stream = this.#streams.getStream(streamId);
    if (stream && !stream.closed) this.#guard('manual gate', () => this.#applyGates(s, stream));
  }

  gateForNewViewer(streamId: string, jurisdiction: string | undefined): Partial<ViewerGateState> {
    return this.admitViewer(streamId, jurisdiction).gate;
  }

  admitViewer(streamId: string, jurisdiction: string | undefined): ViewerAdmission {
    const block = this.#blocks.get(streamId);
    if (block)
      return {
        allowed: false,
        gate: { video: 'closed', audio: 'closed' },
        reason: block.reason,
        statementId: block.statementId,
      };
    const s = this.#state.get(streamId);
    if (!s) return { allowed: true, gate: { video: 'forward', audio: 'forward' } };
    const others = this.#viewerJurisdictions(streamId);
    const g = this.#effectiveGate(s, jurisdiction, others, true);
    if (g.closed)
      return {
        allowed: false,
        gate: { video: 'closed', audio: 'closed' },
        reason: g.reason,
        statementId: g.statementId,
      };
    return { allowed: true, gate: { video: g.video, audio: g.audio }, reason: g.reason, statementId: g.statementId };
  }

  /**
   * One sample's signals. Fuses them, and when the decision changes applies it to the SFU at once
   * (kill, gates), then records statements, review items, audit entries and events.
   */
  onSignal(signal: SignalLike): EnforcementOutcome {
    const policy = this.policies.current;
    const s = this.#ensure(signal.streamId);
    const now = this.#clock();
    const result = fuse(s.fusion, signal, policy, now);
    s.fusion = result.state;
    s.verdict = result.verdict;
    const outcome = this.#enforce(s, signal, policy, result, now);
    // the candidate's turn comes after the active policy's actions are applied: it never delays them
    if (this.policies.shadow || s.shadow)
      this.#guard('shadow evaluation', () => this.#shadowStep(s, signal, policy, result.verdict, now));
    return outcome;
  }

  #enforce(
    s: StreamEnforcement,
    signal: SignalLike,
    policy: Policy,
    result: FusionResult,
    now: number,
  ): EnforcementOutcome {
    // A killed stream is not acted on again (late signals of the ended session).
    if (s.killed || this.#closed || this.#blocks.has(signal.streamId))
      return { verdict: result.verdict, changed: false };

    let reviewItem: ReviewItem | undefined;
    if (result.enteredAmber.length > 0) {
      const item = reviewItemFor(result.verdict, policy, result.enteredAmber, now);
      reviewItem = item && withDueAt(item, policy);
    }
    if (!result.changed && !reviewItem) return { verdict: result.verdict, changed: false };

    const decision = this.#apply(s, policy, result.verdict, 'automated', signal);
    if (reviewItem) {
      decision.reviewItemId = reviewItem.id;
      const item = reviewItem;
      this.#port('review enqueue', () => this.#review?.enqueue(item));
      this.#port('audit append', () =>
        this.#audit?.append({
          type: 'review.enqueued',
          itemId: item.id,
          streamId: item.streamId,
          at: item.createdAt,
          jurisdictions: item.jurisdictions,
          categories: item.categories,
          policyVersion: item.policyVersion,
          dueAt: item.dueAt ?? null,
        }),
      );
    }
    this.#finish(decision, result.changed);
    return { verdict: result.verdict, changed: result.changed, decision, reviewItem };
  }

  /**
   * Applies a reviewer's decision (policies/ resolveReview): an upheld amber restricts the listed
   * jurisdictions for the rest of the session; an overturned restriction is lifted (an overturned
   * kill lets the streamer publish again). `record: false` (a node applying a decision another node
   * took) applies the effect only: the decision's statement, audit entry and unblock are the
   * deciding node's, written once.
   */
  applyReviewDecision(decision: ReviewDecision, options: { record?: boolean } = {}): DecisionLog | undefined {
    const policy = this.policies.current;
    const at = this.#clock();
    const record = options.record ?? true;
    if (decision.statement && record) {
      const st = decision.statement;
      this.#port('records statement', () => this.#records?.statement(st));
    }
    if (record)
      this.#port('audit append', () =>
        this.#audit?.append({
          type: 'review.decision',
          at,
          decision: { ...decision, statement: undefined },
          statement: decision.statement ?? null,
        }),
      );
    const effect = decision.effect;
    if (effect.kind === 'none') return undefined;
    if (effect.kind === 'lift' && effect.action === 'kill_stream') {
      this.#blocks.delete(decision.streamId);
      if (record) {
        this.#port('records unblock', () => this.#records?.unblock?.(decision.streamId));
        this.#port('audit append', () =>
          this.#audit?.append({
            type: 'stream.unblocked',
            streamId: decision.streamId,
            at,
            by: decision.reviewer,
            decisionId: decision.id,
          }),
        );
      }
      this.#emit(
        { roles: ['streamer', 'ops'], streamId: decision.streamId },
        {
          type: 'warning',
          streamId: decision.streamId,
          message: 'The kill was overturned on review; you may go live again.',
          at,
        },
      );
      const s = this.#state.get(decision.streamId);
      if (s) s.killed = false;
      const log = this.#log(
        decision.streamId,
        decision.type === 'appeal' ? 'appeal' : 'review',
        policy.version,
        false,
        {},
      );
      log.lifted.push({
        action: 'kill_stream',
        jurisdictions: effect.jurisdictions,
        statementId: decision.statement?.id ?? '',
      });
      this.#finish(log, true);
      return log;
    }
    const s = this.#ensure(decision.streamId);
    if (effect.kind === 'restrict') {
      const restriction: Restriction = {
        action: effect.action,
        scope: effect.action === 'kill_stream' ? 'stream' : 'jurisdictions',
        jurisdictions: [...effect.jurisdictions],
        categories: (decision.statement?.facts.categories ?? []).map((c) => ({
          category: c.category,
          score: c.score,
          clause: decision.statement?.ground.clause ?? '',
          ground: decision.statement?.ground.type ?? 'terms_of_service',
        })),
      };
      s.overrides.set(restrictionKey(restriction), {
        restriction,
        statementId: decision.statement?.id ?? decision.id,
        source: 'review',
      });
      for (const j of effect.jurisdictions) s.suppressed.delete(`${effect.action}|${j}`);
      if (effect.action === 'kill_stream') return this.#kill(s, policy, decision.statement, 'review');
    } else {
      for (const [k, o] of s.overrides) {
        if (
          o.restriction.action === effect.action &&
          o.restriction.jurisdictions.some((j) => effect.jurisdictions.includes(j))
        )
          s.overrides.delete(k);
      }
      for (const j of effect.jurisdictions) s.suppressed.add(`${effect.action}|${j}`);
    }
    const log = this.#apply(s, policy, s.verdict, decision.type === 'appeal' ? 'appeal' : 'review', undefined);
    this.#finish(log, true);
    return log;
  }

  /**
   * Fuses the signal under the shadow candidate and records what it would have done differently
   * (policies/ compareShadow). The candidate's state restarts when the candidate changes.
   */
  #shadowStep(s: StreamEnforcement, signal: SignalLike, policy: Policy, active: Verdict, now: number): void {
    const candidate = this.policies.shadow;
    if (!candidate) {
      s.shadow = undefined;
      return;
    }
    if (s.shadow?.version !== candidate.version)
      s.shadow = { version: candidate.version, fusion: createFusionState(s.streamId), track: EMPTY_SHADOW_TRACK };
    const r = fuse(s.shadow.fusion, signal, candidate, now);
    const cmp = compareShadow(
      s.shadow.track,
      s.streamId,
      now,
      { verdict: active, policy },
      { verdict: r.verdict, policy: candidate },
    );
    s.shadow.fusion = r.state;
    s.shadow.track = cmp.track;
    if (cmp.differences.length === 0) return;
    const differences = cmp.differences;
    this.#port('shadow record', () => this.#shadow?.record(differences));
  }

  /** Stops acting (state is kept for inspection). */
  close(): void {
    this.#closed = true;
    for (const s of this.#state.values()) s.detach?.();
  }

  // -------------------------------------------------------------------------------------------

  #ensure(streamId: string): StreamEnforcement {
    let s = this.#state.get(streamId);
    if (!s) {
      s = {
        streamId,
        fusion: createFusionState(streamId),
        verdict: undefined,
        inForce: new Map(),
        overrides: new Map(),
        suppressed: new Set(),
        killed: false,
        quarantined: new Set(),
        manual: new Map(),
        detach: undefined,
      };
      this.#state.set(streamId, s);
    }
    return s;
  }

  #viewerJurisdictions(streamId: string): (string | undefined)[] {
    const stream = this.#streams.getStream(streamId);
    if (!stream) return [];
    return [...stream.viewers.values()].filter((v) => !v.closed).map((v) => v.jurisdiction);
  }

  /** Restrictions from fusion minus those lifted on appeal. */
  #automatedRestrictions(s: StreamEnforcement, policy: Policy, verdict: Verdict | undefined): Restriction[] {
    if (!verdict) return [];
    return restrictionsOf(verdict, policy)
      .map((r) => ({ ...r, jurisdictions: r.jurisdictions.filter((j) => !s.suppressed.has(`${r.action}|${j}`)) }))
      .filter((r) => r.jurisdictions.length > 0);
  }

  /** Gate for one viewer: the verdict's gate (minus suppressed actions) plus reviewer overrides. */
  #effectiveGate(
    s: StreamEnforcement,
    jurisdiction: string | undefined,
    others: (string | undefined)[],
    joining: boolean,
  ): GateDecision & { reason?: string; statementId?: string } {
    const policy = this.policies.current;
    const raw = joining
      ? initialGateFor(s.verdict, jurisdiction, this.mode, others)
      : gateFor(s.verdict, jurisdiction, this.mode, others);
    const gate: GateDecision = { video: 'forward', audio: 'forward', closed: false, reasons: [] };
    for (const r of raw.reasons) {
      if (s.suppressed.has(`${r.action}|${r.jurisdiction}`)) continue;
      gate.reasons.push(r);
      applyAction(gate, r.action);
    }
    const key = jurisdictionKey(policy, jurisdiction);
    const keys = new Set([key]);
    if (this.mode === 'strictest_intersection') for (const o of others) keys.add(jurisdictionKey(policy, o));
    for (const o of s.overrides.values()) {
      if (o.restriction.scope === 'stream' || o.restriction.jurisdictions.some((j) => keys.has(j))) {
        gate.reasons.push({
          jurisdiction: o.restriction.jurisdictions.join(','),
          category: o.restriction.categories[0]?.category ?? 'review',
          action: o.restriction.action,
          clause: o.restriction.categories[0]?.clause ?? '',
        });
        applyAction(gate, o.restriction.action);
      }
    }
    let manualReason: { reason: string; statementId?: string } | undefined;
    for (const m of [s.manual.get(jurisdiction ?? 'default'), s.manual.get('*')]) {
      if (!m) continue;
      if (m.video === 'blank' && gate.video !== 'blank') {
        gate.video = 'blank';
        manualReason ??= m;
      }
      if (m.audio === 'mute' && gate.audio !== 'mute') {
        gate.audio = 'mute';
        manualReason ??= m;
      }
    }
    const first = gate.reasons[0];
    if (!first && manualReason) return { ...gate, reason: manualReason.reason, statementId: manualReason.statementId };
    const statementId = first ? this.#statementFor(s, first.action, first.jurisdiction) : undefined;
    return { ...gate, reason: first ? `${first.category}: ${first.clause}` : undefined, statementId };
  }

  #statementFor(s: StreamEnforcement, action: Action, jurisdiction: string): string | undefined {
    for (const r of [...s.overrides.values(), ...s.inForce.values()]) {
      if (
        r.restriction.action === action &&
        (r.restriction.jurisdictions.includes(jurisdiction) ||
          jurisdiction.split(',').some((j) => r.restriction.jurisdictions.includes(j)))
      )
        return r.statementId;
    }
    return undefined;
  }

  #apply(
    s: StreamEnforcement,
    policy: Policy,
    verdict: Verdict | undefined,
    source: DecisionLog['source'],
    signal: SignalLike | undefined,
  ): DecisionLog {
    const now = this.#clock();
    if (verdict?.kill) return this.#kill(s, policy, undefined, source, verdict, signal);

    // New restrictions get their statement before any viewer is touched, so events can cite it.
    const wanted = this.#automatedRestrictions(s, policy, verdict);
    const wantedKeys = new Set(wanted.map(restrictionKey));
    const log = this.#log(s.streamId, source, policy.version, false, restrictedBuckets(verdict));
    for (const r of wanted) {
      const key = restrictionKey(r);
      if (s.inForce.has(key)) continue;
      const statement = buildStatement({
        streamId: s.streamId,
        restriction: r,
        policy,
        evidence: verdict
          ? evidenceFor(
              verdict,
              r.categories.map((c) => c.category),
            )
          : emptyEvidence(),
        issuedAt: now,
      });
      s.inForce.set(key, { restriction: r, statementId: statement.id, source: 'automated' });
      log.restrictions.push({ action: r.action, jurisdictions: r.jurisdictions, statementId: statement.id });
      this.#recordStatement(statement);
    }
    for (const [key, r] of s.inForce) {
      if (wantedKeys.has(key)) continue;
      s.inForce.delete(key);
      log.lifted.push({
        action: r.restriction.action,
        jurisdictions: r.restriction.jurisdictions,
        statementId: r.statementId,
      });
    }

    const stream = this.#streams.getStream(s.streamId);
    if (stream && !stream.closed) log.sfuActions += this.#applyGates(s, stream);
    if (signal) log.latency = this.#latency(signal, false, log.sfuActions);
    if (verdict && (log.restrictions.length > 0 || log.lifted.length > 0 || source === 'automated')) {
      this.#emit(
        { roles: ['streamer', 'ops'], streamId: s.streamId },
        { type: 'moderation.status', streamId: s.streamId, verdict: headline(verdict), at: now },
      );
    }
    return log;
  }

  /** Applies gates to every viewer of a stream (`joined` is the one joining now); returns how many SFU calls were made. */
  #applyGates(s: StreamEnforcement, stream: Stream, joined?: Viewer): number {
    let n = 0;
    for (const viewer of [...stream.viewers.values()]) n += this.#applyViewer(s, viewer, stream, viewer === joined);
    return n;
  }

  #applyViewer(s: StreamEnforcement, viewer: Viewer, stream: Stream, joining: boolean): number {
    if (viewer.closed) return 0;
    const block = this.#blocks.get(stream.id);
    const now = this.#clock();
    if (block) {
      viewer.close({ code: 'killed', message: block.reason, statementId: block.statementId });
      return 1;
    }
    const others = [...stream.viewers.values()].filter((v) => !v.closed).map((v) => v.jurisdiction);
    // A viewer who joined under quarantine keeps the quarantine gate until signals recover.
    const g = this.#effectiveGate(s, viewer.jurisdiction, others, joining || s.quarantined.has(viewer.id));
    if (g.reasons.some((r) => r.clause === QUARANTINE_CLAUSE)) s.quarantined.add(viewer.id);
    else s.quarantined.delete(viewer.id);
    if (g.closed) {
      const reason: CloseReason = {
        code: 'killed',
        message: `blocked in ${viewer.jurisdiction ?? 'your region'}: ${g.reason ?? 'policy'}`,
        statementId: g.statementId,
      };
      this.#emit(
        { roles: ['viewer'], streamId: stream.id, viewerId: viewer.id },
        {
          type: 'viewer.filtered',
          streamId: stream.id,
          viewerId: viewer.id,
          jurisdiction: viewer.jurisdiction,
          video: 'blank',
          audio: 'mute',
          reason: reason.message,
          statementId: g.statementId,
          at: now,
        },
      );
      viewer.close(reason);
      return 1;
    }
    let n = 0;
    if (viewer.gate.video !== 'closed' && viewer.gate.video !== g.video) {
      viewer.setVideoGate(g.video);
      n++;
    }
    if (viewer.gate.audio !== 'closed' && viewer.gate.audio !== g.audio) {
      viewer.setAudioGate(g.audio);
      n++;
    }
    if (n > 0 || (joining && (g.video !== 'forward' || g.audio !== 'forward'))) {
      this.#emit(
        { roles: ['viewer'], streamId: stream.id, viewerId: viewer.id },
        {
          type: 'viewer.filtered',
          streamId: stream.id,
          viewerId: viewer.id,
          jurisdiction: viewer.jurisdiction,
          video: g.video,
          audio: g.audio,
          reason: g.reason ?? 'cleared: the stream is within policy',
          ...(g.statementId ? { statementId: g.statementId } : {}),
          at: now,
        },
      );
    }
    return n;
  }

  #kill(
    s: StreamEnforcement,
    policy: Policy,
    reviewed: StatementOfReasons | undefined,
    source: DecisionLog['source'],
    verdict?: Verdict,
    signal?: SignalLike,
  ): DecisionLog {
    const now = this.#clock();
    let statement = reviewed;
    if (!statement) {
      const r = verdict ? restrictionsOf(verdict, policy)[0] : undefined;
      const restriction: Restriction = r ?? {
        action: 'kill_stream',
        scope: 'stream',
        jurisdictions: ['global'],
        categories: [],
      };
      statement = buildStatement({
        streamId: s.streamId,
        restriction,
        policy,
        evidence: verdict
          ? evidenceFor(
              verdict,
              restriction.categories.map((c) => c.category),
            )
          : emptyEvidence(),
        issuedAt: now,
      });
    }
    s.killed = true;
    const reason = `Stream ended by moderation: ${statement.ground.clause}`;
    this.#blocks.set(s.streamId, { streamId: s.streamId, statementId: statement.id, reason, at: now });
    let sfuActions = 0;
    // Clients are told first, as on the manual path: the close below drops their media at once. The
    // stream's 'stream.status killed' is its owner's (control.ts, on the close), said once.
    this.#emit(
      { roles: ['streamer', 'viewer', 'ops'], streamId: s.streamId },
      {
        type: 'stream.killed',
        streamId: s.streamId,
        reason,
        statementId: statement.id,
        appealUrl: statement.redress.appealUrl,
        at: now,
      },
    );
    const stream = this.#streams.getStream(s.streamId);
    if (stream && !stream.closed) {
      stream.close({ code: 'killed', message: reason, statementId: statement.id });
      sfuActions++;
    }
    const log = this.#log(s.streamId, source, policy.version, true, restrictedBuckets(verdict));
    log.sfuActions = sfuActions;
    log.restrictions.push({
      action: 'kill_stream',
      jurisdictions: statement.restriction.jurisdictions,
      statementId: statement.id,
    });
    if (signal) log.latency = this.#latency(signal, true, sfuActions);
    s.inForce.set('kill', {
      restriction: { action: 'kill_stream', scope: 'stream', jurisdictions: ['global'], categories: [] },
      statementId: statement.id,
      source: source === 'automated' ? 'automated' : 'review',
    });
    if (!reviewed) this.#recordStatement(statement);
    const st = statement;
    this.#port('records block', () => this.#records?.block?.(s.streamId, reason, st.id));
    if (source !== 'automated') this.#finish(log, true);
    return log;
  }

  #recordStatement(statement: StatementOfReasons): void {
    const evidence = this.#evidence;
    if (evidence)
      this.#guard('evidence capture', () => {
        const refs = evidence.capture(statement);
        if (refs.length > 0) statement.clips = refs;
      });
    this.#port('records statement', () => this.#records?.statement(statement));
    this.#port('audit append', () =>
      this.#audit?.append({ type: 'statement', at: statement.issuedAt, streamId: statement.streamId, statement }),
    );
    this.#emit({ roles: ['ops'] }, statementCreated(statement));
  }

  #log(
    streamId: string,
    source: DecisionLog['source'],
    policyVersion: string,
    kill: boolean,
    buckets: Record<string, Bucket>,
  ): DecisionLog {
    // unique across restarts and nodes: a restarted node must not reuse (and the store would then ignore) an old id
    return {
      id: `dec_${randomUUID()}`,
      streamId,
      at: this.#clock(),
      source,
      kill,
      buckets,
      restrictions: [],
      lifted: [],
      policyVersion,
      sfuActions: 0,
    };
  }

  #finish(log: DecisionLog, changed: boolean): void {
    if (!changed && !log.reviewItemId) return;
    this.#port('records decision', () => this.#records?.decision(log));
    this.#port('audit append', () => this.#audit?.append({ type: 'decision', at: log.at, decision: log }));
    this.#emit({ roles: ['ops'] }, { type: 'decision', decision: log });
    if (this.#onDecision) this.#guard('onDecision', () => this.#onDecision?.(log));
  }

  #latency(signal: SignalLike, kill: boolean, sfuActions: number): DecisionLatency {
    const now = this.#clock();
    return {
      streamId: signal.streamId,
      sampleSeq: signal.sampleSeq,
      kind: signal.kind,
      fromArrivedMs: now - signal.arrivedAt,
      fromCompletedMs: now - signal.completedAt,
      kill,
      sfuActions,
    };
  }

  #emit(audience: EventAudience, message: EventMessage): void {
    this.#port('event emit', () => this.#events?.emit(audience, message));
  }

  /** Calls a port; sync throws and async rejections go to onError, never into the caller. */
  #port(context: string, fn: () => unknown): void {
    try {
      const r = fn();
      if (r instanceof Promise) r.then(undefined, (e: unknown) => this.#onError(e, context));
    } catch (error) {
      this.#onError(error, context);
    }
  }

  #guard(context: string, fn: () => unknown): void {
    try {
      fn();
    } catch (error) {
      this.#onError(error, context);
    }
  }
}

/** The `statement.created` event of a statement (the enforcer's and the control's statements alike). */
export function statementCreated(s: StatementOfReasons): StatementCreatedEvent {
  return {
    type: 'statement.created',
    streamId: s.streamId,
    statementId: s.id,
    action: s.restriction.action,
    jurisdictions: s.restriction.jurisdictions,
    automated: s.automated.decision,
    clause: s.ground.clause,
    ...(s.clips?.length ? { clips: s.clips.map((e) => e.id) } : {}),
    at: s.issuedAt,
  };
}

/** What moderation.status says of a verdict: the worst bucket and the fused score per category. */
function headline(verdict: Verdict): { bucket: Bucket; categories: Record<string, number> } {
  const { bucket, categories } = summarizeVerdict(verdict);
  return { bucket, categories };
}

function emptyEvidence(): Verdict['evidence'] {
  return {
    sampleSeqs: [],
    timeRange: { from: 0, to: 0 },
    scores: [],
    matches: [],
    text: [],
    textContext: [],
    thumbnailRefs: [],
  };
}
