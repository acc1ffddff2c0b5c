// Fusion over time: noisy per-sample signals -> a stable per-jurisdiction verdict.
//
// Per stream and category a window keeps the last M samples. A bucket is entered when N of those
// M samples reach its threshold (the fused score is the N-th highest sample score, so "fused >=
// threshold" is exactly "N of M reached it"); it is left only after `exit` consecutive samples
// below (threshold - hysteresis). Known-content matches can be red at once. Pure: the caller owns
// the state and the clock.
import { canonicalJson } from './canonical.ts';
import { BUCKET_RANK } from './summary.ts';
import type {
  Action,
  Bucket,
  CategoryDef,
  Evidence,
  FailMode,
  JurisdictionVerdict,
  Policy,
  SignalInput,
  SignalLike,
  Verdict,
} from './types.ts';

/** Key of the stream-wide (kill) rules in the bucket table. */
export const GLOBAL_KEY = '@global';

const MAX_EVIDENCE_MATCHES = 20;

interface SampleRecord {
  seq: number;
  at: number;
  /** Max over model scores and bank-match confidences. */
  score: number;
  matched: boolean;
  /** Text hits feeding the category: lexicon category + term (lower case). */
  terms: { category: string; term: string }[];
  matches: SignalInput['matches'];
  text: SignalInput['text'];
  thumbnailRef?: string;
  textContext?: string[];
}

interface Outage {
  seqs: number[];
  from: number;
  to: number;
  statuses: string[];
}

/** Pseudo-category of fail-mode restrictions. */
export const SIGNALS_UNAVAILABLE = 'signals_unavailable';
const MAX_OUTAGE_SEQS = 50;

interface BucketState {
  bucket: Bucket;
  /** Fused score at the last update. */
  score: number;
  /** Consecutive samples below the current bucket's exit threshold. */
  below: number;
  /** When the current bucket was entered (server ms). */
  since: number;
}

export interface FusionState {
  readonly streamId: string | undefined;
  readonly windows: Readonly<Record<string, readonly SampleRecord[]>>;
  /** jurisdiction key (or GLOBAL_KEY) -> category -> bucket state. */
  readonly buckets: Readonly<Record<string, Readonly<Record<string, BucketState>>>>;
  /** Consecutive samples per kind whose status was not 'ok'. */
  readonly unavailable: Readonly<{ audio: number; video: number }>;
  /** While a kind is degraded: consecutive samples with model answers since the outage ended (leaving needs failAfter of them). */
  readonly recovering: Readonly<{ audio: number; video: number }>;
  /** The current run of unavailable samples per kind (the facts of a fail-mode restriction). */
  readonly outage: Readonly<Partial<Record<'audio' | 'video', Outage>>>;
  readonly verdict: Verdict | undefined;
  /** decisionKey(verdict), kept so each sample computes it once. */
  readonly decisionKey: string | undefined;
  readonly samples: number;
}

export interface FusionResult {
  state: FusionState;
  verdict: Verdict;
  /** The decision changed (bucket, actions, kill, review, fail mode): the enforcer must act. */
  changed: boolean;
  /** (jurisdiction, category) pairs that went from green to amber with this sample; the review queue wants them. */
  enteredAmber: { jurisdiction: string; category: string }[];
}

export function createFusionState(streamId?: string): FusionState {
  return {
    streamId,
    windows: {},
    buckets: {},
    unavailable: { audio: 0, video: 0 },
    recovering: { audio: 0, video: 0 },
    outage: {},
    verdict: undefined,
    decisionKey: undefined,
    samples: 0,
  };
}

const BUCKETS: Bucket[] = ['green', 'amber', 'red'];

/** Strictness order, used to pick a jurisdiction's headline action and for intersection mode. */
export const ACTION_SEVERITY: Record<Action, number> = {
  allow: 0,
  mute_audio: 1,
  blank_video: 2,
  block: 3,
  kill_stream: 4,
};

export function strictestAction(actions: readonly Action[]): Action {
  let best: Action = 'allow';
  for (const a of actions) if (ACTION_SEVERITY[a] > ACTION_SEVERITY[best]) best = a;
  return best;
}

/** The n-th highest value (0 with fewer than n values): "n of the window reached it". */
function nthHighest(values: readonly number[], n: number): number {
  if (values.length < n) return 0;
  // Keep the n highest seen so far in a small descending list (n is a few samples).
  const top: number[] = [];
  for (const v of values) {
    if (top.length === n && v <= top[n - 1]!) continue;
    let i = top.length < n ? top.length : n - 1;
    if (top.length < n) top.push(v);
    while (i > 0 && top[i - 1]! < v) {
      top[i] = top[i - 1]!;
      i--;
    }
    top[i] = v;
  }
  return top[n - 1] ?? 0;
}

