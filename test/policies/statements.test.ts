import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chainAuditEntry, GENESIS_HASH, verifyAuditChain } from '../../policies/audit.ts';
import { PolicyError } from '../../policies/errors.ts';
import { createFusionState, evidenceFor, fuse, windowEvidence, type FusionState } from '../../policies/fusion.ts';
import { gateFor } from '../../policies/gate.ts';
import {
  buildStatement,
  claimReview,
  compareReviewItems,
  createAppeal,
  OPERATOR_REPORT,
  operatorStatement,
  PRIORITY_APPEAL,
  resolveReview,
  restrictionKey,
  restrictionsOf,
  reviewItemFor,
  statementGaps,
} from '../../policies/statements.ts';
import type { AuditEntry, ReviewItem, SignalLike, StatementOfReasons, Verdict } from '../../policies/types.ts';
import { badMatch, musicMatch, shippedPolicy, signal } from './helpers.ts';

const policy = shippedPolicy();

function verdictAfter(signals: SignalLike[]): {
  verdict: Verdict;
  entered: { jurisdiction: string; category: string }[];
  state: FusionState;
} {
  let state = createFusionState('s1');
  let verdict: Verdict | undefined;
  const entered: { jurisdiction: string; category: string }[] = [];
  for (const s of signals) {
    const r = fuse(state, s, policy, s.completedAt);
    state = r.state;
    verdict = r.verdict;
    entered.push(...r.enteredAmber);
  }
  assert.ok(verdict);
  return { verdict, entered, state };
}

const scenarios: { name: string; signals: SignalLike[]; expect: { action: string; jurisdictions: string[] }[] }[] = [
  {
    name: 'kill on a hash match',
    signals: [signal(1, {}, { matches: [badMatch], thumbnailRef: 'thumb/1' })],
    expect: [{ action: 'kill_stream', jurisdictions: ['global'] }],
  },
  {
    name: 'SA blank on suggestive',
    signals: [1, 2, 3].map((i) => signal(i, { 'nsfw.sexy': 0.6 })),
    expect: [{ action: 'blank_video', jurisdictions: ['SA'] }],
  },
  {
    name: 'DE mute on music',
    signals: [1, 2].map((i) => signal(i, {}, { kind: 'audio', matches: [musicMatch] })),
    expect: [{ action: 'mute_audio', jurisdictions: ['DE'] }],
  },
  {
    name: 'explicit content blanks everywhere but SE keeps a higher bar',
    signals: [1, 2, 3].map((i) => signal(i, { 'nsfw.porn': 0.75 })),
    expect: [{ action: 'blank_video', jurisdictions: ['BR', 'DE', 'SA', 'TH', 'US', 'default'] }],
  },
  {
    name: 'fail closed in SA, quarantine in DE and TH',
    signals: [1, 2, 3].map((i) => signal(i, {}, { status: 'unavailable' })),
    expect: [
      { action: 'blank_video', jurisdictions: ['SA'] },
      { action: 'blank_video', jurisdictions: ['DE', 'TH'] },
    ],
  },
];

