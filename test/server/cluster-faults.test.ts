// Faults with real server processes (server/main.ts, werift), a real redis-server with AOF and real
// WHIP/WHEP clients: a node cut off from Redis while a kill is issued on another ends the stream
// within a heartbeat of reconnecting; a node SIGKILLed right after a kill made while Redis was down
// has its records in Redis after it restarts, and the kill's appeal URL answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Auth } from '../../server/auth.ts';
import { WhipPublisher, syntheticClip } from '../../loadtest/clients/whip-publisher.ts';
import { WhepViewer } from '../../loadtest/clients/whep-viewer.ts';
import { freePort, openEvents, startNode, startRedis } from './helpers.ts';

const SECRET = 'cluster-faults-secret-0123456789abcdefghij';
const auth = new Auth({ secret: SECRET });

/** A TCP proxy to Redis that can be cut (every connection dropped, new ones refused) and restored: a network partition. */
async function partitionable(
  targetPort: number,
): Promise<{ port: number; cut(): void; restore(): void; close(): Promise<void> }> {
  let open = true;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    if (!open) return client.destroy();
    const upstream = connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => s.destroy());
    }
    client.pipe(upstream).pipe(client);
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    port,
    cut() {
      open = false;
      for (const s of sockets) s.destroy();
    },
    restore() {
      open = true;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

async function until(what: string, pred: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

async function api(
  url: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url + path, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

test('two nodes, B cut off from Redis while a kill is issued on A: after B reconnects the stream is not live on B within the heartbeat', async () => {
  const redis = await startRedis(undefined, { aof: true });
  const proxy = await partitionable(redis.port);
  const dirs = [mkdtempSync(join(tmpdir(), 'msfu-ob-a-')), mkdtempSync(join(tmpdir(), 'msfu-ob-b-'))];
  const HEARTBEAT_MS = 500;
  const env = {
    AUTH_SECRET: SECRET,
    MODE: 'production',
    HEARTBEAT_MS: String(HEARTBEAT_MS),
    STREAM_TTL_MS: '30000',
    REDIS_PREFIX: `cf${process.pid}:`,
  };
  const [a, b] = await Promise.all([
    startNode({ ...env, NODE_ID: 'node-a', REDIS_URL: redis.url, OUTBOX_DIR: dirs[0]! }),
    startNode({ ...env, NODE_ID: 'node-b', REDIS_URL: `redis://127.0.0.1:${proxy.port}`, OUTBOX_DIR: dirs[1]! }),
  ]);
  const admin = await auth.sign({ role: 'admin', sub: 'ops' });
  const pubToken = await auth.sign({ role: 'publisher', streamId: 'p1', sub: 'streamer-p1' });
  const viewerToken = await auth.sign({ role: 'viewer', jurisdiction: 'SE', viewerId: 'vp1' });
  const clip = await syntheticClip({ codec: 'VP8', seconds: 1 });
  const pub = await WhipPublisher.connect({ url: `${b.url}/whip/p1`, token: pubToken, ...clip });
  pub.start();
  const viewer = await WhepViewer.connect({ url: `${b.url}/whep/p1`, token: viewerToken });
  const events = await openEvents(
    `${b.url.replace('http', 'ws')}/v1/events?role=viewer&streamId=p1&access_token=${viewerToken}`,
  );
  try {
    await until('media at the viewer on B', () => viewer.packets.length > 0);
    await until(
      'node A to see p1 in the registry',
      async () =>
        ((await api(a.url, admin, 'GET', '/v1/streams')).json.streams as { streamId: string }[] | undefined)?.some(
          (s) => s.streamId === 'p1',
        ) ?? false,
    );

    proxy.cut();
    await sleep(500);
    const kill = await api(a.url, admin, 'POST', '/v1/streams/p1/kill', { reason: 'partition test', clause: 'ToS 1' });
    assert.equal(kill.status, 202, JSON.stringify(kill.json));
    await sleep(2 * HEARTBEAT_MS);
    assert.ok(!events.messages.some((m) => m.type === 'stream.killed'), 'B cannot know yet: it missed the message');
    const packetsBefore = viewer.packets.length;
    await sleep(300);
    assert.ok(viewer.packets.length > packetsBefore, 'the stream is still live on B while it is cut off');

    const restoredAt = Date.now();
    proxy.restore();
    const killed = await events.next((m) => m.type === 'stream.killed', 30_000);
    const afterMs = Date.now() - restoredAt;
    console.log(
      `# node B ended the killed stream ${afterMs} ms after its link to Redis came back (heartbeat ${HEARTBEAT_MS} ms; ioredis reconnects within 2 s)`,
    );
    assert.equal(killed.statementId, (kill.json.statement as { id: string }).id);
    // reconnect (ioredis retries every <= 2 s) + one heartbeat, with room for a loaded machine
    assert.ok(afterMs < 2000 + HEARTBEAT_MS + 5000, `${afterMs} ms`);
    const onB = await api(b.url, admin, 'GET', '/v1/streams/p1');
    assert.equal(onB.json.local, false, 'no longer live on B');
  } finally {
    events.ws.close();
    await viewer.close({ deleteSession: false }).catch(() => undefined);
    await pub.stop().catch(() => undefined);
    await Promise.all([a.stop(), b.stop()]);
    await proxy.close();
    await redis.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
});

test('a node SIGKILLed right after a kill made while Redis was down: its records are in Redis after it restarts, the appeal URL answers, the chain verifies', async () => {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'msfu-aof-'));
  const outboxDir = mkdtempSync(join(tmpdir(), 'msfu-ob-'));
  let redis = await startRedis(port, { aof: true, dir: dataDir });
  const env = {
    AUTH_SECRET: SECRET,
    MODE: 'production',
    REDIS_URL: redis.url,
    REDIS_PREFIX: `ck${process.pid}:`,
    OUTBOX_DIR: outboxDir,
  };
  const admin = await auth.sign({ role: 'admin', sub: 'ops' });
  let node = await startNode({ ...env, NODE_ID: 'node-1' });
  try {
    const before = await api(node.url, admin, 'GET', '/v1/audit/verify');
    assert.equal(before.json.ok, true);
    const entriesBefore = before.json.entries as number;
    await redis.stop();
    const kill = await api(node.url, admin, 'POST', '/v1/streams/k1/kill', {
      reason: 'during the outage',
      clause: 'ToS 2',
    });
    assert.equal(kill.status, 202, JSON.stringify(kill.json));
    const statementId = (kill.json.statement as { id: string }).id;
    const decisionId = (kill.json.decision as { id: string }).id;
    const metrics = await (await fetch(`${node.url}/metrics`)).text();
    const depth = Number(/^msfu_outbox_depth (\d+)/m.exec(metrics)?.[1]);
    assert.ok(depth >= 4, `outbox depth ${depth} (statement, decision, block, audit entry)`);
    process.kill(node.serverPid!, 'SIGKILL');
    await node.stop(1000);

    redis = await startRedis(port, { aof: true, dir: dataDir });
    const t0 = Date.now();
    node = await startNode({ ...env, NODE_ID: 'node-1-restarted' });
    await until(
      'the adopted records to reach Redis',
      async () => (await api(node.url, admin, 'GET', `/v1/decisions/${decisionId}`)).status === 200,
      30_000,
    );
    console.log(
      `# SIGKILLed node's outbox: ${depth} records pending at the kill; in Redis ${Date.now() - t0} ms after the restarted process was spawned`,
    );
    const st = await api(node.url, admin, 'GET', `/v1/statements/${statementId}`);
    assert.equal(st.status, 200);
    const pubToken = await auth.sign({ role: 'publisher', streamId: 'k1', sub: 'streamer-k1' });
    const appeal = await api(node.url, pubToken, 'POST', `/v1/appeals/${statementId}`, { grounds: 'it was fine' });
    assert.equal(appeal.status, 201, JSON.stringify(appeal.json));
    const whip = await fetch(`${node.url}/whip/k1`, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp', authorization: `Bearer ${pubToken}` },
      body: 'v=0\r\n',
    });
    assert.equal(whip.status, 403, 'the block reached Redis');
    const after = await api(node.url, admin, 'GET', '/v1/audit/verify');
    assert.equal(after.json.ok, true, JSON.stringify(after.json));
    assert.ok(
      (after.json.entries as number) >= entriesBefore + 2,
      `audit entries ${entriesBefore} -> ${after.json.entries as number}`,
    );
    const killedEntry = (await api(node.url, admin, 'GET', '/v1/audit?limit=1000')).json.entries as {
      body: { type: string; statementId?: string };
    }[];
    assert.equal(
      killedEntry.filter((e) => e.body.type === 'stream.killed' && e.body.statementId === statementId).length,
      1,
      'the kill is audited once',
    );
  } finally {
    await node.stop();
    await redis.stop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(outboxDir, { recursive: true, force: true });
  }
});

test('Redis restarted empty under a running node: the chain alarm fires (log, metric), the node keeps enforcing its kills and writes their blocks back', async () => {
  const port = await freePort();
  let redis = await startRedis(port);
  const outboxDir = mkdtempSync(join(tmpdir(), 'msfu-ob-'));
  const admin = await auth.sign({ role: 'admin', sub: 'ops' });
  const node = await startNode({
    AUTH_SECRET: SECRET,
    MODE: 'production',
    REDIS_URL: redis.url,
    REDIS_PREFIX: `ce${process.pid}:`,
    OUTBOX_DIR: outboxDir,
    NODE_ID: 'node-e',
  });
  const pubToken = await auth.sign({ role: 'publisher', streamId: 'e1', sub: 'streamer-e1' });
  const whip = async (): Promise<number> =>
    (
      await fetch(`${node.url}/whip/e1`, {
        method: 'POST',
        headers: { 'content-type': 'application/sdp', authorization: `Bearer ${pubToken}` },
        body: 'v=0\r\n',
      })
    ).status;
  try {
    assert.equal(
      (await api(node.url, admin, 'POST', '/v1/streams/e1/kill', { reason: 'before the wipe' })).status,
      202,
    );
    assert.equal(await whip(), 403);
    await redis.stop();
    redis = await startRedis(port); // no AOF: empty
    const alarmed = async (): Promise<boolean> =>
      /msfu_audit_chain_alarms_total\{kind="backwards"\} 1/.test(await (await fetch(`${node.url}/metrics`)).text());
    await until('the chain alarm in /metrics', alarmed, 30_000);
    assert.match(node.output(), /audit chain went backwards/);
    await until(
      'the block written back into the empty Redis',
      async () => (await api(node.url, admin, 'GET', '/v1/streams/e1')).json.blocked !== undefined,
      20_000,
    );
    assert.equal(await whip(), 403, 'still refused');
    const audit = (await api(node.url, admin, 'GET', '/v1/audit')).json.entries as { body: { type: string } }[];
    assert.ok(
      audit.some((e) => e.body.type === 'audit.chain_alarm'),
      'the new chain records the alarm',
    );
  } finally {
    await node.stop();
    await redis.stop();
    rmSync(outboxDir, { recursive: true, force: true });
  }
});