function level(score: number, amber: number, red: number): Bucket {
  if (score >= red) return 'red';
  if (score >= amber) return 'amber';
  return 'green';
}

interface Thresholds {
  amber: number;
  red: number;
  immediateOnMatch: boolean;
}

/** Whether a term belongs to the lexicon of a jurisdiction (global + its own); terms in no lexicon at all count everywhere. */
export function termCounts(policy: Policy, jurisdiction: string, category: string, term: string): boolean {
  const t = term.toLowerCase();
  if (policy.lexicon[category]?.includes(t)) return true;
  if (jurisdiction !== GLOBAL_KEY && policy.jurisdictions[jurisdiction]?.lexicon[category]?.includes(t)) return true;
  for (const j of Object.values(policy.jurisdictions)) if (j.lexicon[category]?.includes(t)) return false;
  return true;
}

function effectiveScore(policy: Policy, jurisdiction: string, r: SampleRecord): number {
  if (r.score >= 1) return r.score;
  for (const hit of r.terms) if (termCounts(policy, jurisdiction, hit.category, hit.term)) return 1;
  return r.score;
}

/**
 * Whether a signal says anything about a category: the models scored it, or a bank or lexicon that
 * feeds it matched. Categories fed only by banks and lexicons count every signal of their kind as a
 * look (a clean frame is evidence of absence); model-fed categories ignore signals without scores,
 * so a late or partial signal neither dilutes their window nor hides a hash match.
 */
function assesses(def: CategoryDef, signal: SignalLike, modelAnswered: boolean): boolean {
  if (signal.matches.some((m) => def.signals.banks.includes(m.bank) || m.category === def.name)) return true;
  if (signal.text.some((t) => def.signals.text.includes(t.category))) return true;
  if (signal.status !== 'ok') return false;
  // Lexicon-only categories are looked at by text passes only (OCR or chat signals: no model scores,
  // no matches). The fast path's classifier/hash signals never read text, so counting them as clean
  // looks made an on-screen term that OCR sees every 2 s fall out of red between two OCR passes
  // (the SA blank flapped open and shut while the text stayed on screen).
  if (def.signals.scores.length === 0 && def.signals.banks.length === 0 && def.signals.text.length > 0) {
    return Object.keys(signal.scores).length === 0 && signal.matches.length === 0;
  }
  if (def.signals.scores.length === 0) return true;
  // A category fed by banks as well as scores (copyright_audio: audio fingerprints) is looked at by
  // every score-less signal of its kind: the bank matcher ran and found nothing. Without this a
  // copyright mute never lifted when the music stopped (no model emits a copyright_audio score).
  if (def.signals.banks.length > 0 && Object.keys(signal.scores).length === 0 && signal.text.length === 0) return true;
  return modelAnswered && def.signals.scores.some((k) => signal.scores[k] !== undefined);
}

function recordFor(def: CategoryDef, signal: SignalLike): SampleRecord {
  let score = 0;
  for (const key of def.signals.scores) {
    const v = signal.scores[key];
    if (typeof v === 'number' && Number.isFinite(v) && v > score) score = Math.min(1, v);
  }
  const matches = signal.matches.filter((m) => def.signals.banks.includes(m.bank) || m.category === def.name);
  for (const m of matches) if (m.confidence > score) score = Math.min(1, m.confidence);
  const text = signal.text.filter((t) => def.signals.text.includes(t.category));
  return {
    seq: signal.sampleSeq,
    at: signal.arrivedAt,
    score,
    matched: matches.length > 0,
    terms: text.map((t) => ({ category: t.category, term: t.term.toLowerCase() })),
    matches,
    text,
    thumbnailRef: signal.thumbnailRef,
    textContext: signal.textContext,
  };
}

