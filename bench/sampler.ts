// Sampler benchmark: decode CPU per stream, samples/s per core, sample latency, and the forwarding
// loop's latency with samplers on vs off. Prints figures and writes bench/results/sampler.json.
//   npm run bench:sampler            (BENCH_SECONDS=n to lengthen the paced runs; default 5)
// Figures are from whatever machine runs it; on the shared 2-core dev box other agents compete for
// the same cores, so treat CPU and latency figures as upper bounds.
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { SamplerPool } from '../samplers/sampler-pool.ts';
import type { RtpPacketIn } from '../samplers/types.ts';
import {
  encodeOpus,
  encodeVideo,
  pushLive,
  rtpizeOpus,
  rtpizeVideo,
  testPicture,
  tone,
  waitFor,
} from '../test/samplers/helpers.ts';
import { percentile, runForwarding } from '../test/samplers/loopback-forwarder.ts';
import type { ForwardingFigures } from '../test/samplers/loopback-forwarder.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const FPS = 30;
const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;

function clip(codec: 'VP8' | 'H264', width: number, height: number, frames: number, streamId: string): RtpPacketIn[] {
  // The plain test card compresses far better than camera video; a moving texture brings the
  // bitrate (and the decoder's work) closer to a real stream.
  const pictures = Array.from({ length: frames }, (_, i) =>
    texture(testPicture(width, height, i, Math.floor(i / 90)), width, height, i),
  );
  const bitrateKbps = width >= 1280 ? 2500 : 1200;
  const encoded = encodeVideo(pictures, { codec, width, height, fps: FPS, bitrateKbps, keyframeInterval: 120 });
  return rtpizeVideo(encoded, codec, { streamId, trackId: 'video', fps: FPS, startAt: 0 });
}

function texture(yuv: Uint8Array, width: number, height: number, t: number): Uint8Array {
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let h = ((x + t) * 374761393 + y * 668265263) | 0;
      h = Math.imul(h ^ (h >>> 13), 1274126177);
      const i = y * width + x;
      yuv[i] = Math.max(16, Math.min(235, yuv[i] + ((h >>> 24) & 31) - 16));
    }
  }
  return yuv;
}

interface DecodeFigure {
  codec: string;
  resolution: string;
  frames: number;
  cpuMsPerFrame: number;
  /** Share of one core for one 30 fps stream (decode + sampling at the default 2 fps). */
  coresPerStream30fps: number;
  samplesPerCoreSecond: number;
  /** Same, when every frame is sampled (RGB conversion of all frames): the ceiling per core. */
  allFramesSampled: { cpuMsPerFrame: number; samplesPerCoreSecond: number };
}

async function decodeCost(codec: 'VP8' | 'H264', width: number, height: number): Promise<DecodeFigure> {
  const frames = 150;
  const packets = clip(codec, width, height, frames, 'cpu');
  const run = async (videoFps: number): Promise<{ cpuMs: number; samples: number }> => {
    const pool = await SamplerPool.create({ workers: 1, videoFps, maxLagMs: 1e9, maxQueueBytes: 1 << 30 });
    let samples = 0;
    pool.on('sample', () => samples++);
    // Warm-up: the first run of a decoder pays for allocations.
    pushLive(
      pool,
      packets.map((p) => ({ ...p, streamId: 'warm' })),
    );
    await waitFor(() => pool.stats().find((s) => s.streamId === 'warm' && s.frames === frames), 120000, 'warm-up');
    samples = 0;
    const c0 = process.cpuUsage();
    pushLive(pool, packets);
    await waitFor(() => pool.stats().find((s) => s.streamId === 'cpu' && s.frames === frames), 120000, 'decode');
    const c = process.cpuUsage(c0);
    await pool.close();
    return { cpuMs: (c.user + c.system) / 1000, samples };
  };
  const sampled = await run(2);
  const all = await run(FPS);
  const perFrame = sampled.cpuMs / frames;
  return {
    codec,
    resolution: `${width}x${height}`,
    frames,
    cpuMsPerFrame: round(perFrame),
    coresPerStream30fps: round((perFrame * FPS) / 1000, 3),
    samplesPerCoreSecond: round(sampled.samples / (sampled.cpuMs / 1000), 1),
    allFramesSampled: {
      cpuMsPerFrame: round(all.cpuMs / frames),
      samplesPerCoreSecond: round(all.samples / (all.cpuMs / 1000), 1),
    },
  };
}

function liveStreams(count: number, width: number, height: number): RtpPacketIn[][] {
  const video = clip('VP8', width, height, FPS * 4, 'x');
  const audio = rtpizeOpus(encodeOpus(tone(440, 4)), { streamId: 'x', trackId: 'audio', startAt: 0 });
  const out: RtpPacketIn[][] = [];
  for (let i = 0; i < count; i++) {
    out.push(
      video.map((p) => ({ ...p, streamId: `live-${i}` })),
      audio.map((p) => ({ ...p, streamId: `live-${i}` })),
    );
  }
  return out;
}

