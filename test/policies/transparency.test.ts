// policies/transparency.ts: the transparency report from audit entries only: restrictions by type per
// jurisdiction and category, automated vs human, time to action, escalation rates against their
// targets, appeals overturned, deadlines met; entries outside the range do not count.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildStatement, transparencyReport, type AuditLike, type Restriction } from '../../policies/index.ts';
import type { Evidence, StatementOfReasons } from '../../policies/types.ts';
import { shippedPolicy } from './helpers.ts';

const policy = shippedPolicy();
const evidence = (from: number): Evidence => ({
  sampleSeqs: [1, 2],
  timeRange: { from, to: from + 500 },
  scores: [],
  matches: [],
  text: [],
  textContext: [],
  thumbnailRefs: [],
});
const restriction = (action: Restriction['action'], jurisdictions: string[], category: string): Restriction => ({
  action,
  scope: action === 'kill_stream' ? 'stream' : 'jurisdictions',
  jurisdictions,
  categories: [{ category, score: 0.9, clause: 'c', ground: 'terms_of_service' }],
});
const statement = (
  action: Restriction['action'],
  jurisdictions: string[],
  category: string,
  issuedAt: number,
  factsFrom: number,
  automated = true,
): StatementOfReasons =>
  buildStatement({
    streamId: 's',
    restriction: restriction(action, jurisdictions, category),
    policy,
    evidence: evidence(factsFrom),
    issuedAt,
    automated: { detection: true, decision: automated },
  });

let seq = 0;
const entry = (at: number, body: Record<string, unknown>): AuditLike => ({ seq: ++seq, at, body });

test('restrictions, automated vs human, time to action, appeals overturned, deadlines and escalation rates, from the audit entries in range', () => {
  const blank = statement('blank_video', ['SA'], 'profanity', 10_100, 10_000);
  const blank2 = statement('blank_video', ['SA'], 'profanity', 20_300, 20_000);
  const kill = statement('kill_stream', ['global'], 'known_bad_match', 30_050, 30_000);
  const human = statement('mute_audio', ['DE'], 'copyright_audio', 45_000, 40_000, false);
  const old = statement('block', ['SE'], 'sexual_explicit', 500, 400);
  const entries: AuditLike[] = [
    entry(500, { type: 'statement', at: 500, statement: old }),
    entry(10_100, { type: 'statement', at: 10_100, statement: blank }),
    entry(20_300, { type: 'statement', at: 20_300, statement: blank2 }),
    entry(30_050, { type: 'statement', at: 30_050, statement: kill }),
    entry(40_000, {
      type: 'review.enqueued',
      itemId: 'rev_1',
      at: 40_000,
      jurisdictions: ['DE'],
      categories: [{ category: 'copyright_audio', score: 0.6, bucket: 'amber' }],
      dueAt: 50_000,
    }),
    entry(42_000, { type: 'review.vote', itemId: 'rev_1', by: 'a', outcome: 'uphold' }),
    entry(45_000, {
      type: 'review.decision',
      at: 45_000,
      decision: { itemId: 'rev_1', type: 'amber', outcome: 'uphold', at: 45_000 },
      statement: human,
    }),
    entry(50_000, { type: 'appeal.filed', itemId: 'apl_1', statementId: kill.id, at: 50_000, dueAt: 51_000 }),
    entry(52_000, { type: 'review.vote', itemId: 'apl_1', by: 'a', outcome: 'uphold' }),
    entry(52_500, { type: 'review.vote', itemId: 'apl_1', by: 'b', outcome: 'overturn' }),
    entry(52_500, { type: 'review.escalated', itemId: 'apl_1' }),
    entry(53_000, {
      type: 'review.decision',
      at: 53_000,
      decision: { itemId: 'apl_1', type: 'appeal', outcome: 'overturn', at: 53_000 },
      statement: statement('allow', ['global'], 'known_bad_match', 53_000, 30_000, false),
    }),
    entry(99_000, {
      type: 'statement',
      at: 99_000,
      statement: statement('mute_audio', ['DE'], 'copyright_audio', 99_000, 98_000),
    }),
  ];
  const r = transparencyReport(entries, 1_000, 90_000);
  assert.equal(
    r.source.statements,
    4,
    'in range, restrictive, each once (the appeal outcome "allow" is no restriction)',
  );
  assert.equal(r.source.auditEntries, 11);
  const sa = r.jurisdictions.SA?.profanity;
  assert.equal(sa?.restrictions.blank_video, 2);
  assert.equal(sa?.automated, 2);
  assert.deepEqual(sa?.timeToActionMs.automated, { n: 2, median: 100, p95: 300 });
  const de = r.jurisdictions.DE?.copyright_audio;
  assert.equal(de?.restrictions.mute_audio, 1);
  assert.equal(de?.human, 1);
  assert.equal(de?.reviewItems, 1);
  assert.deepEqual(de?.timeToActionMs.human, { n: 1, median: 5_000, p95: 5_000 });
  assert.deepEqual(de?.deadlines, { due: 1, met: 1, metShare: 1 });
  const g = r.jurisdictions.global?.known_bad_match;
  assert.equal(g?.restrictions.kill_stream, 1);
  assert.deepEqual(g?.appeals, { filed: 1, decided: 1, overturned: 1, overturnedShare: 1 });
  assert.deepEqual(g?.deadlines, { due: 1, met: 0, metShare: 0 }, 'the appeal was decided after its due time');
  assert.equal(r.jurisdictions.SE, undefined, 'before the range');
  assert.equal(
    r.totals.restrictions.blank_video + r.totals.restrictions.kill_stream + r.totals.restrictions.mute_audio,
    4,
  );
  assert.equal(r.totals.automated, 3);
  assert.equal(r.totals.human, 1);
  // 1 review item of 1 + 3 automated restrictions; 1 of 2 voted items escalated
  assert.deepEqual(r.escalation.toHumanReview, { rate: 0.25, target: 0.03, met: false });
  assert.deepEqual(r.escalation.reviewerDisagreement, { rate: 0.5, target: 0.01, met: false });
});

test('an empty range: zero counts, no rates, no percentiles', () => {
  const r = transparencyReport([], 0, 1);
  assert.equal(r.source.auditEntries, 0);
  assert.equal(r.totals.automated, 0);
  assert.deepEqual(r.totals.timeToActionMs.automated, { n: 0, median: null, p95: null });
  assert.deepEqual(r.escalation.toHumanReview, { rate: null, target: 0.03, met: null });
  assert.deepEqual(r.jurisdictions, {});
});