function step(
  prev: BucketState | undefined,
  fused: number,
  latest: SampleRecord,
  latestScore: number,
  th: Thresholds,
  fusion: CategoryDef['fusion'],
  now: number,
): BucketState {
  const cur = prev ?? { bucket: 'green' as Bucket, score: 0, below: 0, since: now };
  let target = level(fused, th.amber, th.red);
  if (th.immediateOnMatch && latest.matched && latestScore >= th.red) target = 'red';
  if (BUCKET_RANK[target] > BUCKET_RANK[cur.bucket])
    return { bucket: target, score: Math.max(fused, target === 'red' ? latestScore : 0), below: 0, since: now };
  if (cur.bucket === 'green') return { ...cur, score: fused };
  const threshold = cur.bucket === 'red' ? th.red : th.amber;
  const below = latestScore < threshold - fusion.hysteresis ? cur.below + 1 : 0;
  if (below < fusion.exit) return { ...cur, score: fused, below };
  // Leaving: drop at least one bucket, further if the window (with hysteresis) says so.
  const down = level(fused, th.amber - fusion.hysteresis, th.red - fusion.hysteresis);
  const next = BUCKETS[Math.min(BUCKET_RANK[cur.bucket] - 1, BUCKET_RANK[down])] ?? 'green';
  return { bucket: next, score: fused, below: 0, since: now };
}

/**
 * Feeds one sample's signals. Returns the new state (the old one is not modified), the verdict
 * and whether the decision changed. `now` is the caller's clock (server ms).
 */
export function fuse(state: FusionState, signal: SignalLike, policy: Policy, now: number): FusionResult {
  const kind = signal.kind;
  const unavailable = { ...state.unavailable };
  const windows: Record<string, readonly SampleRecord[]> = { ...state.windows };
  const buckets: Record<string, Record<string, BucketState>> = {};
  for (const [k, v] of Object.entries(state.buckets)) buckets[k] = { ...v };
  const enteredAmber: FusionResult['enteredAmber'] = [];

  const outage = { ...state.outage };
  const recovering = { ...(state.recovering ?? { audio: 0, video: 0 }) };
  // Model answers, as opposed to signals that carry only hash matches or text (OCR at its own rate):
  // only those end an outage, and only categories a signal assessed get a sample in their window.
  const modelAnswered = signal.status === 'ok' && Object.keys(signal.scores).length > 0;
  if (signal.status !== 'ok') {
    unavailable[kind] += 1;
    recovering[kind] = 0;
    const o = outage[kind];
    outage[kind] = {
      seqs: [...(o?.seqs ?? []), signal.sampleSeq].slice(-MAX_OUTAGE_SEQS),
      from: o?.from ?? signal.arrivedAt,
      to: signal.arrivedAt,
      statuses: o?.statuses.includes(signal.status) ? o.statuses : [...(o?.statuses ?? []), signal.status],
    };
  } else if (modelAnswered || unavailable[kind] === 0) {
    // Leaving a fail mode takes as many good samples as entering it did, so it does not flap.
    if (unavailable[kind] >= policy.failAfter && ++recovering[kind] < policy.failAfter) {
      // still degraded
    } else {
      unavailable[kind] = 0;
      recovering[kind] = 0;
      delete outage[kind];
    }
  }
  {
    for (const def of Object.values(policy.taxonomy)) {
      if (!def.kinds.includes(kind)) continue;
      if (!assesses(def, signal, modelAnswered)) continue;
      const record = recordFor(def, signal);
      const window = [...(windows[def.name] ?? []), record].slice(-def.fusion.window);
      windows[def.name] = window;
      // Scores differ by jurisdiction only through lexicon terms: share them when there are none.
      const base = window.map((r) => r.score);
      const baseFused = nthHighest(base, def.fusion.enter);
      const hasTerms = window.some((r) => r.terms.length > 0);
      const update = (key: string, th: Thresholds) => {
        const scores = hasTerms ? window.map((r) => effectiveScore(policy, key, r)) : base;
        const fused = hasTerms ? nthHighest(scores, def.fusion.enter) : baseFused;
        const latestScore = scores[scores.length - 1] ?? 0;
        const table = (buckets[key] ??= {});
        const before = table[def.name]?.bucket ?? 'green';
        const after = step(table[def.name], fused, record, latestScore, th, def.fusion, now);
        table[def.name] = after;
        // Only green -> amber asks for a human: a red decaying through amber was already decided.
        if (key !== GLOBAL_KEY && after.bucket === 'amber' && before === 'green')
          enteredAmber.push({ jurisdiction: key, category: def.name });
      };
      const g = policy.global[def.name];
      if (g) update(GLOBAL_KEY, { amber: g.red, red: g.red, immediateOnMatch: g.immediateOnMatch });
      for (const j of Object.values(policy.jurisdictions)) {
        const rule = j.categories[def.name];
        if (rule) update(j.code, rule);
      }
    }
  }

  const degraded = (['audio', 'video'] as const).filter((k) => unavailable[k] >= policy.failAfter);
  const streamId = signal.streamId ?? state.streamId;
  const verdict = buildVerdict(policy, streamId, windows, buckets, degraded, now);
  if (degraded.length > 0)
    verdict.evidenceByCategory[SIGNALS_UNAVAILABLE] = outageEvidence(degraded.map((k) => outage[k]));
  const key = decisionKey(verdict);
  const previousKey = state.verdict === undefined ? GREEN_KEY : (state.decisionKey ?? decisionKey(state.verdict));
  const changed = key !== previousKey;
  return {
    state: {
      streamId,
      windows,
      buckets,
      unavailable,
      recovering,
      outage,
      verdict,
      decisionKey: key,
      samples: state.samples + 1,
    },
    verdict,
    changed,
    enteredAmber,
  };
}

