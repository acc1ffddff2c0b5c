// In-process API tests (app.inject) for every route: auth failures (no token, expired, bad
// signature, wrong stream, wrong role), malformed bodies, and the behaviour behind each route
// (kill cuts viewers and is audited, review claim/resolve, appeals, policies, gates, events).
// The moderation stack (models) is off here: these tests are about the HTTP surface; signals are
// fed to the real enforcer where a verdict is needed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { readFileSync } from 'node:fs';
import { pack, unpack } from 'msgpackr';
import { buildServer, type Server } from '../../server/app.ts';
import { Auth } from '../../server/auth.ts';
import { loadConfig, summarizeConfig } from '../../server/config.ts';
import type { PolicyReviewItem } from '../../server/store/types.ts';
import { FakeSfu, type FakeStream, type FakeViewer } from '../sfu/fake.ts';
import { WebSocketClient, openEvents } from './helpers.ts';

const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n';

async function makeServer(overrides: Record<string, unknown> = {}): Promise<{ server: Server; sfu: FakeSfu }> {
  const sfu = new FakeSfu();
  const config = loadConfig({
    env: {},
    overrides: {
      port: 0,
      host: '127.0.0.1',
      logLevel: 'silent',
      authSecret: 'x'.repeat(40),
      heartbeatMs: 200,
      moderation: false,
      ...overrides,
    },
  });
  const server = await buildServer(config, { sfu });
  await server.listen();
  return { server, sfu };
}

