// bench:forward — one synthetic publisher (VP8 640x360 + Opus, ~110 packets/s) -> 1 ... 500 synthetic
// viewers on loopback, through each engine side by side in one run:
//   raw        bare mediasoup workers (live video straight to the viewers: the anchor)
//   mediasoup  this project's mediasoup engine (gates, tap, editions)
//   werift     this project's werift engine
// each with moderation off, and mediasoup/werift again with 3 other streams being moderated by the
// whole server (samplers, models, policies). The SFU runs in a process of its own
// (bench/forward-sfu.ts); the publisher and viewers run here, so their CPU is not in the figures.
// Per step: CPU microseconds per forwarded packet of the SFU processes (Node + mediasoup workers),
// forwarding latency p50/p99 (publisher send of a frame's last packet -> viewer receipt, one clock),
// the SFU's event-loop p99, its RSS, and this client process's own CPU share (when it nears 1 core
// the client, not the SFU, is what limits the latency figure).
// Env: FORWARD_STEPS (default 1,10,100,300,500), FORWARD_STEP_S (10), FORWARD_RUNS (default
// raw,mediasoup,werift,mediasoup+mod,werift+mod). Writes bench/results/forward.json.

import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { WhipPublisher, syntheticClip } from '../loadtest/clients/whip-publisher.ts';
import { WhepViewer } from '../loadtest/clients/whep-viewer.ts';

const STEPS = (process.env.FORWARD_STEPS ?? '1,10,100,300,500').split(',').map(Number);
const STEP_S = Number(process.env.FORWARD_STEP_S ?? 10);
const RUNS = (process.env.FORWARD_RUNS ?? 'raw,mediasoup,werift,mediasoup+mod,werift+mod').split(',');
const WARMUP_S = 2;
const MODERATED = ['m1', 'm2', 'm3'];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
const round = (x: number, d = 2): number => Number(x.toFixed(d));

interface SfuFigures {
  seconds: number;
  nodeCpuUs: number;
  workerCpuUs: number;
  forwarded: number;
  viewers: number;
  eventLoopP99Ms: number;
  rssMiB: number;
}

