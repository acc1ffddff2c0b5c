// Two server processes (server/main.ts, real werift SFU) sharing one real redis-server:
// a kill issued through node A cuts a viewer connected to node B; the block holds cluster-wide;
// when Redis goes away both keep serving with coded errors; SIGTERM shuts down cleanly.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Auth } from '../../server/auth.ts';
import { WhipPublisher, syntheticClip } from '../../loadtest/clients/whip-publisher.ts';
import { WhepViewer } from '../../loadtest/clients/whep-viewer.ts';
import { openEvents, startNode, startRedis, type NodeProcess, type RedisProcess } from './helpers.ts';

const SECRET = 'cluster-test-secret-0123456789abcdefghij';

describe('cluster: two processes sharing Redis', () => {
  let redis: RedisProcess;
  let a: NodeProcess;
  let b: NodeProcess;
  const auth = new Auth({ secret: SECRET });
  let admin: string;

  before(async () => {
    redis = await startRedis();
    const env = {
      REDIS_URL: redis.url,
      AUTH_SECRET: SECRET,
      MODE: 'production',
      HEARTBEAT_MS: '300',
      STREAM_TTL_MS: '5000',
      REDIS_PREFIX: `c${process.pid}:`,
    };
    [a, b] = await Promise.all([startNode({ ...env, NODE_ID: 'node-a' }), startNode({ ...env, NODE_ID: 'node-b' })]);
    admin = await auth.sign({ role: 'admin', sub: 'ops' });
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.stop();
  });

  const api = async (
    node: NodeProcess,
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; json: Record<string, unknown> }> => {
    const res = await fetch(node.url + path, {
      method,
      headers: {
        authorization: `Bearer ${admin}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };

  test('a kill issued on node A cuts the publisher and the viewer on node B, tells them why, and blocks the stream everywhere', async () => {
    const pubToken = await auth.sign({ role: 'publisher', streamId: 'c1', sub: 'streamer-c1' });
    const viewerToken = await auth.sign({ role: 'viewer', jurisdiction: 'SE', viewerId: 'vb1' });
    const clip = await syntheticClip({ codec: 'VP8', seconds: 1 });
    const pub = await WhipPublisher.connect({ url: `${b.url}/whip/c1`, token: pubToken, ...clip });
    pub.start();
    const viewer = await WhepViewer.connect({ url: `${b.url}/whep/c1`, token: viewerToken });
    const wsB = b.url.replace('http', 'ws');
    const viewerEvents = await openEvents(`${wsB}/v1/events?role=viewer&streamId=c1&access_token=${viewerToken}`);
    const streamerEvents = await openEvents(`${wsB}/v1/events?role=streamer&streamId=c1&access_token=${pubToken}`);
    try {
      // Media flows to the viewer on B.
      for (let i = 0; i < 100 && viewer.packets.length === 0; i++) await sleep(100);
      assert.ok(viewer.packets.length > 0, 'viewer on B receives media');
      // Node A sees the stream through the shared registry, held by node B.
      let seen: { streamId: string; nodeId?: string; state?: string; local?: boolean } | undefined;
      for (let i = 0; i < 50 && !seen; i++) {
        const r = await api(a, 'GET', '/v1/streams');
        seen = (r.json.streams as { streamId: string; nodeId?: string; local?: boolean }[]).find(
          (s) => s.streamId === 'c1',
        );
        if (!seen) await sleep(100);
      }
      assert.equal(seen?.nodeId, 'node-b');
      assert.equal(seen?.local, false);

      const kill = await api(a, 'POST', '/v1/streams/c1/kill', { reason: 'violent content', clause: 'ToS 3.1' });
      assert.equal(kill.status, 202, JSON.stringify(kill.json));
      assert.equal(kill.json.local, false, 'the session is not on node A');
      const statementId = (kill.json.statement as { id: string }).id;

      const killedV = await viewerEvents.next((m) => m.type === 'stream.killed', 20_000);
      assert.equal(killedV.statementId, statementId);
      assert.equal(killedV.reason, 'violent content');
      const killedS = await streamerEvents.next((m) => m.type === 'stream.killed', 20_000);
      assert.match(killedS.appealUrl as string, new RegExp(`/v1/appeals/${statementId}$`));

      // Media stops reaching the viewer: no new packets after the kill settles.
      await sleep(1500);
      const count = viewer.packets.length;
      await sleep(1500);
      assert.equal(viewer.packets.length, count, 'no media after the kill');
      // Node B's own view agrees, and the block holds on both nodes.
      const onB = await api(b, 'GET', '/v1/streams/c1');
      assert.equal(onB.json.state, 'killed');
      const whep = await fetch(`${b.url}/whep/c1`, {
        method: 'POST',
        headers: { 'content-type': 'application/sdp' },
        body: 'v=0\r\n',
      });
      assert.ok(whep.status >= 400, `WHEP after kill: ${whep.status}`);
      for (const node of [a, b]) {
        const again = await fetch(`${node.url}/whip/c1`, {
          method: 'POST',
          headers: { 'content-type': 'application/sdp', authorization: `Bearer ${pubToken}` },
          body: 'v=0\r\n',
        });
        assert.equal(again.status, 403);
        assert.equal(((await again.json()) as { code: string }).code, 'SRV_ERR_STREAM_BLOCKED');
      }
      // The statement is readable from either node (shared store) by the streamer.
      const st = await fetch(`${b.url}/v1/statements/${statementId}`, {
        headers: { authorization: `Bearer ${pubToken}` },
      });
      assert.equal(st.status, 200);
      // Resume on B lifts the block for A too.
      assert.equal((await api(b, 'POST', '/v1/streams/c1/resume', {})).status, 200);
      const whipA = await fetch(`${a.url}/whip/c1`, {
        method: 'POST',
        headers: { 'content-type': 'application/sdp', authorization: `Bearer ${pubToken}` },
        body: 'v=0\r\n',
      });
      assert.notEqual(whipA.status, 403, 'no longer blocked');
    } finally {
      viewerEvents.ws.close();
      streamerEvents.ws.close();
      await viewer.close({ deleteSession: false }).catch(() => undefined);
      await pub.stop().catch(() => undefined);
    }
  });

  test('Redis goes away: health stays up, readiness and store-backed routes answer coded 503s, WHIP still works', async () => {
    await redis.stop();
    await sleep(300);
    const h = await fetch(`${a.url}/healthz`);
    assert.equal(h.status, 200);
    const r = await fetch(`${a.url}/readyz`);
    assert.equal(r.status, 503);
    assert.equal(((await r.json()) as { checks: { store: boolean } }).checks.store, false);
    const s = await api(a, 'GET', '/v1/streams');
    assert.equal(s.status, 503);
    assert.equal(s.json.code, 'SRV_ERR_STORE_UNAVAILABLE');
    const d = await api(b, 'GET', '/v1/decisions');
    assert.equal(d.json.code, 'SRV_ERR_STORE_UNAVAILABLE');
    const pubToken = await auth.sign({ role: 'publisher', streamId: 'c2' });
    const clip = await syntheticClip({ codec: 'VP8', seconds: 1 });
    const pub = await WhipPublisher.connect({ url: `${a.url}/whip/c2`, token: pubToken, ...clip });
    try {
      pub.start();
      const m = await fetch(`${a.url}/metrics`);
      assert.equal(m.status, 200);
    } finally {
      await pub.stop().catch(() => undefined);
    }
  });

  test('SIGTERM: both nodes shut down gracefully (exit code 0)', async () => {
    const [ca, cb] = await Promise.all([a.stop(), b.stop()]);
    assert.equal(ca, 0, a.output());
    assert.equal(cb, 0, b.output());
    assert.match(a.output(), /shutdown complete/);
  });
});
