// Review at scale (issue 17 item 2): which reviewer may judge which item (jurisdictions and languages
// carried by the reviewer's token), the per-jurisdiction queues' depth and age, and agreement between
// reviewers (N agreeing votes per category, disagreement escalates). Pure: the server stores the
// votes and passes the clock.
import { PolicyError } from './errors.ts';
import type { Policy, ReviewItem, ReviewResolution } from './types.ts';

/** What a reviewer may judge (token claims). Absent = unrestricted (the single-queue default). */
export interface ReviewerScope {
  jurisdictions?: readonly string[];
  languages?: readonly string[];
}

/** Jurisdiction keys that name no law of their own: any reviewer judges them. */
const UNSCOPED = new Set(['default', 'global']);

/**
 * Whether a reviewer may judge an item: a reviewer scoped to jurisdictions must hold every
 * jurisdiction the item names (a German copyright case is not shown without DE); one scoped to
 * languages must hold the item's language when the item has one.
 */
export function mayJudge(
  item: Pick<ReviewItem, 'jurisdictions'> & { language?: string },
  reviewer: ReviewerScope,
): boolean {
  if (reviewer.jurisdictions) {
    const held = new Set(reviewer.jurisdictions.map((j) => j.toUpperCase()));
    for (const j of item.jurisdictions) if (!UNSCOPED.has(j) && !held.has(j.toUpperCase())) return false;
  }
  if (reviewer.languages && item.language !== undefined && !reviewer.languages.includes(item.language)) return false;
  return true;
}

export interface QueueStats {
  /** Jurisdiction key as items name it ('default' for viewers without one of their own). */
  jurisdiction: string;
  /** Open items (pending or claimed). */
  depth: number;
  /** Age of the oldest open item (s); 0 when none. */
  oldestAgeS: number;
  /** Open items past their due time. */
  overdue: number;
}

/** Per-jurisdiction depth and oldest age of the open items; an item naming two jurisdictions is in both queues. */
export function reviewQueueStats(
  items: readonly (Pick<ReviewItem, 'jurisdictions' | 'createdAt' | 'dueAt'> & { status?: string })[],
  now: number,
): QueueStats[] {
  const by = new Map<string, QueueStats>();
  for (const item of items) {
    if (item.status === 'resolved') continue;
    const keys = item.jurisdictions.length > 0 ? item.jurisdictions : ['default'];
    for (const j of new Set(keys)) {
      const s = by.get(j) ?? { jurisdiction: j, depth: 0, oldestAgeS: 0, overdue: 0 };
      s.depth++;
      if (isOverdue(item, now)) s.overdue++;
      s.oldestAgeS = Math.max(s.oldestAgeS, Math.max(0, now - item.createdAt) / 1000);
      by.set(j, s);
    }
  }
  return [...by.values()].sort((a, b) => (a.jurisdiction < b.jurisdiction ? -1 : 1));
}

// ---------------------------------------------------------------------------------------------
// Deadlines

const DEFAULT_DUE = { amberMs: 60 * 60_000, appealMs: 4 * 60 * 60_000 };

/** The item with its due time from the policy (appeals within 4 hours, amber within 1 hour by default). */
export function withDueAt<T extends Pick<ReviewItem, 'type' | 'createdAt'>>(
  item: T,
  policy: Pick<Policy, 'reviewDue'>,
): T & { dueAt: number } {
  const due = policy.reviewDue ?? DEFAULT_DUE;
  return { ...item, dueAt: item.createdAt + (item.type === 'appeal' ? due.appealMs : due.amberMs) };
}

export function isOverdue(item: Pick<ReviewItem, 'dueAt'> & { status?: string }, now: number): boolean {
  return item.status !== 'resolved' && item.dueAt !== undefined && item.dueAt <= now;
}

/** What an overdue item adds to its priority: it rises above every item that is not overdue. */
export const PRIORITY_OVERDUE_BOOST = 100;

/** The priority an item is served at now: overdue items rise (the stored priority is kept as it was). */
export function effectivePriority(
  item: Pick<ReviewItem, 'priority' | 'dueAt'> & { status?: string },
  now: number,
): number {
  return item.priority + (isOverdue(item, now) ? PRIORITY_OVERDUE_BOOST : 0);
}

