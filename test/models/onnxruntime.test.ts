// The in-process onnxruntime backend and the registry: coded errors, operator models by config alone, and
// inference off the event loop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { OnnxRuntimeBackend, sessionOptionsOf } from '../../models/backends/onnxruntime/onnxruntime-backend.ts';
import { ModelRegistry, normalizeInput, postprocess } from '../../models/registry.ts';
import { ModelStore } from '../../models/model-store.ts';
import { isModelError } from '../../models/errors.ts';
import { syntheticImage, toUnitFloat } from './synthetic.ts';
import { maxAbsDiff } from './helpers.ts';

test(
  'intra-op threads do not spin between runs unless asked (issue 16), and sessions so made infer the same',
  { timeout: 120_000 },
  async () => {
    const extraOf = (o: object) => JSON.stringify((o as { extra?: unknown }).extra);
    await using quiet = new OnnxRuntimeBackend({});
    assert.equal(
      extraOf(sessionOptionsOf(quiet.options)),
      JSON.stringify({ session: { intra_op: { allow_spinning: '0' } } }),
    );
    await using spinning = new OnnxRuntimeBackend({ intraOpSpinning: true });
    assert.equal(
      extraOf(sessionOptionsOf(spinning.options)),
      JSON.stringify({ session: { intra_op: { allow_spinning: '1' } } }),
    );
    const x = new Float32Array(224 * 224 * 3).map((_, i) => (i % 97) / 97);
    const a = await quiet.infer('nsfw-mobilenet-v2', { data: x, shape: [1, 224, 224, 3] });
    const b = await spinning.infer('nsfw-mobilenet-v2', { data: x, shape: [1, 224, 224, 3] });
    assert.deepEqual(Array.from(a.data), Array.from(b.data));
    // the run itself, timed on the session thread, is part of the call's time
    for (const r of [a, b]) assert.ok(r.runMs! > 0 && r.runMs! <= r.inferMs, `run ${r.runMs} ms of ${r.inferMs} ms`);
  },
);

test('unknown model and wrong shapes are coded errors', { timeout: 120_000 }, async () => {
  await using backend = new OnnxRuntimeBackend({ intraOpNumThreads: 1 });
  const x = new Float32Array(224 * 224 * 3);
  await assert.rejects(backend.infer('nope', { data: x, shape: [1, 224, 224, 3] }), (e) =>
    isModelError(e, 'MOD_ERR_UNKNOWN_MODEL'),
  );
  assert.throws(
    () => ModelRegistry.load().get('nope'),
    (e) => isModelError(e, 'MOD_ERR_UNKNOWN_MODEL') && (e as { statusCode: number }).statusCode === 404,
  );
  await assert.rejects(backend.infer('nsfw-inception-v3', { data: x, shape: [1, 224, 224, 3] }), (e) =>
    isModelError(e, 'MOD_ERR_BAD_SHAPE'),
  );
  await assert.rejects(backend.infer('nsfw-mobilenet-v2', { data: x, shape: [1, 3, 224, 224] }), (e) =>
    isModelError(e, 'MOD_ERR_BAD_SHAPE'),
  );
  await assert.rejects(backend.infer('nsfw-mobilenet-v2', { data: x.subarray(3), shape: [1, 224, 224, 3] }), (e) =>
    isModelError(e, 'MOD_ERR_BAD_SHAPE'),
  );
  await backend.close();
  await assert.rejects(backend.infer('nsfw-mobilenet-v2', { data: x, shape: [1, 224, 224, 3] }), (e) =>
    isModelError(e, 'MOD_ERR_CLOSED'),
  );
});

test(
  'execution providers: an absent accelerator is a config error, or falls back to a listed cpu',
  { timeout: 120_000 },
  async () => {
    const x = { data: new Float32Array(224 * 224 * 3), shape: [1, 224, 224, 3] };
    await using cudaOnly = new OnnxRuntimeBackend({ executionProviders: ['cuda'], intraOpNumThreads: 1 });
    let cudaWorks = false;
    try {
      await cudaOnly.infer('nsfw-mobilenet-v2', x);
      cudaWorks = true; // a machine with onnxruntime-node's CUDA binaries
    } catch (err) {
      assert.ok(isModelError(err, 'MOD_ERR_CONFIG'), String(err));
    }
    await using withCpu = new OnnxRuntimeBackend({ executionProviders: ['cuda', 'cpu'], intraOpNumThreads: 1 });
    assert.deepEqual((await withCpu.infer('nsfw-mobilenet-v2', x)).shape, [1, 5]);
    if (!cudaWorks) assert.match(withCpu.status().detail ?? '', /fell back to cpu/);
  },
);

