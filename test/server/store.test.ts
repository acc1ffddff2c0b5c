// One Store suite, run against MemoryStore and RedisStore (real redis-server on a free port).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { MemoryStore } from '../../server/store/memory.ts';
import { RedisStore } from '../../server/store/redis.ts';
import type { ControlMessage, LiveStreamRecord, Store } from '../../server/store/types.ts';
import { verifyAuditChain } from '../../policies/audit.ts';
import { SrvError } from '../../server/errors.ts';
import { reviewItem, startRedis, statement, type RedisProcess } from './helpers.ts';

const live = (streamId: string, nodeId = 'n1'): LiveStreamRecord => ({
  streamId,
  nodeId,
  state: 'live',
  startedAt: Date.now(),
  heartbeatAt: Date.now(),
  viewers: 0,
});

function storeSuite(name: string, make: () => Promise<Store>, makeSecond: () => Promise<Store>): void {
  describe(`Store: ${name}`, () => {
    let store: Store;
    before(async () => {
      store = await make();
    });
    after(async () => {
      await store.close();
    });

    test('registry: put, list, heartbeat merges, entries expire without heartbeats', async () => {
      await store.putStream(live('reg-a'), 60_000);
      await store.putStream(live('reg-b'), 300);
      assert.deepEqual(
        (await store.listStreams())
          .map((s) => s.streamId)
          .filter((id) => id.startsWith('reg-'))
          .sort(),
        ['reg-a', 'reg-b'],
      );
      assert.equal(
        await store.heartbeat('reg-a', 60_000, {
          viewers: 3,
          verdict: { bucket: 'amber', categories: { x: 0.5 }, at: 1 },
        }),
        true,
      );
      const a = await store.getStream('reg-a');
      assert.equal(a?.viewers, 3);
      assert.equal(a?.verdict?.bucket, 'amber');
      await sleep(700);
      assert.equal(await store.getStream('reg-b'), undefined, 'expired entry is gone');
      assert.equal(await store.heartbeat('reg-b', 60_000), false, 'an expired entry is not resurrected');
      assert.ok(!(await store.listStreams()).some((s) => s.streamId === 'reg-b'));
      await store.removeStream('reg-a');
      assert.equal(await store.getStream('reg-a'), undefined);
    });

    test('bank edits: numbered in order from 1, listed after a seq, two stores (nodes) share one sequence', async () => {
      const second = await makeSecond();
      try {
        const before = (await store.listBankEdits(0)).length;
        const a = await store.appendBankEdit({
          kind: 'hashes_added',
          bank: 'kb',
          entries: [{ hash: 'ab'.repeat(32), id: 'x1', category: 'known_bad_match' }],
          by: 'ops',
          origin: 'n1',
          at: 1,
        });
        const b = await second.appendBankEdit({
          kind: 'hash_removed',
          bank: 'kb',
          id: 'x1',
          by: 'ops',
          origin: 'n2',
          at: 2,
        });
        assert.equal(b.seq, a.seq + 1, 'one sequence for the cluster');
        assert.equal(a.seq, before + 1);
        const all = await second.listBankEdits(before);
        assert.deepEqual(
          all.map((e) => [e.seq, e.kind, e.origin]),
          [
            [a.seq, 'hashes_added', 'n1'],
            [b.seq, 'hash_removed', 'n2'],
          ],
        );
        assert.deepEqual(all[0], a, 'an edit reads back as it was stored');
        assert.deepEqual(await store.listBankEdits(a.seq), [b], 'after a seq: only the later edits');
        assert.equal((await store.listBankEdits(before, 1)).length, 1, 'limit');
      } finally {
        if (second !== store) await second.close();
      }
    });

    test('blocks: set, get, clear', async () => {
      await store.setBlock({ streamId: 'blk', reason: 'killed', at: 1, by: 'admin' });
      assert.equal((await store.getBlock('blk'))?.reason, 'killed');
      assert.equal(await store.clearBlock('blk'), true);
      assert.equal(await store.getBlock('blk'), undefined);
      assert.equal(await store.clearBlock('blk'), false);
    });

    test('decisions and statements by id, newest first, filtered by stream', async () => {
      for (let i = 0; i < 3; i++) {
        await store.putDecision({
          id: `d${i}`,
          streamId: i === 1 ? 'other' : 'dec',
          at: i,
          source: 'manual',
          bucket: 'red',
          action: 'kill_stream',
          jurisdictions: [],
        });
      }
      assert.equal((await store.getDecision('d1'))?.streamId, 'other');
      assert.deepEqual(
        (await store.listDecisions({ streamId: 'dec' })).map((d) => d.id),
        ['d2', 'd0'],
      );
      assert.equal((await store.listDecisions({ limit: 1 }))[0].id, 'd2');
      await store.putStatement(statement('sor_1', 'dec'));
      const s = await store.getStatement('sor_1');
      assert.equal(s?.ground.clause, 'ToS 4.2');
      assert.deepEqual(s?.facts.matches, [], 'empty arrays survive the round trip');
      assert.equal((await store.listStatements({ streamId: 'dec' }))[0].id, 'sor_1');
      assert.equal(await store.getDecision('nope'), undefined);
    });

    test('audit log is append-only and hash-chained (policies/audit verifies it)', async () => {
      const before = await store.readAudit();
      const e1 = await store.appendAudit({ type: 'kill', streamId: 'x' });
      const e2 = await store.appendAudit({ type: 'resume', streamId: 'x', nested: { b: 1, a: [1, 2] } });
      assert.equal(e2.seq, e1.seq + 1);
      assert.equal(e2.prevHash, e1.hash);
      const all = await store.readAudit();
      assert.equal(all.length, before.length + 2);
      assert.deepEqual(verifyAuditChain(all), { ok: true });
      const tail = await store.readAudit({ afterSeq: e1.seq });
      assert.deepEqual(
        tail.map((e) => e.seq),
        [e2.seq],
      );
      const tampered = all.map((e) => (e.seq === e1.seq ? { ...e, body: { ...e.body, streamId: 'y' } } : e));
      assert.equal(verifyAuditChain(tampered).ok, false);
    });

    test('audit appends from two connections interleave into one intact chain', async () => {
      const second = await makeSecond();
      try {
        await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? store : second).appendAudit({ i })));
        assert.deepEqual(verifyAuditChain(await store.readAudit({ limit: 10_000 })), { ok: true });
      } finally {
        if (second !== store) await second.close();
      }
    });

    test('review queue: appeals first, claim, claim expiry, resolve needs the live claim', async () => {
      const amber = await store.enqueueReview(reviewItem({ streamId: 'rq' }), {
        thumbnail: 'data:image/png;base64,AAAA',
      });
      assert.equal(amber.status, 'pending');
      assert.equal(amber.thumbnail, 'data:image/png;base64,AAAA');
      const appeal = await store.enqueueReview(reviewItem({ streamId: 'rq', type: 'appeal', priority: 10 }));
      const again = await store.enqueueReview(
        reviewItem({ id: appeal.id, streamId: 'rq', type: 'appeal', priority: 10 }),
      );
      assert.equal(again.id, appeal.id, 'enqueue is idempotent on id');
      const depth = await store.reviewDepth();
      assert.ok(depth >= 2);
      const listed = await store.listReview({ streamId: 'rq' });
      assert.deepEqual(
        listed.map((i) => i.id),
        [appeal.id, amber.id],
      );
      assert.deepEqual(listed[1].evidence.matches, [], 'empty arrays survive');

      const c1 = await store.claimReview('alice', 60_000, appeal.id);
      assert.equal(c1?.status, 'claimed');
      assert.equal(c1?.claim?.reviewer, 'alice');
      await assert.rejects(store.claimReview('bob', 60_000, appeal.id), (e: SrvError) => e.code === 'SRV_ERR_CONFLICT');
      await assert.rejects(
        store.resolveReview(appeal.id, 'bob', { outcome: 'uphold', reviewer: 'bob', at: Date.now() }),
        (e: SrvError) => e.code === 'SRV_ERR_CLAIM_EXPIRED' && e.statusCode === 409,
      );
      // A short claim lapses and the item can be claimed by someone else.
      const c2 = await store.claimReview('carol', 200, amber.id);
      assert.equal(c2?.claim?.reviewer, 'carol');
      await sleep(400);
      assert.equal((await store.getReview(amber.id))?.status, 'pending', 'lapsed claim reads as pending');
      await assert.rejects(
        store.resolveReview(amber.id, 'carol', { outcome: 'uphold', reviewer: 'carol', at: Date.now() }),
        (e: SrvError) => e.code === 'SRV_ERR_CLAIM_EXPIRED',
      );
      const c3 = await store.claimReview('dave', 60_000, amber.id);
      assert.equal(c3?.claim?.reviewer, 'dave');

      const resolved = await store.resolveReview(
        appeal.id,
        'alice',
        { outcome: 'overturn', reviewer: 'alice', at: Date.now(), note: 'ok' },
        { decisionId: 'dec_x', outcomeStatementId: 'sor_y' },
      );
      assert.equal(resolved.status, 'resolved');
      assert.equal(resolved.resolution?.outcome, 'overturn');
      assert.equal(resolved.outcomeStatementId, 'sor_y');
      await assert.rejects(store.claimReview('alice', 1000, appeal.id), (e: SrvError) => e.code === 'SRV_ERR_CONFLICT');
      assert.equal(await store.reviewDepth(), depth - 1);
      assert.ok(!(await store.listReview()).some((i) => i.id === appeal.id));
      assert.ok((await store.listReview({ includeResolved: true, type: 'appeal' })).some((i) => i.id === appeal.id));
      await assert.rejects(store.claimReview('x', 1000, 'missing'), (e: SrvError) => e.code === 'SRV_ERR_NOT_FOUND');
    });

    test('claim without an id takes the first claimable item in queue order', async () => {
      const a = await store.enqueueReview(reviewItem({ streamId: 'next', priority: 1 }));
      const b = await store.enqueueReview(reviewItem({ streamId: 'next', priority: 10, type: 'appeal' }));
      // Drain anything older of higher priority left by other tests.
      const seen: string[] = [];
      for (let i = 0; i < 20; i++) {
        const c = await store.claimReview('eve', 60_000);
        if (!c) break;
        seen.push(c.id);
      }
      assert.ok(seen.indexOf(b.id) >= 0 && seen.indexOf(a.id) > seen.indexOf(b.id), 'appeal claimed before amber');
      assert.equal(await store.claimReview('eve', 60_000), undefined, 'nothing left to claim');
    });

    test('control messages reach every subscriber, other connections included', async () => {
      const second = await makeSecond();
      try {
        const got: ControlMessage[] = [];
        const off = second.onControl((m) => got.push(m));
        const msg: ControlMessage = { type: 'kill', streamId: 'k1', reason: 'test', origin: 'n1', at: Date.now() };
        await store.publishControl(msg);
        for (let i = 0; i < 100 && got.length === 0; i++) await sleep(20);
        assert.deepEqual(got, [msg]);
        off();
        await store.publishControl({ ...msg, streamId: 'k2' });
        await sleep(200);
        assert.equal(got.length, 1, 'unsubscribed handler gets nothing more');
      } finally {
        if (second !== store) await second.close();
      }
    });

    test('shadow evaluation: the current candidate, its run kept by version after it stops, differences per candidate in order', async () => {
      const run = (version: string, at: number) => ({
        version,
        activeVersion: 'active-1',
        thresholds: [{ jurisdiction: 'global', category: 'sexual_explicit', red: 0.6 }],
        by: 'admin',
        at,
      });
      assert.equal(await store.getShadowPolicy(), undefined);
      await store.setShadowPolicy(run('cand-1', 1));
      await store.setShadowPolicy(run('cand-2', 2));
      assert.equal((await store.getShadowPolicy())?.version, 'cand-2');
      await store.setShadowPolicy(undefined);
      assert.equal(await store.getShadowPolicy(), undefined, 'stopped');
      assert.deepEqual(await store.getShadowRun('cand-1'), run('cand-1', 1), 'an earlier run stays readable');
      assert.equal(await store.getShadowRun('never'), undefined);
      const d = (candidateVersion: string, at: number) => ({
        side: 'shadow_only' as const,
        jurisdiction: 'global',
        category: 'sexual_explicit',
        outcome: 'kill' as const,
        streamId: 's',
        at,
        score: 0.7,
        sampleSeqs: [1, 2],
        candidateVersion,
        activeVersion: 'active-1',
      });
      await store.appendShadowDifferences([d('cand-1', 1), d('cand-2', 2)]);
      await store.appendShadowDifferences([d('cand-1', 3)]);
      await store.appendShadowDifferences([]);
      assert.deepEqual(
        (await store.listShadowDifferences('cand-1')).map((x) => x.at),
        [1, 3],
      );
      assert.deepEqual(await store.listShadowDifferences('cand-2'), [d('cand-2', 2)]);
      assert.deepEqual(await store.listShadowDifferences('none'), []);
    });

    test('ping and flush', async () => {
      assert.equal(await store.ping(), true);
      await store.flush();
    });
  });
}

