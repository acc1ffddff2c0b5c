// `npm start` on embedded defaults (no Redis, no config file, dev mode): the process prints its
// configuration and dev tokens, answers /healthz and /readyz, and takes a real WHIP publish with
// the printed token; SIGTERM ends it cleanly.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { WhipPublisher, syntheticClip } from '../../loadtest/clients/whip-publisher.ts';
import { startNode, type NodeProcess } from './helpers.ts';

describe('fresh start: npm start', () => {
  let node: NodeProcess;
  before(async () => {
    // PORT=0 so parallel runs never collide; everything else is the embedded default.
    const env: Record<string, string> = { PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn' };
    for (const k of ['REDIS_URL', 'AUTH_SECRET', 'MODE', 'CONFIG_FILE']) env[k] = '';
    node = await startNode(env, [], ['npm', 'start', '--silent', '--']);
  });
  after(async () => {
    await node?.stop();
  });

  test('answers /healthz and /readyz and prints its configuration and dev tokens', async () => {
    const h = await fetch(`${node.url}/healthz`);
    assert.equal(h.status, 200);
    assert.equal(((await h.json()) as { status: string }).status, 'ok');
    // Ready once the store answers, the policy is loaded and the engine's slate pictures are encoded.
    let r = await fetch(`${node.url}/readyz`);
    for (let i = 0; i < 300 && r.status !== 200; i++) {
      await sleep(100);
      r = await fetch(`${node.url}/readyz`);
    }
    assert.equal(r.status, 200, await r.clone().text());
    const out = node.output();
    assert.match(out, /moderating-sfu configuration/);
    assert.match(out, /store\s+off \(in-memory store\)/);
    assert.match(out, /ops console\s+http:\/\/127\.0\.0\.1:\d+\/ops\?token=/);
  });

  test('takes a WHIP publish with the printed publish token, refuses one without', async () => {
    const token = /publish token\s+(\S+)/.exec(node.output())?.[1];
    assert.ok(token, 'publish token printed');
    const refused = await fetch(`${node.url}/whip/demo`, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: 'v=0\r\n' });
    assert.equal(refused.status, 401);
    const clip = await syntheticClip({ codec: 'VP8', seconds: 1 });
    const pub = await WhipPublisher.connect({ url: `${node.url}/whip/demo`, token, ...clip });
    try {
      pub.start();
      assert.match(pub.location, /^\/whip\/demo\/|\/whip\/demo\//);
      // The server registers it as live.
      const admin = /admin token\s+(\S+)/.exec(node.output())?.[1];
      let state: string | undefined;
      for (let i = 0; i < 50 && state !== 'live'; i++) {
        const res = await fetch(`${node.url}/v1/streams/demo`, { headers: { authorization: `Bearer ${admin}` } });
        if (res.ok) state = ((await res.json()) as { state: string }).state;
        else await sleep(100);
      }
      assert.equal(state, 'live');
    } finally {
      await pub.stop().catch(() => undefined);
    }
  });

  test('SIGTERM shuts down cleanly', async () => {
    assert.equal(await node.stop(), 0, node.output());
    assert.match(node.output(), /shutdown complete/);
  });
});