/** Key of a green, healthy verdict: the first verdict is a change only when it differs from this. */
const GREEN_KEY = canonicalJson({ kill: false, review: false, per: {}, degraded: [] });

/** What the enforcer acts on; scores moving inside a bucket do not count as a change. */
export function decisionKey(v: Verdict): string {
  const per: Record<string, unknown> = {};
  for (const [k, j] of Object.entries(v.perJurisdiction)) {
    if (j.bucket === 'green' && j.actions.length === 0 && !j.failMode) continue;
    per[k] = {
      b: j.bucket,
      a: [...j.actions].sort(),
      f: j.failMode ?? null,
      c: j.categories.map((c) => `${c.category}:${c.bucket}`).sort(),
    };
  }
  return canonicalJson({ kill: v.kill, review: v.review, per, degraded: [...v.degraded].sort() });
}

function buildVerdict(
  policy: Policy,
  streamId: string | undefined,
  windows: Record<string, readonly SampleRecord[]>,
  buckets: Record<string, Record<string, BucketState>>,
  degraded: ('audio' | 'video')[],
  now: number,
): Verdict {
  const perJurisdiction: Record<string, JurisdictionVerdict> = {};
  const evidenceCategories = new Map<string, number>();
  let review = false;
  for (const j of Object.values(policy.jurisdictions)) {
    const table = buckets[j.code] ?? {};
    const categories: JurisdictionVerdict['categories'] = [];
    const actions = new Set<Action>();
    let bucket: Bucket = 'green';
    for (const [name, rule] of Object.entries(j.categories)) {
      const b = table[name];
      if (!b || b.bucket === 'green') continue;
      const a = b.bucket === 'red' ? rule.actions.red : rule.actions.amber;
      categories.push({ category: name, score: round(b.score), bucket: b.bucket, clause: rule.clause, action: a });
      if (a !== 'allow') actions.add(a);
      if (BUCKET_RANK[b.bucket] > BUCKET_RANK[bucket]) bucket = b.bucket;
      if (b.bucket === 'amber' && j.reviewAmber) review = true;
      evidenceCategories.set(name, Math.max(evidenceCategories.get(name) ?? 0, b.score));
    }
    let failMode: FailMode | undefined;
    if (degraded.length > 0) {
      failMode = j.failMode;
      if (failMode === 'fail_closed') {
        if (degraded.includes('video')) actions.add('blank_video');
        if (degraded.includes('audio')) actions.add('mute_audio');
      }
    }
    const list = [...actions].sort((a, b) => ACTION_SEVERITY[b] - ACTION_SEVERITY[a]);
    perJurisdiction[j.code] = {
      bucket,
      action: strictestAction(list),
      categories,
      actions: list,
      ...(failMode ? { failMode } : {}),
    };
  }
  const killCategories: Verdict['killCategories'] = [];
  for (const [name, rule] of Object.entries(policy.global)) {
    const b = buckets[GLOBAL_KEY]?.[name];
    if (b?.bucket === 'red') {
      killCategories.push({ category: name, score: round(b.score), clause: rule.clause });
      evidenceCategories.set(name, Math.max(evidenceCategories.get(name) ?? 0, b.score));
    }
  }
  const kill = killCategories.length > 0;
  if (kill) for (const j of Object.values(perJurisdiction)) j.action = 'kill_stream';
  return {
    streamId: streamId ?? '',
    at: now,
    policyVersion: policy.version,
    kill,
    perJurisdiction,
    review,
    killCategories,
    degraded,
    evidence: gatherEvidence(windows, evidenceCategories),
    evidenceByCategory: Object.fromEntries(
      [...evidenceCategories].map(([c, score]) => [c, gatherEvidence(windows, new Map([[c, score]]))]),
    ),
  };
}