describe('statements of reasons', () => {
  for (const sc of scenarios) {
    it(`${sc.name}: restrictions and complete statements`, () => {
      const { verdict } = verdictAfter(sc.signals);
      const restrictions = restrictionsOf(verdict, policy);
      assert.deepEqual(
        restrictions.map((r) => ({ action: r.action, jurisdictions: r.jurisdictions })),
        sc.expect,
      );
      assert.equal(
        new Set(restrictions.map(restrictionKey)).size,
        restrictions.length,
        'restriction keys are distinct',
      );
      for (const r of restrictions) {
        const s = buildStatement({
          streamId: 's1',
          restriction: r,
          policy,
          evidence: evidenceFor(
            verdict,
            r.categories.map((c) => c.category),
          ),
          issuedAt: 5000,
        });
        assert.deepEqual(statementGaps(s), [], JSON.stringify(s));
        assert.equal(s.ground.policyVersion, policy.version);
        assert.equal(s.redress.appealUrl, `/v1/appeals/${s.id}`);
        assert.deepEqual(s.automated, { detection: true, decision: true });
        assert.equal(s.restriction.scope, r.action === 'kill_stream' ? 'stream' : 'jurisdictions');
      }
    });
  }

  it('cites the law and the facts the decision relied on', () => {
    const { verdict } = verdictAfter([
      signal(1, { 'nsfw.porn': 0.2 }, { arrivedAt: 900 }),
      signal(2, {}, { matches: [badMatch], arrivedAt: 1500 }),
    ]);
    const [r] = restrictionsOf(verdict, policy);
    assert.ok(r);
    const s = buildStatement({
      streamId: 's1',
      restriction: r,
      policy,
      evidence: evidenceFor(verdict, ['known_bad_match']),
      issuedAt: 2000,
    });
    assert.equal(s.ground.type, 'law');
    assert.match(s.ground.clause, /known-material hash match/);
    assert.deepEqual(
      s.facts.matches.map((m) => m.entryId),
      ['kb-1'],
    );
    assert.deepEqual(s.facts.sampleSeqs, [2]);
    assert.deepEqual(s.facts.timeRange, { from: 1500, to: 1500 });
    assert.match(s.restriction.duration, /may not restart/);
  });

  it('fail-mode statements cite the outage and say who is affected', () => {
    const { verdict } = verdictAfter(
      [1, 2, 3].map((i) => signal(i, {}, { status: i === 2 ? 'deadline_missed' : 'unavailable', arrivedAt: 1000 * i })),
    );
    const [closed, quarantine] = restrictionsOf(verdict, policy);
    const s = buildStatement({
      streamId: 's1',
      restriction: closed!,
      policy,
      evidence: evidenceFor(verdict, ['signals_unavailable']),
      issuedAt: 4000,
    });
    assert.deepEqual(s.facts.sampleSeqs, [1, 2, 3]);
    assert.deepEqual(s.facts.timeRange, { from: 1000, to: 3000 });
    assert.match(
      s.ground.explanation,
      /viewers in SA: moderation signals were unavailable for 3 consecutive samples .* fails closed/,
    );
    const q = buildStatement({
      streamId: 's1',
      restriction: quarantine!,
      policy,
      evidence: evidenceFor(verdict, ['signals_unavailable']),
      issuedAt: 4000,
    });
    assert.match(q.ground.explanation, /viewers joining in DE, TH/);
    assert.notEqual(q.id, s.id);
  });

  it('a statement with missing parts is reported incomplete', () => {
    const { verdict } = verdictAfter([signal(1, {}, { matches: [badMatch] })]);
    const s = buildStatement({
      streamId: 's1',
      restriction: restrictionsOf(verdict, policy)[0]!,
      policy,
      evidence: verdict.evidence,
      issuedAt: 1,
    });
    assert.deepEqual(
      statementGaps({ ...s, ground: { ...s.ground, clause: '' }, redress: { ...s.redress, options: [] } }),
      ['ground.clause', 'redress.options'],
    );
  });
});

