// Inference benchmark: per model, backend (in-process onnxruntime / gRPC to our KServe-v2 server), batch size
// 1/4/8 and 1/2 intra-op threads: throughput and p50/p99 latency per call; gRPC overhead per call; event-loop
// delay with sessions inline vs in the worker; conversion times. Writes bench/results/inference.json.
//   npm run bench:inference [-- --quick] [--models a,b] [--seconds 1]
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { tmpdir, cpus } from 'node:os';
import path from 'node:path';
import { ModelRegistry, inputShape } from '../models/registry.ts';
import { ModelStore } from '../models/model-store.ts';
import { OnnxRuntimeBackend } from '../models/backends/onnxruntime/onnxruntime-backend.ts';
import { KServeBackend } from '../models/backends/kserve/kserve-backend.ts';
import type { Backend } from '../models/backends/types.ts';
import { NsfwCascade } from '../models/nsfw-cascade.ts';
import { resizeBilinearAlignCorners } from '../samplers/preprocess.ts';
import { startInferenceServer } from '../test/models/server-process.ts';
import { syntheticImage, PATTERNS } from '../test/models/synthetic.ts';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}
const quick = process.argv.includes('--quick');
const seconds = Number(arg('seconds') ?? (quick ? 0.4 : 1));
const minIters = quick ? 3 : 5;
const registry = ModelRegistry.load();
const models = arg('models')?.split(',') ?? ['nsfw-mobilenet-v2', 'nsfw-mobilenet-v2-mid', 'nsfw-inception-v3'];
const batches = [1, 4, 8];
const threadCounts = [1, 2];

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

interface Row {
  model: string;
  backend: 'in-process' | 'grpc';
  threads: number;
  batch: number;
  calls: number;
  imagesPerSec: number;
  p50Ms: number;
  p99Ms: number;
  msPerImage: number;
}