class SfuProcess {
  readonly #child: ChildProcess;
  readonly #waiting = new Map<string, (m: Record<string, unknown>) => void>();
  constructor(env: Record<string, string>) {
    this.#child = fork(new URL('./forward-sfu.ts', import.meta.url), [], { execArgv: ['--import', 'tsx'], env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.#child.on('message', (m: Record<string, unknown>) => {
      const w = this.#waiting.get(String(m.type));
      this.#waiting.delete(String(m.type));
      w?.(m);
    });
  }
  next(type: string, timeoutMs = 120_000): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`the SFU process sent no '${type}' in ${timeoutMs} ms`)), timeoutMs);
      this.#waiting.set(type, (m) => {
        clearTimeout(t);
        resolve(m);
      });
    });
  }
  async ask(type: string, reply: string): Promise<Record<string, unknown>> {
    const p = this.next(reply);
    this.#child.send({ type });
    return p;
  }
  async stop(): Promise<void> {
    const exited = new Promise((r) => this.#child.once('exit', r));
    this.#child.send({ type: 'stop' });
    await Promise.race([exited, sleep(10_000)]);
    if (this.#child.exitCode === null) this.#child.kill('SIGKILL');
  }
}

const clip = await syntheticClip({ codec: 'VP8', width: 640, height: 360, bitrateKbps: 600, seconds: 4 });
const results: Record<string, unknown>[] = [];

for (const run of RUNS) {
  const [engine, mod] = run.split('+');
  const moderated = mod === 'mod';
  const sfu = new SfuProcess({ FORWARD_ENGINE: engine!, FORWARD_MODERATION: moderated ? '1' : '0', FORWARD_STREAMS: ['bench', ...MODERATED].join(',') });
  const ready = (await sfu.next('ready')) as { url: string; tokens: Record<string, string> };
  const base = ready.url;
  const pub = await WhipPublisher.connect({ url: `${base}/whip/bench`, token: ready.tokens.bench, ...clip });
  // frame (or audio packet) -> when its last packet left the publisher, to time each viewer's receipt
  const sent = { audio: new Map<number, number>(), video: new Map<number, number>() };
  pub.onPacket = (p) => {
    if (p.kind === 'video' && !p.marker) return;
    const m = sent[p.kind];
    m.set(p.timestamp, p.sentAt);
    if (m.size > 4000) m.delete(m.keys().next().value!);
  };
  pub.start();
  const others: WhipPublisher[] = [];
  if (moderated) {
    for (const id of MODERATED) {
      const o = await WhipPublisher.connect({ url: `${base}/whip/${id}`, token: ready.tokens[id], ...clip });
      o.start();
      others.push(o);
    }
  }
  const viewers: WhepViewer[] = [];
  let latencies: number[] = [];
  let measuring = false;
  for (const n of STEPS) {
    let failed = 0;
    while (viewers.length < n && failed < 20) {
      const batch = Math.min(10, n - viewers.length);
      const joined = await Promise.allSettled(Array.from({ length: batch }, () => WhepViewer.connect({ url: `${base}/whep/bench`, maxRecords: 0, connectTimeoutMs: 30_000 })));
      for (const j of joined) {
        if (j.status === 'rejected') {
          failed++;
          continue;
        }
        const v = j.value;
        v.onPacket = (p) => {
          if (!measuring || (p.kind === 'video' && !p.marker)) return;
          const at = sent[p.kind].get(p.timestamp);
          if (at !== undefined) latencies.push(p.receivedAt - at);
        };
        viewers.push(v);
      }
    }
    await sleep(WARMUP_S * 1000);
    latencies = [];
    await sfu.ask('mark', 'marked');
    const client0 = process.cpuUsage();
    const t0 = performance.now();
    measuring = true;
    await sleep(STEP_S * 1000);
    measuring = false;
    const clientCpu = process.cpuUsage(client0);
    const wall = (performance.now() - t0) / 1000;
    const f = (await sfu.ask('read', 'figures')) as unknown as SfuFigures;
    latencies.sort((a, b) => a - b);
    const cpuUs = f.nodeCpuUs + f.workerCpuUs;
    const r = {
      run,
      engine,
      moderation: moderated ? `${MODERATED.length} other streams moderated` : 'off',
      viewers: viewers.length,
      viewersAsked: n,
      seconds: round(f.seconds),
      packetsForwarded: f.forwarded,
      packetsPerSecond: Math.round(f.forwarded / f.seconds),
      cpuUsPerForwardedPacket: round(cpuUs / Math.max(1, f.forwarded), 1),
      nodeCpuUsPerForwardedPacket: round(f.nodeCpuUs / Math.max(1, f.forwarded), 1),
      sfuCores: round(cpuUs / 1e6 / f.seconds, 3),
      latencyMs: { p50: round(pct(latencies, 50)), p99: round(pct(latencies, 99)), samples: latencies.length },
      eventLoopP99Ms: round(f.eventLoopP99Ms),
      sfuNodeRssMiB: f.rssMiB,
      clientCores: round((clientCpu.user + clientCpu.system) / 1e6 / wall, 3),
    };
    results.push(r);
    console.log(JSON.stringify(r));
  }
  for (const v of viewers) await v.close({ deleteSession: false }).catch(() => undefined);
  for (const o of others) await o.stop().catch(() => undefined);
  await pub.stop().catch(() => undefined);
  await sfu.stop();
}

// ratios the targets are stated in, per viewer count
const at = (run: string, n: number) => results.find((r) => r.run === run && r.viewersAsked === n) as { cpuUsPerForwardedPacket: number; latencyMs: { p99: number } } | undefined;
const ratios = STEPS.map((n) => {
  const raw = at('raw', n);
  const ms = at('mediasoup', n);
  const msMod = at('mediasoup+mod', n);
  const wr = at('werift', n);
  const wrMod = at('werift+mod', n);
  return {
    viewers: n,
    mediasoupOverRawCpuPerPacket: raw && ms ? round(ms.cpuUsPerForwardedPacket / raw.cpuUsPerForwardedPacket) : null,
    mediasoupP99ModerationOnOverOff: ms && msMod ? round(msMod.latencyMs.p99 / ms.latencyMs.p99) : null,
    weriftP99ModerationOnOverOff: wr && wrMod ? round(wrMod.latencyMs.p99 / wr.latencyMs.p99) : null,
  };
});
console.log(JSON.stringify({ ratios }));
const out = { bench: 'forward', node: process.version, stepSeconds: STEP_S, note: 'SFU in its own process (CPU = Node + mediasoup workers); publisher and viewers in the bench process', results, ratios };
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/forward.json', JSON.stringify(out, null, 2));
console.log('wrote bench/results/forward.json');
process.exit(0);
