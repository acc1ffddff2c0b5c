// Statements of reasons (EU DSA Art. 17(3)), human review items, review resolution and appeals.
// Pure: ids are content hashes, times come from the caller.
import { contentId } from './canonical.ts';
import { PolicyError } from './errors.ts';
import { ACTION_SEVERITY, GLOBAL_KEY, SIGNALS_UNAVAILABLE, strictestAction } from './fusion.ts';
import type {
  Action,
  Evidence,
  GroundType,
  Policy,
  ReviewDecision,
  ReviewItem,
  ReviewResolution,
  StatementOfReasons,
  Verdict,
} from './types.ts';

/** A restriction in force: one action over a set of jurisdictions (or the whole stream). */
export interface Restriction {
  action: Action;
  scope: 'stream' | 'jurisdictions';
  jurisdictions: string[];
  /** Categories that caused it, with the clause each cites. */
  categories: { category: string; score: number; clause: string; ground: GroundType }[];
  /** Applies to viewers joining while it is in force (quarantine), not to those already watching. */
  newViewersOnly?: boolean;
}

const REDRESS_OPTIONS = [
  'internal complaint (appeal) through the appeal URL, free of charge (DSA Art. 20)',
  'out-of-court dispute settlement body (DSA Art. 21)',
  'judicial redress before the courts of the member state',
];

const DURATION_KILL = 'the live session is ended; the stream may not restart until the decision is overturned on review or appeal';
const DURATION_FILTER = 'while the stream stays in this bucket (re-evaluated continuously); lifted automatically when it returns to green';

/** Restrictions a verdict puts in force, grouped by action. Empty for a green, healthy stream. */
export function restrictionsOf(verdict: Verdict, policy: Policy): Restriction[] {
  if (verdict.kill) {
    return [
      {
        action: 'kill_stream',
        scope: 'stream',
        jurisdictions: ['global'],
        categories: verdict.killCategories.map((k) => ({ category: k.category, score: k.score, clause: k.clause, ground: policy.global[k.category]?.ground ?? 'terms_of_service' })),
      },
    ];
  }
  const byAction = new Map<Action, Restriction>();
  for (const [code, jv] of Object.entries(verdict.perJurisdiction)) {
    for (const action of jv.actions) {
      let r = byAction.get(action);
      if (!r) byAction.set(action, (r = { action, scope: 'jurisdictions', jurisdictions: [], categories: [] }));
      r.jurisdictions.push(code);
      const cats = jv.categories.filter((c) => c.action === action);
      if (cats.length === 0 && jv.failMode) {
        if (!r.categories.some((c) => c.category === SIGNALS_UNAVAILABLE)) {
          r.categories.push({ category: SIGNALS_UNAVAILABLE, score: 0, clause: `fail mode ${jv.failMode}: moderation signals unavailable`, ground: 'terms_of_service' });
        }
      }
      for (const c of cats) {
        if (r.categories.some((x) => x.category === c.category && x.clause === c.clause)) continue;
        const ground = policy.jurisdictions[code]?.categories[c.category]?.ground ?? policy.taxonomy[c.category]?.ground ?? 'terms_of_service';
        r.categories.push({ category: c.category, score: c.score, clause: c.clause, ground });
      }
    }
  }
  // Quarantine restricts only viewers who join during the outage; it still needs its statement.
  const quarantined = Object.entries(verdict.perJurisdiction).filter(([, jv]) => jv.failMode === 'quarantine').map(([code]) => code);
  const out = [...byAction.values()];
  if (quarantined.length > 0) {
    const clause = 'fail mode quarantine: moderation signals unavailable, viewers joining now are filtered';
    const cat = [{ category: SIGNALS_UNAVAILABLE, score: 0, clause, ground: 'terms_of_service' as GroundType }];
    if (verdict.degraded.includes('video')) out.push({ action: 'blank_video', scope: 'jurisdictions', jurisdictions: quarantined, categories: cat, newViewersOnly: true });
    if (verdict.degraded.includes('audio')) out.push({ action: 'mute_audio', scope: 'jurisdictions', jurisdictions: quarantined, categories: cat, newViewersOnly: true });
  }
  for (const r of out) r.jurisdictions.sort();
  return out.sort((a, b) => ACTION_SEVERITY[b.action] - ACTION_SEVERITY[a.action]);
}

/** Stable key of a restriction; the enforcer issues a new statement only when this changes. */
export function restrictionKey(r: Restriction): string {
  return `${r.action}|${r.jurisdictions.join(',')}|${r.categories.map((c) => c.category).sort().join(',')}${r.newViewersOnly ? '|new' : ''}`;
}

