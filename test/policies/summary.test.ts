// policies/summary.ts: one verdict summary (the registry's, the ops console's and moderation.status
// agree, a kill's categories included) and one bucket ranking. (The operator's statement: statements.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareReviewItems, restrictedBuckets, summarizeVerdict, worstBucket } from '../../policies/index.ts';
import type { Bucket, JurisdictionVerdict, ReviewItem, Verdict } from '../../policies/types.ts';

function jv(bucket: Bucket, categories: [string, number][]): JurisdictionVerdict {
  const action = bucket === 'green' ? 'allow' : 'blank_video';
  return {
    bucket,
    action,
    actions: bucket === 'green' ? [] : [action],
    categories: categories.map(([category, score]) => ({ category, score, bucket, clause: 'c' })),
  };
}

function verdict(over: Partial<Verdict>): Verdict {
  return {
    streamId: 's',
    at: 5000,
    policyVersion: 'v1',
    kill: false,
    perJurisdiction: {},
    review: false,
    killCategories: [],
    degraded: [],
    evidence: {
      sampleSeqs: [],
      timeRange: { from: 0, to: 0 },
      scores: [],
      matches: [],
      text: [],
      textContext: [],
      thumbnailRefs: [],
    },
    ...over,
  } as Verdict;
}

test('worstBucket ranks green < amber < red from a starting bucket', () => {
  const cases: [Bucket[], Bucket | undefined, Bucket][] = [
    [[], undefined, 'green'],
    [['green', 'amber'], undefined, 'amber'],
    [['amber', 'red', 'green'], undefined, 'red'],
    [['green'], 'amber', 'amber'],
    [[], 'red', 'red'],
  ];
  for (const [buckets, from, want] of cases) assert.equal(worstBucket(buckets, from), want, `${buckets} from ${from}`);
});

test('summarizeVerdict: worst bucket, highest score per category, kill categories counted', () => {
  const amber = verdict({
    perJurisdiction: {
      default: jv('green', [['nsfw.porn', 0.2]]),
      DE: jv('amber', [
        ['nsfw.porn', 0.6],
        ['violence', 0.4],
      ]),
    },
  });
  assert.deepEqual(summarizeVerdict(amber), {
    bucket: 'amber',
    categories: { 'nsfw.porn': 0.6, violence: 0.4 },
    perJurisdiction: { default: 'green', DE: 'amber' },
    at: 5000,
  });
  assert.deepEqual(restrictedBuckets(amber), { DE: 'amber' });
  // A kill by a global rule: red, and the kill's category is in the summary (control.ts's copy left it out).
  const kill = verdict({
    kill: true,
    perJurisdiction: { default: jv('green', [['nsfw.porn', 0.1]]) },
    killCategories: [{ category: 'known_bad_match', score: 0.875, clause: 'ToS 1' }],
  });
  assert.deepEqual(summarizeVerdict(kill), {
    bucket: 'red',
    categories: { 'nsfw.porn': 0.1, known_bad_match: 0.875 },
    perJurisdiction: { default: 'green' },
    at: 5000,
  });
  assert.deepEqual(restrictedBuckets(kill), { global: 'red' });
  assert.deepEqual(restrictedBuckets(undefined), {});
});

test('compareReviewItems is a total order: priority, then age, then id', () => {
  const item = (id: string, priority: number, createdAt: number) => ({ id, priority, createdAt }) as ReviewItem;
  const sorted = [item('b', 0, 10), item('a', 0, 10), item('c', 10, 50), item('d', 0, 5)]
    .sort(compareReviewItems)
    .map((i) => i.id);
  assert.deepEqual(sorted, ['c', 'd', 'a', 'b']);
});
