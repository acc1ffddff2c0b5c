// policies/shadow.ts: what a candidate policy would have done differently on the same signals,
// counted once per opening difference, aggregated per jurisdiction and category; the activation check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  compareShadow,
  createFusionState,
  EMPTY_SHADOW_TRACK,
  fuse,
  outcomesOf,
  shadowFreshness,
  shadowReport,
  withThresholds,
  PolicyError,
  type FusionState,
  type ShadowDifference,
  type ShadowTrack,
} from '../../policies/index.ts';
import type { Policy, SignalLike, Verdict } from '../../policies/types.ts';
import { shippedPolicy, signal } from './helpers.ts';

const active = shippedPolicy();

/** Feeds the same signals to both policies as the enforcer does; returns every difference that opened. */
function run(
  candidate: Policy,
  signals: SignalLike[],
): { differences: ShadowDifference[]; last: { active?: Verdict; shadow?: Verdict } } {
  let a: FusionState = createFusionState('s1');
  let s: FusionState = createFusionState('s1');
  let track: ShadowTrack = EMPTY_SHADOW_TRACK;
  const differences: ShadowDifference[] = [];
  const last: { active?: Verdict; shadow?: Verdict } = {};
  for (const sig of signals) {
    const ra = fuse(a, sig, active, sig.arrivedAt);
    const rs = fuse(s, sig, candidate, sig.arrivedAt);
    a = ra.state;
    s = rs.state;
    last.active = ra.verdict;
    last.shadow = rs.verdict;
    const r = compareShadow(
      track,
      's1',
      sig.arrivedAt,
      { verdict: ra.verdict, policy: active },
      { verdict: rs.verdict, policy: candidate },
    );
    track = r.track;
    differences.push(...r.differences);
  }
  return { differences, last };
}

const keys = (ds: ShadowDifference[]): string[] =>
  ds.map((d) => `${d.side} ${d.jurisdiction} ${d.category} ${d.outcome}`).sort();
const explicit = (from: number, n: number, score: number): SignalLike[] =>
  Array.from({ length: n }, (_, i) => signal(from + i, { sexual_explicit: score }));

test('a lower global red threshold: the candidate kills where the active policy only blanks (per jurisdiction, once each)', () => {
  const candidate = withThresholds(active, [{ jurisdiction: 'global', category: 'sexual_explicit', red: 0.6 }]);
  const { differences, last } = run(candidate, explicit(1, 10, 0.75));
  assert.equal(last.active?.kill, false);
  assert.equal(last.shadow?.kill, true);
  const kills = differences.filter((d) => d.side === 'shadow_only');
  assert.deepEqual(keys(kills), ['shadow_only global sexual_explicit kill']);
  assert.equal(kills[0]!.score >= 0.6, true);
  assert.ok(kills[0]!.sampleSeqs.length >= 3, 'the kill cites the samples that reached the threshold');
  assert.equal(kills[0]!.candidateVersion, candidate.version);
  assert.equal(kills[0]!.activeVersion, active.version);
  // what the active policy did instead: the jurisdictions' blanks (the candidate's kill supersedes them)
  const blanks = differences.filter((d) => d.side === 'active_only');
  assert.ok(
    blanks.length > 0 && blanks.every((d) => d.outcome === 'blank' && d.category === 'sexual_explicit'),
    keys(blanks).join('; '),
  );
  assert.ok(blanks.some((d) => d.jurisdiction === 'default'));
});

test('the same signals under the same thresholds differ in nothing', () => {
  const same = withThresholds(active, []);
  assert.notEqual(same.version, active.version, 'a threshold candidate has its own version');
  const { differences } = run(same, [...explicit(1, 8, 0.75), ...explicit(9, 8, 0.05)]);
  assert.deepEqual(differences, []);
});

test('differences are counted when they open, not per sample; a closed one counts again when it reopens', () => {
  const candidate = withThresholds(active, [{ jurisdiction: 'default', category: 'sexual_explicit', red: 0.5 }]);
  // 0.6: amber (review) in default under the active policy, red (blank) under the candidate
  const { differences } = run(candidate, [...explicit(1, 10, 0.6), ...explicit(11, 10, 0.0), ...explicit(21, 10, 0.6)]);
  const opened = differences.filter((d) => d.jurisdiction === 'default');
  assert.deepEqual(keys(opened), [
    'active_only default sexual_explicit review',
    'active_only default sexual_explicit review',
    'shadow_only default sexual_explicit blank',
    'shadow_only default sexual_explicit blank',
  ]);
});

