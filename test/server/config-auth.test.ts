// Configuration (file < env < overrides, validation, production needs a secret) and token rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { ENV_KEYS, loadConfig } from '../../server/config.ts';
import { Auth } from '../../server/auth.ts';
import type { SrvError } from '../../server/errors.ts';

test('config: defaults, YAML/JSON file, env over file, argv over env; invalid values are coded errors', () => {
  const d = loadConfig({ env: {} });
  assert.equal(d.port, 8080);
  assert.equal(d.host, '0.0.0.0');
  assert.equal(d.mode, 'dev');
  assert.equal(d.trustJurisdictionHeader, false);
  assert.equal(d.redisUrl, undefined);
  const dir = mkdtempSync(join(tmpdir(), 'msfu-cfg-'));
  try {
    const yaml = join(dir, 'c.yaml');
    writeFileSync(
      yaml,
      'port: 9000\nhost: 127.0.0.1\ntrustJurisdictionHeader: true\nredisUrl: redis://10.0.0.1:6379\n',
    );
    const c = loadConfig({ argv: ['--config', yaml], env: { PORT: '9100' } });
    assert.equal(c.port, 9100, 'env over file');
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.trustJurisdictionHeader, true);
    assert.equal(c.redisUrl, 'redis://10.0.0.1:6379');
    assert.equal(
      loadConfig({ argv: ['--config', yaml, '--port', '9200', '--demo'], env: { PORT: '9100' } }).port,
      9200,
    );
    const json = join(dir, 'c.json');
    writeFileSync(json, JSON.stringify({ inferenceBackend: 'triton', tritonUrl: 'triton:8001' }));
    assert.equal(loadConfig({ env: { CONFIG_FILE: json } }).inferenceBackend, 'triton');
    writeFileSync(json, JSON.stringify({ bogus: 1 }));
    assert.throws(
      () => loadConfig({ env: { CONFIG_FILE: json } }),
      (e: SrvError) => e.code === 'SRV_ERR_CONFIG' && /bogus/.test(e.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  for (const env of [
    { PORT: 'abc' },
    { PORT: '70000' },
    { INFERENCE_BACKEND: 'gpu' },
    { AUTH_SECRET: 'short' },
    { REDIS_URL: 'not a url' },
    { MODE: 'production' },
  ]) {
    assert.throws(
      () => loadConfig({ env }),
      (e: SrvError) => e.code === 'SRV_ERR_CONFIG',
      JSON.stringify(env),
    );
  }
  assert.throws(
    () => loadConfig({ argv: ['--config', '/nonexistent.yaml'], env: {} }),
    (e: SrvError) => e.code === 'SRV_ERR_CONFIG',
  );
  assert.equal(loadConfig({ env: { MODE: 'production', AUTH_SECRET: 'z'.repeat(32) } }).mode, 'production');
  assert.equal(loadConfig({ env: { TRUST_JURISDICTION_HEADER: 'yes' } }).trustJurisdictionHeader, true);
  // moderation at real-time priority only below forwarding's
  assert.throws(
    () => loadConfig({ env: { MODERATION_REALTIME_PRIORITY: '10' } }),
    (e: SrvError) => e.code === 'SRV_ERR_CONFIG' && /MEDIASOUP_REALTIME_PRIORITY above it/.test(e.message),
  );
  const rt = { MODERATION_REALTIME_PRIORITY: '10', MEDIASOUP_REALTIME_PRIORITY: '20' };
  assert.equal(loadConfig({ env: rt }).moderationRealtimePriority, 10);
  assert.equal(
    loadConfig({ env: { MODERATION_REALTIME_PRIORITY: '10', SFU_ENGINE: 'werift' } }).moderationRealtimePriority,
    10,
  );
});

test('auth: roles, stream binding, expiry, signature, jurisdiction', async () => {
  const auth = new Auth({ secret: 'k'.repeat(40) });
  const req = (token?: string, headers: Record<string, string> = {}, query: Record<string, string> = {}) => ({
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    query,
  });
  const pub = await auth.sign({ role: 'publisher', streamId: 'a' });
  assert.equal((await auth.authorizePublish(req(pub), 'a')).streamId, 'a');
  await assert.rejects(
    auth.authorizePublish(req(pub), 'b'),
    (e: SrvError) => e.code === 'SRV_ERR_FORBIDDEN' && e.statusCode === 403,
  );
  await assert.rejects(
    auth.authorizePublish(req(), 'a'),
    (e: SrvError) => e.code === 'SRV_ERR_UNAUTHORIZED' && e.statusCode === 401,
  );
  await assert.rejects(auth.sign({ role: 'publisher' }), (e: SrvError) => e.code === 'SRV_ERR_BAD_REQUEST');
  await assert.rejects(
    auth.sign({ role: 'viewer', jurisdiction: 'se' }),
    (e: SrvError) => e.code === 'SRV_ERR_BAD_REQUEST',
  );
  const expired = await auth.sign({ role: 'admin' }, -5);
  await assert.rejects(
    auth.verify(expired),
    (e: SrvError) => e.code === 'SRV_ERR_UNAUTHORIZED' && /expired/.test(e.message),
  );
  const tampered = pub.slice(0, -3) + (pub.endsWith('AAA') ? 'BBB' : 'AAA');
  await assert.rejects(auth.verify(tampered), (e: SrvError) => e.code === 'SRV_ERR_UNAUTHORIZED');
  await assert.rejects(auth.verify('not.a.jwt'), (e: SrvError) => e.code === 'SRV_ERR_UNAUTHORIZED');
  const viewer = await auth.sign({ role: 'viewer', jurisdiction: 'DE', viewerId: 'v1' });
  assert.deepEqual(
    (({ jurisdiction, viewerId }) => ({ jurisdiction, viewerId }))(
      await auth.authorizeView(req(viewer, { 'x-viewer-jurisdiction': 'SA' }), 'a'),
    ),
    { jurisdiction: 'DE', viewerId: 'v1' },
    'the token wins over the header',
  );
  assert.equal(
    (await auth.authorizeView(req(undefined, { 'x-viewer-jurisdiction': 'SA' }, { jurisdiction: 'SA' }), 'a'))
      .jurisdiction,
    undefined,
    'header not trusted by default',
  );
  const trusting = new Auth({ secret: 'k'.repeat(40), trustJurisdictionHeader: true });
  assert.equal(
    (await trusting.authorizeView(req(undefined, { 'x-viewer-jurisdiction': 'sa' }), 'a')).jurisdiction,
    'SA',
  );
  assert.equal((await trusting.authorizeView(req(undefined, {}, { jurisdiction: 'br' }), 'a')).jurisdiction, 'BR');
  assert.equal(
    (await trusting.authorizeView(req(undefined, { 'x-viewer-jurisdiction': 'Saudi' }), 'a')).jurisdiction,
    undefined,
    'malformed header ignored',
  );
  await assert.rejects(auth.require(req(viewer), ['reviewer']), (e: SrvError) => e.statusCode === 403);
  const admin = await auth.sign({ role: 'admin' });
  assert.equal((await auth.require(req(admin), ['reviewer'])).role, 'admin', 'admin passes every role check');
  assert.equal((await auth.principalOf(req(undefined, {}, { access_token: admin }), true))?.role, 'admin');
  assert.equal(
    await auth.principalOf(req(undefined, {}, { access_token: admin })),
    undefined,
    'query token only where allowed (WebSocket)',
  );
  await assert.rejects(
    auth.principalOf(req(undefined, { authorization: 'Token abc' })),
    (e: SrvError) => e.statusCode === 401,
  );
});

test('docs/CONFIG.md documents every environment variable and file key the server reads', () => {
  const doc = readFileSync(new URL('../../docs/CONFIG.md', import.meta.url), 'utf8');
  for (const [env, key] of Object.entries(ENV_KEYS))
    assert.ok(doc.includes(`| \`${env}\` | \`${key}\` |`), `${env} (${key}) missing from docs/CONFIG.md`);
});