function round(x: number): number {
  return Math.round(x * 10000) / 10000;
}

function outageEvidence(outages: (Outage | undefined)[]): Evidence {
  const list = outages.filter((o): o is Outage => o !== undefined);
  return {
    sampleSeqs: [...new Set(list.flatMap((o) => o.seqs))].sort((a, b) => a - b),
    timeRange: list.length
      ? { from: Math.min(...list.map((o) => o.from)), to: Math.max(...list.map((o) => o.to)) }
      : { from: 0, to: 0 },
    scores: [],
    matches: [],
    text: [],
    textContext: [...new Set(list.flatMap((o) => o.statuses))].map((st) => `signal status: ${st}`),
    thumbnailRefs: [],
  };
}

/** Evidence of a set of categories, merged from a verdict's per-category evidence. */
export function evidenceFor(verdict: Verdict, categories: Iterable<string>): Evidence {
  const parts = [...new Set(categories)]
    .map((c) => verdict.evidenceByCategory[c])
    .filter((e): e is Evidence => e !== undefined);
  if (parts.length === 0) return verdict.evidence;
  const seqs = new Set<number>();
  const out: Evidence = {
    sampleSeqs: [],
    timeRange: { from: Infinity, to: -Infinity },
    scores: [],
    matches: [],
    text: [],
    textContext: [],
    thumbnailRefs: [],
  };
  for (const e of parts) {
    for (const s of e.sampleSeqs) seqs.add(s);
    out.timeRange.from = Math.min(out.timeRange.from, e.timeRange.from);
    out.timeRange.to = Math.max(out.timeRange.to, e.timeRange.to);
    out.scores.push(...e.scores);
    for (const m of e.matches)
      if (!out.matches.some((x) => x.bank === m.bank && x.entryId === m.entryId)) out.matches.push(m);
    for (const t of e.text)
      if (!out.text.some((x) => x.category === t.category && x.term === t.term && x.source === t.source))
        out.text.push(t);
    for (const c of e.textContext) if (!out.textContext.includes(c)) out.textContext.push(c);
    for (const r of e.thumbnailRefs) if (!out.thumbnailRefs.includes(r)) out.thumbnailRefs.push(r);
  }
  out.sampleSeqs = [...seqs].sort((a, b) => a - b);
  return out;
}

/**
 * Facts of every sample the stream's windows hold (each category at its highest score there), for a
 * decision that is not the verdict's own: an operator acts on a stream whatever its buckets.
 */
export function windowEvidence(state: FusionState): Evidence {
  const categories = new Map<string, number>();
  for (const [name, records] of Object.entries(state.windows)) {
    if (records.length === 0) continue;
    categories.set(
      name,
      records.reduce((m, r) => Math.max(m, r.score), 0),
    );
  }
  return gatherEvidence(state.windows, categories);
}

function gatherEvidence(windows: Record<string, readonly SampleRecord[]>, categories: Map<string, number>): Evidence {
  const seqs = new Set<number>();
  const matches: Evidence['matches'] = [];
  const text: Evidence['text'] = [];
  const textContext = new Set<string>();
  const thumbs = new Set<string>();
  const seenMatch = new Set<string>();
  const seenText = new Set<string>();
  let from = Infinity;
  let to = -Infinity;
  for (const name of categories.keys()) {
    for (const r of windows[name] ?? []) {
      if (r.score <= 0 && r.terms.length === 0) continue;
      seqs.add(r.seq);
      from = Math.min(from, r.at);
      to = Math.max(to, r.at);
      for (const m of r.matches) {
        const k = `${m.bank}/${m.entryId}`;
        if (!seenMatch.has(k) && matches.length < MAX_EVIDENCE_MATCHES) {
          seenMatch.add(k);
          matches.push(m);
        }
      }
      for (const t of r.text) {
        const k = `${t.category}/${t.term}/${t.source}`;
        if (!seenText.has(k)) {
          seenText.add(k);
          text.push(t);
        }
      }
      for (const c of r.textContext ?? []) textContext.add(c);
      if (r.thumbnailRef) thumbs.add(r.thumbnailRef);
    }
  }
  return {
    sampleSeqs: [...seqs].sort((a, b) => a - b),
    timeRange: Number.isFinite(from) ? { from, to } : { from: 0, to: 0 },
    scores: [...categories].map(([category, score]) => ({ category, score: round(score) })),
    matches,
    text,
    textContext: [...textContext],
    thumbnailRefs: [...thumbs],
  };
}
