// The outbox against a real redis-server run as compose runs it (AOF, appendfsync everysec): records
// written while Redis is dead are all there after it comes back; retries never duplicate; Redis
// restarted empty raises the chain alarm; an entry rewritten in Redis is named by the verifier.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { RedisStore } from '../../server/store/redis.ts';
import { DurableStore, OutboxQueuedError, type AuditChainAlarm } from '../../server/store/durable.ts';
import { walkAuditChain } from '../../server/store/audit-chain.ts';
import { auditHash } from '../../policies/audit.ts';
import { freePort, reviewItem, startRedis, statement } from './helpers.ts';

const KEY = 'k'.repeat(48);

async function until(what: string, pred: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** What an enforcement action writes, numbered `i`, through `store` (not awaited: the enforcer does not wait either). */
function writeAction(store: DurableStore, i: number): Promise<unknown>[] {
  const st = statement(`sor_of_${i}`, `s${i}`);
  return [
    store.putStatement(st),
    store.putDecision({
      id: `dec_of_${i}`,
      streamId: `s${i}`,
      at: Date.now(),
      source: 'automated',
      bucket: 'red',
      action: 'kill_stream',
      jurisdictions: ['global'],
      statementId: st.id,
    }),
    store.setBlock({ streamId: `s${i}`, reason: 'killed', statementId: st.id, at: Date.now(), by: 'enforcer' }),
    store.appendAudit({ type: 'statement', streamId: `s${i}`, statementId: st.id }),
    store.appendAudit({ type: 'decision', streamId: `s${i}`, decisionId: `dec_of_${i}` }),
    store.enqueueReview(reviewItem({ id: `rev_of_${i}`, streamId: `s${i}` })),
  ];
}

async function counts(url: string, prefix: string): Promise<Record<string, number>> {
  const r = new Redis(url);
  try {
    const keys = async (pattern: string) => (await r.keys(prefix + pattern)).length;
    return {
      statements: await keys('statement:sor_of_*'),
      decisions: await keys('decision:dec_of_*'),
      blocks: await keys('block:s*'),
      audit: await r.xlen(prefix + 'audit'),
      review: await r.hlen(prefix + 'review:items'),
      statementIndex: await r.llen(prefix + 'statements'),
    };
  } finally {
    r.disconnect();
  }
}

test('Redis killed while an action is recorded, restarted 10 s later from its AOF: 0 records lost, none twice, the chain verifies', async () => {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'msfu-aof-'));
  const outboxDir = mkdtempSync(join(tmpdir(), 'msfu-outbox-'));
  let redis = await startRedis(port, { aof: true, dir: dataDir });
  const prefix = 'ob1:';
  const inner = await RedisStore.connect({ url: redis.url, prefix, auditKey: KEY, commandTimeoutMs: 500 });
  const store = await DurableStore.open({ inner, dir: outboxDir, nodeId: 'n1', storeId: 'test', headCheckMs: 0 });
  try {
    // 10 actions acknowledged before the fault
    await Promise.all(Array.from({ length: 10 }, (_, i) => writeAction(store, i)).flat());
    const before = await counts(redis.url, prefix);
    assert.deepEqual(before, { statements: 10, decisions: 10, blocks: 10, audit: 20, review: 10, statementIndex: 10 });

    // Redis dies in the middle of an action: its records and 9 more actions' go to the outbox
    const during = writeAction(store, 10);
    await redis.stop();
    for (let i = 11; i < 20; i++) during.push(...writeAction(store, i));
    const settled = await Promise.allSettled(during);
    const queued = settled.filter((s) => s.status === 'rejected' && s.reason instanceof OutboxQueuedError).length;
    const other = settled.filter((s) => s.status === 'rejected' && !(s.reason instanceof OutboxQueuedError));
    assert.deepEqual(other, [], 'writes fail only as queued');
    assert.ok(queued >= 54, `${queued} of 60 writes queued while Redis was away`);
    const depth = store.outboxStats().depth;
    assert.ok(depth >= 54, `outbox depth ${depth}`);
    await sleep(10_000);
    const aged = store.outboxStats().oldestAgeS;
    assert.ok(aged >= 9, `oldest record waited ${aged} s`);

    redis = await startRedis(port, { aof: true, dir: dataDir });
    const t0 = performance.now();
    const left = await store.drain(30_000);
    const drainMs = performance.now() - t0;
    assert.equal(left, 0, 'outbox drained');
    const after = await counts(redis.url, prefix);
    console.log(
      `# outbox: depth ${depth} records after 10 s without Redis (oldest ${aged.toFixed(1)} s), drained in ${drainMs.toFixed(0)} ms once Redis was back; store before ${JSON.stringify(before)}, after ${JSON.stringify(after)}`,
    );
    assert.deepEqual(
      after,
      { statements: 20, decisions: 20, blocks: 20, audit: 40, review: 20, statementIndex: 20 },
      'every record of all 20 actions, each once',
    );
    const walk = await walkAuditChain(inner, KEY, { pageSize: 7 });
    assert.equal(walk.ok, true, JSON.stringify(walk));
    assert.equal(walk.entries, 40);
    assert.equal(
      (await inner.getStatement('sor_of_15'))?.id,
      'sor_of_15',
      'a statement written during the outage is readable (its appeal URL answers)',
    );
    assert.equal(store.outboxStats().dropped.full + store.outboxStats().dropped.refused, 0);
  } finally {
    await store.close();
    await redis.stop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(outboxDir, { recursive: true, force: true });
  }
});

