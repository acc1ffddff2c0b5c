// bench:forward — 1 synthetic publisher -> 1, 10, 50, 100 synthetic viewers on loopback through the
// werift SFU and the real WHIP/WHEP routes. Per step: CPU microseconds per forwarded packet (whole
// process: SFU plus the synthetic clients, which run in this process too), added forwarding latency
// p50/p99 (publisher send -> viewer receive, same clock), event-loop delay p99, RSS.
// Writes bench/results/forward.json. Step length: FORWARD_STEP_S (default 10 s).

import { mkdirSync, writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import Fastify from 'fastify';
import { createWeriftSfu } from '../sfu/werift/index.ts';
import { webrtcRoutes } from '../server/routes/webrtc.ts';
import { WhipPublisher, syntheticClip } from '../loadtest/clients/whip-publisher.ts';
import { WhepViewer } from '../loadtest/clients/whep-viewer.ts';

const STEPS = (process.env.FORWARD_STEPS ?? '1,10,50,100').split(',').map(Number);
const STEP_S = Number(process.env.FORWARD_STEP_S ?? 10);
const WARMUP_S = 2;

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const sfu = createWeriftSfu({ connectTimeoutMs: 20_000 });
const app = Fastify({ logger: false });
await app.register(webrtcRoutes, { sfu });
await app.listen({ host: '127.0.0.1', port: 0 });
const addr = app.server.address();
const base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;

const clip = await syntheticClip({ codec: 'VP8', width: 640, height: 360, bitrateKbps: 600, seconds: 4 });
const pub = await WhipPublisher.connect({ url: `${base}/whip/bench`, ...clip });
pub.start();

const viewers: WhepViewer[] = [];
let latencies: number[] = [];
let measuring = false;
const attach = (v: WhepViewer) => {
  v.onPacket = (p) => {
    if (!measuring) return;
    const sent = pub.sentAt(p.kind, p.seq);
    if (sent !== undefined) latencies.push(p.receivedAt - sent);
  };
};

const results: Record<string, unknown>[] = [];
for (const n of STEPS) {
  while (viewers.length < n) {
    const batch = Math.min(10, n - viewers.length);
    const joined = await Promise.all(Array.from({ length: batch }, () => WhepViewer.connect({ url: `${base}/whep/bench`, maxRecords: 0, connectTimeoutMs: 20_000 })));
    for (const v of joined) {
      attach(v);
      viewers.push(v);
    }
  }
  await sleep(WARMUP_S * 1000);
  const stream = sfu.getStream('bench')!;
  const fwd = () => [...stream.viewers.values()].reduce((s, v) => s + v.stats().packetsForwarded, 0);
  const h = monitorEventLoopDelay({ resolution: 5 });
  latencies = [];
  const f0 = fwd();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  measuring = true;
  h.enable();
  await sleep(STEP_S * 1000);
  h.disable();
  measuring = false;
  const cpu = process.cpuUsage(cpu0);
  const wall = (performance.now() - t0) / 1000;
  const forwarded = fwd() - f0;
  latencies.sort((a, b) => a - b);
  const r = {
    viewers: n,
    seconds: Number(wall.toFixed(2)),
    packetsForwarded: forwarded,
    packetsPerSecond: Math.round(forwarded / wall),
    cpuUsPerForwardedPacket: Number(((cpu.user + cpu.system) / Math.max(1, forwarded)).toFixed(1)),
    cpuCoreShare: Number(((cpu.user + cpu.system) / 1e6 / wall).toFixed(3)),
    latencyMs: { p50: Number(pct(latencies, 50).toFixed(2)), p99: Number(pct(latencies, 99).toFixed(2)), samples: latencies.length },
    eventLoopDelayP99Ms: Number((h.percentile(99) / 1e6).toFixed(2)),
    rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20),
  };
  results.push(r);
  console.log(JSON.stringify(r));
}

for (const v of viewers) await v.close({ deleteSession: false });
await pub.stop();
await sfu.close();
await app.close();
const out = { bench: 'forward', engine: 'werift', node: process.version, stepSeconds: STEP_S, note: 'CPU is the whole process: SFU and synthetic publisher/viewers share it', results };
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/forward.json', JSON.stringify(out, null, 2));
console.log('wrote bench/results/forward.json');
process.exit(0);
