// GET /v1/audit once retention has trimmed the log's start: the chain still verifies, from the first
// kept entry (docs/RETENTION.md), and the answer says where verification began.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildServer } from '../../server/app.ts';
import { loadConfig } from '../../server/config.ts';
import { FakeSfu } from '../sfu/fake.ts';

test('a trimmed audit log verifies from its first kept entry', async () => {
  const config = loadConfig({
    env: {},
    overrides: {
      port: 0,
      host: '127.0.0.1',
      logLevel: 'silent',
      authSecret: 'x'.repeat(40),
      moderation: false,
      storeMaxAudit: 100,
    },
  });
  await using server = await buildServer(config, { sfu: new FakeSfu() });
  for (let i = 0; i < 250; i++) await server.store.appendAudit({ type: 'test', i });
  const admin = await server.auth.sign({ role: 'admin' });
  const r = await server.app.inject({
    method: 'GET',
    url: '/v1/audit?limit=500',
    headers: { authorization: `Bearer ${admin}` },
  });
  assert.equal(r.statusCode, 200, r.body);
  const body = r.json() as {
    entries: { seq: number }[];
    verification: { ok: boolean; reason?: string };
    verifiedFromSeq?: number;
  };
  assert.ok(body.entries.length <= 100 && body.entries.length > 0, `kept ${body.entries.length}`);
  assert.ok(body.entries[0]!.seq > 1, 'the log start was trimmed');
  assert.deepEqual(body.verification, { ok: true });
  assert.equal(body.verifiedFromSeq, body.entries[0]!.seq);
  const later = await server.app.inject({
    method: 'GET',
    url: '/v1/audit?afterSeq=5&limit=10',
    headers: { authorization: `Bearer ${admin}` },
  });
  assert.equal(later.json().verification.ok, true, 'an afterSeq older than the kept log verifies too');
});

test('GET /v1/audit/verify walks the whole keyed chain page by page', async () => {
  const config = loadConfig({
    env: {},
    overrides: { port: 0, host: '127.0.0.1', logLevel: 'silent', authSecret: 'y'.repeat(40), moderation: false },
  });
  await using server = await buildServer(config, { sfu: new FakeSfu() });
  for (let i = 0; i < 120; i++) await server.store.appendAudit({ type: 'test', i });
  const admin = await server.auth.sign({ role: 'admin' });
  const r = await server.app.inject({
    method: 'GET',
    url: '/v1/audit/verify?pageSize=25',
    headers: { authorization: `Bearer ${admin}` },
  });
  assert.equal(r.statusCode, 200, r.body);
  const body = r.json() as { ok: boolean; entries: number; lastSeq: number };
  assert.equal(body.ok, true, r.body);
  assert.ok(body.entries >= 120, `walked ${body.entries}`); // the startup policy activation is audited too
  assert.equal(body.lastSeq, body.entries);
  const viewer = await server.auth.sign({ role: 'viewer' });
  assert.equal(
    (
      await server.app.inject({
        method: 'GET',
        url: '/v1/audit/verify',
        headers: { authorization: `Bearer ${viewer}` },
      })
    ).statusCode,
    403,
  );
});
