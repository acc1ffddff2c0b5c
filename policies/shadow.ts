// Shadow evaluation (issue 17 item 1): a candidate policy fused on the same live signals as the
// active one, enforcing nothing. What it would have done differently is counted per jurisdiction and
// category as the differences open (a candidate that keeps a stream killed for a minute is one kill,
// not 120 samples), with the samples behind each as references. Pure: the caller feeds both verdicts
// and keeps the per-stream state.
import { contentId } from './canonical.ts';
import { PolicyError } from './errors.ts';
import { SIGNALS_UNAVAILABLE } from './fusion.ts';
import type { Action, Policy, Verdict } from './types.ts';

/** What a policy does to a stream, as the shadow report counts it. */
export type ShadowOutcome = 'kill' | 'block' | 'blank' | 'mute' | 'review';
export const SHADOW_OUTCOMES: readonly ShadowOutcome[] = ['kill', 'block', 'blank', 'mute', 'review'];

const OUTCOME_OF: Partial<Record<Action, ShadowOutcome>> = {
  block: 'block',
  blank_video: 'blank',
  mute_audio: 'mute',
  kill_stream: 'kill',
};

/** One thing a verdict does: a kill (jurisdiction 'global'), a jurisdiction's restriction, or a review. */
export interface OutcomeOf {
  jurisdiction: string;
  category: string;
  outcome: ShadowOutcome;
  /** Fused score of the category under the verdict's policy. */
  score: number;
}

const keyOf = (o: { jurisdiction: string; category: string; outcome: ShadowOutcome }): string =>
  `${o.jurisdiction}|${o.category}|${o.outcome}`;

/** Everything a verdict does, keyed `jurisdiction|category|outcome`. A kill supersedes the jurisdictions' filters. */
export function outcomesOf(verdict: Verdict | undefined, policy: Policy): Map<string, OutcomeOf> {
  const out = new Map<string, OutcomeOf>();
  if (!verdict) return out;
  const add = (o: OutcomeOf): void => void out.set(keyOf(o), o);
  if (verdict.kill) {
    for (const k of verdict.killCategories)
      add({ jurisdiction: 'global', category: k.category, outcome: 'kill', score: k.score });
    return out;
  }
  for (const [code, jv] of Object.entries(verdict.perJurisdiction)) {
    for (const c of jv.categories) {
      const outcome = c.action ? OUTCOME_OF[c.action] : undefined;
      if (outcome) add({ jurisdiction: code, category: c.category, outcome, score: c.score });
      if (c.bucket === 'amber' && policy.jurisdictions[code]?.reviewAmber)
        add({ jurisdiction: code, category: c.category, outcome: 'review', score: c.score });
    }
    // fail-mode actions: restrictions no category explains
    for (const a of jv.actions) {
      const outcome = OUTCOME_OF[a];
      if (outcome && !jv.categories.some((c) => c.action === a))
        add({ jurisdiction: code, category: SIGNALS_UNAVAILABLE, outcome, score: 0 });
    }
  }
  return out;
}

/** A thing one policy did that the other did not, counted once when it starts. */
export interface ShadowDifference {
  /** 'shadow_only': the candidate would have done it and the active policy did not; 'active_only': the reverse. */
  side: 'shadow_only' | 'active_only';
  jurisdiction: string;
  category: string;
  outcome: ShadowOutcome;
  streamId: string;
  /** Server clock (ms) of the sample that opened it. */
  at: number;
  /** Fused score under the policy that did it. */
  score: number;
  /** Samples behind it (the doing verdict's evidence for the category): references for the report's readers. */
  sampleSeqs: number[];
  candidateVersion: string;
  activeVersion: string;
}

/** Per-stream comparison state: the differences open now. */
export interface ShadowTrack {
  readonly open: ReadonlySet<string>;
}

export const EMPTY_SHADOW_TRACK: ShadowTrack = { open: new Set() };

export interface Evaluated {
  verdict: Verdict | undefined;
  policy: Policy;
}

const MAX_SAMPLE_REFS = 20;

/**
 * Compares the active and the candidate verdicts of one stream after a sample. Returns the new
 * state and the differences that opened with this sample (a difference that stays open is not
 * counted again; once closed, it counts again when it reopens).
 */
export function compareShadow(
  track: ShadowTrack,
  streamId: string,
  at: number,
  active: Evaluated,
  shadow: Evaluated,
): { track: ShadowTrack; differences: ShadowDifference[] } {
  const a = outcomesOf(active.verdict, active.policy);
  const s = outcomesOf(shadow.verdict, shadow.policy);
  const open = new Set<string>();
  const differences: ShadowDifference[] = [];
  const side = (
    mine: Map<string, OutcomeOf>,
    theirs: Map<string, OutcomeOf>,
    name: ShadowDifference['side'],
    doer: Evaluated,
  ): void => {
    for (const [k, o] of mine) {
      if (theirs.has(k)) continue;
      const key = `${name}|${k}`;
      open.add(key);
      if (track.open.has(key)) continue;
      const seqs = doer.verdict?.evidenceByCategory[o.category]?.sampleSeqs ?? doer.verdict?.evidence.sampleSeqs ?? [];
      differences.push({
        side: name,
        jurisdiction: o.jurisdiction,
        category: o.category,
        outcome: o.outcome,
        streamId,
        at,
        score: o.score,
        sampleSeqs: seqs.slice(-MAX_SAMPLE_REFS),
        candidateVersion: shadow.policy.version,
        activeVersion: active.policy.version,
      });
    }
  };
  side(s, a, 'shadow_only', shadow);
  side(a, s, 'active_only', active);
  return { track: { open }, differences };
}