describe('API', () => {
  let server: Server;
  let sfu: FakeSfu;
  const tokens: Record<string, string> = {};
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

  before(async () => {
    ({ server, sfu } = await makeServer());
    const a = server.auth;
    tokens.admin = await a.sign({ role: 'admin', sub: 'root' });
    tokens.reviewer = await a.sign({ role: 'reviewer', sub: 'alice' });
    tokens.reviewer2 = await a.sign({ role: 'reviewer', sub: 'bob' });
    tokens.viewer = await a.sign({ role: 'viewer', sub: 'v', jurisdiction: 'SE' });
    tokens.pubS1 = await a.sign({ role: 'publisher', sub: 'streamer1', streamId: 's1' });
    tokens.expired = await a.sign({ role: 'admin' }, -10);
    tokens.foreign = await new Auth({ secret: 'y'.repeat(40) }).sign({ role: 'admin' });
  });
  after(async () => {
    await server.close();
  });

  const req = (
    method: 'GET' | 'POST' | 'DELETE',
    url: string,
    token?: string,
    payload?: unknown,
    headers: Record<string, string> = {},
  ) =>
    server.app.inject({
      method,
      url,
      headers: { ...(token ? bearer(token) : {}), ...headers },
      ...(payload !== undefined ? { payload: payload as object } : {}),
    });

  const publish = (streamId: string, token: string | undefined) =>
    server.app.inject({
      method: 'POST',
      url: `/whip/${streamId}`,
      headers: { 'content-type': 'application/sdp', ...(token ? bearer(token) : {}) },
      payload: SDP,
    });
  const view = (streamId: string, token?: string, headers: Record<string, string> = {}, query = '') =>
    server.app.inject({
      method: 'POST',
      url: `/whep/${streamId}${query}`,
      headers: { 'content-type': 'application/sdp', ...(token ? bearer(token) : {}), ...headers },
      payload: SDP,
    });

  test('health, readiness, metrics, OpenAPI document, ops page', async () => {
    const h = await req('GET', '/healthz');
    assert.equal(h.statusCode, 200);
    assert.equal(h.json().status, 'ok');
    const r = await req('GET', '/readyz');
    assert.equal(r.statusCode, 200);
    assert.deepEqual(r.json().checks, { store: true, policy: true, sfu: true });
    const m = await req('GET', '/metrics');
    assert.equal(m.statusCode, 200);
    for (const name of [
      'msfu_stage_latency_ms',
      'msfu_budget_misses_total',
      'msfu_kills_total',
      'msfu_kill_latency_ms',
      'msfu_exposure_window_ms',
      'msfu_escalation_rate',
      'msfu_review_queue_depth',
      'msfu_classification_lag_ms',
      'msfu_breaker_state',
      'msfu_fallback_rate',
      'msfu_forward_packets',
      'msfu_forward_bytes',
      'msfu_forward_drops',
      'msfu_sfu_workers_realtime',
      'msfu_sfu_worker_realtime_demotions',
      'msfu_viewers',
      'msfu_event_loop_delay_ms',
      'msfu_moderation_drops',
    ]) {
      assert.match(m.body, new RegExp(`# TYPE ${name} `), name);
    }
    const o = await req('GET', '/openapi.json');
    assert.equal(o.statusCode, 200);
    const doc = o.json() as { openapi: string; paths: Record<string, Record<string, { requestBody?: unknown }>> };
    assert.equal(doc.openapi, '3.0.3');
    for (const p of [
      '/v1/streams',
      '/v1/streams/{streamId}/kill',
      '/v1/review/claim',
      '/v1/review/{id}/resolve',
      '/v1/appeals/{id}',
      '/v1/policies/activate',
      '/v1/policies/shadow',
      '/v1/policies/shadow/report',
      '/v1/models',
      '/whip/{streamId}',
      '/whep/{streamId}',
    ])
      assert.ok(doc.paths[p], p);
    assert.ok(doc.paths['/v1/streams/{streamId}/kill'].post.requestBody, 'request schema documented');
    const ops = await req('GET', '/ops');
    assert.equal(ops.statusCode, 200);
    assert.match(ops.headers['content-type'] as string, /text\/html/);
  });

  test('unknown route and config summary', async () => {
    const r = await req('GET', '/v1/nope', tokens.admin);
    assert.equal(r.statusCode, 404);
    assert.equal(r.json().code, 'SRV_ERR_NOT_FOUND');
    const text = summarizeConfig(server.config, 1234);
    assert.match(text, /listen\s+127\.0\.0\.1:1234/);
    assert.doesNotMatch(text, /xxxxxxxx/, 'the secret is not printed');
  });

  const protectedRoutes: {
    method: 'GET' | 'POST' | 'DELETE';
    url: string;
    role: 'reviewer' | 'admin';
    body?: unknown;
  }[] = [
    { method: 'GET', url: '/v1/streams', role: 'reviewer' },
    { method: 'GET', url: '/v1/streams/s1', role: 'reviewer' },
    { method: 'POST', url: '/v1/streams/s1/kill', role: 'admin', body: { reason: 'x' } },
    { method: 'POST', url: '/v1/streams/s1/resume', role: 'admin', body: {} },
    {
      method: 'POST',
      url: '/v1/streams/s1/gate',
      role: 'admin',
      body: { jurisdiction: 'DE', video: 'blank', reason: 'x' },
    },
    { method: 'GET', url: '/v1/decisions', role: 'reviewer' },
    { method: 'GET', url: '/v1/decisions/d', role: 'reviewer' },
    { method: 'GET', url: '/v1/statements', role: 'reviewer' },
    { method: 'GET', url: '/v1/review', role: 'reviewer' },
    { method: 'GET', url: '/v1/review/x', role: 'reviewer' },
    { method: 'POST', url: '/v1/review/claim', role: 'reviewer', body: {} },
    { method: 'POST', url: '/v1/review/x/resolve', role: 'reviewer', body: { outcome: 'uphold' } },
    { method: 'GET', url: '/v1/appeals', role: 'reviewer' },
    { method: 'GET', url: '/v1/policies', role: 'reviewer' },
    {
      method: 'POST',
      url: '/v1/policies/validate',
      role: 'admin',
      body: { files: [{ filename: 'a.yaml', text: 'x' }] },
    },
    { method: 'POST', url: '/v1/policies/activate', role: 'admin', body: {} },
    {
      method: 'POST',
      url: '/v1/policies/shadow',
      role: 'admin',
      body: { thresholds: [{ jurisdiction: 'global', category: 'sexual_explicit', red: 0.6 }] },
    },
    { method: 'DELETE', url: '/v1/policies/shadow', role: 'admin' },
    { method: 'GET', url: '/v1/policies/shadow', role: 'reviewer' },
    { method: 'GET', url: '/v1/policies/shadow/report', role: 'reviewer' },
    { method: 'GET', url: '/v1/models', role: 'reviewer' },
    { method: 'GET', url: '/v1/audit', role: 'admin' },
    { method: 'POST', url: '/v1/tokens', role: 'admin', body: { role: 'viewer' } },
  ];

  test('every protected route: 401 without token / expired / foreign signature / malformed header, 403 with the wrong role', async () => {
    for (const r of protectedRoutes) {
      const none = await req(r.method, r.url, undefined, r.body);
      assert.equal(none.statusCode, 401, `${r.method} ${r.url} no token`);
      assert.equal(none.json().code, 'SRV_ERR_UNAUTHORIZED');
      assert.match(none.headers['www-authenticate'] as string, /^Bearer/);
      const expired = await req(r.method, r.url, tokens.expired, r.body);
      assert.equal(expired.statusCode, 401, `${r.url} expired`);
      assert.match(expired.json().message, /expired/);
      const foreign = await req(r.method, r.url, tokens.foreign, r.body);
      assert.equal(foreign.statusCode, 401, `${r.url} foreign`);
      assert.match(foreign.json().message, /signature/);
      const basic = await req(r.method, r.url, undefined, r.body, { authorization: 'Basic abc' });
      assert.equal(basic.statusCode, 401);
      const wrong = await req(r.method, r.url, r.role === 'admin' ? tokens.reviewer : tokens.viewer, r.body);
      assert.equal(wrong.statusCode, 403, `${r.method} ${r.url} wrong role`);
      assert.equal(wrong.json().code, 'SRV_ERR_FORBIDDEN');
      const pub = await req(r.method, r.url, tokens.pubS1, r.body);
      assert.equal(pub.statusCode, 403, `${r.url} publisher`);
    }
  });

  test('malformed bodies and queries get clear coded 4xx errors', async () => {
    const cases: [string, string, unknown, Record<string, string>, number][] = [
      ['/v1/streams/s1/kill', '{"reason":', undefined as never, { 'content-type': 'application/json' }, 400],
      ['/v1/streams/s1/kill', JSON.stringify({}), undefined as never, { 'content-type': 'application/json' }, 400],
      [
        '/v1/streams/s1/kill',
        JSON.stringify({ reason: 'x', extra: 1 }),
        undefined as never,
        { 'content-type': 'application/json' },
        400,
      ],
      [
        '/v1/streams/s1/kill',
        JSON.stringify({ reason: 5 }),
        undefined as never,
        { 'content-type': 'application/json' },
        400,
      ],
      [
        '/v1/streams/s1/kill',
        'reason=x',
        undefined as never,
        { 'content-type': 'application/x-www-form-urlencoded' },
        415,
      ],
      [
        '/v1/streams/s1/gate',
        JSON.stringify({ jurisdiction: 'germany', video: 'blank', reason: 'x' }),
        undefined as never,
        { 'content-type': 'application/json' },
        400,
      ],
      [
        '/v1/streams/s1/gate',
        JSON.stringify({ jurisdiction: 'DE', reason: 'x' }),
        undefined as never,
        { 'content-type': 'application/json' },
        400,
      ],
      [
        '/v1/review/x/resolve',
        JSON.stringify({ outcome: 'maybe' }),
        undefined as never,
        { 'content-type': 'application/json' },
        400,
      ],
      [
        '/v1/policies/validate',
        JSON.stringify({ files: [] }),
        undefined as never,
        { 'content-type': 'application/json' },
        400,
      ],
      ['/v1/tokens', JSON.stringify({ role: 'god' }), undefined as never, { 'content-type': 'application/json' }, 400],
      [
        '/v1/streams/bad%20id/kill',
        JSON.stringify({ reason: 'x' }),
        undefined as never,
        { 'content-type': 'application/json' },
        400,
      ],
    ];
    for (const [url, body, , headers, status] of cases) {
      const r = await server.app.inject({
        method: 'POST',
        url,
        headers: { ...bearer(tokens.admin), ...headers },
        payload: body,
      });
      assert.equal(r.statusCode, status, `${url} ${body}: ${r.body}`);
      const j = r.json();
      assert.equal(j.code, 'SRV_ERR_BAD_REQUEST', r.body);
      assert.equal(j.statusCode, status);
      assert.ok(j.message.length > 5);
    }
    const q = await req('GET', '/v1/decisions?limit=abc', tokens.admin);
    assert.equal(q.statusCode, 400);
    assert.match(q.json().message, /limit/);
  });

  test('WHIP: publish token bound to one stream; viewer token and wrong stream refused', async () => {
    assert.equal((await publish('s1', undefined)).statusCode, 401);
    const wrong = await publish('s2', tokens.pubS1);
    assert.equal(wrong.statusCode, 403);
    assert.equal(wrong.json().code, 'SRV_ERR_FORBIDDEN');
    assert.equal((await publish('s1', tokens.viewer)).statusCode, 403);
    assert.equal((await publish('s1', tokens.expired)).statusCode, 401);
    const ok = await publish('s1', tokens.pubS1);
    assert.equal(ok.statusCode, 201, ok.body);
    assert.match(ok.headers.location as string, /^\/whip\/s1\//);
    // The registry shows it (cluster-wide list), with this node's id.
    const list = (await req('GET', '/v1/streams', tokens.reviewer)).json().streams as {
      streamId: string;
      nodeId: string;
      state: string;
      local: boolean;
    }[];
    const s1 = list.find((s) => s.streamId === 's1');
    assert.equal(s1?.state, 'live');
    assert.equal(s1?.nodeId, server.nodeId);
    assert.equal((await req('GET', '/v1/streams/s1', tokens.reviewer)).json().local, true);
    assert.equal((await req('GET', '/v1/streams/none', tokens.reviewer)).statusCode, 404);
    const del = await server.app.inject({
      method: 'DELETE',
      url: ok.headers.location as string,
      headers: bearer(tokens.pubS1),
    });
    assert.ok(del.statusCode === 200 || del.statusCode === 204, `delete ${del.statusCode}`);
    assert.equal(sfu.getStream('s1'), undefined);
  });

  test('WHEP: anonymous allowed; jurisdiction from the token; header trusted only when opted in', async () => {
    const pub = await server.auth.sign({ role: 'publisher', streamId: 'w1' });
    assert.equal((await publish('w1', pub)).statusCode, 201);
    const anon = await view('w1', undefined, { 'x-viewer-jurisdiction': 'SA' }, '?jurisdiction=SA');
    assert.equal(anon.statusCode, 201, anon.body);
    const viewers = [...(sfu.getStream('w1') as FakeStream).viewers.values()];
    assert.equal(viewers.at(-1)?.jurisdiction, undefined, 'header not trusted by default');
    assert.equal((await view('w1', tokens.viewer)).statusCode, 201);
    assert.equal([...(sfu.getStream('w1') as FakeStream).viewers.values()].at(-1)?.jurisdiction, 'SE');
    const bound = await server.auth.sign({ role: 'viewer', streamId: 'other' });
    assert.equal((await view('w1', bound)).statusCode, 403);
    assert.equal((await view('w1', tokens.pubS1)).statusCode, 403, 'a publish token is not a viewer token');
    assert.equal((await view('w1', tokens.expired)).statusCode, 401);

    const { server: trusting, sfu: sfu2 } = await makeServer({ trustJurisdictionHeader: true, anonymousViewers: true });
    try {
      const p = await trusting.auth.sign({ role: 'publisher', streamId: 'w2' });
      await trusting.app.inject({
        method: 'POST',
        url: '/whip/w2',
        headers: { 'content-type': 'application/sdp', ...bearer(p) },
        payload: SDP,
      });
      const r = await trusting.app.inject({
        method: 'POST',
        url: '/whep/w2',
        headers: { 'content-type': 'application/sdp', 'x-viewer-jurisdiction': 'sa' },
        payload: SDP,
      });
      assert.equal(r.statusCode, 201);
      assert.equal([...(sfu2.getStream('w2') as FakeStream).viewers.values()][0].jurisdiction, 'SA');
    } finally {
      await trusting.close();
    }
    const { server: closed } = await makeServer({ anonymousViewers: false });
    try {
      const p = await closed.auth.sign({ role: 'publisher', streamId: 'w3' });
      await closed.app.inject({
        method: 'POST',
        url: '/whip/w3',
        headers: { 'content-type': 'application/sdp', ...bearer(p) },
        payload: SDP,
      });
      const r = await closed.app.inject({
        method: 'POST',
        url: '/whep/w3',
        headers: { 'content-type': 'application/sdp' },
        payload: SDP,
      });
      assert.equal(r.statusCode, 401);
    } finally {
      await closed.close();
    }
  });

  test('manual kill cuts the publisher and every viewer, tells streamer and viewers, is audited and blocks re-publishing until resumed', async () => {
    const pub = await server.auth.sign({ role: 'publisher', streamId: 'k1', sub: 'streamer-k1' });
    assert.equal((await publish('k1', pub)).statusCode, 201);
    const watching = await view('k1', tokens.viewer);
    assert.equal(watching.statusCode, 201);
    const session = String(watching.headers.location).split('/').pop();
    const stream = sfu.getStream('k1') as FakeStream;
    const viewer = [...stream.viewers.values()][0] as FakeViewer;
    const wsBase = server.url.replace('http', 'ws');
    const streamerWs = await openEvents(`${wsBase}/v1/events?role=streamer&streamId=k1&access_token=${pub}`);
    const viewerWs = await openEvents(
      `${wsBase}/v1/events?role=viewer&streamId=k1&session=${session}&access_token=${tokens.viewer}`,
    );
    const opsWs = await openEvents(`${wsBase}/v1/events?role=ops&access_token=${tokens.reviewer}`);
    try {
      await streamerWs.next((m) => m.type === 'stream.status' && m.state === 'live');
      await opsWs.next((m) => m.type === 'review.queue');
      const r = await req('POST', '/v1/streams/k1/kill', tokens.admin, {
        reason: 'nudity on camera',
        clause: 'ToS 4.2',
      });
      assert.equal(r.statusCode, 202, r.body);
      const body = r.json();
      assert.equal(body.local, true);
      assert.equal(stream.closed, true);
      assert.equal(stream.closeReason?.code, 'killed');
      assert.equal(viewer.closed, true);
      assert.equal(viewer.closeReason?.code, 'killed');
      const statementId = body.statement.id as string;
      assert.equal(viewer.closeReason?.statementId, statementId);
      for (const ws of [streamerWs, viewerWs, opsWs]) {
        const k = await ws.next((m) => m.type === 'stream.killed');
        assert.equal(k.streamId, 'k1');
        assert.equal(k.reason, 'nudity on camera');
        assert.equal(k.statementId, statementId);
        assert.match(k.appealUrl as string, new RegExp(`/v1/appeals/${statementId}$`));
      }
      await opsWs.next((m) => m.type === 'decision');
      // Statement of reasons: restriction, facts, automation, ground, redress.
      const st = (await req('GET', `/v1/statements/${statementId}`, pub)).json();
      assert.equal(st.restriction.action, 'kill_stream');
      assert.deepEqual(st.automated, { detection: false, decision: false });
      assert.equal(st.ground.clause, 'ToS 4.2');
      assert.ok(st.redress.appealUrl.endsWith(statementId));
      const otherPub = await server.auth.sign({ role: 'publisher', streamId: 'zzz' });
      assert.equal((await req('GET', `/v1/statements/${statementId}`, otherPub)).statusCode, 403);
      assert.equal((await req('GET', '/v1/statements/none', tokens.reviewer)).statusCode, 404);
      assert.equal(
        (await req('GET', '/v1/statements?streamId=k1', tokens.reviewer)).json().statements[0].id,
        statementId,
      );
      const decisions = (await req('GET', '/v1/decisions?streamId=k1', tokens.reviewer)).json().decisions;
      assert.equal(decisions[0].action, 'kill_stream');
      assert.equal(decisions[0].actor, 'root');
      assert.equal(
        (await req('GET', `/v1/decisions/${decisions[0].id}`, tokens.reviewer)).json().statementId,
        statementId,
      );
      assert.equal((await req('GET', '/v1/decisions/none', tokens.reviewer)).statusCode, 404);
      const audit = (await req('GET', '/v1/audit', tokens.admin)).json();
      assert.deepEqual(audit.verification, { ok: true });
      assert.ok(
        audit.entries.some(
          (e: { body: { type: string; streamId: string } }) =>
            e.body.type === 'stream.killed' && e.body.streamId === 'k1',
        ),
      );
      // Registry: killed; re-publishing refused until resume.
      await sleep(50);
      const rec = (await req('GET', '/v1/streams/k1', tokens.reviewer)).json();
      assert.equal(rec.state, 'killed');
      assert.equal(rec.blocked.statementId, statementId);
      const again = await publish('k1', pub);
      assert.equal(again.statusCode, 403);
      assert.equal(again.json().code, 'SRV_ERR_STREAM_BLOCKED');
      const resume = await req('POST', '/v1/streams/k1/resume', tokens.admin, { note: 'false positive' });
      assert.equal(resume.statusCode, 200);
      assert.equal(resume.json().wasBlocked, true);
      await streamerWs.next((m) => m.type === 'warning');
      assert.equal((await publish('k1', pub)).statusCode, 201);
      const audit2 = (await req('GET', '/v1/audit?afterSeq=1&limit=500', tokens.admin)).json();
      assert.deepEqual(audit2.verification, { ok: true });
      assert.ok(audit2.entries.some((e: { body: { type: string } }) => e.body.type === 'stream.resumed'));
    } finally {
      for (const ws of [streamerWs, viewerWs, opsWs]) ws.ws.close();
    }
  });

  test('manual gate: blanks one jurisdiction (late joiners too), tells those viewers why', async () => {
    const pub = await server.auth.sign({ role: 'publisher', streamId: 'g1' });
    assert.equal((await publish('g1', pub)).statusCode, 201);
    const de = await server.auth.sign({ role: 'viewer', jurisdiction: 'DE', viewerId: 'de1' });
    await view('g1', de);
    await view('g1', tokens.viewer);
    const ws = await openEvents(
      `${server.url.replace('http', 'ws')}/v1/events?role=viewer&streamId=g1&access_token=${de}`,
    );
    try {
      const r = await req('POST', '/v1/streams/g1/gate', tokens.admin, {
        jurisdiction: 'DE',
        video: 'blank',
        audio: 'mute',
        reason: 'copyright music',
      });
      assert.equal(r.statusCode, 200, r.body);
      const viewers = [...(sfu.getStream('g1') as FakeStream).viewers.values()];
      assert.deepEqual(viewers.find((v) => v.jurisdiction === 'DE')?.gate, { video: 'blank', audio: 'mute' });
      assert.deepEqual(viewers.find((v) => v.jurisdiction === 'SE')?.gate, { video: 'forward', audio: 'forward' });
      const f = await ws.next((m) => m.type === 'viewer.filtered');
      assert.deepEqual([f.viewerId, f.video, f.audio, f.reason], ['de1', 'blank', 'mute', 'copyright music']);
      const late = await server.auth.sign({ role: 'viewer', jurisdiction: 'DE' });
      await view('g1', late);
      const lateViewer = [...(sfu.getStream('g1') as FakeStream).viewers.values()].at(-1);
      assert.deepEqual(lateViewer?.gate, { video: 'blank', audio: 'mute' }, 'late joiner filtered from the start');
      await req('POST', '/v1/streams/g1/resume', tokens.admin, {});
      assert.deepEqual(
        [...(sfu.getStream('g1') as FakeStream).viewers.values()].find((v) => v.jurisdiction === 'DE')?.gate,
        { video: 'forward', audio: 'forward' },
      );
    } finally {
      ws.ws.close();
    }
  });

  test('review queue: claim (explicit or next), conflicts, resolve needs your own claim, uphold restricts with a statement', async () => {
    const pub = await server.auth.sign({ role: 'publisher', streamId: 'r1' });
    assert.equal((await publish('r1', pub)).statusCode, 201);
    const de = await server.auth.sign({ role: 'viewer', jurisdiction: 'DE' });
    await view('r1', de);
    const item: PolicyReviewItem = {
      id: 'rev_test_1',
      streamId: 'r1',
      type: 'amber',
      priority: 1,
      createdAt: Date.now(),
      policyVersion: server.policies.current.version,
      jurisdictions: ['DE'],
      categories: [{ category: 'sexual_suggestive', score: 0.55, bucket: 'amber' }],
      evidence: {
        sampleSeqs: [3],
        timeRange: { from: 1, to: 2 },
        scores: [{ category: 'sexual_suggestive', score: 0.55 }],
        matches: [],
        text: [],
        textContext: [],
        thumbnailRefs: [],
      },
      proposedAction: 'blank_video',
    };
    await server.control.enqueueReview(item, { thumbnail: 'data:image/png;base64,iVBORw0KGgo=' });
    const list = (await req('GET', '/v1/review', tokens.reviewer)).json();
    assert.ok(list.depth >= 1);
    assert.equal(
      list.items.find((i: { id: string }) => i.id === 'rev_test_1').thumbnail,
      'data:image/png;base64,iVBORw0KGgo=',
    );
    assert.equal((await req('GET', '/v1/review/rev_test_1', tokens.reviewer)).json().status, 'pending');
    assert.equal((await req('GET', '/v1/review/none', tokens.reviewer)).statusCode, 404);
    const notClaimed = await req('POST', '/v1/review/rev_test_1/resolve', tokens.reviewer, { outcome: 'uphold' });
    assert.equal(notClaimed.statusCode, 409);
    assert.equal(notClaimed.json().code, 'SRV_ERR_CLAIM_EXPIRED');
    const claim = await req('POST', '/v1/review/claim', tokens.reviewer, { itemId: 'rev_test_1' });
    assert.equal(claim.statusCode, 200, claim.body);
    assert.equal(claim.json().claim.reviewer, 'alice');
    const steal = await req('POST', '/v1/review/claim', tokens.reviewer2, { itemId: 'rev_test_1' });
    assert.equal(steal.statusCode, 409);
    assert.equal(steal.json().code, 'SRV_ERR_CONFLICT');
    const other = await req('POST', '/v1/review/rev_test_1/resolve', tokens.reviewer2, { outcome: 'overturn' });
    assert.equal(other.statusCode, 409);
    const res = await req('POST', '/v1/review/rev_test_1/resolve', tokens.reviewer, {
      outcome: 'uphold',
      note: 'confirmed',
    });
    assert.equal(res.statusCode, 200, res.body);
    const { decision, item: resolved } = res.json();
    assert.equal(resolved.status, 'resolved');
    assert.equal(decision.effect.kind, 'restrict');
    assert.equal(decision.statement.automated.decision, false);
    assert.equal((await req('GET', `/v1/statements/${decision.statement.id}`, tokens.reviewer)).statusCode, 200);
    const v = [...(sfu.getStream('r1') as FakeStream).viewers.values()][0];
    assert.equal(v.gate.video, 'blank', 'upheld amber blanks the DE viewer');
    assert.equal(
      (await req('POST', '/v1/review/rev_test_1/resolve', tokens.reviewer, { outcome: 'uphold' })).statusCode,
      409,
    );
    // Claim-next: nothing claimable -> 204.
    for (let i = 0; i < 50; i++)
      if ((await req('POST', '/v1/review/claim', tokens.reviewer2, {})).statusCode === 204) break;
    assert.equal((await req('POST', '/v1/review/claim', tokens.reviewer2, {})).statusCode, 204);
    assert.equal((await req('POST', '/v1/review/claim', tokens.reviewer2, { itemId: 'none' })).statusCode, 404);
  });

  test('appeal: the streamer appeals a kill, the appeal jumps the queue, overturning lets the stream publish again', async () => {
    const pub = await server.auth.sign({ role: 'publisher', streamId: 'a1', sub: 'streamer-a1' });
    assert.equal((await publish('a1', pub)).statusCode, 201);
    const kill = (await req('POST', '/v1/streams/a1/kill', tokens.admin, { reason: 'looked violent' })).json();
    const statementId = kill.statement.id as string;
    assert.equal((await publish('a1', pub)).statusCode, 403);
    await server.control.enqueueReview({
      id: 'rev_older_amber',
      streamId: 'x',
      type: 'amber',
      priority: 1,
      createdAt: Date.now() - 60_000,
      policyVersion: 'v',
      jurisdictions: ['DE'],
      categories: [],
      evidence: {
        sampleSeqs: [],
        timeRange: { from: 0, to: 0 },
        scores: [],
        matches: [],
        text: [],
        textContext: [],
        thumbnailRefs: [],
      },
    });
    const otherPub = await server.auth.sign({ role: 'publisher', streamId: 'zzz' });
    assert.equal((await req('POST', `/v1/appeals/${statementId}`, otherPub, { grounds: 'x' })).statusCode, 403);
    assert.equal((await req('POST', `/v1/appeals/none`, pub, { grounds: 'x' })).statusCode, 404);
    assert.equal((await req('POST', `/v1/appeals/${statementId}`, pub, { grounds: '' })).statusCode, 400);
    const ap = await req('POST', `/v1/appeals/${statementId}`, pub, { grounds: 'It was a film prop.' });
    assert.equal(ap.statusCode, 201, ap.body);
    const appeal = ap.json();
    assert.equal(appeal.type, 'appeal');
    assert.equal(appeal.statementId, statementId);
    const queue = (await req('GET', '/v1/review', tokens.reviewer)).json().items as { id: string; type: string }[];
    assert.equal(queue[0].id, appeal.id, 'appeal first, ahead of an older amber item');
    const claim = await req('POST', '/v1/review/claim', tokens.reviewer2, {});
    assert.equal(claim.json().id, appeal.id);
    const res = await req('POST', `/v1/review/${appeal.id}/resolve`, tokens.reviewer2, {
      outcome: 'overturn',
      note: 'prop',
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().decision.effect.kind, 'lift');
    const status = (await req('GET', `/v1/appeals/${statementId}`, pub)).json();
    assert.equal(status.appeals[0].status, 'resolved');
    assert.equal(status.appeals[0].resolution.outcome, 'overturn');
    assert.ok(status.appeals[0].outcomeStatementId);
    assert.equal((await req('GET', `/v1/appeals/${statementId}`, otherPub)).statusCode, 403);
    assert.ok(
      (await req('GET', '/v1/appeals', tokens.reviewer)).json().appeals.some((a: { id: string }) => a.id === appeal.id),
    );
    assert.equal((await publish('a1', pub)).statusCode, 201, 'overturned kill: may publish again');
  });

  test('policies: get, validate (issues with file:line), activate (audited, broken files refused)', async () => {
    const p = (await req('GET', '/v1/policies', tokens.reviewer)).json();
    assert.equal(p.loaded, true);
    assert.ok(p.categories.includes('sexual_explicit'));
    const files = [
      { filename: 'policies/default.yaml', text: readFileSync('policies/default.yaml', 'utf8') },
      ...['DE', 'SE'].map((j) => ({
        filename: `policies/jurisdictions/${j}.yaml`,
        text: readFileSync(`policies/jurisdictions/${j}.yaml`, 'utf8'),
      })),
    ];
    const ok = (await req('POST', '/v1/policies/validate', tokens.admin, { files })).json();
    assert.equal(ok.ok, true, JSON.stringify(ok));
    assert.match(ok.version, /^[0-9a-f]{16}$/);
    const broken = (
      await req('POST', '/v1/policies/validate', tokens.admin, {
        files: [{ filename: 'bad.yaml', text: 'apiVersion: policy/v1\nkind: PolicyBase\nname: [' }],
      })
    ).json();
    assert.equal(broken.ok, false);
    assert.match(broken.code, /^POL_ERR_/);
    assert.ok(broken.issues.length >= 1);
    const before = p.version;
    const unshadowed = await req('POST', '/v1/policies/activate', tokens.admin, { files });
    assert.equal(unshadowed.statusCode, 409, 'a new version without a shadow report needs force');
    assert.equal(unshadowed.json().code, 'SRV_ERR_SHADOW_REQUIRED');
    const act = await req('POST', '/v1/policies/activate', tokens.admin, { files, force: true });
    assert.equal(act.statusCode, 200, act.body);
    assert.equal(act.json().forced, true);
    assert.equal(act.json().previousVersion, before);
    assert.equal((await req('GET', '/v1/policies', tokens.reviewer)).json().version, ok.version);
    const bad = await req('POST', '/v1/policies/activate', tokens.admin, {
      files: [{ filename: 'bad.yaml', text: 'kind: nope' }],
    });
    assert.ok(bad.statusCode >= 400 && bad.statusCode < 500);
    assert.match(bad.json().code, /^POL_ERR_/);
    assert.equal(
      (await req('GET', '/v1/policies', tokens.reviewer)).json().version,
      ok.version,
      'last good policy stays',
    );
    const reload = await req('POST', '/v1/policies/activate', tokens.admin, { force: true });
    assert.equal(reload.statusCode, 200);
    assert.equal(reload.json().version, before, 'reloading the directory restores the original');
  });

  test('models status and token issuing', async () => {
    const m = (await req('GET', '/v1/models', tokens.reviewer)).json();
    assert.equal(m.backend, 'onnx');
    const t = await req('POST', '/v1/tokens', tokens.admin, { role: 'publisher', streamId: 't1', ttlSeconds: 60 });
    assert.equal(t.statusCode, 201);
    assert.equal((await publish('t1', t.json().token)).statusCode, 201);
    const noStream = await req('POST', '/v1/tokens', tokens.admin, { role: 'publisher' });
    assert.equal(noStream.statusCode, 400);
    assert.equal(noStream.json().code, 'SRV_ERR_BAD_REQUEST');
  });

  test('events: upgrade refused with coded HTTP errors; msgpack frames on request', async () => {
    const base = server.url.replace('http', 'ws');
    await assert.rejects(
      openEvents(`${base}/v1/events?role=ops`),
      (e: { statusCode?: number }) => e.statusCode === 401,
    );
    await assert.rejects(
      openEvents(`${base}/v1/events?role=ops&access_token=${tokens.viewer}`),
      (e: { statusCode?: number }) => e.statusCode === 403,
    );
    await assert.rejects(
      openEvents(`${base}/v1/events?role=streamer&streamId=s9&access_token=${tokens.pubS1}`),
      (e: { statusCode?: number }) => e.statusCode === 403,
    );
    await assert.rejects(
      openEvents(`${base}/v1/events?role=viewer`),
      (e: { statusCode?: number }) => e.statusCode === 400,
    );
    await assert.rejects(
      openEvents(`${base}/v1/events?role=king&access_token=${tokens.admin}`),
      (e: { statusCode?: number }) => e.statusCode === 400,
    );
    const ws = new WebSocketClient(`${base}/v1/events?role=ops&format=msgpack&access_token=${tokens.admin}`);
    const first = await new Promise<Record<string, unknown>>((resolve, reject) => {
      ws.on('message', (data, isBinary) =>
        isBinary ? resolve(unpack(data) as Record<string, unknown>) : reject(new Error('text frame')),
      );
      ws.on('error', reject);
    });
    assert.equal(first.type, 'review.queue');
    assert.equal(typeof first.depth, 'number');
    ws.close();
    assert.ok(pack({ a: 1 }).length > 0);
  });
});