test('outcomesOf: kills, filters, reviews and fail-mode actions as (jurisdiction, category, outcome)', () => {
  const base: Verdict = {
    streamId: 's',
    at: 1,
    policyVersion: active.version,
    kill: false,
    review: false,
    killCategories: [],
    degraded: [],
    perJurisdiction: {},
    evidence: {
      sampleSeqs: [],
      timeRange: { from: 0, to: 0 },
      scores: [],
      matches: [],
      text: [],
      textContext: [],
      thumbnailRefs: [],
    },
    evidenceByCategory: {},
  };
  const cases: [string, Partial<Verdict>, string[]][] = [
    ['green', {}, []],
    [
      'kill supersedes the jurisdictions',
      {
        kill: true,
        killCategories: [{ category: 'known_bad_match', score: 1, clause: 'c' }],
        perJurisdiction: {
          DE: {
            bucket: 'red',
            action: 'kill_stream',
            actions: ['block'],
            categories: [{ category: 'known_bad_match', score: 1, bucket: 'red', clause: 'c', action: 'block' }],
          },
        },
      },
      ['global|known_bad_match|kill'],
    ],
    [
      'red blank and mute',
      {
        perJurisdiction: {
          SA: {
            bucket: 'red',
            action: 'blank_video',
            actions: ['blank_video'],
            categories: [{ category: 'profanity', score: 1, bucket: 'red', clause: 'c', action: 'blank_video' }],
          },
          DE: {
            bucket: 'red',
            action: 'mute_audio',
            actions: ['mute_audio'],
            categories: [{ category: 'copyright_audio', score: 0.9, bucket: 'red', clause: 'c', action: 'mute_audio' }],
          },
        },
      },
      ['DE|copyright_audio|mute', 'SA|profanity|blank'],
    ],
    [
      'amber goes to review where the jurisdiction reviews amber',
      {
        perJurisdiction: {
          default: {
            bucket: 'amber',
            action: 'allow',
            actions: [],
            categories: [{ category: 'sexual_explicit', score: 0.5, bucket: 'amber', clause: 'c', action: 'allow' }],
          },
        },
      },
      ['default|sexual_explicit|review'],
    ],
    [
      'fail closed without a category',
      {
        degraded: ['video'],
        perJurisdiction: {
          SA: {
            bucket: 'green',
            action: 'blank_video',
            actions: ['blank_video'],
            categories: [],
            failMode: 'fail_closed',
          },
        },
      },
      ['SA|signals_unavailable|blank'],
    ],
  ];
  for (const [name, over, want] of cases)
    assert.deepEqual([...outcomesOf({ ...base, ...over }, active).keys()].sort(), want, name);
  assert.deepEqual([...outcomesOf(undefined, active).keys()], []);
});

test('shadowReport: per jurisdiction and category, both directions, examples bounded, other candidates ignored', () => {
  const d = (over: Partial<ShadowDifference>): ShadowDifference => ({
    side: 'shadow_only',
    jurisdiction: 'global',
    category: 'sexual_explicit',
    outcome: 'kill',
    streamId: 's1',
    at: 100,
    score: 0.7,
    sampleSeqs: [1, 2, 3],
    candidateVersion: 'c1',
    activeVersion: 'a1',
    ...over,
  });
  const list = [
    ...Array.from({ length: 7 }, (_, i) => d({ streamId: `s${i}`, at: 100 + i })),
    d({ side: 'active_only', jurisdiction: 'DE', category: 'copyright_audio', outcome: 'mute', at: 50 }),
    d({ jurisdiction: 'SA', category: 'profanity', outcome: 'blank', at: 300, activeVersion: 'a2' }),
    d({ candidateVersion: 'other', at: 1 }),
  ];
  const r = shadowReport('c1', list, 3);
  assert.equal(r.differences, 9);
  assert.deepEqual(r.activeVersions, ['a1', 'a2']);
  assert.equal(r.shadowOnly.kill, 7);
  assert.equal(r.shadowOnly.blank, 1);
  assert.equal(r.activeOnly.mute, 1);
  const kills = r.jurisdictions.global?.sexual_explicit;
  assert.equal(kills?.shadowOnly.kill, 7);
  assert.equal(kills?.examples.length, 3);
  assert.deepEqual(
    kills?.examples.map((e) => e.streamId),
    ['s0', 's1', 's2'],
  );
  assert.deepEqual(kills?.examples[0]?.sampleSeqs, [1, 2, 3]);
  assert.equal(r.jurisdictions.DE?.copyright_audio?.activeOnly.mute, 1);
  assert.equal(r.from, 50);
  assert.equal(r.to, 300);
  assert.equal(shadowReport('none', list).differences, 0);
});

test('shadowFreshness: activation needs a run of the same candidate against the policy it replaces', () => {
  const run1 = { candidateVersion: 'c1', activeVersion: 'a1', startedAt: 0 };
  const cases: [typeof run1 | undefined, string, string | undefined, string][] = [
    [undefined, 'c1', 'a1', 'missing'],
    [run1, 'c2', 'a1', 'missing'],
    [run1, 'c1', 'a2', 'stale'],
    [run1, 'c1', 'a1', 'fresh'],
    [run1, 'c1', undefined, 'fresh'],
  ];
  for (const [r, c, a, want] of cases)
    assert.equal(shadowFreshness(r, c, a), want, `${JSON.stringify(r)} ${c} over ${a}`);
});

test('withThresholds refuses a rule the policy does not have and leaves the active policy untouched', () => {
  assert.throws(
    () => withThresholds(active, [{ jurisdiction: 'global', category: 'profanity', red: 0.5 }]),
    (e: unknown) => e instanceof PolicyError && e.code === 'POL_ERR_REFERENCE',
  );
  assert.throws(
    () => withThresholds(active, [{ jurisdiction: 'XX', category: 'sexual_explicit', red: 0.5 }]),
    PolicyError,
  );
  const before = active.jurisdictions.default?.categories.sexual_explicit?.red;
  const c = withThresholds(active, [{ jurisdiction: 'default', category: 'sexual_explicit', red: 0.5, amber: 0.3 }]);
  assert.equal(c.jurisdictions.default?.categories.sexual_explicit?.red, 0.5);
  assert.equal(c.jurisdictions.default?.categories.sexual_explicit?.amber, 0.3);
  assert.equal(active.jurisdictions.default?.categories.sexual_explicit?.red, before);
  assert.equal(
    withThresholds(active, [{ jurisdiction: 'default', category: 'sexual_explicit', red: 0.5, amber: 0.3 }]).version,
    c.version,
    'deterministic',
  );
});
