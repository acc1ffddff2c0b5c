// `npm start` on embedded defaults (no Redis, no config file, dev mode): the process prints its
// configuration and dev tokens, answers /healthz and /readyz, and takes a real WHIP publish with
// the printed token; SIGTERM ends it cleanly (exit 0) while a stream is live, its samples decoded and
// classified (worker threads inside FFmpeg and onnxruntime: terminating one there aborted the process).
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
    const refused = await fetch(`${node.url}/whip/demo`, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp' },
      body: 'v=0\r\n',
    });
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

  test('SIGTERM shuts down cleanly with a stream live and being moderated', async () => {
    const token = /publish token\s+(\S+)/.exec(node.output())?.[1];
    const clip = await syntheticClip({ codec: 'VP8', seconds: 2 });
    const pub = await WhipPublisher.connect({ url: `${node.url}/whip/demo`, token, ...clip });
    try {
      pub.start();
      // Samplers and models are at work on this stream: its samples are being classified.
      const classified = async (): Promise<number> => {
        const text = await (await fetch(`${node.url}/metrics`)).text();
        return [...text.matchAll(/^msfu_classified_samples_total\{[^}]*\} (\d+)/gm)].reduce(
          (n, m) => n + Number(m[1]),
          0,
        );
      };
      const before = await classified();
      let now = before;
      for (let i = 0; i < 300 && now <= before; i++) {
        await sleep(100);
        now = await classified();
      }
      assert.ok(
        now > before,
        `no sample of the live stream classified within 30 s (msfu_classified_samples_total ${now})`,
      );
      assert.equal(await node.stop(), 0, node.output());
    } finally {
      await pub.stop().catch(() => undefined);
    }
    assert.match(node.output(), /shutdown complete/);
    assert.doesNotMatch(node.output(), /terminate called|Napi::Error/);
  });
});
