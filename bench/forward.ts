// bench:forward — one synthetic publisher (VP8 640x360 + Opus, ~110 packets/s) -> 1 ... 500 synthetic
// viewers on loopback, through each engine side by side in one run:
//   raw        bare mediasoup workers (live video straight to the viewers: the anchor)
//   mediasoup  this project's mediasoup engine (gates, tap, editions)
//   werift     this project's werift engine
// each with moderation off, and mediasoup/werift again with 3 other streams being moderated by the
// whole server (samplers, models, policies). The SFU runs in a process of its own
// (bench/forward-sfu.ts); the publisher runs here and the viewers in FORWARD_CLIENTS processes of their
// own (bench/forward-viewers.ts), so none of their CPU is in the SFU's figures.
// Per step: CPU microseconds per delivered packet (received by a viewer) of the SFU processes (Node + mediasoup workers),
// forwarding latency p50/p99 (publisher send of a frame's last packet -> viewer receipt, one clock),
// the SFU's event-loop p99, its RSS, and the client processes' CPU (when they near the cores left,
// the clients, not the SFU, limit the latency figure). The viewers read RTP headers without
// decrypting (WhepViewer headersOnly), so two processes can play 500 of them.
// Env: FORWARD_CLIENTS (viewer processes, default 2), FORWARD_STEPS (default 1,10,100,300,500), FORWARD_STEP_S (10), FORWARD_RUNS (default
// raw,mediasoup,werift,mediasoup+mod,werift+mod; mediasoup+spin: compute-only threads instead of moderation), FORWARD_CLIENT_NICE (0), FORWARD_WERIFT_MAX (300),
// FORWARD_OUT (bench/results/forward.json, where the JSON goes), FORWARD_PACING (none: each frame's packets
// sent at once, as FFmpeg's whip muxer does, the default; browser: paced at 2.5x the clip's bitrate, as
// libwebrtc's pacer does, so a frame's packets leave a few ms apart instead of in one burst that the
// fan-out then queues: the clip's frames are 1-3 packets). FORWARD_CAPTURE (auto: where tcpdump is
// installed and may capture; 0: off): the SFU's own forwarding latency per packet, from kernel
// timestamps on loopback (bench/sfu-latency.ts), beside the one the viewers see. FORWARD_WORKER_RT:
// the mediasoup workers' SCHED_RR priority (MEDIASOUP_REALTIME_PRIORITY; default 10 as the server's, 0: nice -10 only).
// FORWARD_MODERATION_RT: the moderated runs' MODERATION_REALTIME_PRIORITY (default 0; below FORWARD_WORKER_RT).
// Each step also has the whole machine's busy and steal time (loadtest/host-cpu.ts): on a virtual
// machine, a step whose steal is high measured the host.

import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { WhipPublisher, syntheticClip } from '../loadtest/clients/whip-publisher.ts';
import { MONO_OFFSET_MS, localUdpPorts } from '../loadtest/clients/peer.ts';
import { hostCpuWindow, sampleHostCpu } from '../loadtest/host-cpu.ts';
import { LoopbackCapture, forwardingLatency, readPcapRtp, tcpdumpPath } from './sfu-latency.ts';

const STEPS = (process.env.FORWARD_STEPS ?? '1,10,100,300,500').split(',').map(Number);
const STEP_S = Number(process.env.FORWARD_STEP_S ?? 10);
const RUNS = (process.env.FORWARD_RUNS ?? 'raw,mediasoup,werift,mediasoup+mod,werift+mod').split(',');
/** Seconds between the last join and the measurement; moderated runs wait for the models' first runs too. */
const WARMUP_S = 2;
const MODERATED_WARMUP_S = 10;
const MODERATED = ['m1', 'm2', 'm3'];
const CLIENTS = Number(process.env.FORWARD_CLIENTS ?? 2);
// werift forwards on one event loop at ~40-55 us a packet: 500 viewers x ~100 packets/s is past a core,
// so its runs stop at this many viewers (the steps above it are listed as skipped).
const WERIFT_MAX = Number(process.env.FORWARD_WERIFT_MAX ?? 300);
// Nice value of the load generator (this process and the viewer processes), e.g. -5 to stand in for
// viewers on other machines: then the server's moderation threads cannot starve the clocks that time
// the packets. Needs privilege below 0. Default 0 (same as the SFU's Node process).
const CLIENT_NICE = Number(process.env.FORWARD_CLIENT_NICE ?? 0);
const CLIP_KBPS = 600;
const PACING = process.env.FORWARD_PACING ?? 'none';
if (PACING !== 'none' && PACING !== 'browser') throw new Error(`FORWARD_PACING=${PACING}: none or browser`);
const PACING_KBPS = PACING === 'browser' ? 2.5 * CLIP_KBPS : undefined;
if (CLIENT_NICE) setPriority(process.pid, CLIENT_NICE);
const CAPTURE = process.env.FORWARD_CAPTURE ?? 'auto';
if (CAPTURE !== 'auto' && CAPTURE !== '0') throw new Error(`FORWARD_CAPTURE=${CAPTURE}: auto or 0`);
const TCPDUMP = CAPTURE === 'auto' ? tcpdumpPath() : undefined;
let captureUnavailable: string | undefined =
  CAPTURE === '0' ? 'FORWARD_CAPTURE=0' : TCPDUMP ? undefined : 'tcpdump is not installed';
