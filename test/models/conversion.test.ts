// Converted nsfwjs models (TF.js -> ONNX, run on onnxruntime-node) reproduce nsfwjs's own outputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ModelRegistry } from '../../models/registry.ts';
import { OnnxRuntimeBackend } from '../../models/backends/onnxruntime/onnxruntime-backend.ts';
import { syntheticImage, toUnitFloat, type Pattern } from './synthetic.ts';
import { loadPreprocess, maxAbsDiff } from './helpers.ts';

interface Fixture {
  cases: { model: string; pattern: Pattern; width: number; height: number; seed: number; probabilities: number[] }[];
}
const fixture = JSON.parse(
  readFileSync(path.resolve(import.meta.dirname, '..', 'fixtures', 'nsfw-reference.json'), 'utf8'),
) as Fixture;
const NAMES: Record<string, string> = {
  MobileNetV2: 'nsfw-mobilenet-v2',
  MobileNetV2Mid: 'nsfw-mobilenet-v2-mid',
  InceptionV3: 'nsfw-inception-v3',
};
const TOLERANCE = 1e-5;

test(
  'converted models reproduce nsfwjs on the reference inputs (max abs diff <= 1e-5)',
  { timeout: 300_000 },
  async (t) => {
    const registry = ModelRegistry.load();
    await using backend = new OnnxRuntimeBackend({ registry, intraOpNumThreads: 1 });
    const { fn: preprocess, source } = await loadPreprocess();
    t.diagnostic(`preprocess for resized cases: ${source}`);
    assert.ok(fixture.cases.length >= 15);
    for (const [ref, name] of Object.entries(NAMES)) {
      const spec = registry.get(name);
      const size = spec.input.size;
      let worstDirect = 0;
      let worstResized = 0;
      for (const c of fixture.cases.filter((x) => x.model === ref)) {
        const frame = syntheticImage(c.pattern, c.width, c.height, c.seed);
        const direct = c.width === size && c.height === size;
        const input = direct ? toUnitFloat(frame) : preprocess(frame, size);
        const out = await backend.infer(name, { data: input, shape: [1, size, size, 3] });
        const diff = maxAbsDiff(out.data, c.probabilities);
        if (direct) worstDirect = Math.max(worstDirect, diff);
        else worstResized = Math.max(worstResized, diff);
        assert.ok(diff <= TOLERANCE, `${name} ${c.pattern} ${c.width}x${c.height}: max abs diff ${diff}`);
      }
      t.diagnostic(
        `${name}: max abs diff ${worstDirect.toExponential(2)} (model input size), ${worstResized.toExponential(2)} (resized)`,
      );
    }
  },
);

test('a batch gives the same rows as single images', { timeout: 120_000 }, async () => {
  await using backend = new OnnxRuntimeBackend({ intraOpNumThreads: 1 });
  const frames = (['gradient', 'skin', 'noise'] as const).map((p) => toUnitFloat(syntheticImage(p, 224, 224, 7)));
  const batch = new Float32Array(frames.length * 224 * 224 * 3);
  frames.forEach((f, i) => batch.set(f, i * f.length));
  const out = await backend.infer('nsfw-mobilenet-v2', { data: batch, shape: [3, 224, 224, 3] });
  assert.deepEqual(out.shape, [3, 5]);
  for (let i = 0; i < frames.length; i++) {
    const single = await backend.infer('nsfw-mobilenet-v2', { data: frames[i]!, shape: [1, 224, 224, 3] });
    assert.ok(maxAbsDiff(single.data, out.data.subarray(i * 5, i * 5 + 5)) < 1e-5);
  }
});
