// Stream control for the cluster: the live-stream registry (heartbeats), manual kill/resume and
// gates (audited, each restriction with its statement of reasons, citing the samples this node's
// moderation holds and the notice it followed, if any), review-queue intake with queue-depth events, and the
// control channel that carries kills, gate changes, policies, review decisions and events from
// the node that issued them to the node(s) that hold the sessions.
import type { ModerationStack } from './moderation.ts';
import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { Sfu, Stream, ViewerGateState } from '../sfu/types.ts';
import { operatorStatement, summarizeVerdict, type OperatorAction } from '../policies/index.ts';
import type {
  EvidenceRef,
  GroundType,
  ReviewDecision,
  ReviewItem,
  StatementBasis,
  StatementOfReasons,
} from '../policies/types.ts';
import { statementCreated, type Enforcer, type EvidencePort, type ManualGate } from './enforcer.ts';
import type { PolicyStore } from './policy-store.ts';
import type { EventHub } from './events.ts';
import type { ServerMetrics } from './metrics.ts';
import { SrvError, badRequest, notFound } from './errors.ts';
import { OutboxQueuedError } from './store/outbox.ts';
import type {
  ActivePolicyRecord,
  ShadowPolicyRecord,
  ControlMessage,
  DecisionRecord,
  LiveStreamRecord,
  RegistryEvidence,
  Store,
  StoredReviewItem,
  StreamBlock,
  StreamVerdictSummary,
} from './store/types.ts';

/** A store write that is kept: its result, or undefined when it waits in the outbox (OutboxQueuedError); other failures throw. */
async function recorded<T>(write: Promise<T>): Promise<T | undefined> {
  try {
    return await write;
  } catch (e) {
    if (e instanceof OutboxQueuedError) return undefined;
    throw e;
  }
}

/** Who acts and why, for a manual kill or gate (the API's body, the actor from the token). */
export interface OperatorInput {
  reason: string;
  actor: string;
  /** Clause cited. Default: the category's clause in the policy in force, else 'operator action'. */
  clause?: string;
  /** Category of the policy's taxonomy the operator cites (its clause and ground). */
  category?: string;
  /** The notice the action follows. Default own initiative. */
  basis?: StatementBasis;
}

export interface StreamControlOptions {
  sfu: Sfu;
  store: Store;
  events: EventHub;
  metrics: ServerMetrics;
  enforcer?: Enforcer;
  /** Keeps the media around an operator's decision, as around the enforcer's (server/evidence.ts). */
  evidence?: EvidencePort;
  policies?: PolicyStore;
  /** This node's hash banks, kept in step with the cluster's bank edits (undefined: moderation off). */
  banks?: Pick<ModerationStack, 'applyBankEdit' | 'bankSeq'>;
  nodeId: string;
  streamTtlMs: number;
  heartbeatMs: number;
  /** Base URL for appeal links in events. */
  publicUrl: () => string;
  log: FastifyBaseLogger;
}

export class StreamControl {
  readonly #o: StreamControlOptions;
  readonly #local = new Map<string, { stream: Stream; startedAt: number; state: 'live' | 'ended' | 'killed' }>();
  /** Blocks seen on this node, used when the store cannot be asked. */
  readonly #blockCache = new Map<string, StreamBlock>();
  /** Manual per-jurisdiction gates ('*' = everyone), applied to late joiners too; the enforcer gets them as overrides. */
  readonly #gates = new Map<string, Map<string, ManualGate>>();
  #timer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  #lastStoreError = 0;
  /** Last store policy version tried here (tried once). */
  #policyTried: string | undefined;
  /** Last shadow record (version@at) tried here. */
  #shadowTried: string | undefined;
  #closed = false;

  constructor(options: StreamControlOptions) {
    this.#o = options;
  }

  start(): void {
    this.#o.sfu.on('stream', (stream) => this.#track(stream));
    for (const s of this.#o.sfu.streams()) this.#track(s);
    this.#unsubscribe = this.#o.store.onControl((m) => {
      if (m.origin === this.#o.nodeId) return;
      try {
        this.apply(m);
      } catch (err) {
        this.#o.log.error({ err, type: m.type }, 'control message failed');
      }
    });
    this.#timer = setInterval(() => void this.#heartbeat(), this.#o.heartbeatMs);
    this.#timer.unref();
  }

