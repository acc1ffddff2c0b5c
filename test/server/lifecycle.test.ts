// Two bugs of a stream's lifecycle having several owners (issue 14 item 2), through the real server
// (control, enforcer, events) with a fake SFU and real verdicts from signals:
// - a manual gate was undone by the next verdict (control set viewer gates, the enforcer re-gated
//   every viewer without them); the enforcer now takes manual gates as overrides;
// - an automated kill emitted `stream.status killed` twice and told clients `stream.killed` only after
//   the media had stopped; now, as on the manual path, `stream.killed` first, then one status.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildServer } from '../../server/app.ts';
import { loadConfig } from '../../server/config.ts';
import type { EventAudience, EventMessage } from '../../server/events.ts';
import { badMatch, signal } from '../policies/helpers.ts';
import { FakeSfu, type FakeStream } from '../sfu/fake.ts';

const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n';

async function makeServer() {
  const sfu = new FakeSfu();
  const config = loadConfig({
    env: {},
    overrides: { port: 0, host: '127.0.0.1', logLevel: 'silent', authSecret: 'x'.repeat(40), moderation: false },
  });
  const server = await buildServer(config, { sfu });
  const inject = async (method: 'POST', url: string, token: string, payload: unknown, sdp = false) =>
    server.app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${token}`, ...(sdp ? { 'content-type': 'application/sdp' } : {}) },
      payload: payload as string,
    });
  return { server, sfu, inject, [Symbol.asyncDispose]: () => server.close() };
}

test('a manual gate survives the verdict changes that follow it', async () => {
  await using h = await makeServer();
  const pub = await h.server.auth.sign({ role: 'publisher', streamId: 's1' });
  assert.equal((await h.inject('POST', '/whip/s1', pub, SDP, true)).statusCode, 201);
  for (const j of ['DE', 'SE']) {
    const t = await h.server.auth.sign({ role: 'viewer', jurisdiction: j, viewerId: `v-${j}` });
    assert.equal((await h.inject('POST', '/whep/s1', t, SDP, true)).statusCode, 201);
  }
  const stream = h.sfu.getStream('s1') as FakeStream;
  const admin = await h.server.auth.sign({ role: 'admin' });
  const r = await h.inject('POST', '/v1/streams/s1/gate', admin, {
    jurisdiction: 'DE',
    video: 'blank',
    reason: 'court order',
  });
  assert.equal(r.statusCode, 200, r.body);
  assert.equal(stream.viewers.get('v-DE')?.gate.video, 'blank');
  // verdicts keep coming: green samples, then an amber one, then green again
  const scores = [0.6, 0.6, 0.6, 0.6, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05];
  const decisions = scores
    .map((sexy, i) => h.server.enforcer.onSignal(signal(i + 1, { 'nsfw.sexy': sexy }, { streamId: 's1' })))
    .filter((o) => o.decision);
  assert.ok(
    decisions.length >= 2,
    `the verdict changed and the enforcer re-gated the viewers (${decisions.length} decisions)`,
  );
  assert.equal(stream.viewers.get('v-DE')?.gate.video, 'blank', 'the manual gate is still in force');
  assert.equal(stream.viewers.get('v-SE')?.gate.video, 'forward');
  // a late joiner of that jurisdiction is gated from its first frame too
  const late = await h.server.auth.sign({ role: 'viewer', jurisdiction: 'DE', viewerId: 'v-DE2' });
  assert.equal((await h.inject('POST', '/whep/s1', late, SDP, true)).statusCode, 201);
  assert.equal(stream.viewers.get('v-DE2')?.gate.video, 'blank');
  // lifting it (resume) gives the verdict's gate back
  const lift = await h.inject('POST', '/v1/streams/s1/resume', admin, {});
  assert.equal(lift.statusCode, 200, lift.body);
  h.server.enforcer.onSignal(signal(20, { 'nsfw.sexy': 0.01 }, { streamId: 's1' }));
  assert.equal(stream.viewers.get('v-DE')?.gate.video, 'forward');
});

test('an automated kill tells clients first, then ends the media, and says stream.status killed once', async () => {
  await using h = await makeServer();
  const pub = await h.server.auth.sign({ role: 'publisher', streamId: 's1' });
  assert.equal((await h.inject('POST', '/whip/s1', pub, SDP, true)).statusCode, 201);
  const stream = h.sfu.getStream('s1') as FakeStream;
  const seen: { type: string; state?: string; mediaStopped: boolean }[] = [];
  const emit = h.server.events.emit.bind(h.server.events);
  h.server.events.emit = (audience: EventAudience, message: EventMessage) => {
    if (message.type === 'stream.killed' || message.type === 'stream.status')
      seen.push({
        type: message.type,
        state: message.type === 'stream.status' ? message.state : undefined,
        mediaStopped: stream.closed,
      });
    return emit(audience, message);
  };
  h.server.enforcer.onSignal(signal(1, {}, { streamId: 's1', matches: [badMatch] }));
  assert.equal(stream.closed, true);
  assert.equal(stream.closeReason?.code, 'killed');
  assert.deepEqual(seen, [
    { type: 'stream.killed', state: undefined, mediaStopped: false },
    { type: 'stream.status', state: 'killed', mediaStopped: true },
  ]);
});