export interface StatementInput {
  streamId: string;
  restriction: Restriction;
  policy: Policy;
  /** Facts of the restriction's categories: `evidenceFor(verdict, categories)`. */
  evidence: Evidence;
  issuedAt: number;
  automated?: { detection: boolean; decision: boolean };
  /** Overrides the generated explanation. */
  explanation?: string;
  duration?: string;
}

export function buildStatement(input: StatementInput): StatementOfReasons {
  const { restriction: r, policy, evidence } = input;
  const id = contentId('sor', { s: input.streamId, t: input.issuedAt, a: r.action, j: r.jurisdictions, v: policy.version, c: r.categories.map((c) => c.category) });
  const ground: GroundType = r.categories.some((c) => c.ground === 'law') ? 'law' : 'terms_of_service';
  const clause = [...new Set(r.categories.map((c) => c.clause))].join('; ');
  const cats = r.categories.map((c) => `${c.category} (score ${c.score.toFixed(2)})`).join(', ');
  const where = r.scope === 'stream' ? 'for all viewers' : `for ${r.newViewersOnly ? 'viewers joining' : 'viewers'} in ${r.jurisdictions.join(', ')}`;
  const automated = input.automated ?? { detection: true, decision: true };
  const failMode = r.categories.length > 0 && r.categories.every((c) => c.category === SIGNALS_UNAVAILABLE);
  const explanation =
    input.explanation ??
    (failMode
      ? `${describe(r.action)} ${where}: moderation signals were unavailable for ${evidence.sampleSeqs.length} consecutive samples and the policy of this jurisdiction ${r.newViewersOnly ? 'quarantines the stream for viewers who join meanwhile' : 'fails closed'}; lifted when signals recover.`
      : `${describe(r.action)} ${where}: ${cats} ${automated.decision ? 'exceeded the policy threshold over the fusion window' : 'confirmed by a human reviewer'}.`);
  return {
    id,
    streamId: input.streamId,
    issuedAt: input.issuedAt,
    restriction: { action: r.action, scope: r.scope, jurisdictions: [...r.jurisdictions], duration: input.duration ?? (r.action === 'kill_stream' ? DURATION_KILL : DURATION_FILTER) },
    facts: {
      categories: r.categories.map((c) => ({ category: c.category, score: c.score })),
      matches: [...evidence.matches],
      text: evidence.text,
      sampleSeqs: [...evidence.sampleSeqs],
      timeRange: { ...evidence.timeRange },
    },
    automated,
    ground: { type: ground, clause, policyVersion: policy.version, explanation },
    redress: { appealUrl: `${policy.appealUrl}/${id}`, options: [...REDRESS_OPTIONS] },
  };
}

/** An operator's kill (POST /v1/streams/:id/kill): who, why, and what the stream was scored at. */
export interface OperatorKill {
  streamId: string;
  issuedAt: number;
  actor: string;
  reason: string;
  /** Default 'operator action'. */
  clause?: string;
  /** Version of the policy in force ('none' before any loaded). */
  policyVersion: string;
  /** The stream's fused scores at the kill (summarizeVerdict's categories), if it was scored. */
  categories: { category: string; score: number }[];
  /** Base of the appeal URL; the statement's id is appended. */
  appealBase: string;
}

const DURATION_OPERATOR_KILL = 'the live session is ended; the stream may not restart until an operator resumes it or the decision is overturned on appeal';

/** The statement of reasons of an operator's kill (a human decision; redress as for every statement). */
export function operatorKillStatement(k: OperatorKill): StatementOfReasons {
  const clause = k.clause ?? 'operator action';
  const id = contentId('sor', { s: k.streamId, t: k.issuedAt, a: 'kill_stream', by: k.actor, r: k.reason, c: clause, v: k.policyVersion });
  return {
    id,
    streamId: k.streamId,
    issuedAt: k.issuedAt,
    restriction: { action: 'kill_stream', scope: 'stream', jurisdictions: [], duration: DURATION_OPERATOR_KILL },
    facts: { categories: k.categories, matches: [], text: [], sampleSeqs: [], timeRange: { from: k.issuedAt, to: k.issuedAt } },
    automated: { detection: false, decision: false },
    ground: { type: 'terms_of_service', clause, policyVersion: k.policyVersion, explanation: `Live stream ended by an operator (${k.actor}): ${k.reason}` },
    redress: { appealUrl: `${k.appealBase}/${id}`, options: [...REDRESS_OPTIONS] },
  };
}

