// Policy activations are kept in the store with their version: a node that restarts keeps the
// activated policy (it reverted to POLICY_DIR before), and a node that missed the activation message
// applies it within a heartbeat.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildServer } from '../../server/app.ts';
import { loadConfig } from '../../server/config.ts';
import { readPolicyDir } from '../../server/policy-store.ts';
import { MemoryStore } from '../../server/store/memory.ts';
import { FakeSfu } from '../sfu/fake.ts';

const config = (nodeId: string) =>
  loadConfig({
    env: {},
    overrides: {
      port: 0,
      host: '127.0.0.1',
      logLevel: 'silent',
      authSecret: 'p'.repeat(40),
      moderation: false,
      nodeId,
      heartbeatMs: 100,
    },
  });

test('an activated policy outlives a restart and reaches a node that missed the message', async () => {
  const store = new MemoryStore();
  const files = await readPolicyDir('policies');
  const edited = files.map((f, i) => (i === 0 ? { ...f, text: `${f.text}\n# edited by the policy-sync test\n` } : f));
  let activated: string;
  {
    await using one = await buildServer(config('n1'), { sfu: new FakeSfu(), store });
    const dirVersion = one.policies.current.version;
    const admin = await one.auth.sign({ role: 'admin', sub: 'ops' });
    const r = await one.app.inject({
      method: 'POST',
      url: '/v1/policies/activate',
      headers: { authorization: `Bearer ${admin}` },
      payload: { files: edited, force: true },
    });
    assert.equal(r.statusCode, 200, r.body);
    activated = (r.json() as { version: string }).version;
    assert.notEqual(activated, dirVersion);
    assert.equal((await store.getActivePolicy())?.version, activated);
  }
  // restart on the same store: the activated policy, not POLICY_DIR's
  await using two = await buildServer(config('n2'), { sfu: new FakeSfu(), store });
  assert.equal(two.policies.current.version, activated);

  // an activation this node never heard of (only the store has it): applied within a heartbeat
  const third = files.map((f, i) => (i === 0 ? { ...f, text: `${f.text}\n# third version\n` } : f));
  const { loadPolicyBundle } = await import('../../policies/index.ts');
  const version = loadPolicyBundle(third).version;
  await store.setActivePolicy({ version, files: third, by: 'another-node', at: Date.now() });
  const end = Date.now() + 10_000;
  while (two.policies.current.version !== version && Date.now() < end) await sleep(50);
  assert.equal(two.policies.current.version, version, 'applied from the store');
});