test('idempotent writes: a retried audit append returns its entry, a repeated put never overwrites', async () => {
  const redis = await startRedis();
  const store = await RedisStore.connect({ url: redis.url, prefix: 'idem:', auditKey: KEY });
  try {
    const a = await store.appendAudit({ type: 'x' }, { id: 'op-1' });
    const again = await store.appendAudit({ type: 'x' }, { id: 'op-1' });
    assert.deepEqual(again, a);
    assert.equal((await store.readAudit()).length, 1);
    await store.putStatement(statement('sor_same'));
    await store.putStatement({
      ...statement('sor_same'),
      ground: { ...statement('sor_same').ground, clause: 'changed' },
    });
    assert.equal((await store.getStatement('sor_same'))?.ground.clause, 'ToS 4.2');
    assert.equal((await store.listStatements()).length, 1, 'indexed once');
    const item = reviewItem();
    await store.enqueueReview(item);
    await store.enqueueReview(item);
    assert.equal(await store.reviewDepth(), 1);
  } finally {
    await store.close();
    await redis.stop();
  }
});

test('a node SIGKILLed with records in its outbox: the next process on the directory adopts and delivers them', async () => {
  const port = await freePort();
  let redis = await startRedis(port);
  const outboxDir = mkdtempSync(join(tmpdir(), 'msfu-outbox-'));
  const prefix = 'adopt:';
  try {
    const { spawn } = await import('node:child_process');
    // a child takes 5 actions' records while Redis is away, then is SIGKILLed
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(import.meta.dirname, 'outbox-writer.ts'), outboxDir, redis.url, '5'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await until('the writer to connect', () => out.includes('connected'), 60_000);
    await redis.stop();
    await until('the writer to take its records', () => out.includes('written'), 30_000);
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    redis = await startRedis(port);
    const inner = await RedisStore.connect({ url: redis.url, prefix, auditKey: KEY });
    const store = await DurableStore.open({ inner, dir: outboxDir, nodeId: 'n2', storeId: 'test', headCheckMs: 0 });
    try {
      assert.match(out, /written 30/);
      assert.equal(store.outboxStats().adopted, 30, 'all 30 records of the dead process adopted');
      assert.equal(await store.drain(20_000), 0);
      assert.deepEqual(await counts(redis.url, prefix), {
        statements: 5,
        decisions: 5,
        blocks: 5,
        audit: 10,
        review: 5,
        statementIndex: 5,
      });
      assert.equal((await walkAuditChain(inner, KEY)).ok, true);
    } finally {
      await store.close();
    }
  } finally {
    await redis.stop();
    rmSync(outboxDir, { recursive: true, force: true });
  }
});

test('Redis restarted empty: the chain alarm fires (backwards), the checkpoints of the old chain are kept aside', async () => {
  const port = await freePort();
  let redis = await startRedis(port);
  const outboxDir = mkdtempSync(join(tmpdir(), 'msfu-outbox-'));
  const alarms: AuditChainAlarm[] = [];
  const inner = await RedisStore.connect({ url: redis.url, prefix: 'wipe:', auditKey: KEY, commandTimeoutMs: 500 });
  const store = await DurableStore.open({
    inner,
    dir: outboxDir,
    nodeId: 'n3',
    storeId: 'test',
    checkpointEvery: 5,
    headCheckMs: 200,
    onAlarm: (a) => alarms.push(a),
  });
  try {
    for (let i = 0; i < 12; i++) await store.appendAudit({ type: 't', i });
    assert.equal(store.checkpointFile.head()?.seq, 10, 'checkpoint every 5 entries');
    await redis.stop();
    redis = await startRedis(port); // no AOF: it comes back empty
    await until('the alarm', () => alarms.length > 0);
    assert.equal(alarms[0]!.kind, 'backwards');
    assert.equal(alarms[0]!.expected.seq, 12);
    assert.equal(alarms[0]!.found.seq, 0);
    assert.ok(alarms[0]!.supersededFile, 'old checkpoints moved aside');
    // writes go on; no second alarm for the same incident
    await until(
      'an append after the restart',
      async () =>
        await store.appendAudit({ type: 'after' }).then(
          () => true,
          () => false,
        ),
    );
    await sleep(600);
    assert.equal(alarms.length, 1);
  } finally {
    await store.close();
    await redis.stop();
    rmSync(outboxDir, { recursive: true, force: true });
  }
});

