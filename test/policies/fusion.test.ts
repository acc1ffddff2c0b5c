import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createFusionState, fuse, type FusionResult } from '../../policies/fusion.ts';
import { gateFor, initialGateFor } from '../../policies/gate.ts';
import { loadPolicyBundle } from '../../policies/loader.ts';
import type { Bucket, Policy, SignalLike } from '../../policies/types.ts';
import { badMatch, musicMatch, shippedPolicy, signal } from './helpers.ts';

/** A small policy with round numbers so the tables read easily: window 5, enter 3, exit 3, hysteresis 0.1. */
const SMALL = `
apiVersion: policy/v1
kind: PolicyBase
name: small
appealUrl: /appeals
failAfter: 2
fusion: { window: 5, enter: 3, exit: 3, hysteresis: 0.1 }
taxonomy:
  x:
    description: test category
    kinds: [video]
    ground: terms_of_service
    clause: "T1"
    signals: { scores: [x], banks: [xbank] }
global: {}
jurisdictions:
  default:
    failMode: fail_open
    reviewAmber: true
    categories:
      x: { amber: 0.4, red: 0.7, actions: { amber: allow, red: blank_video } }
  ZZ:
    failMode: fail_closed
    categories:
      x: { immediateOnMatch: true }
`;
const small = loadPolicyBundle([{ filename: 'small.yaml', text: SMALL }]);

function run(policy: Policy, signals: SignalLike[]): FusionResult[] {
  let state = createFusionState('s1');
  const out: FusionResult[] = [];
  for (const s of signals) {
    const r = fuse(state, s, policy, s.completedAt);
    state = r.state;
    out.push(r);
  }
  return out;
}

const letter: Record<Bucket, string> = { green: 'g', amber: 'a', red: 'r' };
function buckets(policy: Policy, scores: number[], jurisdiction = 'default'): string {
  return run(
    policy,
    scores.map((x, i) => signal(i + 1, { x })),
  )
    .map((r) => letter[r.verdict.perJurisdiction[jurisdiction]!.bucket])
    .join('');
}

