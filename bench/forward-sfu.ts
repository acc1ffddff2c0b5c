// The SFU side of bench:forward, in a process of its own so the synthetic clients' CPU never lands in
// its figures. Forked by bench/forward.ts; talks over IPC:
//   -> { type: 'ready', url, tokens }    once listening (tokens: publisher tokens when auth is on)
//   <- { type: 'mark' } / 'read'        start / end a measurement: CPU of this process and of the
//                                        mediasoup workers, packets forwarded, event-loop p99, RSS
//   <- { type: 'stop' }
// FORWARD_ENGINE = raw (bare mediasoup workers: live video straight to every viewer, no gate) |
// mediasoup | werift; FORWARD_MODERATION = 1 runs the whole server (samplers, models, policies);
// FORWARD_WORKER_RT = the workers' real-time priority (default 10, the server's; 0: nice -10 only).
// FORWARD_SLATE_FPS = the gates' slate frames a second (the engine's default, 5, when unset; moderation off only).
// FORWARD_SPIN = N threads that only compute (a tight loop over a few KiB, no memory traffic) at nice
// FORWARD_SPIN_NICE (10, the moderation threads' priority): a load that takes CPU and nothing else,
// to tell what moderation's own work does to forwarding from what any other load on the cores does.

import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import Fastify from 'fastify';
import { createMediasoupSfu } from '../sfu/mediasoup/index.ts';
import type { MediasoupSfu } from '../sfu/mediasoup/index.ts';
import { createWeriftSfu } from '../sfu/werift/index.ts';
import type { Sfu } from '../sfu/types.ts';
import { webrtcRoutes } from '../server/routes/webrtc.ts';
import { buildServer } from '../server/app.ts';
import { loadConfig } from '../server/config.ts';
import { LOAD_TEST_ENV } from '../loadtest/server.ts';

const engine = process.env.FORWARD_ENGINE ?? 'mediasoup';
const moderation = process.env.FORWARD_MODERATION === '1';
const workers = Number(process.env.FORWARD_WORKERS ?? 2);
// the mediasoup workers' SCHED_RR priority (MEDIASOUP_REALTIME_PRIORITY, default 10 as the server's); 0 = nice only. FORWARD_MODERATION_RT:
// MODERATION_REALTIME_PRIORITY of the moderated runs (0 = off)
const realtime = Number(process.env.FORWARD_WORKER_RT ?? 10);
const send = (m: unknown): void => void process.send?.(m);

let sfu: Sfu;
let url: string;
let close: () => Promise<void>;
const tokens: Record<string, string> = {};
if (moderation) {
  const config = loadConfig({
    argv: [],
    env: {
      ...LOAD_TEST_ENV,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      AUTH_SECRET: 'bench-secret-0123456789-0123456789-0123456789',
      SFU_ENGINE: engine,
      MEDIASOUP_WORKERS: String(workers),
      MEDIASOUP_REALTIME_PRIORITY: String(realtime),
      MODERATION_REALTIME_PRIORITY: process.env.FORWARD_MODERATION_RT ?? '0',
      ANNOUNCED_ADDRESS: '127.0.0.1',
    },
  });
  const server = await buildServer(config);
  ({ url } = await server.listen());
  sfu = server.sfu;
  for (const id of (process.env.FORWARD_STREAMS ?? 'bench').split(','))
    tokens[id] = await server.auth.sign({ role: 'publisher', sub: `bench-${id}`, streamId: id }, '2h');
  close = () => server.close();
} else {
  const ms: MediasoupSfu | undefined =
    engine === 'werift'
      ? undefined
      : await createMediasoupSfu({
          workers,
          workerRealtimePriority: realtime,
          gates: engine !== 'raw',
          slateFps: process.env.FORWARD_SLATE_FPS ? Number(process.env.FORWARD_SLATE_FPS) : undefined,
          connectTimeoutMs: 30_000,
          listenAddress: '127.0.0.1',
        });
  sfu = ms ?? createWeriftSfu({ connectTimeoutMs: 30_000 });
  const app = Fastify({ logger: false });
  await app.register(webrtcRoutes, { sfu });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  close = async () => {
    await sfu.close();
    await app.close();
  };
}
await sfu.slateReady;

const spinners = Array.from(
  { length: Number(process.env.FORWARD_SPIN ?? 0) },
  () =>
    new Worker(
      `const { readlinkSync } = require('node:fs');
      require('node:os').setPriority(Number(readlinkSync('/proc/thread-self').split('/').pop()), ${Number(process.env.FORWARD_SPIN_NICE ?? 10)});
      const a = new Float64Array(512);
      for (let i = 0; ; i = (i + 1) & 511) a[i] = Math.sqrt(a[(i * 7) & 511] + i);`,
      { eval: true },
    ),
);

const eld = monitorEventLoopDelay({ resolution: 5 });
let mark: { cpu: NodeJS.CpuUsage; workerCpuMs: number; forwarded: number; at: number } | undefined;

process.on('message', (m: { type: string }) => {
  void (async () => {
    if (m.type === 'mark') {
      const s = await sfu.engineStats();
      mark = {
        cpu: process.cpuUsage(),
        workerCpuMs: s.workerCpuMs,
        forwarded: s.packetsForwarded,
        at: performance.now(),
      };
      eld.reset();
      eld.enable();
      send({ type: 'marked' });
    } else if (m.type === 'read' && mark) {
      const s = await sfu.engineStats();
      const cpu = process.cpuUsage(mark.cpu);
      eld.disable();
      send({
        type: 'figures',
        seconds: (performance.now() - mark.at) / 1000,
        nodeCpuUs: cpu.user + cpu.system,
        workerCpuUs: (s.workerCpuMs - mark.workerCpuMs) * 1000,
        forwarded: s.packetsForwarded - mark.forwarded,
        viewers: s.viewers,
        eventLoopP99Ms: eld.percentile(99) / 1e6,
        rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20),
        realtimeWorkers: s.realtimeWorkers,
        realtimeDemotions: s.realtimeDemotions,
      });
    } else if (m.type === 'stop') {
      await Promise.all(spinners.map((w) => w.terminate()));
      await close();
      process.exit(0);
    }
  })();
});
send({ type: 'ready', url, tokens });
