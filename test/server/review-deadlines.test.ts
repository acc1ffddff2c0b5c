// Review deadlines through the server (issue 17 item 3): amber items and appeals get their due time
// from the policy, an overdue item rises above the rest of the queue, is counted in /metrics, and is
// announced once to ops (warning event) and in the audit trail; the transparency report counts the
// deadlines met.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildServer } from '../../server/app.ts';
import { loadConfig } from '../../server/config.ts';
import { withDueAt, type TransparencyReport } from '../../policies/index.ts';
import type { EventMessage } from '../../server/events.ts';
import type { StoredReviewItem } from '../../server/store/types.ts';
import { FakeSfu } from '../sfu/fake.ts';
import { signal } from '../policies/helpers.ts';
import { reviewItem } from './helpers.ts';

test('due times from the policy; an overdue item rises, is counted in /metrics and announced once; deadlines met in the transparency report', async () => {
  const config = loadConfig({
    env: {},
    overrides: { port: 0, host: '127.0.0.1', logLevel: 'silent', authSecret: 'd'.repeat(40), moderation: false },
  });
  const sfu = new FakeSfu();
  await using server = await buildServer(config, { sfu });
  const reviewer = await server.auth.sign({ role: 'reviewer', sub: 'rev-d' });
  const req = (method: 'GET' | 'POST', url: string, payload?: object) =>
    server.app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${reviewer}` },
      ...(payload ? { payload } : {}),
    });
  const warnings: string[] = [];
  server.events.observe((m: EventMessage) => {
    if (m.type === 'warning') warnings.push(m.message);
  });

  // an amber item from the enforcer: due an hour (the shipped policy's default) after it was created
  sfu.add('dl-amber');
  for (let i = 1; i <= 6; i++)
    server.enforcer.onSignal(
      signal(i, { sexual_explicit: 0.5 }, { streamId: 'dl-amber', arrivedAt: Date.now(), completedAt: Date.now() }),
    );
  await server.store.flush();
  const fresh = (await server.store.listReview({ streamId: 'dl-amber' }))[0];
  assert.ok(
    fresh?.dueAt !== undefined && Math.abs(fresh.dueAt - fresh.createdAt - 3_600_000) < 1,
    `due 1 h after creation: ${JSON.stringify(fresh)}`,
  );
  // an item created two hours ago is overdue now; a fresh appeal (priority 10) waits behind it
  const late = await server.control.enqueueReview(
    withDueAt(
      reviewItem({ streamId: 'dl-late', jurisdictions: ['DE'], createdAt: Date.now() - 2 * 3_600_000 }),
      server.policies.current,
    ),
  );
  const appeal = await server.control.enqueueReview(
    withDueAt(
      reviewItem({ streamId: 'dl-appeal', type: 'appeal', priority: 10, jurisdictions: ['DE'] }),
      server.policies.current,
    ),
  );
  assert.equal(appeal.dueAt, appeal.createdAt + 4 * 3_600_000, 'appeals within 4 hours');
  const queue = (await req('GET', '/v1/review')).json() as {
    items: (StoredReviewItem & { overdue: boolean })[];
    queues: { jurisdiction: string; overdue: number }[];
  };
  assert.equal(queue.items[0]?.id, late.id, 'the overdue item comes first');
  assert.equal(queue.items[0]?.overdue, true);
  assert.equal(queue.items[1]?.id, appeal.id);
  assert.equal(queue.queues.find((q) => q.jurisdiction === 'DE')?.overdue, 1);
  const claimed = await req('POST', '/v1/review/claim', {});
  assert.equal((claimed.json() as StoredReviewItem).id, late.id, 'and is handed out first');
  const metrics = await server.app.inject({ method: 'GET', url: '/metrics' });
  assert.match(metrics.body, /msfu_review_overdue\{jurisdiction="DE"\} 1/);

  // announced once, to ops and in the audit trail
  assert.equal(await server.reviewDeadlines.check(), 1);
  assert.equal(await server.reviewDeadlines.check(), 0, 'not again');
  assert.equal(warnings.filter((w) => w.includes(late.id) && /overdue/.test(w)).length, 1);
  await server.store.flush();
  const overdueAudit = (await server.store.readAudit({ limit: 10_000 })).filter(
    (e) => e.body.type === 'review.overdue',
  );
  assert.deepEqual(
    overdueAudit.map((e) => e.body.itemId),
    [late.id],
  );
  // an hour and a minute on, the enforcer's amber item is overdue too (the appeal is due in 4 h)
  assert.equal(await server.reviewDeadlines.check(Date.now() + 3_660_000), 1);

  // decided in time: the transparency report counts the deadline met
  assert.equal((await req('POST', `/v1/review/${late.id}/resolve`, { outcome: 'overturn' })).statusCode, 200);
  assert.equal((await req('POST', '/v1/review/claim', { itemId: fresh.id })).statusCode, 200);
  assert.equal((await req('POST', `/v1/review/${fresh.id}/resolve`, { outcome: 'uphold' })).statusCode, 200);
  await server.store.flush();
  const report = (await req('GET', '/v1/reports/transparency')).json() as TransparencyReport;
  assert.deepEqual(report.totals.deadlines, { due: 1, met: 1, metShare: 1 });
});