/** Queue order at `now`: effective priority first, then oldest, then id (compareReviewItems with deadlines). */
export function compareByUrgency(
  now: number,
): (a: ReviewItem & { status?: string }, b: ReviewItem & { status?: string }) => number {
  return (a, b) =>
    effectivePriority(b, now) - effectivePriority(a, now) ||
    a.createdAt - b.createdAt ||
    (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

// ---------------------------------------------------------------------------------------------
// Agreement

/** One reviewer's decision on an item, kept and audited whether or not it settles the item. */
export interface ReviewVote {
  reviewer: string;
  outcome: ReviewResolution['outcome'];
  at: number;
  note?: string;
}

/** Priority of an item whose reviewers disagreed (above appeals: it waits for a senior decision). */
export const PRIORITY_ESCALATED = 20;

/** Agreeing reviewers an item needs: the most any of its categories asks for (taxonomy `reviewers`, default 1). */
export function requiredReviewers(item: Pick<ReviewItem, 'categories'>, policy: Policy): number {
  let n = 1;
  for (const c of item.categories) n = Math.max(n, policy.taxonomy[c.category]?.reviewers ?? 1);
  return n;
}

export type Tally =
  | { state: 'open'; votes: number; required: number }
  | { state: 'agreed'; outcome: ReviewResolution['outcome']; votes: number; required: number }
  | { state: 'escalated'; votes: number; required: number };

/** Where the votes leave an item: agreed once `required` votes say the same and none differs; any difference escalates. */
export function tallyVotes(votes: readonly ReviewVote[], required: number): Tally {
  const outcomes = new Set(votes.map((v) => v.outcome));
  if (outcomes.size > 1) return { state: 'escalated', votes: votes.length, required };
  const [outcome] = outcomes;
  if (outcome !== undefined && votes.length >= required)
    return { state: 'agreed', outcome, votes: votes.length, required };
  return { state: 'open', votes: votes.length, required };
}

/**
 * Adds a reviewer's vote. One vote per reviewer (POL_ERR_REVIEW_STATE, 409, for a second); an
 * escalated item takes no more ordinary votes (a senior's decision settles it, `senior`).
 */
export function castVote(
  votes: readonly ReviewVote[],
  vote: ReviewVote,
  required: number,
  senior = false,
): { votes: ReviewVote[]; tally: Tally } {
  const refuse = (reason: string): PolicyError =>
    new PolicyError('POL_ERR_REVIEW_STATE', [{ file: '', line: 0, column: 0, path: vote.reviewer, reason }], 409);
  if (votes.some((v) => v.reviewer === vote.reviewer)) throw refuse(`${vote.reviewer} has already voted on this item`);
  const before = tallyVotes(votes, required);
  if (before.state === 'agreed') throw refuse('the item is already agreed');
  if (before.state === 'escalated' && !senior)
    throw refuse('the reviewers disagreed: the item is escalated to a senior reviewer (admin)');
  const next = [...votes, vote];
  if (senior) return { votes: next, tally: { state: 'agreed', outcome: vote.outcome, votes: next.length, required } };
  return { votes: next, tally: tallyVotes(next, required) };
}

/** Whether a reviewer may still vote on an item (not voted yet; escalated items wait for a senior). */
export function mayVote(votes: readonly ReviewVote[] | undefined, reviewer: string, senior = false): boolean {
  const list = votes ?? [];
  if (list.some((v) => v.reviewer === reviewer)) return false;
  return senior || new Set(list.map((v) => v.outcome)).size <= 1;
}

/** A label for calibration: an item's outcome as its reviewers agreed it, with the samples it rests on. */
export interface AgreedLabel {
  itemId: string;
  streamId: string;
  type: ReviewItem['type'];
  policyVersion: string;
  jurisdictions: string[];
  categories: ReviewItem['categories'];
  outcome: ReviewResolution['outcome'];
  reviewers: number;
  sampleSeqs: number[];
  timeRange: { from: number; to: number };
  thumbnailRefs: string[];
  agreedAt: number;
}

/**
 * The label of an item when `minReviewers` or more reviewers voted and all agreed; undefined
 * otherwise (open, escalated, or settled by fewer): unagreed labels never leave.
 */
export function agreedLabel(
  item: ReviewItem & { votes?: readonly ReviewVote[] },
  minReviewers: number,
): AgreedLabel | undefined {
  const votes = item.votes ?? [];
  const tally = tallyVotes(votes, Math.max(1, minReviewers));
  if (tally.state !== 'agreed') return undefined;
  return {
    itemId: item.id,
    streamId: item.streamId,
    type: item.type,
    policyVersion: item.policyVersion,
    jurisdictions: [...item.jurisdictions],
    categories: item.categories.map((c) => ({ ...c })),
    outcome: tally.outcome,
    reviewers: votes.length,
    sampleSeqs: [...item.evidence.sampleSeqs],
    timeRange: { ...item.evidence.timeRange },
    thumbnailRefs: [...item.evidence.thumbnailRefs],
    agreedAt: Math.max(...votes.map((v) => v.at)),
  };
}