function describe(action: Action): string {
  switch (action) {
    case 'kill_stream':
      return 'Live stream ended';
    case 'block':
      return 'Stream blocked';
    case 'blank_video':
      return 'Video replaced by a slate';
    case 'mute_audio':
      return 'Audio muted';
    case 'allow':
      return 'No restriction';
  }
}

/** Fields of a statement that are empty or missing (DSA Art. 17(3) a-f). Empty list = complete. */
export function statementGaps(s: StatementOfReasons): string[] {
  const gaps: string[] = [];
  if (!s.id) gaps.push('id');
  if (!s.streamId) gaps.push('streamId');
  if (!Number.isFinite(s.issuedAt)) gaps.push('issuedAt');
  if (!s.restriction?.action) gaps.push('restriction.action');
  if (!s.restriction?.scope) gaps.push('restriction.scope');
  if (!s.restriction?.jurisdictions?.length) gaps.push('restriction.jurisdictions');
  if (!s.restriction?.duration) gaps.push('restriction.duration');
  if (!s.facts?.categories?.length) gaps.push('facts.categories');
  if (!s.facts?.sampleSeqs?.length && !s.facts?.matches?.length) gaps.push('facts.sampleSeqs');
  if (!s.facts?.timeRange || !(s.facts.timeRange.to >= s.facts.timeRange.from)) gaps.push('facts.timeRange');
  if (typeof s.automated?.detection !== 'boolean' || typeof s.automated?.decision !== 'boolean') gaps.push('automated');
  if (!s.ground?.type) gaps.push('ground.type');
  if (!s.ground?.clause) gaps.push('ground.clause');
  if (!s.ground?.policyVersion) gaps.push('ground.policyVersion');
  if (!s.ground?.explanation) gaps.push('ground.explanation');
  if (!s.redress?.appealUrl) gaps.push('redress.appealUrl');
  if (!s.redress?.options?.length) gaps.push('redress.options');
  return gaps;
}

// ---------------------------------------------------------------------------------------------
// Review queue items

export const PRIORITY_AMBER = 1;
export const PRIORITY_APPEAL = 10;

/**
 * A review item for (jurisdiction, category) pairs that entered amber. `proposedAction` is what
 * upholding applies: the strictest red action of those rules.
 */
export function reviewItemFor(verdict: Verdict, policy: Policy, entered: { jurisdiction: string; category: string }[], now: number): ReviewItem | undefined {
  const pairs = entered.filter((e) => e.jurisdiction !== GLOBAL_KEY && policy.jurisdictions[e.jurisdiction]?.reviewAmber);
  if (pairs.length === 0) return undefined;
  const jurisdictions = [...new Set(pairs.map((p) => p.jurisdiction))].sort();
  const categories: ReviewItem['categories'] = [];
  const proposed: Action[] = [];
  for (const p of pairs) {
    const c = verdict.perJurisdiction[p.jurisdiction]?.categories.find((x) => x.category === p.category);
    if (c && !categories.some((x) => x.category === c.category)) categories.push({ category: c.category, score: c.score, bucket: c.bucket });
    const rule = policy.jurisdictions[p.jurisdiction]?.categories[p.category];
    if (rule) proposed.push(rule.actions.red);
  }
  return {
    id: contentId('rev', { s: verdict.streamId, t: now, j: jurisdictions, c: categories.map((c) => c.category) }),
    streamId: verdict.streamId,
    type: 'amber',
    priority: PRIORITY_AMBER,
    createdAt: now,
    policyVersion: verdict.policyVersion,
    jurisdictions,
    categories,
    evidence: verdict.evidence,
    proposedAction: strictestAction(proposed),
  };
}

/** The appeal of a restriction: a priority review item. */
export function createAppeal(statement: StatementOfReasons, appeal: { appellant: string; grounds: string; at: number }): ReviewItem {
  return {
    id: contentId('apl', { s: statement.id, t: appeal.at, a: appeal.appellant }),
    streamId: statement.streamId,
    type: 'appeal',
    priority: PRIORITY_APPEAL,
    createdAt: appeal.at,
    policyVersion: statement.ground.policyVersion,
    jurisdictions: [...statement.restriction.jurisdictions],
    categories: statement.facts.categories.map((c) => ({ category: c.category, score: c.score, bucket: 'red' as const })),
    evidence: {
      sampleSeqs: [...statement.facts.sampleSeqs],
      timeRange: { ...statement.facts.timeRange },
      scores: statement.facts.categories.map((c) => ({ ...c })),
      matches: [...statement.facts.matches],
      text: [...statement.facts.text],
      textContext: [],
      thumbnailRefs: [],
    },
    proposedAction: statement.restriction.action,
    statementId: statement.id,
    appeal: { appellant: appeal.appellant, grounds: appeal.grounds, submittedAt: appeal.at },
  };
}