function medianFigures(runs: ForwardingFigures[]): ForwardingFigures {
  const med = (k: keyof ForwardingFigures): number =>
    percentile(
      runs.map((r) => r[k]),
      50,
    );
  return {
    packets: med('packets'),
    lost: med('lost'),
    latencyP50Ms: med('latencyP50Ms'),
    latencyP99Ms: med('latencyP99Ms'),
    eventLoopDelayP99Ms: med('eventLoopDelayP99Ms'),
  };
}

async function main(): Promise<void> {
  const started = Date.now();
  console.log(`sampler bench: ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'}), ${SECONDS} s paced runs`);
  const decode: DecodeFigure[] = [];
  for (const [codec, w, h] of [
    ['VP8', 640, 480],
    ['H264', 640, 480],
    ['VP8', 1280, 720],
    ['H264', 1280, 720],
  ] as const) {
    const f = await decodeCost(codec, w, h);
    decode.push(f);
    console.log(
      `decode ${codec} ${f.resolution}: ${f.cpuMsPerFrame} ms CPU/frame -> ${f.coresPerStream30fps} core per 30 fps stream; ` +
        `${f.samplesPerCoreSecond} samples/s per core at 2 fps sampling, ${f.allFramesSampled.samplesPerCoreSecond} when every frame is sampled`,
    );
  }

  // Forwarding loop with and without samplers, and the samplers' own latency, on the same load.
  const streamCount = 4;
  const streams = liveStreams(streamCount, 640, 480);
  await runForwarding(streams, 1000);
  // Off and on alternate (3 rounds each) so drift in the machine's background load hits both alike.
  const offRuns: ForwardingFigures[] = [];
  const onRuns: ForwardingFigures[] = [];
  const video: number[] = [];
  const audio: number[] = [];
  let drops = 0;
  let workers = 0;
  for (let round = 0; round < 3; round++) {
    offRuns.push(await runForwarding(streams, SECONDS * 1000));
    const pool = await SamplerPool.create({});
    workers = pool.options.workers;
    pool.on('sample', (s) => (s.kind === 'video' ? video : audio).push(s.timings.readyAt - s.timings.arrivedAt));
    onRuns.push(await runForwarding(streams, SECONDS * 1000, (p) => pool.push(p)));
    drops += pool.stats().reduce((s, x) => s + x.drops, 0);
    await pool.close();
  }
  const off = medianFigures(offRuns);
  const on = medianFigures(onRuns);
  console.log(
    `forwarding off: p50 ${round(off.latencyP50Ms, 3)} ms p99 ${round(off.latencyP99Ms, 3)} ms, event-loop p99 ${round(off.eventLoopDelayP99Ms)} ms`,
  );
  console.log(
    `forwarding on:  p50 ${round(on.latencyP50Ms, 3)} ms p99 ${round(on.latencyP99Ms, 3)} ms, event-loop p99 ${round(on.eventLoopDelayP99Ms)} ms`,
  );
  const ratio = {
    p50: round(on.latencyP50Ms / off.latencyP50Ms, 3),
    p99: round(on.latencyP99Ms / off.latencyP99Ms, 3),
    eventLoopP99: round(on.eventLoopDelayP99Ms / off.eventLoopDelayP99Ms, 3),
  };
  console.log(
    `forwarding-latency ratio on/off: p50 ${ratio.p50}, p99 ${ratio.p99}; event-loop p99 ${ratio.eventLoopP99}`,
  );
  const latency = {
    video: { samples: video.length, p50Ms: round(percentile(video, 50)), p99Ms: round(percentile(video, 99)) },
    audio: { samples: audio.length, p50Ms: round(percentile(audio, 50)), p99Ms: round(percentile(audio, 99)) },
  };
  console.log(
    `sample latency (last packet arrived -> sample ready), ${streamCount} x VP8 640x480 30 fps + Opus: ` +
      `video p50 ${latency.video.p50Ms} ms p99 ${latency.video.p99Ms} ms (${video.length} samples); ` +
      `audio p50 ${latency.audio.p50Ms} ms p99 ${latency.audio.p99Ms} ms (${audio.length}); drops ${drops}`,
  );

  const result = {
    bench: 'sampler',
    at: new Date().toISOString(),
    machine: {
      cores: availableParallelism(),
      cpu: cpus()[0]?.model,
      node: process.version,
      note: 'shared dev box: other processes compete for the cores',
    },
    decode,
    live: {
      streams: streamCount,
      load: 'VP8 640x480 30 fps + Opus 20 ms per stream',
      seconds: SECONDS,
      rounds: 3,
      workers,
      drops,
    },
    sampleLatency: latency,
    forwarding: { off, on, ratio, note: 'medians of 3 alternating rounds', rounds: { off: offRuns, on: onRuns } },
    wallSeconds: round((Date.now() - started) / 1000, 1),
  };
  mkdirSync(new URL('results/', import.meta.url), { recursive: true });
  writeFileSync(new URL('results/sampler.json', import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
  console.log('wrote bench/results/sampler.json');
}

await main();
