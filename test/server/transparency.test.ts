// GET /v1/reports/transparency (issue 17 item 4) on a server driven through its real paths: an
// automated kill, automated blanks, an amber item upheld by a reviewer, an appeal of the kill granted.
// The report's counts equal the audit trail's statements (it is built from them only), the range
// filters, and the appeal shows as overturned.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildServer } from '../../server/app.ts';
import { loadConfig } from '../../server/config.ts';
import type { StatementOfReasons } from '../../policies/types.ts';
import type { TransparencyReport } from '../../policies/index.ts';
import { FakeSfu } from '../sfu/fake.ts';
import { badMatch, signal } from '../policies/helpers.ts';

test('transparency report: restrictions by type, automated vs human, time to action, appeals overturned; agrees with the audit trail', async () => {
  const config = loadConfig({
    env: {},
    overrides: { port: 0, host: '127.0.0.1', logLevel: 'silent', authSecret: 't'.repeat(40), moderation: false },
  });
  const sfu = new FakeSfu();
  await using server = await buildServer(config, { sfu });
  const admin = await server.auth.sign({ role: 'admin', sub: 'ops' });
  const reviewer = await server.auth.sign({ role: 'reviewer', sub: 'rev-1' });
  const get = (url: string, token = reviewer) =>
    server.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });
  const post = (url: string, token: string, payload: object) =>
    server.app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${token}` }, payload });
  const started = Date.now();

  // automated: a bank match kills stream tr-kill; sustained 0.75 blanks tr-blank where the policy blanks at 0.70
  sfu.add('tr-kill');
  sfu.add('tr-blank');
  const now = Date.now();
  server.enforcer.onSignal(
    signal(1, {}, { streamId: 'tr-kill', matches: [badMatch], arrivedAt: now - 40, completedAt: now - 5 }),
  );
  for (let i = 1; i <= 6; i++)
    server.enforcer.onSignal(
      signal(
        i,
        { sexual_explicit: 0.75 },
        { streamId: 'tr-blank', arrivedAt: Date.now() - 30, completedAt: Date.now() },
      ),
    );
  // amber: 0.5 puts another stream in review; a reviewer upholds it
  sfu.add('tr-amber');
  for (let i = 1; i <= 6; i++)
    server.enforcer.onSignal(
      signal(i, { sexual_explicit: 0.5 }, { streamId: 'tr-amber', arrivedAt: Date.now(), completedAt: Date.now() }),
    );
  await server.store.flush();
  const amber = (await server.store.listReview({ streamId: 'tr-amber' }))[0];
  assert.ok(amber, 'an amber review item');
  assert.equal((await post('/v1/review/claim', reviewer, { itemId: amber.id })).statusCode, 200);
  assert.equal((await post(`/v1/review/${amber.id}/resolve`, reviewer, { outcome: 'uphold' })).statusCode, 200);
  // the streamer appeals the kill; a reviewer grants it
  const killStatement = (await server.store.listStatements({ streamId: 'tr-kill' })).find(
    (s) => s.restriction.action === 'kill_stream',
  );
  assert.ok(killStatement);
  const publisher = await server.auth.sign({ role: 'publisher', sub: 'streamer', streamId: 'tr-kill' });
  const appeal = await post(`/v1/appeals/${killStatement.id}`, publisher, { grounds: 'not that picture' });
  assert.equal(appeal.statusCode, 201, appeal.body);
  const appealId = (appeal.json() as { id: string }).id;
  assert.equal((await post('/v1/review/claim', reviewer, { itemId: appealId })).statusCode, 200);
  assert.equal((await post(`/v1/review/${appealId}/resolve`, reviewer, { outcome: 'overturn' })).statusCode, 200);
  await server.store.flush();

  assert.equal((await server.app.inject({ method: 'GET', url: '/v1/reports/transparency' })).statusCode, 401);
  const res = await get('/v1/reports/transparency');
  assert.equal(res.statusCode, 200, res.body);
  const r = res.json() as TransparencyReport;
  const kill = r.jurisdictions.global?.known_bad_match;
  assert.equal(kill?.restrictions.kill_stream, 1);
  assert.equal(kill?.automated, 1);
  assert.ok((kill?.timeToActionMs.automated.median ?? -1) >= 40, 'first sample -> statement, on the server clock');
  assert.deepEqual(kill?.appeals, { filed: 1, decided: 1, overturned: 1, overturnedShare: 1 });
  assert.ok(
    (r.jurisdictions.default?.sexual_explicit?.restrictions.blank_video ?? 0) >= 1,
    JSON.stringify(Object.keys(r.jurisdictions)),
  );
  assert.ok(r.totals.human >= 1, 'the upheld amber item is a human restriction');
  assert.ok(r.totals.reviewItems >= 1);
  assert.equal(r.totals.timeToActionMs.human.n, 2, 'the amber item and the appeal');
  assert.equal(r.escalation.toHumanReview.target, 0.03);
  assert.equal(r.escalation.reviewerDisagreement.target, 0.01);

  // built from the audit trail only: its restrictive statements, counted by action, are the report's totals
  const audit = (await get('/v1/audit?limit=1000', admin).then((x) => x.json())) as {
    entries: { at: number; body: { statement?: StatementOfReasons } }[];
  };
  const seen = new Map<string, StatementOfReasons>();
  for (const e of audit.entries)
    if (e.body.statement && e.body.statement.restriction.action !== 'allow')
      seen.set(e.body.statement.id, e.body.statement);
  const byAction: Record<string, number> = {};
  for (const s of seen.values()) byAction[s.restriction.action] = (byAction[s.restriction.action] ?? 0) + 1;
  const totals = Object.fromEntries(Object.entries(r.totals.restrictions).filter(([, n]) => n > 0));
  assert.deepEqual(totals, byAction);
  assert.equal(r.source.statements, seen.size);

  // the range filters; a reversed range is refused
  const before = (await get(`/v1/reports/transparency?from=0&to=${started - 1}`).then((x) =>
    x.json(),
  )) as TransparencyReport;
  assert.equal(before.source.statements, 0);
  assert.equal((await get(`/v1/reports/transparency?from=${started}&to=${started}`)).statusCode, 400);
});