// Memory: the "second connection" is the same instance (one process, one store).
{
  let shared: MemoryStore | undefined;
  storeSuite(
    'memory',
    async () => (shared = new MemoryStore()),
    async () => shared as MemoryStore,
  );
}

{
  let redis: RedisProcess;
  const prefix = `t${process.pid}:`;
  describe('redis', () => {
    before(async () => {
      redis = await startRedis();
    });
    after(async () => {
      await redis?.stop();
    });
    storeSuite(
      'redis',
      () => RedisStore.connect({ url: redis.url, prefix }),
      () => RedisStore.connect({ url: redis.url, prefix }),
    );

    test('Redis goes away: store calls fail with SRV_ERR_STORE_UNAVAILABLE and recover when it is back', async () => {
      const r2 = await startRedis();
      const errors: SrvError[] = [];
      const store = await RedisStore.connect({ url: r2.url, prefix, onError: (e) => errors.push(e) });
      try {
        await store.putStream(live('gone'), 60_000);
        await r2.stop();
        await assert.rejects(
          store.listStreams(),
          (e: SrvError) => e.code === 'SRV_ERR_STORE_UNAVAILABLE' && e.statusCode === 503,
        );
        await assert.rejects(store.appendAudit({ a: 1 }), (e: SrvError) => e.code === 'SRV_ERR_STORE_UNAVAILABLE');
        assert.equal(await store.ping(), false);
        // Comes back on the same port: the client reconnects by itself.
        const r3 = await startRedis(r2.port);
        try {
          let ok = false;
          for (let i = 0; i < 100 && !ok; i++) {
            ok = await store.ping();
            if (!ok) await sleep(100);
          }
          assert.equal(ok, true, 'reconnected');
          await store.putStream(live('back'), 60_000);
          assert.equal((await store.getStream('back'))?.state, 'live');
        } finally {
          await store.close();
          await r3.stop();
        }
      } finally {
        await store.close();
        await r2.stop();
      }
    });

    test('connect to nothing fails coded', async () => {
      await assert.rejects(
        RedisStore.connect({ url: 'redis://127.0.0.1:1' }),
        (e: SrvError) => e.code === 'SRV_ERR_STORE_UNAVAILABLE',
      );
    });
  });
}
