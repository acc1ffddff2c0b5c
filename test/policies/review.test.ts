// policies/review.ts: who may judge what (jurisdiction and language claims), per-jurisdiction queue
// figures, and agreement rules (N agreeing votes per category, disagreement escalates, only agreed
// labels are exported).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  agreedLabel,
  castVote,
  compareByUrgency,
  effectivePriority,
  isOverdue,
  loadPolicyBundle,
  mayJudge,
  mayVote,
  PolicyError,
  PRIORITY_OVERDUE_BOOST,
  requiredReviewers,
  reviewQueueStats,
  tallyVotes,
  withDueAt,
  type ReviewVote,
} from '../../policies/index.ts';
import type { ReviewItem } from '../../policies/types.ts';
import { shippedPolicyFiles } from './helpers.ts';

test('mayJudge: a scoped reviewer holds every jurisdiction of the item; default/global need none; languages when the item has one', () => {
  const cases: [string[], string | undefined, { jurisdictions?: string[]; languages?: string[] }, boolean][] = [
    [['DE'], undefined, {}, true],
    [['DE'], undefined, { jurisdictions: ['DE'] }, true],
    [['DE'], undefined, { jurisdictions: ['SE'] }, false],
    [['DE', 'SE'], undefined, { jurisdictions: ['DE'] }, false],
    [['DE', 'SE'], undefined, { jurisdictions: ['SE', 'DE'] }, true],
    [['default'], undefined, { jurisdictions: ['SE'] }, true],
    [['global'], undefined, { jurisdictions: [] }, true],
    [['DE'], undefined, { jurisdictions: ['de'] }, true],
    [['DE'], 'de', { jurisdictions: ['DE'], languages: ['en'] }, false],
    [['DE'], 'de', { jurisdictions: ['DE'], languages: ['de', 'en'] }, true],
    [['DE'], undefined, { languages: ['en'] }, true],
  ];
  for (const [jurisdictions, language, scope, want] of cases)
    assert.equal(
      mayJudge({ jurisdictions, language }, scope),
      want,
      `${jurisdictions} ${language ?? ''} by ${JSON.stringify(scope)}`,
    );
});

test('reviewQueueStats: per jurisdiction, an item in every queue it names, resolved items left out, oldest age in seconds', () => {
  const stats = reviewQueueStats(
    [
      { jurisdictions: ['DE'], createdAt: 1_000, dueAt: 10_000 },
      { jurisdictions: ['DE', 'SE'], createdAt: 4_000, dueAt: 10_001 },
      { jurisdictions: ['SE'], createdAt: 0, status: 'resolved' },
      { jurisdictions: [], createdAt: 9_000 },
    ],
    10_000,
  );
  assert.deepEqual(stats, [
    { jurisdiction: 'DE', depth: 2, oldestAgeS: 9, overdue: 1 },
    { jurisdiction: 'SE', depth: 1, oldestAgeS: 6, overdue: 0 },
    { jurisdiction: 'default', depth: 1, oldestAgeS: 1, overdue: 0 },
  ]);
  assert.deepEqual(reviewQueueStats([], 0), []);
});

const v = (reviewer: string, outcome: ReviewVote['outcome'], at = 1): ReviewVote => ({ reviewer, outcome, at });

test('tallyVotes: open until N agree, any disagreement escalates', () => {
  const cases: [ReviewVote[], number, string][] = [
    [[], 1, 'open'],
    [[v('a', 'uphold')], 1, 'agreed:uphold'],
    [[v('a', 'uphold')], 3, 'open'],
    [[v('a', 'uphold'), v('b', 'uphold')], 3, 'open'],
    [[v('a', 'uphold'), v('b', 'uphold'), v('c', 'uphold')], 3, 'agreed:uphold'],
    [[v('a', 'overturn'), v('b', 'overturn')], 2, 'agreed:overturn'],
    [[v('a', 'uphold'), v('b', 'overturn')], 3, 'escalated'],
    [[v('a', 'uphold'), v('b', 'uphold'), v('c', 'overturn')], 3, 'escalated'],
  ];
  for (const [votes, required, want] of cases) {
    const t = tallyVotes(votes, required);
    assert.equal(
      t.state === 'agreed' ? `agreed:${t.outcome}` : t.state,
      want,
      `${votes.map((x) => x.outcome)} of ${required}`,
    );
  }
});

