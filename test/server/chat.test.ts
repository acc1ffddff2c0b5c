// Moderated live chat through the real server: a live WHIP stream (werift), the text moderator with
// the shipped policy (no classifier: INFERENCE_BACKEND=none), events over a real WebSocket per role
// and jurisdiction, the audit log, and the HTTP refusals.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WhipPublisher, syntheticClip } from '../../loadtest/clients/whip-publisher.ts';
import { buildServer } from '../../server/app.ts';
import { loadConfig } from '../../server/config.ts';
import { startE2EServer, type E2EServer } from '../e2e/helpers.ts';
import { FakeSfu } from '../sfu/fake.ts';
import { openEvents } from './helpers.ts';

type Events = Awaited<ReturnType<typeof openEvents>>;
const STREAM = 'chat1';

describe('chat', () => {
  let srv: E2EServer;
  let pub: WhipPublisher;
  let se: Events;
  let sa: Events;
  let streamer: Events;
  let ops: Events;
  const sockets: Events[] = [];

  const post = (text: unknown, token?: string, streamId = STREAM) =>
    srv.server.app.inject({
      method: 'POST',
      url: `/v1/streams/${streamId}/chat`,
      headers: token ? { authorization: `Bearer ${token}` } : {},
      payload: text as object,
    });
  const open = async (query: string): Promise<Events> => {
    const e = await openEvents(`${srv.url.replace('http', 'ws')}/v1/events?${query}`);
    sockets.push(e);
    return e;
  };
  const chats = (e: Events) => e.messages.filter((m) => m.type === 'chat');

  before(async () => {
    srv = await startE2EServer({ INFERENCE_BACKEND: 'none', OCR: 'false', VAD: 'false' });
    assert.ok(srv.server.moderation, 'the text moderator is loaded');
    const clip = await syntheticClip({ fps: 10, seconds: 1 });
    pub = await WhipPublisher.connect({
      url: `${srv.url}/whip/${STREAM}`,
      token: await srv.token({ role: 'publisher', sub: 'streamer1', streamId: STREAM }),
      ...clip,
      connectTimeoutMs: 20_000,
    });
    pub.start();
    const deadline = Date.now() + 15_000;
    while ((await srv.server.store.getStream(STREAM))?.state !== 'live') {
      if (Date.now() > deadline) throw new Error('the stream was not registered live within 15 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    se = await open(
      `role=viewer&streamId=${STREAM}&access_token=${await srv.token({ role: 'viewer', sub: 'v-se', jurisdiction: 'SE' })}`,
    );
    sa = await open(
      `role=viewer&streamId=${STREAM}&access_token=${await srv.token({ role: 'viewer', sub: 'v-sa', jurisdiction: 'SA' })}`,
    );
    streamer = await open(
      `role=streamer&streamId=${STREAM}&access_token=${await srv.token({ role: 'publisher', sub: 'streamer1', streamId: STREAM })}`,
    );
    ops = await open(`role=ops&access_token=${await srv.token({ role: 'reviewer', sub: 'rev' })}`);
  });

  after(async () => {
    for (const e of sockets) e.ws.close();
    await pub?.stop().catch(() => undefined);
    await srv?.close();
  });

  test('a clean message reaches viewers in every jurisdiction, the streamer and ops', async () => {
    const token = await srv.token({ role: 'viewer', sub: 'alice', jurisdiction: 'SE' });
    const r = await post({ text: '  hello everyone  ' }, token);
    assert.equal(r.statusCode, 201, r.body);
    const body = r.json() as { id: string; deliveredTo: string[]; withheldIn: string[]; hits: unknown[] };
    assert.deepEqual(body.withheldIn, []);
    assert.deepEqual(body.hits, []);
    assert.deepEqual(body.deliveredTo, ['BR', 'DE', 'SA', 'SE', 'TH', 'US', 'default']);
    for (const e of [se, sa, streamer, ops]) {
      const m = await e.next((x) => x.type === 'chat' && x.id === body.id);
      assert.equal(m.text, 'hello everyone');
      assert.equal(m.from, 'alice');
      assert.equal(m.streamId, STREAM);
      assert.equal(typeof m.at, 'number');
    }
  });

  test('profanity SA restricts reaches the SE viewer but not the SA viewer, and is audited', async () => {
    const token = await srv.token({ role: 'viewer', sub: 'bob', jurisdiction: 'SE' });
    const r = await post({ text: 'what the FUCK was that' }, token);
    assert.equal(r.statusCode, 201, r.body);
    const body = r.json() as {
      id: string;
      deliveredTo: string[];
      withheldIn: string[];
      hits: { category: string; term: string }[];
    };
    assert.deepEqual(body.withheldIn, ['SA']);
    assert.ok(
      !body.deliveredTo.includes('SA') && body.deliveredTo.includes('SE') && body.deliveredTo.includes('default'),
    );
    assert.ok(
      body.hits.some((h) => h.category === 'profanity' && h.term === 'fuck'),
      JSON.stringify(body.hits),
    );

    assert.equal((await se.next((x) => x.id === body.id)).text, 'what the FUCK was that');
    await streamer.next((x) => x.id === body.id);
    const o = await ops.next((x) => x.id === body.id);
    assert.deepEqual(o.withheldIn, ['SA']);
    assert.deepEqual(o.hits, body.hits);
    assert.equal(
      se.messages.find((x) => x.id === body.id)?.withheldIn,
      undefined,
      'viewers are not told where it was withheld',
    );

    // Events reach a socket in order: once a later clean message is in, the withheld one never came.
    const clean = (await post({ text: 'sorry' }, token)).json() as { id: string };
    await sa.next((x) => x.id === clean.id);
    assert.equal(
      chats(sa).some((x) => x.id === body.id),
      false,
      'the SA viewer did not get the withheld message',
    );

    const audit = (await srv.server.store.readAudit({ limit: 1000 }))
      .map((e) => e.body as Record<string, unknown>)
      .find((b) => b.type === 'chat.withheld' && b.id === body.id);
    assert.ok(audit, 'withheld message audited');
    assert.equal(audit.streamId, STREAM);
    assert.equal(audit.sender, 'bob');
    assert.equal(audit.senderJurisdiction, 'SE');
    assert.deepEqual(audit.jurisdictions, ['SA']);
    assert.deepEqual(audit.categories, ['profanity']);
    assert.ok((audit.terms as string[]).includes('fuck'));
    assert.equal(audit.policyVersion, srv.server.policies.current.version);
  });

  test('the streamer and an admin may chat; a DE slogan is withheld only where it is banned', async () => {
    const r1 = await post(
      { text: 'welcome!' },
      await srv.token({ role: 'publisher', sub: 'streamer1', streamId: STREAM }),
    );
    assert.equal(r1.statusCode, 201, r1.body);
    assert.equal((await se.next((x) => x.id === r1.json().id)).from, 'streamer1');
    const r2 = await post({ text: 'Sieg Heil' }, srv.adminToken);
    assert.equal(r2.statusCode, 201, r2.body);
    assert.deepEqual(r2.json().withheldIn, ['BR', 'DE']);
    await se.next((x) => x.id === r2.json().id);
  });

  test('bad bodies are 400 SRV_ERR_BAD_REQUEST', async () => {
    const token = await srv.token({ role: 'viewer', sub: 'carol', jurisdiction: 'SE' });
    for (const payload of [{}, { text: 'hi', extra: 1 }, { text: 'x'.repeat(501) }, { text: '   ' }, { text: 5 }]) {
      const r = await post(payload, token);
      assert.equal(r.statusCode, 400, `${JSON.stringify(payload).slice(0, 40)}: ${r.body}`);
      assert.equal(r.json().code, 'SRV_ERR_BAD_REQUEST');
    }
    // 500 characters after trimming is the most there is
    assert.equal((await post({ text: ` ${'x'.repeat(500)} ` }, token)).statusCode, 201);
  });

  test('refusals: no token 401, token bound elsewhere or wrong role 403, stream not live 404', async () => {
    const none = await post({ text: 'hi' });
    assert.equal(none.statusCode, 401);
    assert.equal(none.json().code, 'SRV_ERR_UNAUTHORIZED');
    const bound = await post(
      { text: 'hi' },
      await srv.token({ role: 'viewer', sub: 'dave', jurisdiction: 'SE', streamId: 'other' }),
    );
    assert.equal(bound.statusCode, 403);
    assert.equal(bound.json().code, 'SRV_ERR_FORBIDDEN');
    assert.equal(
      (await post({ text: 'hi' }, await srv.token({ role: 'publisher', sub: 'p2', streamId: 'other' }))).statusCode,
      403,
    );
    assert.equal((await post({ text: 'hi' }, await srv.token({ role: 'reviewer', sub: 'rev' }))).statusCode, 403);
    const gone = await post({ text: 'hi' }, srv.adminToken, 'nobody-here');
    assert.equal(gone.statusCode, 404);
    assert.equal(gone.json().code, 'SRV_ERR_NOT_FOUND');
  });

  test('a sender gets 5 messages per 10 s, then 429 SRV_ERR_RATE_LIMITED; others are unaffected', async () => {
    const token = await srv.token({ role: 'viewer', sub: 'spammer', jurisdiction: 'SE' });
    for (let i = 0; i < 5; i++) assert.equal((await post({ text: `msg ${i}` }, token)).statusCode, 201);
    const r = await post({ text: 'one more' }, token);
    assert.equal(r.statusCode, 429);
    assert.equal(r.json().code, 'SRV_ERR_RATE_LIMITED');
    assert.ok(Number(r.headers['retry-after']) >= 1);
    assert.equal(
      (await post({ text: 'hi' }, await srv.token({ role: 'viewer', sub: 'quiet', jurisdiction: 'SE' }))).statusCode,
      201,
    );
  });
});

test('with moderation off, chat is refused (503), never delivered unmoderated', async () => {
  const config = loadConfig({
    env: {},
    overrides: { port: 0, host: '127.0.0.1', logLevel: 'silent', authSecret: 'x'.repeat(40), moderation: false },
  });
  await using server = await buildServer(config, { sfu: new FakeSfu() });
  const r = await server.app.inject({
    method: 'POST',
    url: '/v1/streams/s1/chat',
    headers: { authorization: `Bearer ${await server.auth.sign({ role: 'admin', sub: 'root' })}` },
    payload: { text: 'hi' },
  });
  assert.equal(r.statusCode, 503);
  assert.equal(r.json().code, 'SRV_ERR_UNAVAILABLE');
});
