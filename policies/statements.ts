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
  StatementBasis,
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
/** After an appeal was decided the internal route is spent; what remains is external. */
const REDRESS_AFTER_APPEAL = REDRESS_OPTIONS.slice(1);
const REDRESS_NONE_NEEDED = ['no redress needed: this decision applied no restriction'];

const OWN_INITIATIVE: StatementBasis = { kind: 'own_initiative' };

/** Pseudo-category of an operator's action on a stream no model scored (the operator's own finding). */
export const OPERATOR_REPORT = 'operator_report';

const DURATION_KILL =
  'the live session is ended; the stream may not restart until the decision is overturned on review or appeal';
const DURATION_FILTER =
  'while the stream stays in this bucket (re-evaluated continuously); lifted automatically when it returns to green';

/** Restrictions a verdict puts in force, grouped by action. Empty for a green, healthy stream. */
export function restrictionsOf(verdict: Verdict, policy: Policy): Restriction[] {
  if (verdict.kill) {
    return [
      {
        action: 'kill_stream',
        scope: 'stream',
        jurisdictions: ['global'],
        categories: verdict.killCategories.map((k) => ({
          category: k.category,
          score: k.score,
          clause: k.clause,
          ground: policy.global[k.category]?.ground ?? 'terms_of_service',
        })),
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
          r.categories.push({
            category: SIGNALS_UNAVAILABLE,
            score: 0,
            clause: `fail mode ${jv.failMode}: moderation signals unavailable`,
            ground: 'terms_of_service',
          });
        }
      }
      for (const c of cats) {
        if (r.categories.some((x) => x.category === c.category && x.clause === c.clause)) continue;
        const ground =
          policy.jurisdictions[code]?.categories[c.category]?.ground ??
          policy.taxonomy[c.category]?.ground ??
          'terms_of_service';
        r.categories.push({ category: c.category, score: c.score, clause: c.clause, ground });
      }
    }
  }
  // Quarantine restricts only viewers who join during the outage; it still needs its statement.
  const quarantined = Object.entries(verdict.perJurisdiction)
    .filter(([, jv]) => jv.failMode === 'quarantine')
    .map(([code]) => code);
  const out = [...byAction.values()];
  if (quarantined.length > 0) {
    const clause = 'fail mode quarantine: moderation signals unavailable, viewers joining now are filtered';
    const cat = [{ category: SIGNALS_UNAVAILABLE, score: 0, clause, ground: 'terms_of_service' as GroundType }];
    if (verdict.degraded.includes('video'))
      out.push({
        action: 'blank_video',
        scope: 'jurisdictions',
        jurisdictions: quarantined,
        categories: cat,
        newViewersOnly: true,
      });
    if (verdict.degraded.includes('audio'))
      out.push({
        action: 'mute_audio',
        scope: 'jurisdictions',
        jurisdictions: quarantined,
        categories: cat,
        newViewersOnly: true,
      });
  }
  for (const r of out) r.jurisdictions.sort();
  return out.sort((a, b) => ACTION_SEVERITY[b.action] - ACTION_SEVERITY[a.action]);
}

/** Stable key of a restriction; the enforcer issues a new statement only when this changes. */
export function restrictionKey(r: Restriction): string {
  return `${r.action}|${r.jurisdictions.join(',')}|${r.categories
    .map((c) => c.category)
    .sort()
    .join(',')}${r.newViewersOnly ? '|new' : ''}`;
}

export interface StatementInput {
  streamId: string;
  restriction: Restriction;
  /** The policy in force: its version is cited, its appealUrl is the appeal route. */
  policy: Pick<Policy, 'version' | 'appealUrl'>;
  /** Facts of the restriction's categories: `evidenceFor(verdict, categories)`. */
  evidence: Evidence;
  issuedAt: number;
  automated?: { detection: boolean; decision: boolean };
  /** A notice the decision followed, or own initiative. Default own initiative. */
  basis?: StatementBasis;
  /** Overrides the generated explanation. */
  explanation?: string;
  duration?: string;
  /** Redress offered. Default: appeal, out-of-court settlement, courts. */
  redress?: string[];
  /** Base of the appeal URL; the statement's id is appended. Default policy.appealUrl. */
  appealBase?: string;
  /** The person who decided (operator, reviewer), part of the id: two people's decisions in one ms differ. */
  decidedBy?: string;
}