describe('review items, claims, resolution and appeals', () => {
  const amber = verdictAfter([1, 2, 3].map((i) => signal(i, { 'nsfw.porn': 0.5 }, { thumbnailRef: `thumb/${i}` })));

  it('amber builds a review item with evidence and the action upholding would apply', () => {
    const item = reviewItemFor(amber.verdict, policy, amber.entered, 3000);
    assert.ok(item);
    assert.equal(item.type, 'amber');
    assert.ok(item.jurisdictions.includes('default'));
    assert.ok(!item.jurisdictions.includes('SE'), 'SE: 0.5 is green there, and SE does not queue amber');
    assert.equal(item.proposedAction, 'blank_video');
    assert.deepEqual(item.evidence.thumbnailRefs, ['thumb/1', 'thumb/2', 'thumb/3']);
    assert.deepEqual(item.evidence.sampleSeqs, [1, 2, 3]);
    assert.equal(item.categories[0]?.category, 'sexual_explicit');
  });

  it('claims expire; another reviewer cannot take a live claim', () => {
    const item = reviewItemFor(amber.verdict, policy, amber.entered, 3000)!;
    const claimed = claimReview(item, 'alice', 10_000, 60_000);
    assert.throws(
      () => claimReview(claimed, 'bob', 20_000),
      (e: unknown) => e instanceof PolicyError && e.code === 'POL_ERR_REVIEW_STATE' && e.statusCode === 409,
    );
    assert.equal(claimReview(claimed, 'bob', 70_001).claim?.reviewer, 'bob');
    assert.throws(
      () => resolveReview(claimed, { outcome: 'uphold', reviewer: 'bob', at: 20_000 }, policy),
      PolicyError,
    );
  });

  it('uphold restricts with a human-decided statement; overturn restricts nothing', () => {
    const item = claimReview(reviewItemFor(amber.verdict, policy, amber.entered, 3000)!, 'alice', 4000);
    const up = resolveReview(
      item,
      { outcome: 'uphold', reviewer: 'alice', at: 5000, note: 'nudity confirmed' },
      policy,
    );
    assert.equal(up.effect.kind, 'restrict');
    assert.ok(up.statement);
    assert.deepEqual(statementGaps(up.statement), []);
    assert.deepEqual(up.statement.automated, { detection: true, decision: false });
    assert.match(up.statement.ground.explanation, /nudity confirmed/);
    const down = resolveReview(item, { outcome: 'overturn', reviewer: 'alice', at: 5000 }, policy);
    assert.deepEqual(down.effect, { kind: 'none' });
    // cleared: the streamer is told no restriction was applied, and why
    assert.equal(down.statement?.restriction.action, 'allow');
    assert.match(down.statement?.ground.explanation ?? '', /found no violation/);
  });

  it('an appeal is a priority item; its outcome has its own statement; overturning a kill lifts it', () => {
    const kill = verdictAfter([signal(1, {}, { matches: [badMatch] })]).verdict;
    const killStatement = buildStatement({
      streamId: 's1',
      restriction: restrictionsOf(kill, policy)[0]!,
      policy,
      evidence: kill.evidence,
      issuedAt: 1000,
    });
    const appeal = createAppeal(killStatement, {
      appellant: 'streamer-1',
      grounds: 'the picture is my own artwork',
      at: 2000,
    });
    assert.equal(appeal.priority, PRIORITY_APPEAL);
    assert.equal(appeal.statementId, killStatement.id);
    const amberItem = reviewItemFor(amber.verdict, policy, amber.entered, 1000)!;
    assert.deepEqual(
      [amberItem, appeal].sort(compareReviewItems).map((i) => i.type),
      ['appeal', 'amber'],
    );

    const granted = resolveReview(appeal, { outcome: 'overturn', reviewer: 'carol', at: 3000 }, policy);
    assert.deepEqual(granted.effect, { kind: 'lift', action: 'kill_stream', jurisdictions: ['global'] });
    assert.ok(granted.statement);
    assert.notEqual(granted.statement.id, killStatement.id);
    assert.match(granted.statement.ground.explanation, new RegExp(`${killStatement.id}.*granted`));
    assert.deepEqual(statementGaps(granted.statement), []);

    const rejected = resolveReview(appeal, { outcome: 'uphold', reviewer: 'carol', at: 3000 }, policy);
    assert.deepEqual(rejected.effect, { kind: 'none' });
    assert.equal(rejected.statement?.restriction.action, 'kill_stream');
    assert.ok(
      rejected.statement?.redress.options.every((o) => !/internal complaint/.test(o)),
      'after an appeal, the remaining redress is external',
    );
  });
});

describe('gateFor modes', () => {
  const { verdict } = verdictAfter([1, 2, 3].map((i) => signal(i, { 'nsfw.sexy': 0.6 })));
  const table: {
    mode: 'per_viewer' | 'strictest_intersection';
    viewer: string | undefined;
    others: (string | undefined)[];
    video: string;
  }[] = [
    { mode: 'per_viewer', viewer: 'SE', others: ['SE', 'SA'], video: 'forward' },
    { mode: 'per_viewer', viewer: 'SA', others: ['SE', 'SA'], video: 'blank' },
    { mode: 'strictest_intersection', viewer: 'SE', others: ['SE', 'SA'], video: 'blank' },
    { mode: 'strictest_intersection', viewer: 'SE', others: ['SE', 'US', undefined], video: 'forward' },
    { mode: 'strictest_intersection', viewer: 'SA', others: [], video: 'blank' },
  ];
  for (const t of table) {
    it(`${t.mode}: ${t.viewer} with viewers in [${t.others.join(',')}] -> ${t.video}`, () => {
      const g = gateFor(verdict, t.viewer, t.mode, t.others);
      assert.equal(g.video, t.video);
      if (t.video === 'blank') assert.equal(g.reasons[0]?.jurisdiction, 'SA');
    });
  }
});

