// Retention of both stores (docs/RETENTION.md): every collection bounded, the stated drop order kept,
// what backs open work (open items, appeals, statements they or a block cite) never dropped, every
// drop counted. The memory store runs on a clock the test moves; Redis is a real redis-server.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { MemoryStore } from '../../server/store/memory.ts';
import { RedisStore } from '../../server/store/redis.ts';
import type { Store, StoreRetention, StoreRetentionStats } from '../../server/store/types.ts';
import type { StatementOfReasons } from '../../policies/types.ts';
import { verifyAuditChain } from '../../policies/audit.ts';
import { SrvError } from '../../server/errors.ts';
import { ServerMetrics } from '../../server/metrics.ts';
import { reviewItem, startRedis, type RedisProcess } from './helpers.ts';

function statement(id: string, streamId: string): StatementOfReasons {
  return {
    id,
    streamId,
    issuedAt: Date.now(),
    restriction: { action: 'kill_stream', scope: 'stream', jurisdictions: [], duration: 'until appeal' },
    facts: {
      categories: [{ category: 'sexual_explicit', score: 0.97 }],
      matches: [],
      text: [],
      sampleSeqs: [1],
      timeRange: { from: 1, to: 2 },
    },
    basis: { kind: 'own_initiative' },
    automated: { detection: true, decision: true },
    ground: { type: 'terms_of_service', clause: 'ToS 4.2', policyVersion: 'v1', explanation: 'test' },
    redress: { appealUrl: 'http://127.0.0.1/v1/appeals/' + id, options: ['appeal'] },
  };
}

const THUMB = 'data:image/jpeg;base64,' + 'A'.repeat(1000);
const dropped = (s: StoreRetentionStats, collection: string, reason: string): number =>
  s.dropped.find((d) => d.collection === collection && d.reason === reason)?.count ?? 0;

/** Claims and resolves `id` as `who`. */
async function resolve(store: Store, id: string, who = 'rev'): Promise<void> {
  await store.claimReview(who, 60_000, id);
  await store.resolveReview(id, who, { outcome: 'uphold', reviewer: who, at: Date.now() });
}