  #storeError(err: unknown, what: string): void {
    const t = Date.now();
    // One line per 5 s at most: a Redis outage must not flood the log.
    if (t - this.#lastStoreError > 5000) {
      this.#lastStoreError = t;
      this.#o.log.warn({ err: (err as Error).message }, `store: ${what} failed`);
    }
  }

  #track(stream: Stream): void {
    if (this.#local.has(stream.id) || stream.closed) return;
    const entry = { stream, startedAt: Date.now(), state: 'live' as const };
    this.#local.set(stream.id, { ...entry });
    this.#o.enforcer?.attachStream(stream);
    const manual = this.#gates.get(stream.id);
    if (manual) this.#o.enforcer?.setManualGates(stream.id, manual);
    const record: LiveStreamRecord = {
      streamId: stream.id,
      nodeId: this.#o.nodeId,
      state: 'live',
      startedAt: entry.startedAt,
      heartbeatAt: entry.startedAt,
      viewers: stream.viewers.size,
    };
    this.#o.store.putStream(record, this.#o.streamTtlMs).catch((e: unknown) => this.#storeError(e, 'putStream'));
    const at = Date.now();
    this.#o.events.emit(
      { roles: ['streamer', 'ops', 'viewer'], streamId: stream.id },
      { type: 'stream.status', streamId: stream.id, state: 'live', at },
    );
    stream.on('viewer', (viewer) => {
      const gate = this.initialGate(stream.id, viewer.jurisdiction);
      if (gate.video === 'blank') viewer.setVideoGate('blank');
      if (gate.audio === 'mute') viewer.setAudioGate('mute');
    });
    stream.on('close', (reason) => {
      const state = reason.code === 'killed' ? 'killed' : 'ended';
      // an automated kill's block is the enforcer's; this node remembers it too (restoreBlocks)
      if (state === 'killed' && !this.#blockCache.has(stream.id))
        this.#blockCache.set(stream.id, {
          streamId: stream.id,
          reason: reason.message ?? 'killed',
          statementId: reason.statementId,
          at: Date.now(),
          by: 'enforcer',
        });
      const l = this.#local.get(stream.id);
      if (l && l.stream === stream) this.#local.delete(stream.id);
      this.#gates.delete(stream.id);
      this.#o.metrics.clearStream(stream.id);
      this.#o.events.emit(
        { roles: ['streamer', 'ops', 'viewer'], streamId: stream.id },
        { type: 'stream.status', streamId: stream.id, state, at: Date.now() },
      );
      // Kept (not heartbeated) until it expires, so ops see how it ended.
      this.#o.store
        .heartbeat(stream.id, this.#o.streamTtlMs, { state, statementId: reason.statementId, viewers: 0 })
        .catch((e: unknown) => this.#storeError(e, 'heartbeat(close)'));
    });
  }

  async #heartbeat(): Promise<void> {
    if (this.#closed) return;
    await this.syncPolicy();
    await this.syncShadow();
    await this.syncBanks();
    for (const [id, l] of this.#local) {
      const verdict = this.#o.enforcer?.verdictOf(id);
      const patch: Partial<LiveStreamRecord> = {
        viewers: l.stream.viewers.size,
        nodeId: this.#o.nodeId,
        state: 'live',
      };
      if (verdict) patch.verdict = summarizeVerdict(verdict);
      const evidence = this.#o.enforcer?.evidenceOf(id);
      if (evidence)
        patch.evidence = { sampleSeqs: evidence.sampleSeqs, timeRange: evidence.timeRange, scores: evidence.scores };
      try {
        // a kill whose message this node missed (it was away from the store) is applied here, within a heartbeat
        const block = await this.#o.store.getBlock(id);
        if (block && !l.stream.closed) {
          this.#blockCache.set(id, block);
          this.#localKill(id, block.reason, block.statementId, 'remote');
          continue;
        }
        const ok = await this.#o.store.heartbeat(id, this.#o.streamTtlMs, patch);
        // Lost (Redis restarted, or an outage outlived the TTL): register again.
        if (!ok && !l.stream.closed)
          await this.#o.store.putStream(
            {
              streamId: id,
              startedAt: l.startedAt,
              heartbeatAt: Date.now(),
              viewers: 0,
              nodeId: this.#o.nodeId,
              state: 'live',
              ...patch,
            },
            this.#o.streamTtlMs,
          );
      } catch (e) {
        this.#storeError(e, 'heartbeat');
      }
    }
  }

  /**
   * Writes every block this node knows of (kills it made or heard of, automated kills of its
   * enforcer) into the store again: after the store came back empty (the audit chain alarm), a
   * killed stream must not become publishable anywhere.
   */
  restoreBlocks(): void {
    for (const b of this.#blockCache.values())
      this.#o.store.setBlock(b).catch((e: unknown) => this.#queuedOr(e, 'setBlock(restore)'));
  }

  #queuedOr(e: unknown, what: string): void {
    if (!(e instanceof OutboxQueuedError)) this.#storeError(e, what);
  }

  /**
   * Applies the cluster's active policy (the store's) when this node runs another version: a node that
   * missed the activation message, or restarted, catches up within a heartbeat. A version that does
   * not load here is tried once (logged), not at every heartbeat.
   */
  async syncPolicy(): Promise<void> {
    const policies = this.#o.policies;
    if (!policies) return;
    const before = policies.loaded ? policies.current : undefined;
    let active: ActivePolicyRecord | undefined;
    try {
      active = await this.#o.store.getActivePolicy();
    } catch (e) {
      this.#storeError(e, 'getActivePolicy');
      return;
    }
    // A policy this node activated while the store was being read is newer than what was read (the
    // activation writes the store after loading): applying the read record would undo it.
    if ((policies.loaded ? policies.current : undefined) !== before) return;
    if (
      !active ||
      (policies.loaded && policies.current.version === active.version) ||
      this.#policyTried === active.version
    )
      return;
    this.#policyTried = active.version;
    const r = policies.load(active.files, `${active.by} (applied from the store)`);
    if (r.ok) this.#o.log.info({ version: active.version, by: active.by }, 'cluster policy applied from the store');
    else
      this.#o.log.error(
        { err: r.error.message, version: active.version },
        'the cluster policy in the store does not load on this node; the last good policy stays',
      );
  }

  /**
   * Applies the cluster's hash bank edits this node has not applied yet (an entry added or removed
   * through another node's API, or before this node restarted), in seq order, a page at a time.
   */
  async syncBanks(): Promise<void> {
    const banks = this.#o.banks;
    if (!banks) return;
    for (;;) {
      let edits;
      try {
        edits = await this.#o.store.listBankEdits(banks.bankSeq, 1000);
      } catch (e) {
        this.#storeError(e, 'listBankEdits');
        return;
      }
      for (const edit of edits) banks.applyBankEdit(edit);
      if (edits.length < 1000) return;
    }
  }

  /**
   * Follows the cluster's shadow run (issue 17) as syncPolicy follows the active policy: a node that
   * missed the start or stop message catches up within a heartbeat. A record is tried once here.
   */
  async syncShadow(): Promise<void> {
    const policies = this.#o.policies;
    if (!policies?.loaded) return;
    let record: ShadowPolicyRecord | undefined;
    try {
      record = await this.#o.store.getShadowPolicy();
    } catch (e) {
      this.#storeError(e, 'getShadowPolicy');
      return;
    }
    if (!record) {
      this.#shadowTried = undefined;
      if (policies.shadow) policies.stopShadow('cluster', 'stopped in the store');
      return;
    }
    const key = `${record.version}@${record.at}`;
    if (policies.shadow?.version === record.version || this.#shadowTried === key) return;
    this.#shadowTried = key;
    const r = policies.startShadow(
      record.files ? { files: record.files } : { thresholds: record.thresholds ?? [] },
      `${record.by} (applied from the store)`,
    );
    if (!r.ok)
      this.#o.log.error(
        { err: r.error.message, version: record.version },
        'the shadow candidate in the store does not load on this node',
      );
  }

  /** Streams whose sessions are on this node. */
  localStreams(): Stream[] {
    return [...this.#local.values()].map((l) => l.stream);
  }

  /** Current verdict summary of a local stream (undefined when not local or not yet scored). */
  verdictOf(streamId: string): StreamVerdictSummary | undefined {
    const v = this.#o.enforcer?.verdictOf(streamId);
    return v ? summarizeVerdict(v) : undefined;
  }

  /** The gate a joining viewer needs: manual gates, then the enforcer's. */
  initialGate(streamId: string, jurisdiction: string | undefined): Partial<ViewerGateState> {
    const fromEnforcer = this.#o.enforcer?.gateForNewViewer(streamId, jurisdiction) ?? {};
    const manual = this.#gates.get(streamId);
    const ms = [manual?.get(jurisdiction ?? 'default'), manual?.get('*')];
    return {
      video:
        fromEnforcer.video === 'closed'
          ? 'closed'
          : ms.some((m) => m?.video === 'blank') || fromEnforcer.video === 'blank'
            ? 'blank'
            : 'forward',
      audio:
        fromEnforcer.audio === 'closed'
          ? 'closed'
          : ms.some((m) => m?.audio === 'mute') || fromEnforcer.audio === 'mute'
            ? 'mute'
            : 'forward',
    };
  }

  /** The publish block of a stream: the store's, else this node's cache (store away), else the enforcer's. */
  async blockOf(streamId: string): Promise<StreamBlock | undefined> {
    let block: StreamBlock | undefined;
    try {
      block = await this.#o.store.getBlock(streamId);
      // the cache forgets a block only on a resume this node hears of: a store restarted empty says
      // "no block" too, and restoreBlocks writes the cache back into it
      if (block) this.#blockCache.set(streamId, block);
    } catch (e) {
      this.#storeError(e, 'getBlock');
      block = this.#blockCache.get(streamId);
    }
    if (block) return block;
    const eb = this.#o.enforcer?.isBlocked(streamId);
    return eb ? { streamId, reason: eb.reason, statementId: eb.statementId, at: eb.at, by: 'enforcer' } : undefined;
  }

  appealUrlFor(statementId: string | undefined): string {
    const base = this.#o.policies?.loaded ? this.#o.policies.current.appealUrl : '/v1/appeals';
    const path = statementId ? `${base}/${statementId}` : base;
    return /^https?:/.test(path) ? path : `${this.#o.publicUrl()}${path}`;
  }

  /**
   * Manual kill (admin): the session is closed on whichever node holds it, the stream is blocked
   * from publishing again until resumed, and a statement, a decision and an audit entry are kept.
   */
  async kill(
    streamId: string,
    input: OperatorInput,
  ): Promise<{ decision: DecisionRecord; statement: StatementOfReasons; local: boolean }> {
    const remote = await this.#registryFacts(streamId);
    const at = Date.now();
    // before the close: the evidence ring still has the stream's last seconds
    const statement = this.#operatorStatement(streamId, at, input, 'kill_stream', ['global'], remote);
    const local = this.#localKill(streamId, input.reason, statement.id, 'manual');
    const decision: DecisionRecord = {
      id: `dec_${randomUUID()}`,
      streamId,
      at,
      source: 'manual',
      bucket: 'red',
      action: 'kill_stream',
      jurisdictions: [],
      statementId: statement.id,
      actor: input.actor,
      note: input.reason,
      policyVersion: statement.ground.policyVersion,
    };
    const block: StreamBlock = { streamId, reason: input.reason, statementId: statement.id, at, by: input.actor };
    this.#blockCache.set(streamId, block);
    // The records first (through the outbox, they are kept even while the store is away), then the
    // message; a node that misses it finds the block at its next heartbeat.
    try {
      await Promise.all([
        recorded(this.#o.store.putStatement(statement)),
        recorded(this.#o.store.putDecision(decision)),
        recorded(this.#o.store.setBlock(block)),
        recorded(
          this.#o.store.appendAudit({
            type: 'stream.killed',
            source: 'manual',
            streamId,
            by: input.actor,
            reason: input.reason,
            statementId: statement.id,
            decisionId: decision.id,
            basis: statement.basis,
            at,
          }),
        ),
        recorded(this.#o.store.appendAudit({ type: 'statement', at, streamId, statement })),
      ]);
    } catch (e) {
      if (e instanceof SrvError && e.code === 'SRV_ERR_STORE_UNAVAILABLE')
        throw new SrvError(
          'SRV_ERR_STORE_UNAVAILABLE',
          `${local ? 'killed on this node, but ' : ''}the kill could not be recorded: ${e.message}`,
        );
      throw e;
    }
    try {
      await this.#o.store.publishControl({
        type: 'kill',
        streamId,
        reason: input.reason,
        statementId: statement.id,
        origin: this.#o.nodeId,
        at,
      });
    } catch (e) {
      this.#storeError(
        e,
        'publishControl(kill): other nodes apply the block at their next heartbeat once the store is back',
      );
    }
    this.#o.events.emit({ roles: ['ops'] }, { type: 'decision', decision });
    this.#o.events.emit({ roles: ['ops'] }, statementCreated(statement));
    return { decision, statement, local };
  }

  /**
   * Lifts a manual block and any manual gates; audited. When something was lifted the streamer gets
   * a statement saying so and why (citing the kill's facts when the kill's statement can be read).
   */
  async resume(
    streamId: string,
    input: { actor: string; note?: string },
  ): Promise<{ decision: DecisionRecord; wasBlocked: boolean; statement?: StatementOfReasons }> {
    const block = await this.blockOf(streamId);
    const hadGates = this.#gates.has(streamId);
    let prior: StatementOfReasons | undefined;
    try {
      if (block?.statementId) prior = await this.#o.store.getStatement(block.statementId);
    } catch (e) {
      this.#storeError(e, 'getStatement (resume): the lift cites what this node has');
    }
    const remote = block || hadGates ? await this.#registryFacts(streamId) : undefined;
    const at = Date.now();
    const cached = this.#blockCache.has(streamId) || this.#o.enforcer?.isBlocked(streamId) !== undefined;
    // store away: the unblock waits in the outbox; whether a block was held is what this node knew
    const wasBlocked = (await recorded(this.#o.store.clearBlock(streamId))) ?? cached;
    this.#blockCache.delete(streamId);
    this.#localResume(streamId);
    const statement =
      wasBlocked || hadGates
        ? this.#operatorStatement(
            streamId,
            at,
            {
              actor: input.actor,
              reason: input.note ?? 'resumed by an operator',
              clause: prior?.ground.clause,
              basis: prior?.basis,
            },
            'allow',
            ['global'],
            remote,
            prior,
          )
        : undefined;
    if (statement)
      await Promise.all([
        recorded(this.#o.store.putStatement(statement)),
        recorded(this.#o.store.appendAudit({ type: 'statement', at, streamId, statement })),
      ]);
    const decision: DecisionRecord = {
      id: `dec_${randomUUID()}`,
      streamId,
      at,
      source: 'manual',
      bucket: 'green',
      action: 'resume',
      jurisdictions: [],
      actor: input.actor,
      note: input.note,
      ...(statement ? { statementId: statement.id } : {}),
    };
    await this.#o.store.publishControl({ type: 'resume', streamId, origin: this.#o.nodeId, at });
    await recorded(this.#o.store.putDecision(decision));
    await recorded(
      this.#o.store.appendAudit({
        type: 'stream.resumed',
        source: 'manual',
        streamId,
        by: input.actor,
        note: input.note ?? null,
        decisionId: decision.id,
        wasBlocked,
        statementId: statement?.id ?? null,
        at,
      }),
    );
    this.#o.events.emit(
      { roles: ['streamer', 'ops'], streamId },
      { type: 'warning', streamId, message: 'Your stream was cleared by an operator; you may go live again.', at },
    );
    this.#o.events.emit({ roles: ['ops'] }, { type: 'decision', decision });
    if (statement) this.#o.events.emit({ roles: ['ops'] }, statementCreated(statement));
    return { decision, wasBlocked, ...(statement ? { statement } : {}) };
  }

  /**
   * Manual gate for a jurisdiction ('*' = all, 'default' = unknown) of a stream, on every node. Each
   * restriction it adds (blank, mute) gets its statement, recorded before the message goes out.
   */
  async setGate(
    streamId: string,
    jurisdiction: string,
    gate: { video?: 'forward' | 'blank'; audio?: 'forward' | 'mute' } & OperatorInput,
  ): Promise<{ statements: StatementOfReasons[] }> {
    const remote = gate.video === 'blank' || gate.audio === 'mute' ? await this.#registryFacts(streamId) : undefined;
    const at = Date.now();
    const scope = jurisdiction === '*' ? ['global'] : [jurisdiction];
    const statements: StatementOfReasons[] = [];
    if (gate.video === 'blank')
      statements.push(this.#operatorStatement(streamId, at, gate, 'blank_video', scope, remote));
    if (gate.audio === 'mute')
      statements.push(this.#operatorStatement(streamId, at, gate, 'mute_audio', scope, remote));
    await Promise.all(
      statements.flatMap((st) => [
        recorded(this.#o.store.putStatement(st)),
        recorded(this.#o.store.appendAudit({ type: 'statement', at, streamId, statement: st })),
      ]),
    );
    const msg: ControlMessage = {
      type: 'gate',
      streamId,
      jurisdiction,
      video: gate.video,
      audio: gate.audio,
      reason: gate.reason,
      statementId: statements[0]?.id,
      origin: this.#o.nodeId,
      at,
    };
    this.apply(msg);
    await this.#o.store.publishControl(msg);
    for (const st of statements) this.#o.events.emit({ roles: ['ops'] }, statementCreated(st));
    return { statements };
  }

  /** A review decision from policies' resolveReview: applied here and on the node that holds the stream. */
  async applyReviewDecision(decision: ReviewDecision): Promise<void> {
    this.#applyReview(decision, true);
    const { effect } = decision;
    this.#o.events.emit(
      { roles: ['ops'] },
      {
        type: decision.type === 'appeal' ? 'appeal.decided' : 'review.resolved',
        streamId: decision.streamId,
        itemId: decision.itemId,
        decisionId: decision.id,
        outcome: decision.outcome,
        effect:
          effect.kind === 'none'
            ? { kind: 'none' }
            : { kind: effect.kind, action: effect.action, jurisdictions: effect.jurisdictions },
        ...(decision.statement ? { statementId: decision.statement.id } : {}),
        at: decision.at,
      },
    );
    if (decision.statement) this.#o.events.emit({ roles: ['ops'] }, statementCreated(decision.statement));
    await this.#o.store.publishControl({ type: 'review', decision, origin: this.#o.nodeId, at: Date.now() });
    if (decision.effect.kind === 'lift' && decision.effect.action === 'kill_stream') {
      this.#blockCache.delete(decision.streamId);
      await this.#o.store.clearBlock(decision.streamId);
    }
  }

  #applyReview(decision: ReviewDecision, origin: boolean): void {
    const { effect } = decision;
    // an overturned manual gate is one of these (the enforcer only sees them as overrides)
    if (effect.kind === 'lift' && effect.action !== 'kill_stream')
      this.#liftManualGates(decision.streamId, effect.action, effect.jurisdictions);
    const enforcer = this.#o.enforcer;
    if (!enforcer) return;
    const liftKill = decision.effect.kind === 'lift' && decision.effect.action === 'kill_stream';
    // Records and audit are written once (by the origin); other nodes apply only what touches them.
    if (origin || this.#local.has(decision.streamId) || (liftKill && enforcer.isBlocked(decision.streamId))) {
      enforcer.applyReviewDecision(decision, { record: origin });
    }
  }

  /** Enqueues a review item (from the enforcer or an appeal) and tells ops the queue depth. */
  async enqueueReview(
    item: ReviewItem,
    extra: { thumbnail?: string; clips?: EvidenceRef[] } = {},
  ): Promise<StoredReviewItem> {
    // An appeal cites the evidence its statement cites.
    if (item.type === 'appeal' && item.statementId && !extra.clips) {
      const clips = (await this.#o.store.getStatement(item.statementId).catch(() => undefined))?.clips;
      if (clips?.length) extra = { ...extra, clips };
    }
    const stored = await this.#o.store.enqueueReview(item, extra);
    this.#o.events.emit(
      { roles: ['ops'] },
      {
        type: item.type === 'appeal' ? 'appeal.created' : 'review.created',
        streamId: item.streamId,
        itemId: item.id,
        priority: item.priority,
        jurisdictions: item.jurisdictions,
        categories: item.categories.map((c) => c.category),
        ...(item.statementId ? { statementId: item.statementId } : {}),
        at: item.createdAt,
      },
    );
    void this.publishQueueDepth();
    return stored;
  }

  async publishQueueDepth(): Promise<void> {
    try {
      const depth = await this.#o.store.reviewDepth();
      this.#o.metrics.setReviewDepth(depth);
      this.#o.events.emit({ roles: ['ops'] }, { type: 'review.queue', depth, at: Date.now() });
    } catch (e) {
      this.#storeError(e, 'reviewDepth');
    }
  }

  /** Applies a control message on this node. */
  apply(m: ControlMessage): void {
    switch (m.type) {
      case 'kill':
        this.#blockCache.set(m.streamId, {
          streamId: m.streamId,
          reason: m.reason,
          statementId: m.statementId,
          at: m.at,
          by: m.origin,
        });
        this.#localKill(m.streamId, m.reason, m.statementId, 'remote');
        return;
      case 'resume':
        this.#blockCache.delete(m.streamId);
        this.#localResume(m.streamId);
        return;
      case 'gate':
        this.#localGate(m);
        return;
      case 'event':
        this.#o.events.emit(m.audience, m.message as Parameters<EventHub['emit']>[1], { relayed: true });
        return;
      case 'policy': {
        const r = this.#o.policies?.load(m.files, m.by);
        if (r && !r.ok) this.#o.log.error({ err: r.error.message }, 'policy from another node did not load here');
        return;
      }
      case 'review':
        this.#applyReview(m.decision, false);
        return;
      case 'shadow': {
        const policies = this.#o.policies;
        if (!policies) return;
        if (!m.record) {
          policies.stopShadow(m.origin, 'stopped on another node');
          return;
        }
        const r = policies.startShadow(
          m.record.files ? { files: m.record.files } : { thresholds: m.record.thresholds ?? [] },
          m.record.by,
        );
        if (!r.ok)
          this.#o.log.error(
            { err: r.error.message, version: m.record.version },
            'shadow candidate from another node did not load here',
          );
        return;
      }
    }
  }

  #localKill(streamId: string, reason: string, statementId: string | undefined, source: 'manual' | 'remote'): boolean {
    const stream = this.#o.sfu.getStream(streamId);
    if (!stream || stream.closed) return false;
    const t0 = performance.now();
    const at = Date.now();
    // Tell the clients first: the close below drops their media at once.
    this.#o.events.emit(
      { roles: ['streamer', 'viewer', 'ops'], streamId },
      { type: 'stream.killed', streamId, reason, statementId, appealUrl: this.appealUrlFor(statementId), at },
    );
    stream.close({ code: 'killed', message: reason, statementId });
    this.#o.metrics.recordKill(source, performance.now() - t0);
    this.#o.log.info({ streamId, reason, statementId, source }, 'stream killed');
    return true;
  }

  #localResume(streamId: string): void {
    // an automated (or reviewed) kill on this node is lifted too: before, admin resume cleared the
    // store's block but the node that killed the stream kept refusing it
    this.#o.enforcer?.liftBlock(streamId);
    const gates = this.#gates.get(streamId);
    this.#gates.delete(streamId);
    if (gates) this.#regate(streamId, new Map());
  }

  /** Drops the part of a stream's manual gates that a granted appeal lifted ('global' = the '*' gate). */
  #liftManualGates(streamId: string, action: string, jurisdictions: string[]): void {
    const gates = this.#gates.get(streamId);
    if (!gates) return;
    let changed = false;
    for (const j of jurisdictions) {
      const key = j === 'global' ? '*' : j;
      const g = gates.get(key);
      if (!g) continue;
      const next: ManualGate = { ...g };
      if (action === 'blank_video' && g.video === 'blank') delete next.video;
      else if (action === 'mute_audio' && g.audio === 'mute') delete next.audio;
      else continue;
      changed = true;
      if (next.video === 'blank' || next.audio === 'mute') gates.set(key, next);
      else gates.delete(key);
    }
    if (changed) this.#regate(streamId, gates);
  }

  /** Re-gates a stream's viewers after its manual gates changed to `gates`. */
  #regate(streamId: string, gates: ReadonlyMap<string, ManualGate>): void {
    const stream = this.#o.sfu.getStream(streamId);
    if (!stream) return;
    if (this.#o.enforcer) {
      // the enforcer re-gates every viewer with them (what the verdict asks stays) and tells each changed one
      this.#o.enforcer.setManualGates(streamId, gates);
      return;
    }
    for (const v of stream.viewers.values()) {
      const g = this.initialGate(streamId, v.jurisdiction);
      if (g.video === 'forward' && v.gate.video === 'blank') v.setVideoGate('forward');
      if (g.audio === 'forward' && v.gate.audio === 'mute') v.setAudioGate('forward');
      this.#o.events.emit(
        { roles: ['viewer'], streamId, viewerId: v.id },
        {
          type: 'viewer.filtered',
          streamId,
          viewerId: v.id,
          jurisdiction: v.jurisdiction,
          video: v.gate.video === 'blank' ? 'blank' : 'forward',
          audio: v.gate.audio === 'mute' ? 'mute' : 'forward',
          reason: 'restriction lifted',
          at: Date.now(),
        },
      );
    }
  }

  #localGate(m: Extract<ControlMessage, { type: 'gate' }>): void {
    let gates = this.#gates.get(m.streamId);
    if (!gates) this.#gates.set(m.streamId, (gates = new Map<string, ManualGate>()));
    const prev = gates.get(m.jurisdiction);
    gates.set(m.jurisdiction, {
      ...prev,
      ...(m.video ? { video: m.video } : {}),
      ...(m.audio ? { audio: m.audio } : {}),
      reason: m.reason,
      statementId: m.statementId,
    });
    const stream = this.#o.sfu.getStream(m.streamId);
    if (!stream) return;
    if (this.#o.enforcer) {
      // one owner of viewer gates: the enforcer combines these with the verdict now and at every later change
      this.#o.enforcer.setManualGates(m.streamId, gates);
      return;
    }
    for (const v of stream.viewers.values()) {
      if (m.jurisdiction !== '*' && (v.jurisdiction ?? 'default') !== m.jurisdiction) continue;
      if (m.video) v.setVideoGate(m.video);
      if (m.audio) v.setAudioGate(m.audio);
      this.#o.events.emit(
        { roles: ['viewer'], streamId: m.streamId, viewerId: v.id },
        {
          type: 'viewer.filtered',
          streamId: m.streamId,
          viewerId: v.id,
          jurisdiction: v.jurisdiction,
          video: v.gate.video === 'blank' ? 'blank' : 'forward',
          audio: v.gate.audio === 'mute' ? 'mute' : 'forward',
          reason: m.reason,
          statementId: m.statementId,
          at: Date.now(),
        },
      );
    }
  }

  /**
   * What the registry says of a stream another node holds (its verdict summary and samples at that
   * node's last heartbeat), for an operator's statement issued here; undefined when it is local or
   * the store cannot say (the statement then cites what this node has).
   */
  async #registryFacts(
    streamId: string,
  ): Promise<{ verdict?: StreamVerdictSummary; evidence?: RegistryEvidence } | undefined> {
    if (this.#local.has(streamId)) return undefined;
    try {
      const r = await this.#o.store.getStream(streamId);
      return r && { verdict: r.verdict, evidence: r.evidence };
    } catch (e) {
      this.#storeError(e, 'getStream (facts of an operator action)');
      return undefined;
    }
  }

  /**
   * The statement of an operator's action: the stream's scores and the samples its moderation holds
   * (this node's, else the registry's from the holder's last heartbeat), the clause and ground of the
   * category cited, the notice followed; the evidence clip is started here, so the statement cites it.
   */
  #operatorStatement(
    streamId: string,
    at: number,
    input: OperatorInput,
    action: OperatorAction['action'],
    jurisdictions: string[],
    remote: { verdict?: StreamVerdictSummary; evidence?: RegistryEvidence } | undefined,
    /** A lift cites the facts of the restriction it ends. */
    lifted?: StatementOfReasons,
  ): StatementOfReasons {
    const policy = this.#o.policies?.loaded ? this.#o.policies.current : undefined;
    let clause = input.clause;
    let ground: GroundType | undefined;
    if (input.category !== undefined) {
      const def = policy?.taxonomy[input.category];
      if (!def)
        throw badRequest(
          `category ${input.category} is not in the policy in force (${policy ? policy.version : 'none loaded'})`,
        );
      clause ??= def.clause;
      ground = def.ground;
    }
    const v = lifted ? undefined : this.#o.enforcer?.verdictOf(streamId);
    const held = remote?.evidence;
    const evidence = lifted
      ? {
          sampleSeqs: lifted.facts.sampleSeqs,
          timeRange: lifted.facts.timeRange,
          scores: lifted.facts.categories,
          matches: lifted.facts.matches,
          text: lifted.facts.text,
          textContext: [],
          thumbnailRefs: [],
        }
      : (this.#o.enforcer?.evidenceOf(streamId) ??
        (held
          ? { ...held, matches: [], text: [], textContext: [], thumbnailRefs: [] }
          : {
              sampleSeqs: [],
              timeRange: { from: at, to: at },
              scores: [],
              matches: [],
              text: [],
              textContext: [],
              thumbnailRefs: [],
            }));
    // the fused score where the verdict has one (a category out of green), else the window's highest sample score
    const scores = v ? summarizeVerdict(v).categories : lifted ? {} : { ...remote?.verdict?.categories };
    for (const e of evidence.scores) scores[e.category] ??= e.score;
    if (input.category !== undefined) scores[input.category] ??= 0;
    const statement = operatorStatement({
      streamId,
      issuedAt: at,
      actor: input.actor,
      reason: input.reason,
      action,
      jurisdictions,
      clause,
      ground,
      policy: { version: policy?.version ?? 'none', appealUrl: policy?.appealUrl ?? '/v1/appeals' },
      categories: Object.entries(scores).map(([category, score]) => ({ category, score })),
      evidence,
      basis: input.basis,
      appealBase: this.appealUrlFor(undefined),
    });
    if (lifted) {
      // a lift keeps no new media: it cites the clips of the restriction it ends
      if (lifted.clips?.length) statement.clips = lifted.clips.map((c) => ({ ...c }));
      return statement;
    }
    try {
      const clips = this.#o.evidence?.capture(statement);
      if (clips?.length) statement.clips = clips;
    } catch (err) {
      this.#o.log.warn(
        { err, streamId, statementId: statement.id },
        'evidence capture failed; the statement cites no clip',
      );
    }
    return statement;
  }

  /** Registry entries (cluster-wide), with this node's live verdicts filled in. */
  async listStreams(): Promise<(LiveStreamRecord & { local: boolean; blocked?: StreamBlock })[]> {
    const records = await this.#o.store.listStreams();
    return Promise.all(
      records.map(async (r) => {
        const local = this.#local.has(r.streamId);
        const verdict = local ? (this.verdictOf(r.streamId) ?? r.verdict) : r.verdict;
        const blocked = r.state === 'killed' ? await this.#o.store.getBlock(r.streamId) : undefined;
        return {
          ...r,
          verdict,
          local,
          viewers: local ? (this.#local.get(r.streamId)?.stream.viewers.size ?? r.viewers) : r.viewers,
          ...(blocked ? { blocked } : {}),
        };
      }),
    );
  }

  async getStream(streamId: string): Promise<LiveStreamRecord & { local: boolean; blocked?: StreamBlock }> {
    const r = await this.#o.store.getStream(streamId);
    const blocked = await this.#o.store.getBlock(streamId);
    if (!r) {
      if (blocked)
        return {
          streamId,
          nodeId: '',
          state: 'killed',
          startedAt: blocked.at,
          heartbeatAt: blocked.at,
          viewers: 0,
          local: false,
          blocked,
        };
      throw notFound(`stream ${streamId} is not live`);
    }
    const local = this.#local.has(streamId);
    return {
      ...r,
      verdict: local ? (this.verdictOf(streamId) ?? r.verdict) : r.verdict,
      local,
      ...(blocked ? { blocked } : {}),
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#unsubscribe?.();
  }
}