describe('audit hash chain', () => {
  function chain(n: number): AuditEntry[] {
    const out: AuditEntry[] = [];
    for (let i = 0; i < n; i++)
      out.push(chainAuditEntry(out.at(-1), { type: 'decision', i, nested: { b: 2, a: [1, 2] } }, 1000 + i));
    return out;
  }

  it('links entries and verifies', () => {
    const c = chain(5);
    assert.equal(c[0]!.prevHash, GENESIS_HASH);
    assert.equal(c[0]!.seq, 1);
    assert.equal(c[3]!.prevHash, c[2]!.hash);
    assert.deepEqual(verifyAuditChain(c), { ok: true });
    assert.deepEqual(verifyAuditChain(c.slice(2), c[1]), { ok: true });
    assert.deepEqual(verifyAuditChain([]), { ok: true });
  });

  it('hashes canonical JSON: key order does not matter', () => {
    const a = chainAuditEntry(undefined, { x: 1, y: { p: 1, q: 2 } }, 5);
    const b = chainAuditEntry(undefined, { y: { q: 2, p: 1 }, x: 1 }, 5);
    assert.equal(a.hash, b.hash);
  });

  const tampering: { name: string; tamper: (c: AuditEntry[]) => AuditEntry[]; brokenAt: number }[] = [
    {
      name: 'an edited body',
      tamper: (c) =>
        c.map((e) => (e.seq === 3 ? { ...e, body: { type: 'decision', i: 99, nested: { b: 2, a: [1, 2] } } } : e)),
      brokenAt: 3,
    },
    { name: 'an edited time', tamper: (c) => c.map((e) => (e.seq === 2 ? { ...e, at: e.at + 1 } : e)), brokenAt: 2 },
    { name: 'a dropped entry', tamper: (c) => c.filter((e) => e.seq !== 3), brokenAt: 4 },
    { name: 'swapped entries', tamper: (c) => [c[0]!, c[2]!, c[1]!, c[3]!, c[4]!], brokenAt: 3 },
    {
      name: 'an entry rehashed after editing',
      tamper: (c) => c.map((e) => (e.seq === 2 ? chainAuditEntry(c[0], { forged: true }, e.at) : e)),
      brokenAt: 3,
    },
  ];
  for (const t of tampering) {
    it(`detects ${t.name}`, () => {
      const r = verifyAuditChain(t.tamper(chain(5)));
      assert.equal(r.ok, false);
      assert.equal(r.brokenAt, t.brokenAt);
    });
  }
});

it('gateFor of a kill closes everyone with the global reason', () => {
  const { verdict } = verdictAfter([signal(1, {}, { matches: [badMatch] })]);
  const g = gateFor(verdict, 'SE');
  assert.equal(g.closed, true);
  assert.equal(g.reasons[0]?.action, 'kill_stream');
});

