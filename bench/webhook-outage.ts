// A webhook receiver down for --outage seconds (default 300) while the server keeps issuing events
// (one manual kill per second: stream.killed is not sent for a stream that is not live here, its
// statement.created is): with the default backoff (1 s doubling to 60 s) every event arrives once the
// receiver is back, in order, each once. Prints and writes bench/results/webhook-outage.json.
//   node --import tsx bench/webhook-outage.ts [--outage 300] [--before 10] [--after 10]
import { createServer } from 'node:http';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildServer } from '../server/app.ts';
import { loadConfig } from '../server/config.ts';
import { LOAD_TEST_ENV } from '../loadtest/server.ts';
import type { WebhookPayload } from '../server/webhooks.ts';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const outageS = arg('outage', 300);
const beforeS = arg('before', 10);
const afterS = arg('after', 10);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const dir = await mkdtemp(join(tmpdir(), 'msfu-webhook-outage-'));
const received: { p: WebhookPayload; at: number }[] = [];
const hook = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    received.push({ p: JSON.parse(Buffer.concat(chunks).toString('utf8')) as WebhookPayload, at: Date.now() });
    res.writeHead(204).end();
  });
});
await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
const port = (hook.address() as { port: number }).port;
const config = loadConfig({
  argv: [],
  env: {
    ...LOAD_TEST_ENV,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'error',
    MODERATION: 'false',
    EVIDENCE: 'false',
    AUTH_SECRET: 'bench-secret-0123456789-0123456789-0123',
    WEBHOOKS: JSON.stringify([
      {
        id: 'platform',
        url: `http://127.0.0.1:${port}/hook`,
        secrets: ['whsec_bench_0123456789abcdef'],
        events: ['statement.created'],
      },
    ]),
    WEBHOOK_DIR: dir,
  },
});
const server = await buildServer(config);
await server.listen();
const admin = await server.auth.sign({ role: 'admin', sub: 'bench' }, '2h');
let n = 0;
const kill = async (): Promise<void> => {
  const r = await fetch(`${server.url}/v1/streams/bench-${n++}/kill`, {
    method: 'POST',
    headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
    body: JSON.stringify({ reason: 'outage bench' }),
  });
  if (r.status !== 202) throw new Error(`kill: ${r.status} ${await r.text()}`);
};
for (let i = 0; i < beforeS; i++) {
  await kill();
  await sleep(1000);
}
const sentBefore = n;
hook.closeAllConnections();
await new Promise<void>((r) => hook.close(() => r()));
const downAt = Date.now();
console.log(`receiver down for ${outageS} s`);
for (let i = 0; i < outageS; i++) {
  await kill();
  await sleep(1000);
}
const failedDuringOutage = server.webhooks.get('platform').failedAttempts;
await new Promise<void>((r) => hook.listen(port, '127.0.0.1', r));
const upAt = Date.now();
for (let i = 0; i < afterS; i++) {
  await kill();
  await sleep(1000);
}
const deadline = Date.now() + 120_000;
while (server.webhooks.get('platform').pending > 0 && Date.now() < deadline) await sleep(200);
const stats = server.webhooks.get('platform');
const ids = new Set(received.map((r) => r.p.id));
const seqs = received.map((r) => r.p.seq);
const firstAfter = received.find((r) => r.at >= upAt);
const queued = received.filter((r) => r.p.at >= downAt && r.p.at < upAt);
const report = {
  outageS,
  events: n,
  received: received.length,
  unique: ids.size,
  allDelivered: ids.size === n,
  duplicates: received.length - ids.size,
  inOrder: received.every((r, i) => i === 0 || r.p.at >= received[i - 1]!.p.at),
  failedAttemptsDuringOutage: failedDuringOutage,
  failedAttemptsTotal: stats.failedAttempts,
  dropped: stats.dropped,
  receiverBackToFirstDeliveryMs: firstAfter ? firstAfter.at - upAt : null,
  receiverBackToQueueDrainedMs: Math.max(...queued.map((r) => r.at)) - upAt,
  queuedDuringOutage: queued.length,
  sentBeforeOutage: sentBefore,
  seqRange: [Math.min(...seqs), Math.max(...seqs)],
};
console.log(JSON.stringify(report, null, 2));
await mkdir('bench/results', { recursive: true });
await writeFile('bench/results/webhook-outage.json', `${JSON.stringify(report, null, 2)}\n`);
await server.close();
hook.closeAllConnections();
await new Promise<void>((r) => hook.close(() => r()));
await rm(dir, { recursive: true, force: true });