test('the chain head is checked at start: a store whose head is behind the last checkpoint raises the alarm', async () => {
  const redis = await startRedis();
  const outboxDir = mkdtempSync(join(tmpdir(), 'msfu-outbox-'));
  try {
    const inner = await RedisStore.connect({ url: redis.url, prefix: 'start:', auditKey: KEY });
    const first = await DurableStore.open({ inner, dir: outboxDir, nodeId: 'n4', storeId: 'test', headCheckMs: 0 });
    for (let i = 0; i < 3; i++) await first.appendAudit({ i });
    await first.close(); // checkpoints seq 3
    const r = new Redis(redis.url);
    await r.del('start:audit');
    r.disconnect();
    const alarms: AuditChainAlarm[] = [];
    const again = await DurableStore.open({
      inner: await RedisStore.connect({ url: redis.url, prefix: 'start:', auditKey: KEY }),
      dir: outboxDir,
      nodeId: 'n5',
      storeId: 'test',
      headCheckMs: 0,
      onAlarm: (a) => alarms.push(a),
    });
    await again.close();
    assert.equal(alarms.length, 1);
    assert.match(alarms[0]!.message, /went backwards/);
  } finally {
    await redis.stop();
    rmSync(outboxDir, { recursive: true, force: true });
  }
});

test('an audit entry changed directly in Redis (the stream rewritten, even with re-chained sha256 hashes): verify names it', async () => {
  const redis = await startRedis();
  const store = await RedisStore.connect({ url: redis.url, prefix: 'tamper:', auditKey: KEY });
  try {
    for (let i = 1; i <= 30; i++) await store.appendAudit({ type: 'decision', i });
    assert.equal((await walkAuditChain(store, KEY, { pageSize: 8 })).ok, true);
    // rewrite entry 17's body and re-chain everything after it, as someone with Redis access but without the key would
    const r = new Redis(redis.url);
    const rows = await r.xrange('tamper:audit', '-', '+');
    const entries = rows.map(
      ([, f]) =>
        JSON.parse(f[1]!) as { seq: number; at: number; prevHash: string; hash: string; body: Record<string, unknown> },
    );
    await r.del('tamper:audit');
    let prev: string | undefined;
    for (const e of entries) {
      if (e.seq === 17) e.body = { ...e.body, i: 'changed' };
      if (e.seq >= 17) {
        e.prevHash = prev ?? e.prevHash;
        e.hash = auditHash(e.seq, e.at, e.prevHash, e.body);
      }
      prev = e.hash;
      await r.xadd('tamper:audit', `${e.seq}-0`, 'e', JSON.stringify(e));
    }
    r.disconnect();
    assert.equal(entries[17]!.prevHash, entries[16]!.hash, 'the rewritten entries link up');
    const v = await walkAuditChain(store, KEY, { pageSize: 8 });
    assert.equal(v.ok, false);
    assert.equal(v.brokenAt, 17);
    assert.match(v.reason ?? '', /hash does not match/);
    // the same from outside the server: npm run audit:verify
    const { spawnSync } = await import('node:child_process');
    const cli = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/audit-verify.ts'], {
      cwd: join(import.meta.dirname, '..', '..'),
      env: {
        ...process.env,
        REDIS_URL: redis.url,
        REDIS_PREFIX: 'tamper:',
        AUDIT_HMAC_KEY: KEY,
        OUTBOX_DIR: join(tmpdir(), 'msfu-none-' + process.pid),
      },
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(cli.status, 1, cli.stderr);
    const out = JSON.parse(cli.stdout) as { ok: boolean; brokenAt: number; firstBadEntry: { body: { i: unknown } } };
    assert.equal(out.brokenAt, 17);
    assert.equal(out.firstBadEntry.body.i, 'changed');
  } finally {
    await store.close();
    await redis.stop();
  }
});