test('castVote: one vote per reviewer, none after agreement, an escalated item only takes a senior decision (which settles it)', () => {
  let r = castVote([], v('a', 'uphold'), 2);
  assert.equal(r.tally.state, 'open');
  assert.throws(
    () => castVote(r.votes, v('a', 'overturn'), 2),
    (e: unknown) => e instanceof PolicyError && e.code === 'POL_ERR_REVIEW_STATE' && e.statusCode === 409,
  );
  r = castVote(r.votes, v('b', 'overturn'), 2);
  assert.equal(r.tally.state, 'escalated');
  assert.equal(mayVote(r.votes, 'c'), false, 'an ordinary reviewer waits for the senior');
  assert.equal(mayVote(r.votes, 'c', true), true);
  assert.throws(() => castVote(r.votes, v('c', 'uphold'), 2), /escalated/);
  const senior = castVote(r.votes, v('lead', 'overturn'), 2, true);
  assert.deepEqual(senior.tally, { state: 'agreed', outcome: 'overturn', votes: 3, required: 2 });
  const agreed = castVote(castVote([], v('a', 'uphold'), 2).votes, v('b', 'uphold'), 2);
  assert.equal(agreed.tally.state, 'agreed');
  assert.throws(() => castVote(agreed.votes, v('c', 'uphold'), 2), /already agreed/);
  assert.equal(mayVote(undefined, 'a'), true);
  assert.equal(mayVote([v('a', 'uphold')], 'a'), false);
});

test('requiredReviewers: the most any category of the item asks for (taxonomy reviewers), 1 by default', () => {
  const files = shippedPolicyFiles().map((f) =>
    f.filename.endsWith('default.yaml')
      ? {
          ...f,
          text: f.text.replace(
            /(\n {2}sexual_explicit:\n(?: {4}[^\n]*\n)+? {4}clause:[^\n]*\n)/,
            '$1    reviewers: 3\n',
          ),
        }
      : f,
  );
  const policy = loadPolicyBundle(files);
  assert.equal(policy.taxonomy.sexual_explicit?.reviewers, 3, 'the setting loads');
  const item = (cats: string[]) => ({
    categories: cats.map((category) => ({ category, score: 0.5, bucket: 'amber' as const })),
  });
  assert.equal(requiredReviewers(item(['sexual_explicit']), policy), 3);
  assert.equal(requiredReviewers(item(['profanity', 'sexual_explicit']), policy), 3);
  assert.equal(requiredReviewers(item(['profanity']), policy), 1);
  assert.equal(requiredReviewers(item([]), policy), 1);
  assert.throws(
    () =>
      loadPolicyBundle(
        files.map((f) =>
          f.filename.endsWith('default.yaml') ? { ...f, text: f.text.replace('reviewers: 3', 'reviewers: 0') } : f,
        ),
      ),
    PolicyError,
  );
});