/** The one builder of statements: automated, operator, review and appeal decisions alike. */
export function buildStatement(input: StatementInput): StatementOfReasons {
  const { restriction: r, policy, evidence } = input;
  const id = contentId('sor', {
    s: input.streamId,
    t: input.issuedAt,
    a: r.action,
    j: r.jurisdictions,
    v: policy.version,
    c: r.categories.map((c) => c.category),
    ...(input.decidedBy ? { by: input.decidedBy } : {}),
  });
  const ground: GroundType = r.categories.some((c) => c.ground === 'law') ? 'law' : 'terms_of_service';
  const clause = [...new Set(r.categories.map((c) => c.clause))].join('; ');
  const cats = r.categories.map((c) => `${c.category} (score ${c.score.toFixed(2)})`).join(', ');
  const where =
    r.scope === 'stream'
      ? 'for all viewers'
      : `for ${r.newViewersOnly ? 'viewers joining' : 'viewers'} in ${r.jurisdictions.join(', ')}`;
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
    restriction: {
      action: r.action,
      scope: r.scope,
      jurisdictions: [...r.jurisdictions],
      duration: input.duration ?? (r.action === 'kill_stream' ? DURATION_KILL : DURATION_FILTER),
    },
    facts: {
      categories: r.categories.map((c) => ({ category: c.category, score: c.score })),
      matches: [...evidence.matches],
      text: evidence.text,
      sampleSeqs: [...evidence.sampleSeqs],
      timeRange: { ...evidence.timeRange },
    },
    basis: { ...(input.basis ?? OWN_INITIATIVE) },
    automated,
    ground: { type: ground, clause, policyVersion: policy.version, explanation },
    redress: {
      appealUrl: `${input.appealBase ?? policy.appealUrl}/${id}`,
      options: [...(input.redress ?? REDRESS_OPTIONS)],
    },
  };
}

/** An operator's action (POST /v1/streams/:id/kill, /gate): who, why, on what, following what. */
export interface OperatorAction {
  streamId: string;
  issuedAt: number;
  actor: string;
  reason: string;
  /** 'allow': the operator lifted restrictions (resume); the user is told why they ended. */
  action: 'kill_stream' | 'blank_video' | 'mute_audio' | 'allow';
  /** Viewer jurisdictions it covers; a kill, or ['global'], covers every viewer. */
  jurisdictions: string[];
  /** Clause cited. Default 'operator action'. */
  clause?: string;
  /** Default 'terms_of_service'. */
  ground?: GroundType;
  /** The policy in force (version 'none' before any loaded). */
  policy: Pick<Policy, 'version' | 'appealUrl'>;
  /** The stream's fused scores at the action (summarizeVerdict's categories), if it was scored; plus the category the operator cites. */
  categories: { category: string; score: number }[];
  /** What the stream's moderation holds at the action (the samples of its windows): the facts the operator had before them. */
  evidence: Evidence;
  /** Default own initiative. */
  basis?: StatementBasis;
  /** Base of the appeal URL. Default policy.appealUrl. */
  appealBase?: string;
}

const DURATION_OPERATOR_KILL =
  'the live session is ended; the stream may not restart until an operator resumes it or the decision is overturned on appeal';
const DURATION_OPERATOR_GATE =
  'for the rest of this live session, until an operator lifts it or it is overturned on appeal';

