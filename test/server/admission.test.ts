// Admission and abuse limits of the HTTP surface (issue 12, item 2), against the real server with a
// fake SFU (sessions that connect when the test says so): unconnected-session caps per client and per
// node, stream and viewer limits, rate limits, 503/429 always coded and with Retry-After, a publisher
// reconnecting with its own token, viewer ids never from the query, the events socket's limits,
// /metrics behind a token, production defaults.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildServer, redactUrl, type Server } from '../../server/app.ts';
import { loadConfig } from '../../server/config.ts';
import { FakeSfu, type FakeStream } from '../sfu/fake.ts';
import { openEvents } from './helpers.ts';

const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n';

async function makeServer(
  overrides: Record<string, unknown> = {},
): Promise<{ server: Server; sfu: FakeSfu } & AsyncDisposable> {
  const sfu = new FakeSfu();
  const config = loadConfig({
    env: {},
    overrides: {
      port: 0,
      host: '127.0.0.1',
      logLevel: 'silent',
      authSecret: 'x'.repeat(40),
      moderation: false,
      ...overrides,
    },
  });
  const server = await buildServer(config, { sfu });
  await server.listen();
  return { server, sfu, [Symbol.asyncDispose]: () => server.close() };
}

const offer = (
  server: Server,
  kind: 'whip' | 'whep',
  streamId: string,
  opts: { token?: string; from?: string; query?: string } = {},
) =>
  server.app.inject({
    method: 'POST',
    url: `/${kind}/${streamId}${opts.query ?? ''}`,
    remoteAddress: opts.from ?? '127.0.0.1',
    headers: { 'content-type': 'application/sdp', ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}) },
    payload: SDP,
  });

function assertRefused(
  r: { statusCode: number; headers: Record<string, unknown>; json(): unknown },
  status: number,
  code: string,
): void {
  assert.equal(r.statusCode, status);
  assert.equal((r.json() as { code: string }).code, code);
  assert.ok(
    Number(r.headers['retry-after']) > 0,
    `a ${status} says when to retry (Retry-After: ${String(r.headers['retry-after'])})`,
  );
}