describe('MemoryStore retention', () => {
  let t = 1_000_000;
  const clock = (): number => t;

  test('audit: bounded by count, oldest first, the kept tail still chains and appends continue it', async () => {
    const store = new MemoryStore({ retention: { maxAudit: 100 }, pruneIntervalMs: 0, now: clock });
    for (let i = 0; i < 250; i++) await store.appendAudit({ i });
    const s = await store.retentionStats();
    assert.ok(s.entries.audit! <= 100 && s.entries.audit! >= 90, `held ${s.entries.audit}`);
    assert.equal(dropped(s, 'audit', 'count'), 250 - s.entries.audit!);
    const all = await store.readAudit({ limit: 1000 });
    assert.equal(all[0].seq, s.auditFirstSeq);
    assert.equal(all.at(-1)?.seq, 250);
    assert.deepEqual(verifyAuditChain(all.slice(1), all[0]), { ok: true });
    const next = await store.appendAudit({ i: 250 });
    assert.equal(next.seq, 251);
    assert.equal(next.prevHash, all.at(-1)?.hash);
    assert.deepEqual(
      (await store.readAudit({ afterSeq: 249 })).map((e) => e.seq),
      [250, 251],
    );
    await store.close();
  });

  test('thumbnails: resolved items lose theirs first, then the oldest open amber items; an appeal keeps its', async () => {
    const store = new MemoryStore({
      retention: { maxThumbnailBytes: 3 * THUMB.length },
      pruneIntervalMs: 0,
      now: clock,
    });
    const appeal = await store.enqueueReview(
      reviewItem({ streamId: 'th', type: 'appeal', priority: 10, createdAt: 1 }),
      { thumbnail: THUMB },
    );
    const a = await store.enqueueReview(reviewItem({ streamId: 'th', createdAt: 2 }), { thumbnail: THUMB });
    const b = await store.enqueueReview(reviewItem({ streamId: 'th', createdAt: 3 }), { thumbnail: THUMB });
    await resolve(store, b.id);
    const c = await store.enqueueReview(reviewItem({ streamId: 'th', createdAt: 4 }), { thumbnail: THUMB });
    assert.equal((await store.getReview(b.id))?.thumbnail, undefined, 'the resolved item lost its thumbnail first');
    assert.equal((await store.getReview(a.id))?.thumbnail, THUMB, 'open items kept theirs');
    const d = await store.enqueueReview(reviewItem({ streamId: 'th', createdAt: 5 }), { thumbnail: THUMB });
    assert.equal((await store.getReview(a.id))?.thumbnail, undefined, 'then the oldest open amber item');
    for (const id of [appeal.id, c.id, d.id]) assert.equal((await store.getReview(id))?.thumbnail, THUMB, id);
    assert.ok((await store.getReview(a.id))?.evidence, 'the item itself stays');
    const s = await store.retentionStats();
    assert.equal(dropped(s, 'thumbnails', 'bytes'), 2);
    assert.equal(s.thumbnailBytes, 3 * THUMB.length);
    assert.equal(s.entries.thumbnails, 3);
    await store.close();
  });

  test('age: a resolved thumbnail goes after its retention, the resolved item after the retention; open items never', async () => {
    const store = new MemoryStore({
      retention: { thumbnailRetentionMs: 1000, retentionMs: 10_000 },
      pruneIntervalMs: 0,
      now: clock,
    });
    const open = await store.enqueueReview(reviewItem({ streamId: 'age' }), { thumbnail: THUMB });
    const done = await store.enqueueReview(reviewItem({ streamId: 'age' }), { thumbnail: THUMB });
    await resolve(store, done.id);
    t += 1500;
    store.prune();
    assert.equal((await store.getReview(done.id))?.thumbnail, undefined);
    assert.equal((await store.getReview(done.id))?.status, 'resolved', 'the item outlives its thumbnail');
    t += 10_000;
    store.prune();
    assert.equal(await store.getReview(done.id), undefined, 'resolved item past the retention is gone');
    assert.equal(
      (await store.getReview(open.id))?.thumbnail,
      THUMB,
      'an open item is work: never dropped, thumbnail kept',
    );
    const s = await store.retentionStats();
    assert.equal(dropped(s, 'thumbnails', 'age'), 1);
    assert.equal(dropped(s, 'review_resolved', 'age'), 1);
    assert.equal(s.entries.review_open, 1);
    await store.close();
  });

  test('resolved items bounded by count, earliest resolved first', async () => {
    const store = new MemoryStore({ retention: { maxResolvedReview: 2 }, pruneIntervalMs: 0, now: clock });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await store.enqueueReview(reviewItem({ streamId: 'cnt' }))).id);
    // resolution order differs from creation order: the first resolved goes first
    for (const id of [ids[2], ids[0], ids[1]]) await resolve(store, id);
    assert.equal(await store.getReview(ids[2]), undefined);
    assert.ok(await store.getReview(ids[0]));
    assert.ok(await store.getReview(ids[1]));
    assert.equal(dropped(await store.retentionStats(), 'review_resolved', 'count'), 1);
    await store.close();
  });

  test('open amber items are refused (coded, counted) at their bound; appeals are always taken', async () => {
    const store = new MemoryStore({ retention: { maxOpenReview: 2 }, pruneIntervalMs: 0, now: clock });
    await store.enqueueReview(reviewItem({ streamId: 'full' }));
    const second = await store.enqueueReview(reviewItem({ streamId: 'full' }));
    await assert.rejects(
      store.enqueueReview(reviewItem({ streamId: 'full' })),
      (e: SrvError) => e.code === 'SRV_ERR_UNAVAILABLE' && e.statusCode === 503 && /review queue full/.test(e.message),
    );
    assert.equal(
      (await store.enqueueReview(reviewItem({ streamId: 'full', type: 'appeal', priority: 10 }))).status,
      'pending',
    );
    assert.equal(
      (await store.enqueueReview(reviewItem({ id: second.id, streamId: 'full' }))).id,
      second.id,
      'a repeat of a held item is not refused',
    );
    await resolve(store, second.id);
    await store.enqueueReview(reviewItem({ streamId: 'full' }));
    const s = await store.retentionStats();
    assert.equal(dropped(s, 'review_open', 'queue_full'), 1);
    assert.equal(s.entries.review_open, 3);
    await store.close();
  });

  test('statements: oldest first by count and age, never one an open appeal or a block cites until it is resolved or lifted', async () => {
    const store = new MemoryStore({
      retention: { maxRecords: 3, retentionMs: 10_000 },
      pruneIntervalMs: 0,
      now: clock,
    });
    await store.putStatement(statement('sor_appealed', 'st'));
    await store.putStatement(statement('sor_blocked', 'st'));
    const appeal = await store.enqueueReview(
      reviewItem({ streamId: 'st', type: 'appeal', priority: 10, statementId: 'sor_appealed' }),
    );
    await store.setBlock({ streamId: 'st', reason: 'killed', statementId: 'sor_blocked', at: t, by: 'enforcer' });
    for (let i = 0; i < 4; i++) await store.putStatement(statement(`sor_${i}`, 'st'));
    const held = (await store.listStatements({ limit: 100 })).map((s) => s.id).sort();
    assert.deepEqual(held, ['sor_3', 'sor_appealed', 'sor_blocked'].sort());
    assert.equal(dropped(await store.retentionStats(), 'statements', 'count'), 3);
    t += 20_000;
    store.prune();
    assert.deepEqual((await store.listStatements()).map((s) => s.id).sort(), ['sor_appealed', 'sor_blocked']);
    await resolve(store, appeal.id);
    await store.clearBlock('st');
    store.prune();
    assert.deepEqual(await store.listStatements(), [], 'once nothing open cites them they go by their age');
    assert.equal(dropped(await store.retentionStats(), 'statements', 'age'), 3);
    await store.close();
  });

  test('decisions: bounded by count and age; /metrics shows sizes and drops', async () => {
    const store = new MemoryStore({
      retention: { maxRecords: 2, retentionMs: 10_000 },
      pruneIntervalMs: 0,
      now: clock,
    });
    for (let i = 0; i < 3; i++)
      await store.putDecision({
        id: `d${i}`,
        streamId: 'd',
        at: t,
        source: 'automated',
        bucket: 'red',
        action: 'kill_stream',
        jurisdictions: [],
      });
    assert.deepEqual(
      (await store.listDecisions()).map((d) => d.id),
      ['d2', 'd1'],
    );
    t += 20_000;
    store.prune();
    assert.deepEqual(await store.listDecisions(), []);
    const metrics = new ServerMetrics({ defaultMetrics: false });
    metrics.setStoreStats(() => store.retentionStats());
    const { body } = await metrics.render();
    assert.match(body, /msfu_store_dropped\{collection="decisions",reason="count"\} 1/);
    assert.match(body, /msfu_store_dropped\{collection="decisions",reason="age"\} 2/);
    assert.match(body, /msfu_store_entries\{collection="decisions"\} 0/);
    metrics.close();
    await store.close();
  });
});