// ---------------------------------------------------------------------------------------------
// The report

export type OutcomeCounts = Record<ShadowOutcome, number>;

export interface ShadowCell {
  /** What the candidate would have done that the active policy did not. */
  shadowOnly: OutcomeCounts;
  /** What the active policy did that the candidate would not have. */
  activeOnly: OutcomeCounts;
  /** The first differences of the cell, with their sample references. */
  examples: Pick<ShadowDifference, 'side' | 'outcome' | 'streamId' | 'at' | 'score' | 'sampleSeqs'>[];
}

export interface ShadowReport {
  candidateVersion: string;
  /** Active versions the candidate was compared with (more than one when the active policy changed meanwhile). */
  activeVersions: string[];
  differences: number;
  shadowOnly: OutcomeCounts;
  activeOnly: OutcomeCounts;
  /** Jurisdiction ('global' for kills) -> category -> cell. */
  jurisdictions: Record<string, Record<string, ShadowCell>>;
  /** Time range of the differences (server ms); undefined with none. */
  from?: number;
  to?: number;
}

const zero = (): OutcomeCounts => ({ kill: 0, block: 0, blank: 0, mute: 0, review: 0 });

/** Aggregates recorded differences of one candidate (differences of other candidates are ignored). */
export function shadowReport(
  candidateVersion: string,
  differences: readonly ShadowDifference[],
  maxExamples = 5,
): ShadowReport {
  const report: ShadowReport = {
    candidateVersion,
    activeVersions: [],
    differences: 0,
    shadowOnly: zero(),
    activeOnly: zero(),
    jurisdictions: {},
  };
  const sorted = differences.filter((d) => d.candidateVersion === candidateVersion).sort((x, y) => x.at - y.at);
  for (const d of sorted) {
    report.differences++;
    if (!report.activeVersions.includes(d.activeVersion)) report.activeVersions.push(d.activeVersion);
    const cats = (report.jurisdictions[d.jurisdiction] ??= {});
    const cell = (cats[d.category] ??= { shadowOnly: zero(), activeOnly: zero(), examples: [] });
    const counts = d.side === 'shadow_only' ? 'shadowOnly' : 'activeOnly';
    cell[counts][d.outcome]++;
    report[counts][d.outcome]++;
    if (cell.examples.length < maxExamples)
      cell.examples.push({
        side: d.side,
        outcome: d.outcome,
        streamId: d.streamId,
        at: d.at,
        score: d.score,
        sampleSeqs: [...d.sampleSeqs],
      });
    report.from ??= d.at;
    report.to = d.at;
  }
  return report;
}

// ---------------------------------------------------------------------------------------------
// Candidates and activation

/** A threshold edit of a candidate made from the active policy ('global' edits a stream-wide kill rule). */
export interface ThresholdEdit {
  jurisdiction: string;
  category: string;
  amber?: number;
  red?: number;
}

/**
 * The active policy with thresholds edited: a candidate without files. Its version is a content id
 * over the base version and the edits, so it never equals a bundle's. Throws POL_ERR_REFERENCE for a
 * rule the policy does not have.
 */
export function withThresholds(policy: Policy, edits: readonly ThresholdEdit[]): Policy {
  const global = { ...policy.global };
  const jurisdictions = { ...policy.jurisdictions };
  const missing = (e: ThresholdEdit): PolicyError =>
    new PolicyError(
      'POL_ERR_REFERENCE',
      [
        {
          file: '',
          line: 0,
          column: 0,
          path: `${e.jurisdiction}.${e.category}`,
          reason: `the active policy has no rule for ${e.category} in ${e.jurisdiction}`,
        },
      ],
      400,
    );
  for (const e of edits) {
    if (e.jurisdiction === 'global') {
      const g = global[e.category];
      if (!g) throw missing(e);
      global[e.category] = { ...g, red: e.red ?? g.red };
      continue;
    }
    const j = jurisdictions[e.jurisdiction];
    const rule = j?.categories[e.category];
    if (!j || !rule) throw missing(e);
    jurisdictions[e.jurisdiction] = {
      ...j,
      categories: { ...j.categories, [e.category]: { ...rule, amber: e.amber ?? rule.amber, red: e.red ?? rule.red } },
    };
  }
  const version = contentId('thr', { base: policy.version, edits }).slice(4, 20);
  return { ...policy, version, name: `${policy.name} (threshold candidate)`, global, jurisdictions };
}

/** A shadow run as kept: which candidate was compared with which active policy. */
export interface ShadowRun {
  candidateVersion: string;
  /** Active version when the run started. */
  activeVersion: string;
  startedAt: number;
}

/**
 * Whether activating `candidateVersion` over `activeVersion` has a shadow report to rely on:
 * 'missing' without a run of that candidate, 'stale' when its run compared it with another active
 * policy than the one it replaces now. Activation without a 'fresh' report asks for `force`.
 */
export function shadowFreshness(
  run: ShadowRun | undefined,
  candidateVersion: string,
  activeVersion: string | undefined,
): 'fresh' | 'missing' | 'stale' {
  if (!run || run.candidateVersion !== candidateVersion) return 'missing';
  if (activeVersion !== undefined && run.activeVersion !== activeVersion) return 'stale';
  return 'fresh';
}
