// Per-jurisdiction review queues and reviewer agreement through the API (issue 17 item 2), on both
// stores (memory, and a real redis-server): a reviewer token carries the jurisdictions it may judge;
// a German case is neither listed, readable nor claimable without DE; each queue has its depth and
// age in the listing and in /metrics; an item of a category that asks for 3 reviewers settles only
// when 3 agree, a disagreement escalates it to a senior (admin), every vote is audited; the export
// gives agreed labels with their sample references and never unagreed ones.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildServer, type Server } from '../../server/app.ts';
import { loadConfig } from '../../server/config.ts';
import { readPolicyDir } from '../../server/policy-store.ts';
import type { StoredReviewItem } from '../../server/store/types.ts';
import type { AgreedLabel } from '../../policies/index.ts';
import { FakeSfu } from '../sfu/fake.ts';
import { reviewItem, startRedis, type RedisProcess } from './helpers.ts';

function suite(name: string, make: () => Promise<Server>, closeAll: () => Promise<void>): void {
  describe(`review queues and agreement [${name}]`, () => {
    let server: Server;
    const tokens: Record<string, string> = {};
    before(async () => {
      server = await make();
      const a = server.auth;
      tokens.admin = await a.sign({ role: 'admin', sub: 'lead' });
      tokens.de1 = await a.sign({ role: 'reviewer', sub: 'de-1', jurisdictions: ['DE'], languages: ['de'] });
      tokens.de2 = await a.sign({ role: 'reviewer', sub: 'de-2', jurisdictions: ['DE', 'AT'] });
      tokens.de3 = await a.sign({ role: 'reviewer', sub: 'de-3', jurisdictions: ['DE'] });
      tokens.se = await a.sign({ role: 'reviewer', sub: 'se-1', jurisdictions: ['SE'] });
      tokens.any = await a.sign({ role: 'reviewer', sub: 'any-1' });
      // sexual_explicit review items need 3 agreeing reviewers (labels exported for calibration)
      const files = (await readPolicyDir('policies')).map((f) =>
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
      const r = await req('POST', '/v1/policies/activate', tokens.admin, { files, force: true });
      assert.equal(r.statusCode, 200, r.body);
      assert.equal(server.policies.current.taxonomy.sexual_explicit?.reviewers, 3);
    });
    after(closeAll);
    const req = (method: 'GET' | 'POST', url: string, token: string, payload?: unknown) =>
      server.app.inject({
        method,
        url,
        headers: { authorization: `Bearer ${token}` },
        ...(payload === undefined ? {} : { payload: payload as object }),
      });
    const claim = async (token: string, itemId?: string) =>
      req('POST', '/v1/review/claim', token, itemId ? { itemId } : {});
    const vote = async (token: string, itemId: string, outcome: 'uphold' | 'overturn', note?: string) => {
      const c = await claim(token, itemId);
      assert.equal(c.statusCode, 200, c.body);
      return req('POST', `/v1/review/${itemId}/resolve`, token, { outcome, ...(note ? { note } : {}) });
    };

    test("a reviewer sees, reads and claims only the jurisdictions on its token; each queue's depth and age", async () => {
      const de = await server.control.enqueueReview(
        reviewItem({ streamId: 'q-de', jurisdictions: ['DE'], createdAt: Date.now() - 60_000 }),
      );
      const se = await server.control.enqueueReview(reviewItem({ streamId: 'q-se', jurisdictions: ['SE'] }));
      const both = await server.control.enqueueReview(reviewItem({ streamId: 'q-both', jurisdictions: ['DE', 'SE'] }));
      const ids = (token: string) =>
        req('GET', '/v1/review?limit=1000', token).then((r) => (r.json().items as StoredReviewItem[]).map((i) => i.id));
      const seen = await ids(tokens.se);
      assert.ok(
        seen.includes(se.id) && !seen.includes(de.id) && !seen.includes(both.id),
        'SE reviewer: SE only (the DE+SE case needs DE too)',
      );
      const all = await ids(tokens.any);
      assert.ok(
        [de.id, se.id, both.id].every((id) => all.includes(id)),
        'an unscoped reviewer sees every queue',
      );
      assert.equal((await req('GET', `/v1/review/${de.id}`, tokens.se)).statusCode, 403);
      assert.equal((await claim(tokens.se, de.id)).statusCode, 403);
      const listing = (await req('GET', '/v1/review', tokens.admin)).json() as {
        queues: { jurisdiction: string; depth: number; oldestAgeS: number }[];
      };
      const deQueue = listing.queues.find((q) => q.jurisdiction === 'DE');
      assert.ok(deQueue && deQueue.depth >= 2 && deQueue.oldestAgeS >= 59, JSON.stringify(listing.queues));
      const deOnly = (await req('GET', '/v1/review?jurisdiction=SE', tokens.admin)).json() as {
        items: StoredReviewItem[];
      };
      assert.ok(deOnly.items.every((i) => i.jurisdictions.includes('SE')));
      const metrics = await server.app.inject({ method: 'GET', url: '/metrics' });
      assert.match(metrics.body, /msfu_review_queue_depth_by_jurisdiction\{jurisdiction="DE"\} [2-9]/);
      assert.match(metrics.body, /msfu_review_queue_oldest_age_seconds\{jurisdiction="DE"\} (59|[6-9]\d|\d{3,})/);
      // the SE reviewer's next claim is the SE item, never a DE one
      const next = await claim(tokens.se);
      assert.equal(next.statusCode, 200, next.body);
      assert.ok((next.json() as StoredReviewItem).jurisdictions.every((j) => j === 'SE'));
      const resolved = await req('POST', `/v1/review/${(next.json() as StoredReviewItem).id}/resolve`, tokens.se, {
        outcome: 'overturn',
      });
      assert.equal(resolved.statusCode, 200, resolved.body);
      assert.equal(resolved.json().tally.state, 'agreed', 'a category without a reviewers setting needs one');
    });

    test('3 reviewers must agree: each vote recorded and audited, the item settles on the third, its label exported', async () => {
      const item = await server.control.enqueueReview(
        reviewItem({
          streamId: 'agree',
          jurisdictions: ['DE'],
          categories: [{ category: 'sexual_explicit', score: 0.55, bucket: 'amber' }],
          evidence: {
            sampleSeqs: [11, 12, 13],
            timeRange: { from: 5, to: 9 },
            scores: [],
            matches: [],
            text: [],
            textContext: [],
            thumbnailRefs: [],
          },
        }),
      );
      const first = await vote(tokens.de1, item.id, 'uphold', 'explicit');
      assert.equal(first.statusCode, 200, first.body);
      assert.deepEqual(first.json().tally, { state: 'open', votes: 1, required: 3 });
      assert.equal(first.json().item.status, 'pending', 'released for the next reviewer');
      assert.equal((await claim(tokens.de1, item.id)).statusCode, 409, 'one vote per reviewer');
      assert.equal((await vote(tokens.de2, item.id, 'uphold')).json().tally.state, 'open');
      const export1 = (await req('GET', '/v1/review/export', tokens.admin)).json() as { labels: AgreedLabel[] };
      assert.ok(!export1.labels.some((l) => l.itemId === item.id), 'not exported before agreement');
      const third = await vote(tokens.de3, item.id, 'uphold');
      assert.equal(third.statusCode, 200, third.body);
      assert.equal(third.json().tally.state, 'agreed');
      assert.equal(third.json().item.status, 'resolved');
      assert.equal(third.json().item.votes.length, 3);
      assert.match(third.json().item.resolution.note, /agreed by de-1, de-2, de-3/);
      assert.equal(third.json().decision.effect.kind, 'restrict');
      const exported = (await req('GET', '/v1/review/export', tokens.admin)).json() as { labels: AgreedLabel[] };
      const label = exported.labels.find((l) => l.itemId === item.id);
      assert.deepEqual(
        { outcome: label?.outcome, reviewers: label?.reviewers, sampleSeqs: label?.sampleSeqs },
        { outcome: 'uphold', reviewers: 3, sampleSeqs: [11, 12, 13] },
      );
      assert.equal((await req('GET', '/v1/review/export', tokens.de1)).statusCode, 403, 'export is an admin route');
      await server.store.flush();
      const audit = await server.store.readAudit({ limit: 10_000 });
      const votes = audit.filter((e) => e.body.type === 'review.vote' && e.body.itemId === item.id);
      assert.deepEqual(
        votes.map((e) => e.body.by),
        ['de-1', 'de-2', 'de-3'],
      );
      assert.deepEqual(
        votes.map((e) => e.body.tally),
        ['open', 'open', 'agreed'],
      );
    });

    test('a disagreement escalates (priority above appeals) to a senior; only the senior settles it; escalated labels are not exported', async () => {
      const item = await server.control.enqueueReview(
        reviewItem({
          streamId: 'disagree',
          jurisdictions: ['DE'],
          categories: [{ category: 'sexual_explicit', score: 0.5, bucket: 'amber' }],
        }),
      );
      assert.equal((await vote(tokens.de1, item.id, 'uphold')).json().tally.state, 'open');
      const split = await vote(tokens.de2, item.id, 'overturn');
      assert.equal(split.json().tally.state, 'escalated');
      assert.equal(split.json().item.escalated, true);
      assert.equal(split.json().item.priority, 20);
      const queue = (await req('GET', '/v1/review', tokens.admin)).json() as { items: StoredReviewItem[] };
      assert.equal(queue.items[0]?.id, item.id, 'escalated items come first');
      assert.equal((await claim(tokens.de3, item.id)).statusCode, 409, 'an ordinary reviewer may not vote on it');
      const next = await claim(tokens.de3);
      assert.ok(
        next.statusCode === 204 || (next.json() as StoredReviewItem).id !== item.id,
        'nor is it handed out as the next item',
      );
      if (next.statusCode === 200)
        await req('POST', `/v1/review/${(next.json() as StoredReviewItem).id}/resolve`, tokens.de3, {
          outcome: 'overturn',
        });
      const senior = await vote(tokens.admin, item.id, 'overturn', 'not explicit');
      assert.equal(senior.statusCode, 200, senior.body);
      assert.equal(senior.json().tally.state, 'agreed');
      assert.equal(senior.json().item.status, 'resolved');
      const exported = (await req('GET', '/v1/review/export?minReviewers=1', tokens.admin)).json() as {
        labels: AgreedLabel[];
      };
      assert.ok(!exported.labels.some((l) => l.itemId === item.id), 'reviewers disagreed: no calibration label');
      await server.store.flush();
      const audit = await server.store.readAudit({ limit: 10_000 });
      assert.ok(audit.some((e) => e.body.type === 'review.escalated' && e.body.itemId === item.id));
    });
  });
}

const config = (extra: Record<string, unknown> = {}) =>
  loadConfig({
    env: {},
    overrides: {
      port: 0,
      host: '127.0.0.1',
      logLevel: 'silent',
      authSecret: 'q'.repeat(40),
      moderation: false,
      ...extra,
    },
  });

{
  let server: Server | undefined;
  suite(
    'memory',
    async () => (server = await buildServer(config(), { sfu: new FakeSfu() })),
    async () => void (await server?.close()),
  );
}

{
  let server: Server | undefined;
  let redis: RedisProcess | undefined;
  const scratch = mkdtempSync(join(tmpdir(), 'msfu-review-'));
  suite(
    'redis',
    async () => {
      redis = await startRedis();
      return (server = await buildServer(config({ redisUrl: redis.url, outboxDir: join(scratch, 'outbox') }), {
        sfu: new FakeSfu(),
      }));
    },
    async () => {
      await server?.close();
      await redis?.stop();
      rmSync(scratch, { recursive: true, force: true });
    },
  );
}