test('an operator adds an ONNX model by config alone (NCHW, mean/std, logits)', { timeout: 120_000 }, async () => {
  const base = ModelRegistry.load();
  const store = new ModelStore({ baseDir: base.baseDir });
  const onnxFile = await store.path(base.get('nsfw-mobilenet-v2'));
  const dir = mkdtempSync(path.join(tmpdir(), 'models-reg-'));
  try {
    // The converted MobileNetV2 as if it were an operator's file, relative to the registry file.
    writeFileSync(
      path.join(dir, 'ops.yaml'),
      `models:
  - name: ops-classifier
    version: "2026-11-01"
    source: { kind: onnx, path: ${path.relative(dir, onnxFile)} }
    input: { size: 224 }
    output: { name: probabilities }
    labels: [drawing, hentai, neutral, porn, sexy]
    categories: { porn: sexual_explicit, sexy: sexual_suggestive }
`,
    );
    const ops = ModelRegistry.load(path.join(dir, 'ops.yaml'));
    const merged = base.merge(ops);
    assert.ok(merged.has('nsfw-inception-v3') && merged.has('ops-classifier'));
    await using backend = new OnnxRuntimeBackend({ registry: merged, intraOpNumThreads: 1 });
    const x = toUnitFloat(syntheticImage('skin', 224, 224, 7));
    const a = await backend.infer('ops-classifier', { data: x, shape: [1, 224, 224, 3] });
    const b = await backend.infer('nsfw-mobilenet-v2', { data: x, shape: [1, 224, 224, 3] });
    assert.ok(maxAbsDiff(a.data, b.data) === 0);
    const post = postprocess(ops.get('ops-classifier'), a.data);
    assert.equal(post.scores.sexual_explicit, a.data[3]);
    assert.equal(post.labels.neutral, a.data[2]);
    assert.equal(post.scores.hentai, undefined);

    // Invalid entries are refused with MOD_ERR_CONFIG, naming the problem.
    writeFileSync(
      path.join(dir, 'bad.yaml'),
      'models:\n  - name: x\n    version: "1"\n    source: { kind: onnx }\n    input: { size: 224 }\n    output: {}\n    labels: [a]\n',
    );
    assert.throws(
      () => ModelRegistry.load(path.join(dir, 'bad.yaml')),
      (e) => isModelError(e, 'MOD_ERR_CONFIG') && /path/.test((e as Error).message),
    );
    writeFileSync(
      path.join(dir, 'bad2.yaml'),
      'models:\n  - name: x\n    version: "1"\n    source: { kind: onnx, path: x.onnx }\n    input: { size: 224 }\n    output: {}\n    labels: [a]\n    categories: { b: sexual_explicit }\n',
    );
    assert.throws(
      () => ModelRegistry.load(path.join(dir, 'bad2.yaml')),
      (e) => isModelError(e, 'MOD_ERR_CONFIG') && /unknown label b/.test((e as Error).message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('preprocessing options: x*2-1, mean/std, NCHW transpose, softmax', () => {
  const spec = ModelRegistry.fromObject({
    models: [
      {
        name: 'm',
        version: '1',
        source: { kind: 'onnx', path: 'm.onnx' },
        input: { size: 8, layout: 'NCHW', normalize: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.25, 0.5] } },
        output: { activation: 'softmax' },
        labels: ['a', 'b'],
        categories: { b: 'sexual_explicit' },
      },
    ],
  }).get('m');
  // 8x8 NHWC picture: pixel 0 = (1, 0.75, 0), every other pixel = (0.5, 0.5, 0.5).
  const nhwc = new Float32Array(8 * 8 * 3).fill(0.5);
  nhwc.set([1, 0.75, 0], 0);
  const x = normalizeInput(spec, nhwc, 1);
  // NCHW planes: R plane starts at 0, G at 64, B at 128; (v - 0.5) / std.
  assert.deepEqual([x[0], x[1], x[64], x[65], x[128], x[129]], [1, 0, 1, 0, -1, 0]);
  const m2 = ModelRegistry.fromObject({
    models: [{ ...spec, name: 'm2', input: { size: 8, normalize: 'minus1to1' } }],
  }).get('m2');
  assert.deepEqual(Array.from(normalizeInput(m2, new Float32Array([0, 0.5, 1]), 1)), [-1, 0, 1]);
  const p = postprocess(spec, new Float32Array([0, Math.log(3)]));
  assert.ok(Math.abs(p.scores.sexual_explicit! - 0.75) < 1e-6);
});

test(
  'onnxruntime runs off the event loop: timers keep firing during an InceptionV3 batch',
  { timeout: 120_000 },
  async (t) => {
    await using backend = new OnnxRuntimeBackend({ intraOpNumThreads: 2 });
    const x = new Float32Array(4 * 299 * 299 * 3).fill(0.5);
    await backend.infer('nsfw-inception-v3', { data: x, shape: [4, 299, 299, 3] }); // warm
    let ticks = 0;
    let maxGap = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const n = performance.now();
      maxGap = Math.max(maxGap, n - last);
      last = n;
      ticks++;
    }, 2);
    const t0 = performance.now();
    for (let i = 0; i < 3; i++) await backend.infer('nsfw-inception-v3', { data: x, shape: [4, 299, 299, 3] });
    const took = performance.now() - t0;
    clearInterval(timer);
    t.diagnostic(`3 batches of 4 in ${took.toFixed(0)} ms; ${ticks} timer ticks, max gap ${maxGap.toFixed(1)} ms`);
    // A synchronous run would starve the timer for the whole call (~100+ ms per batch here).
    assert.ok(ticks >= took / 2 / 10, `only ${ticks} ticks in ${took.toFixed(0)} ms`);
    assert.ok(maxGap < took / 3, `max gap ${maxGap.toFixed(1)} ms of ${took.toFixed(0)} ms`);
  },
);