describe('fusion: N-of-M entry and hysteresis exit (window 5, enter 3, exit 3, hysteresis 0.1)', () => {
  const table: { name: string; scores: number[]; expect: string }[] = [
    { name: 'one spike is not enough', scores: [0.9, 0.1, 0.1, 0.1, 0.1], expect: 'ggggg' },
    { name: 'two of five is not enough', scores: [0.9, 0.1, 0.9, 0.1, 0.1, 0.1], expect: 'gggggg' },
    { name: 'three of five enters red on the third', scores: [0.9, 0.1, 0.9, 0.1, 0.9], expect: 'ggggr' },
    { name: 'three consecutive enter red', scores: [0.8, 0.8, 0.8], expect: 'ggr' },
    { name: 'amber band enters amber', scores: [0.5, 0.5, 0.5, 0.5], expect: 'ggaa' },
    { name: 'amber then red', scores: [0.5, 0.5, 0.5, 0.8, 0.8, 0.8], expect: 'ggaaar' },
    {
      name: 'exit needs three samples below threshold - hysteresis',
      scores: [0.8, 0.8, 0.8, 0.1, 0.1, 0.1, 0.1],
      expect: 'ggrrrgg',
    },
    {
      name: 'scores just under red (inside hysteresis) keep red',
      scores: [0.8, 0.8, 0.8, 0.65, 0.65, 0.65, 0.65, 0.65],
      expect: 'ggrrrrrr',
    },
    {
      name: 'red decays to amber, then to green',
      scores: [0.8, 0.8, 0.8, 0.5, 0.5, 0.5, 0.5, 0.1, 0.1, 0.1],
      expect: 'ggrrraaaag',
    },
    { name: 'one low sample does not reset red', scores: [0.8, 0.8, 0.8, 0.1, 0.8, 0.1, 0.1, 0.8], expect: 'ggrrrrrr' },
  ];
  for (const t of table) {
    it(t.name, () => assert.equal(buckets(small, t.scores), t.expect));
  }

  it('noisy scores around the red threshold do not flap', () => {
    // Deterministic noise: 0.7 +- 0.08.
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const scores = Array.from({ length: 200 }, () => 0.7 + (rand() - 0.5) * 0.16);
    const seq = buckets(small, scores);
    const transitions = [...seq].filter((c, i) => i > 0 && c !== seq[i - 1]).length;
    // A per-sample threshold would flip about every other sample.
    const naive = scores.map((x) => (x >= 0.7 ? 'r' : 'a'));
    const naiveTransitions = naive.filter((c, i) => i > 0 && c !== naive[i - 1]).length;
    assert.ok(naiveTransitions > 50, `noise is noisy (${naiveTransitions})`);
    assert.ok(transitions <= 2, `fused buckets changed ${transitions} times: ${seq}`);
    assert.equal(seq.at(-1), 'r');
  });

  it('changed is true only when the decision changes', () => {
    const r = run(
      small,
      [0.8, 0.8, 0.8, 0.85, 0.9, 0.1, 0.1, 0.1].map((x, i) => signal(i + 1, { x })),
    );
    assert.deepEqual(
      r.map((x) => x.changed),
      [false, false, true, false, false, false, false, true],
    );
  });

  it('asks for review on green -> amber, not on red decaying through amber', () => {
    const r = run(
      small,
      [0.5, 0.5, 0.5, 0.9, 0.9, 0.9, 0.5, 0.5, 0.5, 0.5].map((x, i) => signal(i + 1, { x })),
    );
    const entered = r.map((x) => x.enteredAmber.filter((e) => e.jurisdiction === 'default').length);
    assert.equal(buckets(small, [0.5, 0.5, 0.5, 0.9, 0.9, 0.9, 0.5, 0.5, 0.5, 0.5]), 'ggaaarrraa');
    assert.deepEqual(entered, [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('does not modify the state it was given', () => {
    const s0 = createFusionState('s1');
    const r1 = fuse(s0, signal(1, { x: 0.9 }), small, 0);
    const snapshot = JSON.stringify(r1.state);
    fuse(r1.state, signal(2, { x: 0.9 }), small, 1);
    fuse(r1.state, signal(2, { x: 0.9 }), small, 1);
    assert.equal(JSON.stringify(r1.state), snapshot);
    assert.deepEqual(s0.windows, {});
  });

  it('an immediate match is red at once only where the policy says so', () => {
    const r = run(small, [signal(1, {}, { matches: [{ ...badMatch, category: 'x', bank: 'xbank' }] })]);
    assert.equal(r[0]!.verdict.perJurisdiction.ZZ!.bucket, 'red');
    assert.equal(r[0]!.verdict.perJurisdiction.default!.bucket, 'green');
    assert.equal(r[0]!.changed, true);
  });

  it('samples of the other kind leave a category alone', () => {
    const r = run(small, [
      signal(1, { x: 0.9 }),
      signal(2, { x: 0.9 }),
      signal(3, { x: 0.9 }, { kind: 'audio' }),
      signal(4, { x: 0.9 }),
    ]);
    assert.deepEqual(
      r.map((x) => x.verdict.perJurisdiction.default!.bucket),
      ['green', 'green', 'green', 'red'],
    );
  });
});

describe('fusion: fail modes when signals are unavailable (failAfter 2)', () => {
  const down = (seq: number, status: SignalLike['status'] = 'unavailable') => signal(seq, {}, { status });
  it('fail_open flags, fail_closed blanks, recovery clears both', () => {
    const r = run(small, [down(1), down(2, 'deadline_missed'), signal(3, { x: 0.1 }), signal(4, { x: 0.1 })]);
    assert.equal(r[0]!.verdict.degraded.length, 0);
    assert.deepEqual(r[1]!.verdict.degraded, ['video']);
    assert.equal(r[1]!.changed, true);
    assert.equal(r[1]!.verdict.perJurisdiction.default!.failMode, 'fail_open');
    assert.deepEqual(r[1]!.verdict.perJurisdiction.default!.actions, []);
    assert.deepEqual(r[1]!.verdict.perJurisdiction.ZZ!.actions, ['blank_video']);
    assert.equal(gateFor(r[1]!.verdict, 'ZZ').video, 'blank');
    assert.equal(gateFor(r[1]!.verdict, 'SE').video, 'forward');
    // Leaving the fail mode takes failAfter (2) good samples, as entering it did.
    assert.deepEqual(r[2]!.verdict.degraded, ['video']);
    assert.equal(r[2]!.changed, false);
    assert.deepEqual(r[3]!.verdict.degraded, []);
    assert.equal(r[3]!.changed, true);
    assert.equal(gateFor(r[3]!.verdict, 'ZZ').video, 'forward');
  });

  it('signals without model scores (hash or OCR only) neither end an outage nor dilute model-fed windows', () => {
    const outage = run(small, [down(1), down(2), { ...signal(3, {}), matches: [] }, { ...signal(4, {}), matches: [] }]);
    assert.deepEqual(outage[3]!.verdict.degraded, ['video'], 'score-less signals are no recovery');
    const p = shippedPolicy();
    const hot = { 'nsfw.porn': 0.95 };
    const mixed = run(p, [signal(1, hot), { ...signal(2, {}) }, signal(3, hot), { ...signal(4, {}) }, signal(5, hot)]);
    const sa = mixed[4]!.verdict.perJurisdiction.SA!;
    assert.equal(sa.bucket, 'red', 'three hot model samples out of three model samples');
  });

  it('a hash match counts even when the classifier missed its deadline', () => {
    const p = shippedPolicy();
    const late = {
      ...down(1, 'deadline_missed'),
      matches: [
        { category: 'known_bad_match', kind: 'pdq', bank: 'known_bad', entryId: 'x', distance: 4, confidence: 0.94 },
      ],
    };
    const r = run(p, [late]);
    assert.equal(r[0]!.verdict.kill, true);
  });

  it('quarantine blanks viewers who join while signals are down, not those watching', () => {
    const p = shippedPolicy();
    const r = run(p, [down(1), down(2), down(3)]);
    const v = r[2]!.verdict;
    assert.equal(v.perJurisdiction.DE!.failMode, 'quarantine');
    assert.equal(gateFor(v, 'DE').video, 'forward');
    assert.equal(initialGateFor(v, 'DE').video, 'blank');
    assert.equal(initialGateFor(v, 'SE').video, 'forward');
    // SA fails closed: everyone in SA is blanked.
    assert.equal(gateFor(v, 'SA').video, 'blank');
  });
});

describe('fusion with the shipped policy', () => {
  const p = shippedPolicy();

  it('suggestive content: SA blanked while SE and US forward', () => {
    const r = run(
      p,
      [1, 2, 3].map((i) => signal(i, { 'nsfw.sexy': 0.6 })),
    );
    const v = r[2]!.verdict;
    assert.equal(v.kill, false);
    assert.deepEqual(v.perJurisdiction.SA!.actions, ['blank_video']);
    assert.equal(gateFor(v, 'SA').video, 'blank');
    assert.equal(gateFor(v, 'SE').video, 'forward');
    assert.equal(gateFor(v, 'US').video, 'forward');
    assert.equal(gateFor(v, undefined).video, 'forward');
    assert.equal(gateFor(v, 'sa').video, 'blank', 'jurisdiction codes are case-insensitive');
    // The default band (0.60-0.85) sends it to review.
    assert.equal(v.review, true);
    assert.ok(r[2]!.enteredAmber.some((e) => e.jurisdiction === 'default' && e.category === 'sexual_suggestive'));
  });

  it('copyrighted music: DE muted, others not', () => {
    const r = run(
      p,
      [1, 2].map((i) => signal(i, {}, { kind: 'audio', matches: [musicMatch] })),
    );
    const v = r[1]!.verdict;
    assert.deepEqual(v.perJurisdiction.DE!.actions, ['mute_audio']);
    assert.equal(gateFor(v, 'DE').audio, 'mute');
    assert.equal(gateFor(v, 'DE').video, 'forward');
    for (const j of ['SE', 'SA', 'US', 'BR', 'TH', undefined]) assert.equal(gateFor(v, j).audio, 'forward', String(j));
    assert.deepEqual(
      v.evidence.matches.map((m) => m.entryId),
      ['track-42'],
    );
  });

  it('a known-bad hash match kills at once, globally', () => {
    const r = run(p, [signal(1, { 'nsfw.porn': 0.01 }), signal(2, {}, { matches: [badMatch] })]);
    assert.equal(r[0]!.verdict.kill, false);
    const v = r[1]!.verdict;
    assert.equal(v.kill, true);
    assert.equal(r[1]!.changed, true);
    assert.deepEqual(
      v.killCategories.map((k) => k.category),
      ['known_bad_match'],
    );
    for (const j of ['SE', 'SA', 'US', undefined]) assert.equal(gateFor(v, j).closed, true);
    assert.deepEqual(v.evidenceByCategory.known_bad_match?.sampleSeqs, [2]);
  });

  it('a PDQ match outside the match radius (distance 33) does not kill', () => {
    const far = { ...badMatch, distance: 33, confidence: 1 - 33 / 64 };
    const r = run(p, [signal(1, {}, { matches: [far] })]);
    assert.equal(r[0]!.verdict.kill, false);
  });

  it('sustained explicit content kills; brief explicit content only blanks', () => {
    const brief = run(
      p,
      [0.95, 0.95, 0.2, 0.2].map((x, i) => signal(i + 1, { 'nsfw.porn': x })),
    );
    assert.equal(
      brief.some((r) => r.verdict.kill),
      false,
    );
    const sustained = run(
      p,
      [0.95, 0.95, 0.95].map((x, i) => signal(i + 1, { 'nsfw.porn': x })),
    );
    assert.equal(sustained[2]!.verdict.kill, true);
    const blanking = run(
      p,
      [0.8, 0.8, 0.8].map((x, i) => signal(i + 1, { 'nsfw.porn': x })),
    );
    assert.equal(blanking[2]!.verdict.kill, false);
    assert.equal(gateFor(blanking[2]!.verdict, 'US').video, 'blank');
  });

  it('banned text counts only where its term is in the lexicon', () => {
    const hit = { category: 'banned_text', term: 'Sieg Heil', source: 'ocr' };
    const r = run(
      p,
      [1, 2].map((i) => signal(i, {}, { text: [hit] })),
    );
    const v = r[1]!.verdict;
    assert.equal(gateFor(v, 'DE').video, 'blank');
    assert.equal(gateFor(v, 'BR').video, 'blank');
    assert.equal(gateFor(v, 'SE').video, 'forward');
    assert.deepEqual(v.evidence.text, [hit]);
  });

  it('profanity is flagged everywhere but blanked only in SA', () => {
    const hit = { category: 'profanity', term: 'fuck', source: 'chat' };
    const v = run(
      p,
      [1, 2].map((i) => signal(i, {}, { text: [hit] })),
    )[1]!.verdict;
    assert.equal(v.perJurisdiction.SE!.bucket, 'red');
    assert.deepEqual(v.perJurisdiction.SE!.actions, []);
    assert.equal(gateFor(v, 'SA').video, 'blank');
  });
});
