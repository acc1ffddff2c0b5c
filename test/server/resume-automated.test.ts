// An operator's resume lifts an automated kill on the node that made it: before, POST /resume cleared
// the store's block but that node's enforcer kept refusing the stream (SRV_ERR_STREAM_BLOCKED).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildServer } from '../../server/app.ts';
import { loadConfig } from '../../server/config.ts';
import { FakeSfu } from '../sfu/fake.ts';
import { badMatch, signal } from '../policies/helpers.ts';

test('admin resume lifts an automated kill on the node that killed the stream', async () => {
  const config = loadConfig({
    env: {},
    overrides: { port: 0, host: '127.0.0.1', logLevel: 'silent', authSecret: 'r'.repeat(40), moderation: false },
  });
  const sfu = new FakeSfu();
  await using server = await buildServer(config, { sfu });
  const stream = sfu.add('ra1');
  const now = Date.now();
  server.enforcer.onSignal(
    signal(1, {}, { streamId: 'ra1', matches: [badMatch], arrivedAt: now, completedAt: now + 5 }),
  );
  assert.equal(stream.closeReason?.code, 'killed', 'killed automatically');
  await server.store.flush();
  assert.ok(await server.control.blockOf('ra1'), 'blocked after the kill');
  const admin = await server.auth.sign({ role: 'admin', sub: 'ops' });
  const r = await server.app.inject({
    method: 'POST',
    url: '/v1/streams/ra1/resume',
    headers: { authorization: `Bearer ${admin}` },
    payload: {},
  });
  assert.equal(r.statusCode, 200, r.body);
  assert.equal(r.json().wasBlocked, true);
  assert.equal(server.enforcer.isBlocked('ra1'), undefined, "the enforcer's block is lifted");
  assert.equal(await server.control.blockOf('ra1'), undefined, 'the stream may publish again on this node');
});