/** The statement of reasons of an operator's action (a human decision; redress as for every statement). */
export function operatorStatement(k: OperatorAction): StatementOfReasons {
  const clause = k.clause ?? 'operator action';
  const ground = k.ground ?? 'terms_of_service';
  const stream =
    k.action === 'kill_stream' ||
    k.action === 'allow' ||
    k.jurisdictions.length === 0 ||
    k.jurisdictions.includes('global');
  const categories = k.categories.length > 0 ? k.categories : [{ category: OPERATOR_REPORT, score: 0 }];
  const restriction: Restriction = {
    action: k.action,
    scope: stream ? 'stream' : 'jurisdictions',
    jurisdictions: stream ? ['global'] : [...k.jurisdictions].sort(),
    categories: categories.map((c) => ({ ...c, clause, ground })),
  };
  const where = stream
    ? k.action === 'kill_stream'
      ? ''
      : ' for all viewers'
    : ` for viewers in ${restriction.jurisdictions.join(', ')}`;
  const notice =
    k.basis?.kind === 'notice'
      ? ` following notice ${k.basis.noticeId}${k.basis.trustedFlagger ? ' from a trusted flagger' : ''}`
      : '';
  const lift = k.action === 'allow';
  return buildStatement({
    streamId: k.streamId,
    restriction,
    policy: k.policy,
    evidence: k.evidence,
    issuedAt: k.issuedAt,
    automated: { detection: false, decision: false },
    basis: k.basis,
    explanation: lift
      ? `Restrictions on the stream lifted by an operator (${k.actor}): ${k.reason}`
      : `${describe(k.action)}${where} by an operator (${k.actor})${notice}: ${k.reason}`,
    duration: lift
      ? 'lifted with immediate effect'
      : k.action === 'kill_stream'
        ? DURATION_OPERATOR_KILL
        : DURATION_OPERATOR_GATE,
    redress: lift ? ['no further redress needed: the restriction was lifted'] : undefined,
    appealBase: k.appealBase,
    decidedBy: `${k.actor}|${k.reason}|${clause}`,
  });
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
  // the references the decision relied on: samples, bank matches, or the media kept around it
  if (!s.facts?.sampleSeqs?.length && !s.facts?.matches?.length && !s.clips?.length) gaps.push('facts.evidence');
  if (!s.facts?.timeRange || !(s.facts.timeRange.to >= s.facts.timeRange.from)) gaps.push('facts.timeRange');
  if (s.basis?.kind !== 'own_initiative' && !(s.basis?.kind === 'notice' && s.basis.noticeId)) gaps.push('basis');
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
export function reviewItemFor(
  verdict: Verdict,
  policy: Policy,
  entered: { jurisdiction: string; category: string }[],
  now: number,
): ReviewItem | undefined {
  const pairs = entered.filter(
    (e) => e.jurisdiction !== GLOBAL_KEY && policy.jurisdictions[e.jurisdiction]?.reviewAmber,
  );
  if (pairs.length === 0) return undefined;
  const jurisdictions = [...new Set(pairs.map((p) => p.jurisdiction))].sort();
  const categories: ReviewItem['categories'] = [];
  const proposed: Action[] = [];
  for (const p of pairs) {
    const c = verdict.perJurisdiction[p.jurisdiction]?.categories.find((x) => x.category === p.category);
    if (c && !categories.some((x) => x.category === c.category))
      categories.push({ category: c.category, score: c.score, bucket: c.bucket });
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
export function createAppeal(
  statement: StatementOfReasons,
  appeal: { appellant: string; grounds: string; at: number },
): ReviewItem {
  return {
    id: contentId('apl', { s: statement.id, t: appeal.at, a: appeal.appellant }),
    streamId: statement.streamId,
    type: 'appeal',
    priority: PRIORITY_APPEAL,
    createdAt: appeal.at,
    policyVersion: statement.ground.policyVersion,
    jurisdictions: [...statement.restriction.jurisdictions],
    categories: statement.facts.categories.map((c) => ({
      category: c.category,
      score: c.score,
      bucket: 'red' as const,
    })),
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
    appealed: {
      basis: { ...(statement.basis ?? OWN_INITIATIVE) },
      automated: { ...statement.automated },
      ground: { ...statement.ground },
      restriction: { ...statement.restriction, jurisdictions: [...statement.restriction.jurisdictions] },
    },
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
    throw new PolicyError(
      'POL_ERR_REVIEW_STATE',
      [
        {
          file: '',
          line: 0,
          column: 0,
          path: item.id,
          reason: `claimed by ${item.claim?.reviewer} until ${item.claim?.expiresAt}`,
        },
      ],
      409,
    );
  }
  return { ...item, claim: { reviewer, claimedAt: now, expiresAt: now + ttlMs } };
}

/**
 * A reviewer's outcome -> a decision and its statement. Every outcome has one: an upheld amber
 * restricts (or, where the policy applies no restriction, records the confirmed violation); a
 * cleared amber and a granted appeal tell the streamer why no restriction is (any longer) in force;
 * a rejected appeal restates the restriction with the redress that remains. Requires an active
 * claim by the same reviewer when the item is claimed.
 */
export function resolveReview(item: ReviewItem, resolution: ReviewResolution, policy: Policy): ReviewDecision {
  if (isClaimActive(item, resolution.at) && item.claim?.reviewer !== resolution.reviewer) {
    throw new PolicyError(
      'POL_ERR_REVIEW_STATE',
      [{ file: '', line: 0, column: 0, path: item.id, reason: `claimed by ${item.claim?.reviewer}` }],
      409,
    );
  }
  const id = contentId('dec', { i: item.id, o: resolution.outcome, r: resolution.reviewer, t: resolution.at });
  const base = {
    id,
    itemId: item.id,
    streamId: item.streamId,
    type: item.type,
    outcome: resolution.outcome,
    reviewer: resolution.reviewer,
    at: resolution.at,
  };
  const action = item.proposedAction ?? 'allow';
  const appealed = item.appealed;
  const categories = item.categories.map((c) => {
    if (appealed)
      return { category: c.category, score: c.score, clause: appealed.ground.clause, ground: appealed.ground.type };
    const rule = item.jurisdictions
      .map((j) => policy.jurisdictions[j]?.categories[c.category])
      .find((x) => x !== undefined);
    const g = policy.global[c.category];
    const def = policy.taxonomy[c.category];
    const clause = action === 'kill_stream' && g ? g.clause : (rule?.clause ?? def?.clause ?? c.category);
    return {
      category: c.category,
      score: c.score,
      clause,
      ground: rule?.ground ?? def?.ground ?? ('terms_of_service' as GroundType),
    };
  });
  const scope: 'stream' | 'jurisdictions' =
    appealed?.restriction.scope ?? (action === 'kill_stream' ? 'stream' : 'jurisdictions');
  const restriction: Restriction = { action, scope, jurisdictions: [...item.jurisdictions], categories };
  const note = resolution.note ? ` Reviewer note: ${resolution.note}` : '';
  const where = scope === 'stream' ? 'for all viewers' : `for viewers in ${item.jurisdictions.join(', ')}`;
  const common = {
    streamId: item.streamId,
    policy,
    evidence: item.evidence,
    issuedAt: resolution.at,
    automated: { detection: appealed?.automated.detection ?? true, decision: false },
    basis: appealed?.basis,
    decidedBy: resolution.reviewer,
  };
  const names = categories.map((c) => c.category).join(', ');

  if (item.type === 'amber') {
    if (resolution.outcome === 'overturn') {
      const statement = buildStatement({
        ...common,
        restriction: { ...restriction, action: 'allow' },
        duration: 'no restriction applies: the review found no violation',
        redress: REDRESS_NONE_NEEDED,
        explanation: `Review cleared ${where}: automated detection placed ${names} in the review band and a human reviewer found no violation; no restriction was applied.${note}`,
      });
      return { ...base, effect: { kind: 'none' }, statement };
    }
    if (action === 'allow') {
      const statement = buildStatement({
        ...common,
        restriction,
        duration: 'no restriction applies: the policy of these jurisdictions restricts none for it',
        redress: REDRESS_OPTIONS,
        explanation: `Violation confirmed ${where}: automated detection placed ${names} in the review band and a human reviewer confirmed it; the policy applies no restriction to it, the finding is recorded.${note}`,
      });
      return { ...base, effect: { kind: 'none' }, statement };
    }
    const statement = buildStatement({
      ...common,
      restriction,
      explanation: `${describe(action)} ${where}: automated detection placed ${names} in the review band and a human reviewer confirmed the violation.${note}`,
    });
    return { ...base, effect: { kind: 'restrict', action, jurisdictions: [...item.jurisdictions] }, statement };
  }

  // Appeal: the outcome gets its own statement either way.
  const upheld = resolution.outcome === 'uphold';
  const statement = buildStatement({
    ...common,
    restriction: upheld ? restriction : { ...restriction, action: 'allow' },
    duration: upheld ? appealed?.restriction.duration : 'lifted with immediate effect',
    redress: upheld ? REDRESS_AFTER_APPEAL : ['no further redress needed: the restriction was lifted'],
    explanation: upheld
      ? `Appeal against statement ${item.statementId} rejected after human review: ${describe(action).toLowerCase()} upheld.${note}`
      : `Appeal against statement ${item.statementId} granted after human review: ${describe(action).toLowerCase()} lifted.${note}`,
  });
  return {
    ...base,
    effect: upheld ? { kind: 'none' } : { kind: 'lift', action, jurisdictions: [...item.jurisdictions] },
    statement,
  };
}