async function measure(
  backend: Backend,
  model: string,
  batch: number,
): Promise<Omit<Row, 'model' | 'backend' | 'threads' | 'batch'>> {
  const spec = registry.get(model);
  const shape = inputShape(spec, batch);
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = ((i * 2654435761) >>> 24) / 255;
  await backend.infer(model, { data, shape }); // warm
  const lat: number[] = [];
  const t0 = performance.now();
  while (lat.length < minIters || performance.now() - t0 < seconds * 1000) {
    const s = performance.now();
    await backend.infer(model, { data, shape });
    lat.push(performance.now() - s);
    if (lat.length >= 200) break;
  }
  const total = performance.now() - t0;
  lat.sort((a, b) => a - b);
  return {
    calls: lat.length,
    imagesPerSec: (lat.length * batch * 1000) / total,
    p50Ms: pct(lat, 50),
    p99Ms: pct(lat, 99),
    msPerImage: pct(lat, 50) / batch,
  };
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  const log = (r: Row) => {
    rows.push(r);
    console.log(
      `${r.model.padEnd(22)} ${r.backend.padEnd(10)} t=${r.threads} b=${r.batch}  ${r.imagesPerSec.toFixed(1).padStart(7)} img/s  p50 ${r.p50Ms.toFixed(1).padStart(7)} ms  p99 ${r.p99Ms.toFixed(1).padStart(7)} ms  (${r.calls} calls)`,
    );
  };

  // Conversion times (fresh cache).
  const tmpCache = mkdtempSync(path.join(tmpdir(), 'bench-models-'));
  const conversion: Record<string, { convertMs: number; bytes: number }> = {};
  try {
    const store = new ModelStore({ cacheDir: tmpCache });
    for (const m of models) {
      const spec = registry.get(m);
      await store.path(spec);
      const rec = store.conversionRecord(spec);
      if (rec) conversion[m] = { convertMs: rec.convertMs, bytes: rec.bytes };
      console.log(`convert ${m}: ${rec?.convertMs.toFixed(0)} ms`);
    }
  } finally {
    rmSync(tmpCache, { recursive: true, force: true });
  }

  const grpcOverhead: Record<string, number> = {};
  for (const threads of threadCounts) {
    const local = new OnnxRuntimeBackend({ registry, intraOpNumThreads: threads });
    for (const m of models)
      for (const b of batches)
        log({ model: m, backend: 'in-process', threads, batch: b, ...(await measure(local, m, b)) });
    await local.close();

    const server = await startInferenceServer({ models, threads });
    const remote = new KServeBackend({ address: server.address, registry, defaultTimeoutMs: 60_000 });
    try {
      for (const m of models)
        for (const b of batches)
          log({ model: m, backend: 'grpc', threads, batch: b, ...(await measure(remote, m, b)) });
      // Bare round trip: ServerLive carries no tensor.
      const rt: number[] = [];
      for (let i = 0; i < 200; i++) {
        const s = performance.now();
        await remote.serverLive();
        rt.push(performance.now() - s);
      }
      rt.sort((a, b) => a - b);
      grpcOverhead[`serverLive_p50_ms_t${threads}`] = pct(rt, 50);
    } finally {
      await remote.close();
      await server.stop();
    }
  }
  // gRPC overhead per call: p50(gRPC) - p50(in-process), same model/batch/threads.
  const overhead = rows
    .filter((r) => r.backend === 'grpc')
    .map((g) => {
      const l = rows.find(
        (r) => r.backend === 'in-process' && r.model === g.model && r.batch === g.batch && r.threads === g.threads,
      )!;
      return {
        model: g.model,
        threads: g.threads,
        batch: g.batch,
        overheadMs: g.p50Ms - l.p50Ms,
        payloadBytes: inputShape(registry.get(g.model), g.batch).reduce((a, b) => a * b, 4),
      };
    });
  for (const o of overhead)
    console.log(
      `grpc overhead ${o.model} t=${o.threads} b=${o.batch}: ${o.overheadMs.toFixed(2)} ms (${(o.payloadBytes / 1e6).toFixed(1)} MB)`,
    );
  console.log(
    `grpc bare round trip (ServerLive) p50: ${Object.entries(grpcOverhead)
      .map(([k, v]) => `${k}=${v.toFixed(2)} ms`)
      .join(' ')}`,
  );

  // Event-loop delay while InceptionV3 runs batches of 4: sessions inline vs in the worker.
  const loop: Record<string, { p99Ms: number; maxMs: number }> = {};
  for (const worker of [false, true]) {
    const be = new OnnxRuntimeBackend({ registry, intraOpNumThreads: 2, worker });
    const spec = registry.get('nsfw-inception-v3');
    const shape = inputShape(spec, 4);
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.5);
    await be.infer(spec.name, { data, shape });
    const h = monitorEventLoopDelay({ resolution: 1 });
    h.enable();
    for (let i = 0; i < (quick ? 3 : 6); i++) await be.infer(spec.name, { data, shape });
    h.disable();
    loop[worker ? 'worker' : 'inline'] = { p99Ms: h.percentile(99) / 1e6, maxMs: h.max / 1e6 };
    console.log(
      `event-loop delay during InceptionV3 b=4 (${worker ? 'worker' : 'inline'}): p99 ${(h.percentile(99) / 1e6).toFixed(1)} ms, max ${(h.max / 1e6).toFixed(1)} ms`,
    );
    await be.close();
  }

  // The cascade end to end (640x360 frames, one at a time, 100 ms budget): default band, and a band that
  // escalates everything (the worst case: fast + deep on every frame).
  const cascadeFig: Record<
    string,
    { frames: number; p50Ms: number; p99Ms: number; escalated: number; deadlineMissed: number }
  > = {};
  for (const [label, band] of [
    ['default_band', [0.4, 0.7]],
    ['escalate_all', [0, 1]],
  ] as const) {
    const cascade = await NsfwCascade.load({
      preprocess: (f, size) => resizeBilinearAlignCorners(f, size),
      uncertainBand: [band[0], band[1]],
      onnxruntime: { intraOpNumThreads: 2 },
    });
    const lat: number[] = [];
    let missed = 0;
    const n = quick ? 10 : 30;
    for (let i = 0; i < n; i++) {
      const frame = syntheticImage(PATTERNS[i % PATTERNS.length]!, 640, 360, i);
      const arrivedAt = performance.timeOrigin + performance.now();
      const r = await cascade.classify(frame, { arrivedAt });
      if (r.status !== 'ok' || r.deepStatus === 'deadline_missed') missed++;
      lat.push(r.timings.total!);
    }
    lat.sort((a, b) => a - b);
    cascadeFig[label] = {
      frames: n,
      p50Ms: pct(lat, 50),
      p99Ms: pct(lat, 99),
      escalated: cascade.stats().escalated,
      deadlineMissed: missed,
    };
    console.log(
      `cascade ${label}: p50 ${pct(lat, 50).toFixed(1)} ms p99 ${pct(lat, 99).toFixed(1)} ms, escalated ${cascade.stats().escalated}/${n}, missed ${missed}`,
    );
    await cascade.close();
  }

  const out = path.resolve(import.meta.dirname, 'results', 'inference.json');
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(
    out,
    JSON.stringify(
      {
        at: new Date().toISOString(),
        machine: {
          cpus: cpus().length,
          model: cpus()[0]?.model,
          node: process.version,
          note: 'shared machine: figures are noisy',
        },
        settings: { seconds, minIters, quick },
        conversion,
        rows,
        cascade: cascadeFig,
        grpcOverhead: { perCall: overhead, bareRoundTrip: grpcOverhead },
        eventLoop: loop,
      },
      null,
      1,
    ) + '\n',
  );
  console.log(`wrote ${out}`);
}

await main();