test('agreedLabel: only items whose reviewers all agreed, at least minReviewers of them, with their sample references', () => {
  const item: ReviewItem & { votes?: ReviewVote[] } = {
    id: 'rev_1',
    streamId: 's1',
    type: 'amber',
    priority: 1,
    createdAt: 0,
    policyVersion: 'p1',
    jurisdictions: ['DE'],
    categories: [{ category: 'sexual_explicit', score: 0.55, bucket: 'amber' }],
    evidence: {
      sampleSeqs: [4, 5, 6],
      timeRange: { from: 10, to: 20 },
      scores: [],
      matches: [],
      text: [],
      textContext: [],
      thumbnailRefs: ['t1'],
    },
  };
  assert.equal(agreedLabel(item, 2), undefined, 'no votes');
  assert.equal(agreedLabel({ ...item, votes: [v('a', 'uphold', 5)] }, 2), undefined, 'one vote is no agreement of two');
  assert.equal(agreedLabel({ ...item, votes: [v('a', 'uphold'), v('b', 'overturn')] }, 2), undefined, 'disagreement');
  const label = agreedLabel({ ...item, votes: [v('a', 'uphold', 5), v('b', 'uphold', 9)] }, 2);
  assert.deepEqual(label, {
    itemId: 'rev_1',
    streamId: 's1',
    type: 'amber',
    policyVersion: 'p1',
    jurisdictions: ['DE'],
    categories: item.categories,
    outcome: 'uphold',
    reviewers: 2,
    sampleSeqs: [4, 5, 6],
    timeRange: { from: 10, to: 20 },
    thumbnailRefs: ['t1'],
    agreedAt: 9,
  });
  assert.ok(agreedLabel({ ...item, votes: [v('a', 'overturn')] }, 1));
});

test('deadlines: due times from the policy (defaults 1 h amber, 4 h appeals), overdue items rise above every other', () => {
  const amber = { id: 'a', type: 'amber' as const, createdAt: 1_000, priority: 1 };
  const appeal = { id: 'p', type: 'appeal' as const, createdAt: 1_000, priority: 10 };
  assert.equal(withDueAt(amber, {}).dueAt, 1_000 + 3_600_000);
  assert.equal(withDueAt(appeal, {}).dueAt, 1_000 + 4 * 3_600_000);
  const files = shippedPolicyFiles().map((f) =>
    f.filename.endsWith('default.yaml')
      ? { ...f, text: `${f.text}\nreview:\n  amberDueMinutes: 30\n  appealDueMinutes: 120\n` }
      : f,
  );
  const policy = loadPolicyBundle(files);
  assert.deepEqual(policy.reviewDue, { amberMs: 1_800_000, appealMs: 7_200_000 });
  assert.equal(withDueAt(appeal, policy).dueAt, 1_000 + 7_200_000);
  const cases: [{ dueAt?: number; status?: string }, number, boolean][] = [
    [{}, 10, false],
    [{ dueAt: 10 }, 9, false],
    [{ dueAt: 10 }, 10, true],
    [{ dueAt: 10, status: 'resolved' }, 99, false],
  ];
  for (const [item, now, want] of cases) assert.equal(isOverdue(item, now), want, `${JSON.stringify(item)} at ${now}`);
  const ev = {
    sampleSeqs: [],
    timeRange: { from: 0, to: 0 },
    scores: [],
    matches: [],
    text: [],
    textContext: [],
    thumbnailRefs: [],
  };
  const item = (id: string, priority: number, createdAt: number, dueAt: number): ReviewItem => ({
    id,
    streamId: 's',
    type: 'amber',
    priority,
    createdAt,
    dueAt,
    policyVersion: 'p',
    jurisdictions: ['DE'],
    categories: [],
    evidence: ev,
  });
  const queue = [
    item('fresh-appeal', 10, 500, 9_000),
    item('old-amber', 1, 100, 1_000),
    item('new-amber', 1, 600, 8_000),
    item('escalated', 20, 700, 9_000),
  ];
  assert.deepEqual(
    [...queue].sort(compareByUrgency(500)).map((i) => i.id),
    ['escalated', 'fresh-appeal', 'old-amber', 'new-amber'],
    'nothing overdue: stored priorities',
  );
  assert.deepEqual(
    [...queue].sort(compareByUrgency(2_000)).map((i) => i.id),
    ['old-amber', 'escalated', 'fresh-appeal', 'new-amber'],
    'overdue amber first',
  );
  assert.equal(effectivePriority(queue[1]!, 2_000), 1 + PRIORITY_OVERDUE_BOOST);
});