describe('admission', () => {
  test('unconnected sessions are capped per client (429) and per node (503); connecting frees the slots', async () => {
    await using s = await makeServer({ maxPendingSessionsPerClient: 3, maxPendingSessions: 5 });
    const pub = await s.server.auth.sign({ role: 'publisher', streamId: 'p1' });
    assert.equal((await offer(s.server, 'whip', 'p1', { token: pub })).statusCode, 201);
    s.sfu.connectSessions = false;
    for (let i = 0; i < 3; i++)
      assert.equal((await offer(s.server, 'whep', 'p1', { from: '10.0.0.1' })).statusCode, 201, `viewer ${i}`);
    assertRefused(await offer(s.server, 'whep', 'p1', { from: '10.0.0.1' }), 429, 'SRV_ERR_RATE_LIMITED');
    // other clients still get in, until the node's cap of unconnected sessions
    assert.equal((await offer(s.server, 'whep', 'p1', { from: '10.0.0.2' })).statusCode, 201);
    assert.equal((await offer(s.server, 'whep', 'p1', { from: '10.0.0.3' })).statusCode, 201);
    assertRefused(await offer(s.server, 'whep', 'p1', { from: '10.0.0.4' }), 503, 'SRV_ERR_CAPACITY');
    s.sfu.connectAll();
    assert.equal(
      (await offer(s.server, 'whep', 'p1', { from: '10.0.0.1' })).statusCode,
      201,
      'connected sessions no longer count as pending',
    );
    // a session that closes before connecting gives its slot back too
    const stream = s.sfu.getStream('p1') as FakeStream;
    for (const v of stream.viewers.values()) if (!v.connected) v.close({ code: 'error', message: 'never connected' });
    for (let i = 0; i < 3; i++)
      assert.equal((await offer(s.server, 'whep', 'p1', { from: '10.0.0.1' })).statusCode, 201);
  });

  test('streams and viewers per node are limited: 503 SRV_ERR_CAPACITY with Retry-After, never a session that cannot connect', async () => {
    await using s = await makeServer({ maxStreams: 2, maxViewers: 3 });
    const tok = (id: string) => s.server.auth.sign({ role: 'publisher', streamId: id });
    assert.equal((await offer(s.server, 'whip', 'a', { token: await tok('a') })).statusCode, 201);
    assert.equal((await offer(s.server, 'whip', 'b', { token: await tok('b') })).statusCode, 201);
    assertRefused(await offer(s.server, 'whip', 'c', { token: await tok('c') }), 503, 'SRV_ERR_CAPACITY');
    for (let i = 0; i < 3; i++) assert.equal((await offer(s.server, 'whep', i % 2 ? 'a' : 'b')).statusCode, 201);
    assertRefused(await offer(s.server, 'whep', 'a'), 503, 'SRV_ERR_CAPACITY');
    s.sfu.getStream('b')?.close({ code: 'ended', message: 'done' });
    assert.equal(
      (await offer(s.server, 'whip', 'c', { token: await tok('c') })).statusCode,
      201,
      'an ended stream frees its place',
    );
  });

  test('offers and API requests are rate limited per client address, with a coded 429; health probes are exempt', async () => {
    await using s = await makeServer({ rateLimitSessions: 4, rateLimitApi: 10 });
    const pub = await s.server.auth.sign({ role: 'publisher', streamId: 'r1' });
    assert.equal((await offer(s.server, 'whip', 'r1', { token: pub })).statusCode, 201);
    // each of POST /whip and POST /whep has its budget per client
    for (let i = 0; i < 4; i++) assert.equal((await offer(s.server, 'whep', 'r1')).statusCode, 201);
    const limited = await offer(s.server, 'whep', 'r1');
    assert.equal(limited.statusCode, 429);
    assert.equal(limited.json().code, 'SRV_ERR_RATE_LIMITED');
    assert.ok(Number(limited.headers['retry-after']) > 0);
    assert.equal(
      (await offer(s.server, 'whep', 'r1', { from: '10.1.1.1' })).statusCode,
      201,
      'another client has its own budget',
    );
    const admin = await s.server.auth.sign({ role: 'admin' });
    let got429 = 0;
    for (let i = 0; i < 15; i++) {
      const r = await s.server.app.inject({
        method: 'GET',
        url: '/v1/streams',
        remoteAddress: '10.2.2.2',
        headers: { authorization: `Bearer ${admin}` },
      });
      if (r.statusCode === 429) {
        got429++;
        assert.equal(r.json().code, 'SRV_ERR_RATE_LIMITED');
      }
    }
    assert.ok(got429 >= 4, `requests beyond 10 a minute are refused (${got429} of 15 were)`);
    for (let i = 0; i < 15; i++)
      assert.equal(
        (await s.server.app.inject({ method: 'GET', url: '/healthz', remoteAddress: '10.2.2.2' })).statusCode,
        200,
      );
  });

  test('a publisher reconnecting with its own token replaces its dead session at once; another token gets 409', async () => {
    await using s = await makeServer();
    const token = await s.server.auth.sign({ role: 'publisher', streamId: 'cam', sub: 'streamer' });
    const other = await s.server.auth.sign({ role: 'publisher', streamId: 'cam', sub: 'streamer' });
    assert.notEqual(token, other);
    const first = await offer(s.server, 'whip', 'cam', { token });
    assert.equal(first.statusCode, 201);
    const old = s.sfu.getStream('cam') as FakeStream;
    assert.equal(
      (await offer(s.server, 'whip', 'cam', { token: other })).statusCode,
      409,
      'a different credential cannot take a live stream over',
    );
    const again = await offer(s.server, 'whip', 'cam', { token });
    assert.equal(again.statusCode, 201);
    assert.equal(old.closed, true);
    assert.equal(old.closeReason?.code, 'replaced');
    assert.notEqual(again.headers.location, first.headers.location);
    assert.notEqual(s.sfu.getStream('cam'), old);
    assert.equal(
      (
        await s.server.app.inject({
          method: 'DELETE',
          url: String(first.headers.location),
          headers: { authorization: `Bearer ${token}` },
        })
      ).statusCode,
      404,
      "the replaced session's Location is gone",
    );
    assert.equal(
      (
        await s.server.app.inject({
          method: 'DELETE',
          url: String(again.headers.location),
          headers: { authorization: `Bearer ${token}` },
        })
      ).statusCode,
      200,
    );
  });

  test('viewer ids come from the token or the engine: an anonymous ?viewerId= cannot evict another viewer', async () => {
    await using s = await makeServer();
    const pub = await s.server.auth.sign({ role: 'publisher', streamId: 'v1' });
    assert.equal((await offer(s.server, 'whip', 'v1', { token: pub })).statusCode, 201);
    const named = await s.server.auth.sign({ role: 'viewer', viewerId: 'alice' });
    assert.equal((await offer(s.server, 'whep', 'v1', { token: named })).statusCode, 201);
    const stream = s.sfu.getStream('v1') as FakeStream;
    const alice = stream.viewers.get('alice');
    assert.ok(alice, 'the token names the viewer');
    assert.equal((await offer(s.server, 'whep', 'v1', { query: '?viewerId=alice' })).statusCode, 201);
    assert.equal(alice.closed, false, 'alice is still watching');
    assert.equal(stream.viewers.size, 2);
  });

  test('events socket: a viewer proves its session to get its own events, a wrong session is refused, sockets per client are capped', async () => {
    await using s = await makeServer({ maxWsPerClient: 3 });
    const pub = await s.server.auth.sign({ role: 'publisher', streamId: 'e1' });
    assert.equal((await offer(s.server, 'whip', 'e1', { token: pub })).statusCode, 201);
    const w = await offer(s.server, 'whep', 'e1');
    const session = String(w.headers.location).split('/').pop();
    const ws = s.server.url.replace('http', 'ws');
    const mine = await openEvents(`${ws}/v1/events?role=viewer&streamId=e1&session=${session}`);
    const stranger = await openEvents(`${ws}/v1/events?role=viewer&streamId=e1`);
    try {
      const viewer = [...(s.sfu.getStream('e1') as FakeStream).viewers.values()][0];
      const admin = await s.server.auth.sign({ role: 'admin' });
      const r = await s.server.app.inject({
        method: 'POST',
        url: '/v1/streams/e1/gate',
        headers: { authorization: `Bearer ${admin}` },
        payload: { jurisdiction: 'default', video: 'blank', reason: 'test' },
      });
      assert.ok(r.statusCode < 300, r.body);
      await mine.next((m) => m.type === 'viewer.filtered' && m.viewerId === viewer.id, 10_000);
      assert.ok(
        !stranger.messages.some((m) => m.type === 'viewer.filtered' && m.viewerId === viewer.id),
        "another socket without the session does not get that viewer's events",
      );
      await assert.rejects(
        openEvents(`${ws}/v1/events?role=viewer&streamId=e1&session=nope`),
        (e: { statusCode?: number }) => e.statusCode === 404,
        'an unknown session is refused',
      );
      const third = await openEvents(`${ws}/v1/events?role=viewer&streamId=e1`);
      await assert.rejects(
        openEvents(`${ws}/v1/events?role=viewer&streamId=e1`),
        (e: { statusCode?: number }) => e.statusCode === 429,
        'a 4th socket from one address is refused',
      );
      third.ws.close();
    } finally {
      mine.ws.close();
      stranger.ws.close();
    }
  });

  test('/metrics needs its bearer token when METRICS_TOKEN is set', async () => {
    await using s = await makeServer({ metricsToken: 'm'.repeat(24) });
    const no = await s.server.app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(no.statusCode, 401);
    assert.equal(no.json().code, 'SRV_ERR_UNAUTHORIZED');
    assert.equal(
      (
        await s.server.app.inject({
          method: 'GET',
          url: '/metrics',
          headers: { authorization: `Bearer ${'x'.repeat(24)}` },
        })
      ).statusCode,
      401,
    );
    assert.equal(
      (
        await s.server.app.inject({
          method: 'GET',
          url: '/metrics',
          headers: { authorization: `Bearer ${'m'.repeat(24)}` },
        })
      ).statusCode,
      200,
    );
  });

  test('production defaults: no anonymous viewers unless asked; tokens in URLs are redacted from logs', () => {
    assert.equal(loadConfig({ env: { MODE: 'production', AUTH_SECRET: 's'.repeat(40) } }).anonymousViewers, false);
    assert.equal(
      loadConfig({ env: { MODE: 'production', AUTH_SECRET: 's'.repeat(40), ANONYMOUS_VIEWERS: 'true' } })
        .anonymousViewers,
      true,
    );
    assert.equal(loadConfig({ env: {} }).anonymousViewers, true, 'dev mode keeps the quick start open');
    assert.equal(
      redactUrl('/v1/events?role=ops&access_token=eyJabc.def&format=json'),
      '/v1/events?role=ops&access_token=***&format=json',
    );
    assert.equal(redactUrl('/watch?stream=demo&token=eyJ.x.y'), '/watch?stream=demo&token=***');
    assert.equal(redactUrl('/whip/cam1'), '/whip/cam1');
  });
});