const captureDir = mkdtempSync(join(tmpdir(), 'bench-forward-'));

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
  realtimeWorkers: number;
  realtimeDemotions: number;
}

/** A process of the bench (the SFU, or a share of the viewers) spoken to over IPC. */
class Child {
  readonly #child: ChildProcess;
  readonly #waiting = new Map<string, (m: Record<string, unknown>) => void>();
  constructor(module: string, env: Record<string, string> = {}) {
    this.#child = fork(new URL(module, import.meta.url), [], {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, ...env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
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
  get pid(): number {
    return this.#child.pid!;
  }
  tell(m: Record<string, unknown>): void {
    if (this.#child.connected) this.#child.send(m);
  }
  async ask(m: Record<string, unknown> | string, reply: string, timeoutMs?: number): Promise<Record<string, unknown>> {
    const p = this.next(reply, timeoutMs);
    this.#child.send(typeof m === 'string' ? { type: m } : m);
    return p;
  }
  async stop(type = 'stop'): Promise<void> {
    const exited = new Promise((r) => this.#child.once('exit', r));
    this.tell({ type });
    await Promise.race([exited, sleep(10_000)]);
    if (this.#child.exitCode === null) this.#child.kill('SIGKILL');
  }
}

const clip = {
  ...(await syntheticClip({ codec: 'VP8', width: 640, height: 360, bitrateKbps: CLIP_KBPS, seconds: 4 })),
  pacingKbps: PACING_KBPS,
};
const results: Record<string, unknown>[] = [];

for (const run of RUNS) {
  const [engine, mod] = run.split('+');
  const moderated = mod === 'mod';
  const sfu = new Child('./forward-sfu.ts', {
    FORWARD_ENGINE: engine!,
    FORWARD_MODERATION: moderated ? '1' : '0',
    // '+spin': instead of moderation, a compute-only load on every core (forward-sfu.ts)
    FORWARD_SPIN: mod === 'spin' ? String(availableParallelism()) : '0',
    FORWARD_STREAMS: ['bench', ...MODERATED].join(','),
  });
  const ready = (await sfu.next('ready')) as { url: string; tokens: Record<string, string> };
  const base = ready.url;
  const pub = await WhipPublisher.connect({ url: `${base}/whip/bench`, token: ready.tokens.bench, ...clip });
  const clients = Array.from({ length: CLIENTS }, () => new Child('./forward-viewers.ts'));
  if (CLIENT_NICE) for (const c of clients) setPriority(c.pid, CLIENT_NICE);
  await Promise.all(clients.map((c) => c.next('ready')));
  // frame (or audio packet) -> when its last packet left the publisher, told to the viewer processes
  // every 20 ms to time each viewer's receipt
  let sentBatch: [number, number, number][] = [];
  pub.onPacket = (p) => {
    if (p.kind === 'video' && !p.marker) return;
    sentBatch.push([p.kind === 'video' ? 1 : 0, p.timestamp, p.sentAt - MONO_OFFSET_MS]);
  };
  const flushSent = (): void => {
    if (!sentBatch.length) return;
    for (const c of clients) c.tell({ type: 'sent', items: sentBatch });
    sentBatch = [];
  };
  const sentTimer = setInterval(flushSent, 20);
  pub.start();
  const others: WhipPublisher[] = [];
  if (moderated) {
    for (const id of MODERATED) {
      const o = await WhipPublisher.connect({ url: `${base}/whip/${id}`, token: ready.tokens[id], ...clip });
      o.start();
      others.push(o);
    }
  }
  for (const n of STEPS) {
    if (engine === 'werift' && n > WERIFT_MAX) {
      console.log(
        JSON.stringify({
          run,
          viewersAsked: n,
          skipped: `werift runs stop at FORWARD_WERIFT_MAX=${WERIFT_MAX} viewers`,
        }),
      );
      continue;
    }
    // the viewers dealt round the client processes
    const share = (i: number) => Math.floor(n / CLIENTS) + (i < n % CLIENTS ? 1 : 0);
    const joins = (await Promise.all(
      clients.map((c, i) => c.ask({ type: 'join', url: `${base}/whep/bench`, n: share(i) }, 'joined', 600_000)),
    )) as unknown as { viewers: number; failed: number; errors: string[]; ports: number[] }[];
    const viewerCount = joins.reduce((a, j) => a + j.viewers, 0);
    for (const j of joins)
      for (const e of j.errors) console.error(`a viewer did not join (${j.failed} failed in that process): ${e}`);
    await sleep((moderated && n === STEPS[0] ? MODERATED_WARMUP_S : WARMUP_S) * 1000);
    let capture: LoopbackCapture | undefined;
    if (!captureUnavailable) {
      capture = await LoopbackCapture.start(join(captureDir, `${run}-${n}.pcap`), TCPDUMP).catch((e: Error) => {
        captureUnavailable = e.message;
        return undefined;
      });
    }
    const captureCpu0 = capture?.cpuSeconds() ?? 0;
    await sfu.ask('mark', 'marked');
    const t0 = performance.now();
    const host0 = await sampleHostCpu();
    flushSent();
    for (const c of clients) c.tell({ type: 'start' });
    await sleep(STEP_S * 1000);
    flushSent();
    const measured = (await Promise.all(clients.map((c) => c.ask({ type: 'stop' }, 'measured')))) as unknown as {
      latencies: number[];
      delivered: number;
      receiving: number;
      cpuUs: number;
      wallMs: number;
    }[];
    const wall = (performance.now() - t0) / 1000;
    const host = hostCpuWindow(host0, await sampleHostCpu());
    const captureCores = capture ? (capture.cpuSeconds() - captureCpu0) / wall : NaN;
    const f = (await sfu.ask('read', 'figures')) as unknown as SfuFigures;
    // after the SFU's figures: stopping waits out tcpdump's buffer timeout, which no counter may hold
    const captured = capture ? await capture.stop() : undefined;
    const latencies = measured.flatMap((m) => m.latencies).sort((a, b) => a - b);
    const delivered = measured.reduce((a, m) => a + m.delivered, 0);
    const receiving = measured.reduce((a, m) => a + m.receiving, 0);
    const clientCpuUs = measured.reduce((a, m) => a + m.cpuUs, 0);
    const cpuUs = f.nodeCpuUs + f.workerCpuUs;
    let sfuLatency: Record<string, number> | null = null;
    if (capture && captured) {
      const wire = forwardingLatency(readPcapRtp(readFileSync(capture.file)), {
        publisherPorts: new Set(localUdpPorts(pub.pc)),
        viewerPorts: new Set(joins.flatMap((j) => j.ports)),
      });
      rmSync(capture.file, { force: true });
      const sorted = wire.latencies.sort((a, b) => a - b);
      sfuLatency = {
        p50: round(pct(sorted, 50)),
        p99: round(pct(sorted, 99)),
        max: round(sorted.at(-1) ?? NaN),
        packets: sorted.length,
        flowsMatched: wire.flowsMatched,
        flowsUnmatched: wire.flowsUnmatched,
        captureDropped: captured.dropped,
        captureCores: round(captureCores, 3),
      };
    }
    const r = {
      run,
      engine,
      moderation: moderated
        ? `on: this stream and ${MODERATED.length} others moderated`
        : mod === 'spin'
          ? `off; ${availableParallelism()} compute-only threads at nice ${process.env.FORWARD_SPIN_NICE ?? 10}`
          : 'off',
      viewers: viewerCount,
      viewersAsked: n,
      seconds: round(f.seconds),
      packetsForwarded: f.forwarded,
      packetsPerSecond: Math.round(f.forwarded / f.seconds),
      packetsDeliveredPerSecond: Math.round(delivered / wall),
      viewersReceiving: receiving,
      // per packet that reached a viewer: one denominator for every engine (the engines count what
      // they send differently: mediasoup counts pipe consumers too, and reads its counters late)
      cpuUsPerDeliveredPacket: round(cpuUs / Math.max(1, delivered), 1),
      nodeCpuUsPerDeliveredPacket: round(f.nodeCpuUs / Math.max(1, delivered), 1),
      sfuCores: round(cpuUs / 1e6 / f.seconds, 3),
      latencyMs: { p50: round(pct(latencies, 50)), p99: round(pct(latencies, 99)), samples: latencies.length },
      // per forwarded packet, publisher's send -> the SFU's send to the viewer, kernel timestamps
      sfuLatencyMs: sfuLatency ?? { unavailable: captureUnavailable ?? 'no capture' },
      eventLoopP99Ms: round(f.eventLoopP99Ms),
      sfuNodeRssMiB: f.rssMiB,
      clientCores: round(clientCpuUs / 1e6 / wall, 3),
      clientProcesses: CLIENTS,
      clientNice: CLIENT_NICE,
      workerRealtimePriority: Number(process.env.FORWARD_WORKER_RT ?? 10),
      // workers at real-time priority at the end of the step, and the guard's demotions since the SFU started
      realtimeWorkers: f.realtimeWorkers,
      realtimeDemotions: f.realtimeDemotions,
      publisherPacingKbps: PACING_KBPS ?? null,
      // the whole machine over the step: what every process used, and what the hypervisor took
      hostBusyPercent: host?.busyPercent ?? null,
      hostStealPercent: host?.stealPercent ?? null,
    };
    results.push(r);
    console.log(JSON.stringify(r));
  }
  clearInterval(sentTimer);
  await Promise.all(clients.map((c) => c.stop('quit')));
  for (const o of others) await o.stop().catch(() => undefined);
  await pub.stop().catch(() => undefined);
  await sfu.stop();
}

// ratios the targets are stated in, per viewer count
const at = (run: string, n: number) =>
  results.find((r) => r.run === run && r.viewersAsked === n) as
    { cpuUsPerDeliveredPacket: number; latencyMs: { p99: number }; sfuLatencyMs: { p99?: number } } | undefined;
const ratio = (a: number | undefined, b: number | undefined) =>
  a !== undefined && b !== undefined ? round(a / b) : null;
const ratios = STEPS.map((n) => {
  const raw = at('raw', n);
  const ms = at('mediasoup', n);
  const msMod = at('mediasoup+mod', n);
  const wr = at('werift', n);
  const wrMod = at('werift+mod', n);
  return {
    viewers: n,
    mediasoupOverRawCpuPerPacket: ratio(ms?.cpuUsPerDeliveredPacket, raw?.cpuUsPerDeliveredPacket),
    mediasoupP99ModerationOnOverOff: ratio(msMod?.latencyMs.p99, ms?.latencyMs.p99),
    weriftP99ModerationOnOverOff: ratio(wrMod?.latencyMs.p99, wr?.latencyMs.p99),
    mediasoupSfuP99ModerationOnOverOff: ratio(msMod?.sfuLatencyMs.p99, ms?.sfuLatencyMs.p99),
    weriftSfuP99ModerationOnOverOff: ratio(wrMod?.sfuLatencyMs.p99, wr?.sfuLatencyMs.p99),
  };
});
console.log(JSON.stringify({ ratios }));
const OUT = process.env.FORWARD_OUT ?? 'bench/results/forward.json';
const out = {
  bench: 'forward',
  node: process.version,
  stepSeconds: STEP_S,
  publisherPacing: PACING_KBPS ? `${PACING_KBPS} kbit/s (2.5x the clip's bitrate)` : 'none: each frame at once',
  note: 'SFU in its own process (CPU = Node + mediasoup workers); publisher and viewers in the bench process',
  latencies:
    "latencyMs: publisher's send of a frame's last packet (or an audio packet) -> a viewer's receipt, as the viewer processes read it; sfuLatencyMs: every forwarded packet, the publisher's send -> the SFU's send to the viewer, kernel timestamps on loopback",
  results,
  ratios,
};
rmSync(captureDir, { recursive: true, force: true });
mkdirSync('bench/results', { recursive: true });
writeFileSync(OUT, JSON.stringify(out, null, 2));
console.log(`wrote ${OUT}`);
process.exit(0);