describe('RedisStore retention', () => {
  let redis: RedisProcess;
  let n = 0;
  const connect = (retention: Partial<StoreRetention>): Promise<RedisStore> =>
    RedisStore.connect({ url: redis.url, prefix: `ret${process.pid}_${++n}:`, retention, pruneIntervalMs: 0 });
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis?.stop();
  });

  test('audit stream trimmed to its bound, counted; the chain continues', async () => {
    const store = await connect({ maxAudit: 10 });
    try {
      for (let i = 0; i < 30; i++) await store.appendAudit({ i });
      await store.prune();
      const s = await store.retentionStats();
      assert.equal(s.entries.audit, 10);
      assert.equal(dropped(s, 'audit', 'count'), 20);
      assert.equal(s.auditFirstSeq, 21);
      await store.appendAudit({ i: 30 });
      const all = await store.readAudit();
      assert.deepEqual(
        all.map((e) => e.seq),
        Array.from({ length: 11 }, (_, i) => 21 + i),
      );
      assert.deepEqual(verifyAuditChain(all.slice(1), all[0]), { ok: true });
    } finally {
      await store.close();
    }
  });

  test('resolved items lose their thumbnail after its retention, then go beyond the count bound; open items stay', async () => {
    const store = await connect({ maxResolvedReview: 1, thumbnailRetentionMs: 1 });
    try {
      const open = await store.enqueueReview(reviewItem({ streamId: 'rr' }), { thumbnail: THUMB });
      const first = await store.enqueueReview(reviewItem({ streamId: 'rr' }), { thumbnail: THUMB });
      const second = await store.enqueueReview(reviewItem({ streamId: 'rr' }), { thumbnail: THUMB });
      await resolve(store, first.id);
      await resolve(store, second.id);
      await sleep(20);
      await store.prune();
      assert.equal(await store.getReview(first.id), undefined, 'earliest resolved is gone');
      const kept = await store.getReview(second.id);
      assert.equal(kept?.status, 'resolved');
      assert.equal(kept?.thumbnail, undefined, 'its thumbnail went first');
      assert.equal((await store.getReview(open.id))?.thumbnail, THUMB);
      const s = await store.retentionStats();
      assert.equal(dropped(s, 'review_resolved', 'count'), 1);
      assert.equal(dropped(s, 'thumbnails', 'age'), 2);
      assert.equal(s.entries.review_open, 1);
      assert.equal(s.entries.review_resolved, 1);
    } finally {
      await store.close();
    }
  });

  test('open amber items refused at the bound; appeals taken; decisions expire after the retention', async () => {
    const store = await connect({ maxOpenReview: 1, retentionMs: 300 });
    try {
      await store.enqueueReview(reviewItem({ streamId: 'ob' }));
      await assert.rejects(
        store.enqueueReview(reviewItem({ streamId: 'ob' })),
        (e: SrvError) => e.code === 'SRV_ERR_UNAVAILABLE',
      );
      assert.equal(
        (await store.enqueueReview(reviewItem({ streamId: 'ob', type: 'appeal', priority: 10 }))).status,
        'pending',
      );
      assert.equal(dropped(await store.retentionStats(), 'review_open', 'queue_full'), 1);
      await store.putDecision({
        id: 'dx',
        streamId: 'ob',
        at: Date.now(),
        source: 'automated',
        bucket: 'red',
        action: 'kill_stream',
        jurisdictions: [],
      });
      await store.putStatement(statement('sor_kept', 'ob'));
      assert.ok(await store.getDecision('dx'));
      let gone = false;
      for (let i = 0; i < 50 && !gone; i++) {
        await sleep(100);
        gone = (await store.getDecision('dx')) === undefined;
      }
      assert.ok(gone, 'decision expired within 5 s of a 300 ms retention');
      assert.ok(await store.getStatement('sor_kept'), 'statements are kept in Redis');
    } finally {
      await store.close();
    }
  });
});
