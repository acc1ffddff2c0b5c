// GPU scale note (issue 16): where an NVIDIA GPU is present, how many streams' classifier work one GPU
// carries (onnxruntime CUDA execution provider, the cascade's fast model at batch 1 / 8 / 32) and which
// NVDEC decoders node-av's FFmpeg offers; on a machine without one it skips with the reason, exits 0
// and writes the reason, so the scale note stays honest about where it was measured.
//   npm run bench:gpu-scale      GPU_SCALE_SECONDS=3 (per batch size)  GPU_SCALE_OUT=bench/results/gpu-scale.json
// onnxruntime-node is installed here without its CUDA binaries (.npmrc onnxruntime-node-install=skip):
// a GPU machine installs them (ONNXRUNTIME_NODE_INSTALL_CUDA) before this bench can use the GPU.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname } from 'node:path';
import { Codec } from 'node-av';
import {
  FF_DECODER_AV1_CUVID,
  FF_DECODER_H264_CUVID,
  FF_DECODER_VP8_CUVID,
  FF_DECODER_VP9_CUVID,
} from 'node-av/constants';
import * as ort from 'onnxruntime-node';
import { ModelRegistry } from '../models/registry.ts';
import { ModelStore } from '../models/model-store.ts';

const SECONDS = Number(process.env.GPU_SCALE_SECONDS ?? 3);
const OUT = process.env.GPU_SCALE_OUT ?? 'bench/results/gpu-scale.json';
/** Samples per second one stream sends to the classifier (the sampler's default rate). */
const SAMPLES_PER_STREAM = 2;
const NVDEC = {
  h264_cuvid: FF_DECODER_H264_CUVID,
  vp8_cuvid: FF_DECODER_VP8_CUVID,
  vp9_cuvid: FF_DECODER_VP9_CUVID,
  av1_cuvid: FF_DECODER_AV1_CUVID,
};

function write(result: object): void {
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, `${JSON.stringify({ bench: 'gpu-scale', at: new Date().toISOString(), ...result }, null, 2)}\n`);
}

async function main(): Promise<void> {
  const smi = spawnSync('nvidia-smi', ['--query-gpu=name,memory.total', '--format=csv,noheader'], { encoding: 'utf8' });
  const gpu = smi.status === 0 ? smi.stdout.trim() : undefined;
  const nvdec = Object.entries(NVDEC)
    .filter(([, codec]) => Codec.findDecoderByName(codec) !== null)
    .map(([name]) => name);
  const checks = {
    nvidiaSmi: gpu ?? (smi.error ? `not found (${smi.error.message})` : `exit ${smi.status}`),
    devNvidia0: existsSync('/dev/nvidia0'),
    nvdecDecodersInFfmpegBuild: nvdec,
  };
  if (!gpu) {
    const reason =
      'no NVIDIA GPU on this machine (nvidia-smi absent or failing): nothing to measure; run it where a GPU is present';
    console.log(`bench:gpu-scale skipped: ${reason}\n  checks: ${JSON.stringify(checks)}`);
    write({ skipped: true, reason, checks });
    return;
  }
  const registry = ModelRegistry.load();
  const spec = registry.get('nsfw-mobilenet-v2');
  const file = await new ModelStore().path(spec);
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(file, { executionProviders: ['cuda'] });
  } catch (err) {
    const reason = `a GPU is present (${gpu}) but onnxruntime-node has no CUDA execution provider: ${(err as Error).message}`;
    console.log(`bench:gpu-scale skipped: ${reason}`);
    write({ skipped: true, reason, checks });
    return;
  }
  const size = spec.input.size;
  const rows: { batch: number; imagesPerSec: number; msPerBatch: number; streamsAt2fps: number }[] = [];
  for (const batch of [1, 8, 32]) {
    const input = new ort.Tensor(
      'float32',
      new Float32Array(batch * size * size * 3).map(() => Math.random()),
      [batch, size, size, 3],
    );
    const feeds = { [session.inputNames[0]!]: input };
    for (let i = 0; i < 5; i++) await session.run(feeds);
    let n = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < SECONDS * 1000) {
      await session.run(feeds);
      n++;
    }
    const sec = (performance.now() - t0) / 1000;
    const imagesPerSec = (n * batch) / sec;
    rows.push({
      batch,
      imagesPerSec: Math.round(imagesPerSec),
      msPerBatch: Math.round((1000 * sec * 100) / n) / 100,
      streamsAt2fps: Math.floor(imagesPerSec / SAMPLES_PER_STREAM),
    });
    console.log(
      `fast model on CUDA, batch ${batch}: ${imagesPerSec.toFixed(0)} images/s (${((1000 * sec) / n).toFixed(2)} ms per batch) -> ~${Math.floor(imagesPerSec / SAMPLES_PER_STREAM)} streams at ${SAMPLES_PER_STREAM} samples/s`,
    );
  }
  await session.release();
  const note = `one GPU (${gpu}) carries the fast classifier of ~${Math.max(...rows.map((r) => r.streamsAt2fps))} streams at ${SAMPLES_PER_STREAM} samples/s; decode, OCR pre/post-processing, fingerprints and forwarding stay on the ${availableParallelism()} CPU cores unless NVDEC (${nvdec.join(', ') || 'none in this FFmpeg build'}) takes the decode`;
  console.log(`scale note: ${note}`);
  write({ skipped: false, checks, gpu, model: spec.name, rows, note });
}

await main();