/** Review queue order: priority first, then oldest, then by id (a total order: both stores list alike). */
export function compareReviewItems(a: ReviewItem, b: ReviewItem): number {
  return b.priority - a.priority || a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

export function isClaimActive(item: ReviewItem, now: number): boolean {
  return item.claim !== undefined && item.claim.expiresAt > now;
}

/** Claims an item for `ttlMs`; an expired claim can be taken over. Throws POL_ERR_REVIEW_STATE. */
export function claimReview(item: ReviewItem, reviewer: string, now: number, ttlMs = 5 * 60_000): ReviewItem {
  if (isClaimActive(item, now) && item.claim?.reviewer !== reviewer) {
    throw new PolicyError('POL_ERR_REVIEW_STATE', [{ file: '', line: 0, column: 0, path: item.id, reason: `claimed by ${item.claim?.reviewer} until ${item.claim?.expiresAt}` }], 409);
  }
  return { ...item, claim: { reviewer, claimedAt: now, expiresAt: now + ttlMs } };
}

/**
 * A reviewer's outcome -> a decision (and, where something is restricted or an appeal decided,
 * its statement). Requires an active claim by the same reviewer when the item is claimed.
 */
export function resolveReview(item: ReviewItem, resolution: ReviewResolution, policy: Policy): ReviewDecision {
  if (isClaimActive(item, resolution.at) && item.claim?.reviewer !== resolution.reviewer) {
    throw new PolicyError('POL_ERR_REVIEW_STATE', [{ file: '', line: 0, column: 0, path: item.id, reason: `claimed by ${item.claim?.reviewer}` }], 409);
  }
  const id = contentId('dec', { i: item.id, o: resolution.outcome, r: resolution.reviewer, t: resolution.at });
  const base = { id, itemId: item.id, streamId: item.streamId, type: item.type, outcome: resolution.outcome, reviewer: resolution.reviewer, at: resolution.at };
  const action = item.proposedAction ?? 'allow';
  const categories = item.categories.map((c) => {
    const rule = item.jurisdictions.map((j) => policy.jurisdictions[j]?.categories[c.category]).find((x) => x !== undefined);
    const g = policy.global[c.category];
    const def = policy.taxonomy[c.category];
    const clause = action === 'kill_stream' && g ? g.clause : (rule?.clause ?? def?.clause ?? c.category);
    return { category: c.category, score: c.score, clause, ground: rule?.ground ?? def?.ground ?? ('terms_of_service' as GroundType) };
  });
  const scope: 'stream' | 'jurisdictions' = action === 'kill_stream' ? 'stream' : 'jurisdictions';
  const restriction: Restriction = { action, scope, jurisdictions: [...item.jurisdictions], categories };
  const note = resolution.note ? ` Reviewer note: ${resolution.note}` : '';

  if (item.type === 'amber') {
    if (resolution.outcome === 'overturn' || action === 'allow') return { ...base, effect: { kind: 'none' } };
    const statement = buildStatement({
      streamId: item.streamId,
      restriction,
      policy,
      evidence: item.evidence,
      issuedAt: resolution.at,
      automated: { detection: true, decision: false },
      explanation: `${describe(action)} for viewers in ${item.jurisdictions.join(', ')}: automated detection placed ${categories.map((c) => c.category).join(', ')} in the review band and a human reviewer confirmed the violation.${note}`,
    });
    return { ...base, effect: { kind: 'restrict', action, jurisdictions: [...item.jurisdictions] }, statement };
  }

  // Appeal: the outcome gets its own statement either way.
  const upheld = resolution.outcome === 'uphold';
  const statement = buildStatement({
    streamId: item.streamId,
    restriction: upheld ? restriction : { ...restriction, action: 'allow' },
    policy,
    evidence: item.evidence,
    issuedAt: resolution.at,
    automated: { detection: true, decision: false },
    duration: upheld ? undefined : 'lifted with immediate effect',
    explanation: upheld
      ? `Appeal against statement ${item.statementId} rejected after human review: ${describe(action).toLowerCase()} upheld.${note}`
      : `Appeal against statement ${item.statementId} granted after human review: ${describe(action).toLowerCase()} lifted.${note}`,
  });
  if (!upheld) statement.redress.options = ['no further redress needed: the restriction was lifted'];
  else statement.redress.options = REDRESS_OPTIONS.slice(1);
  return { ...base, effect: upheld ? { kind: 'none' } : { kind: 'lift', action, jurisdictions: [...item.jurisdictions] }, statement };
}