// DSA Art. 17(3) (a)-(f) for every kind of decision the server takes: automated (kill, blank, mute),
// an operator's (kill, gate; own initiative or following a notice), a review's (restrict, confirm,
// clear) and an appeal's (upheld, overturned; of an automated and of an operator's statement).
describe('every kind of decision has a complete statement', () => {
  const operatorBase = {
    streamId: 's1',
    issuedAt: 9000,
    actor: 'admin-1',
    reason: 'doxxing on camera',
    policy,
    appealBase: 'https://sfu.example/v1/appeals',
  };
  const scored = verdictAfter([1, 2, 3].map((i) => signal(i, { 'nsfw.sexy': 0.6 }, { thumbnailRef: `thumb/${i}` })));
  const amber = verdictAfter([1, 2, 3].map((i) => signal(i, { 'nsfw.porn': 0.5 })));
  const amberItem = claimReview(reviewItemFor(amber.verdict, policy, amber.entered, 3000)!, 'alice', 4000);
  const automated = (signals: SignalLike[], action: string): StatementOfReasons => {
    const { verdict } = verdictAfter(signals);
    const r = restrictionsOf(verdict, policy).find((x) => x.action === action);
    assert.ok(r, `a ${action} restriction`);
    return buildStatement({
      streamId: 's1',
      restriction: r,
      policy,
      evidence: evidenceFor(
        verdict,
        r.categories.map((c) => c.category),
      ),
      issuedAt: 5000,
    });
  };
  const manualKill = operatorStatement({
    ...operatorBase,
    action: 'kill_stream',
    jurisdictions: ['global'],
    clause: 'ToS 3.1',
    categories: [{ category: 'sexual_suggestive', score: 0.6 }],
    evidence: windowEvidence(scored.state),
  });
  const noticeGate = operatorStatement({
    ...operatorBase,
    action: 'blank_video',
    jurisdictions: ['DE'],
    categories: [],
    evidence: windowEvidence(scored.state),
    basis: { kind: 'notice', noticeId: 'ntc-77', trustedFlagger: true, receivedAt: 8000 },
  });
  const { verdict: killVerdict } = verdictAfter([signal(1, {}, { matches: [badMatch] })]);
  const killStatement = buildStatement({
    streamId: 's1',
    restriction: restrictionsOf(killVerdict, policy)[0]!,
    policy,
    evidence: killVerdict.evidence,
    issuedAt: 1000,
  });
  const appealOf = (st: StatementOfReasons): ReviewItem =>
    claimReview(
      createAppeal(st, { appellant: 'streamer-1', grounds: 'not what it looks like', at: 10_000 }),
      'carol',
      10_500,
    );
  const confirmItem: ReviewItem = { ...amberItem, id: 'rev_confirm', proposedAction: 'allow' };

  const kinds: {
    kind: string;
    statement: () => StatementOfReasons | undefined;
    action: string;
    automated: { detection: boolean; decision: boolean };
    basis: string;
  }[] = [
    {
      kind: 'automated kill',
      statement: () => killStatement,
      action: 'kill_stream',
      automated: { detection: true, decision: true },
      basis: 'own_initiative',
    },
    {
      kind: 'automated blank',
      statement: () =>
        automated(
          [1, 2, 3].map((i) => signal(i, { 'nsfw.sexy': 0.6 })),
          'blank_video',
        ),
      action: 'blank_video',
      automated: { detection: true, decision: true },
      basis: 'own_initiative',
    },
    {
      kind: 'automated mute',
      statement: () =>
        automated(
          [1, 2].map((i) => signal(i, {}, { kind: 'audio', matches: [musicMatch] })),
          'mute_audio',
        ),
      action: 'mute_audio',
      automated: { detection: true, decision: true },
      basis: 'own_initiative',
    },
    {
      kind: 'manual kill',
      statement: () => manualKill,
      action: 'kill_stream',
      automated: { detection: false, decision: false },
      basis: 'own_initiative',
    },
    {
      kind: 'manual gate after a notice',
      statement: () => noticeGate,
      action: 'blank_video',
      automated: { detection: false, decision: false },
      basis: 'notice',
    },
    {
      kind: 'manual lift (resume)',
      statement: () =>
        operatorStatement({
          ...operatorBase,
          reason: 'false positive',
          action: 'allow',
          jurisdictions: ['global'],
          clause: manualKill.ground.clause,
          categories: manualKill.facts.categories,
          evidence: windowEvidence(scored.state),
        }),
      action: 'allow',
      automated: { detection: false, decision: false },
      basis: 'own_initiative',
    },
    {
      kind: 'review restricts',
      statement: () => resolveReview(amberItem, { outcome: 'uphold', reviewer: 'alice', at: 5000 }, policy).statement,
      action: 'blank_video',
      automated: { detection: true, decision: false },
      basis: 'own_initiative',
    },
    {
      kind: 'review confirms (no restriction in the policy)',
      statement: () => resolveReview(confirmItem, { outcome: 'uphold', reviewer: 'alice', at: 5000 }, policy).statement,
      action: 'allow',
      automated: { detection: true, decision: false },
      basis: 'own_initiative',
    },
    {
      kind: 'review clears',
      statement: () => resolveReview(amberItem, { outcome: 'overturn', reviewer: 'alice', at: 5000 }, policy).statement,
      action: 'allow',
      automated: { detection: true, decision: false },
      basis: 'own_initiative',
    },
    {
      kind: 'appeal upheld (automated kill)',
      statement: () =>
        resolveReview(appealOf(killStatement), { outcome: 'uphold', reviewer: 'carol', at: 11_000 }, policy).statement,
      action: 'kill_stream',
      automated: { detection: true, decision: false },
      basis: 'own_initiative',
    },
    {
      kind: 'appeal overturned (automated kill)',
      statement: () =>
        resolveReview(appealOf(killStatement), { outcome: 'overturn', reviewer: 'carol', at: 11_000 }, policy)
          .statement,
      action: 'allow',
      automated: { detection: true, decision: false },
      basis: 'own_initiative',
    },
    {
      kind: 'appeal upheld (manual kill)',
      statement: () =>
        resolveReview(appealOf(manualKill), { outcome: 'uphold', reviewer: 'carol', at: 11_000 }, policy).statement,
      action: 'kill_stream',
      automated: { detection: false, decision: false },
      basis: 'own_initiative',
    },
    {
      kind: 'appeal overturned (gate after a notice)',
      statement: () =>
        resolveReview(appealOf(noticeGate), { outcome: 'overturn', reviewer: 'carol', at: 11_000 }, policy).statement,
      action: 'allow',
      automated: { detection: false, decision: false },
      basis: 'notice',
    },
  ];
  for (const k of kinds) {
    it(`${k.kind}: no gap, ${k.action}, automated ${k.automated.detection}/${k.automated.decision}, ${k.basis}`, () => {
      const st = k.statement();
      assert.ok(st, 'a statement');
      assert.deepEqual(statementGaps(st), [], JSON.stringify(st));
      assert.equal(st.restriction.action, k.action);
      assert.deepEqual(st.automated, k.automated);
      assert.equal(st.basis.kind, k.basis);
      assert.equal(st.ground.policyVersion, policy.version);
      assert.ok(st.redress.appealUrl.endsWith(`/${st.id}`));
    });
  }

  it('an operator statement: the window samples, the clause, the territorial scope, the notice', () => {
    assert.deepEqual(manualKill.restriction.jurisdictions, ['global']);
    assert.equal(manualKill.restriction.scope, 'stream');
    assert.deepEqual(manualKill.facts.sampleSeqs, [1, 2, 3], 'the samples the stream was scored on');
    assert.equal(manualKill.ground.clause, 'ToS 3.1');
    assert.equal(manualKill.ground.explanation, 'Live stream ended by an operator (admin-1): doxxing on camera');
    assert.equal(manualKill.redress.appealUrl, `https://sfu.example/v1/appeals/${manualKill.id}`);
    assert.deepEqual(manualKill.redress.options, killStatement.redress.options, 'the redress every statement offers');
    assert.deepEqual([noticeGate.restriction.scope, noticeGate.restriction.jurisdictions], ['jurisdictions', ['DE']]);
    assert.deepEqual(noticeGate.basis, { kind: 'notice', noticeId: 'ntc-77', trustedFlagger: true, receivedAt: 8000 });
    assert.match(
      noticeGate.ground.explanation,
      /viewers in DE by an operator \(admin-1\) following notice ntc-77 from a trusted flagger: doxxing/,
    );
    assert.deepEqual(
      noticeGate.facts.categories,
      [{ category: OPERATOR_REPORT, score: 0 }],
      "no category given: the operator's own finding",
    );
    assert.notEqual(
      operatorStatement({
        ...operatorBase,
        actor: 'admin-2',
        action: 'kill_stream',
        jurisdictions: ['global'],
        clause: 'ToS 3.1',
        categories: [],
        evidence: windowEvidence(scored.state),
      }).id,
      manualKill.id,
      'two operators, two statements',
    );
  });

  it('an operator statement with nothing to cite reports it; the server attaches the evidence clip', () => {
    const bare = operatorStatement({
      ...operatorBase,
      action: 'kill_stream',
      jurisdictions: [],
      categories: [],
      evidence: windowEvidence(createFusionState('s1')),
    });
    assert.deepEqual(statementGaps(bare), ['facts.evidence']);
    assert.deepEqual(
      statementGaps({
        ...bare,
        clips: [
          {
            id: 'clip-1',
            kind: 'clip',
            url: '/v1/evidence/clip-1',
            jurisdiction: 'default',
            from: 1,
            to: 2,
            expiresAt: 3,
          },
        ],
      }),
      [],
    );
    assert.deepEqual(statementGaps({ ...bare, basis: { kind: 'notice', noticeId: '' } }), ['facts.evidence', 'basis']);
  });

  it('an appeal outcome cites the appealed statement: scope, clause, basis, detection', () => {
    const up = resolveReview(appealOf(noticeGate), { outcome: 'uphold', reviewer: 'carol', at: 11_000 }, policy);
    assert.deepEqual(up.statement?.restriction.jurisdictions, ['DE']);
    assert.equal(up.statement?.ground.clause, 'operator action');
    assert.deepEqual(up.statement?.basis, noticeGate.basis);
    assert.equal(up.statement?.restriction.duration, noticeGate.restriction.duration);
    const down = resolveReview(appealOf(manualKill), { outcome: 'overturn', reviewer: 'carol', at: 11_000 }, policy);
    assert.deepEqual(down.effect, { kind: 'lift', action: 'kill_stream', jurisdictions: ['global'] });
    assert.match(down.statement?.restriction.duration ?? '', /lifted/);
  });
});
