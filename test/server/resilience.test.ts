// The process as `npm start` runs it (issue 12, item 4): a stray unhandled rejection is logged and
// counted and the server keeps serving (Node 20 would exit and drop every stream); production mode
// prints no token and keeps tokens in URLs out of the request log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startNode } from './helpers.ts';

const BASE_ENV = { MODERATION: 'false', SFU_ENGINE: 'werift', LOG_LEVEL: 'info' };

test('an unhandled promise rejection is logged and counted; the server keeps running', async () => {
  const node = await startNode(
    { ...BASE_ENV },
    [],
    [process.execPath, '--import', 'tsx', '--import', './test/server/stray-rejection.ts', 'server/main.ts'],
  );
  try {
    const deadline = Date.now() + 20_000;
    while (!node.output().includes('unhandled promise rejection')) {
      if (Date.now() > deadline) throw new Error(`no log line about the rejection within 20 s:\n${node.output()}`);
      await sleep(100);
    }
    assert.match(node.output(), /stray rejection from a test/);
    assert.equal(node.child.exitCode, null, 'still running');
    assert.equal((await fetch(`${node.url}/healthz`)).status, 200);
    const metrics = await (await fetch(`${node.url}/metrics`)).text();
    assert.match(metrics, /^msfu_unhandled_rejections_total 1$/m);
  } finally {
    await node.stop();
  }
});

test('production mode prints no token, and tokens in request URLs are redacted in the log', async () => {
  const node = await startNode({ ...BASE_ENV, MODE: 'production', AUTH_SECRET: 'p'.repeat(48) });
  try {
    assert.doesNotMatch(node.output(), /eyJ/, 'no token printed');
    assert.doesNotMatch(node.output(), /admin token/);
    const secret = 'eyJhbGciOiJIUzI1NiJ9.leaky.token';
    await fetch(`${node.url}/v1/streams?access_token=${secret}`);
    await fetch(`${node.url}/watch?stream=x&token=${secret}`);
    const deadline = Date.now() + 10_000;
    while (!/access_token=\*\*\*/.test(node.output()) && Date.now() < deadline) await sleep(100);
    assert.match(node.output(), /access_token=\*\*\*/, 'the request was logged, redacted');
    assert.ok(!node.output().includes(secret), 'the token never reaches the log');
    // anonymous viewers are off in production
    const r = await fetch(`${node.url}/whep/x`, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp' },
      body: 'v=0\r\n',
    });
    assert.equal(r.status, 401);
  } finally {
    await node.stop();
  }
});
