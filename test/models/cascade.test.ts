// The cascade escalates uncertain frames, and only those, to the deep model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NsfwCascade } from '../../models/nsfw-cascade.ts';
import { ModelRegistry } from '../../models/registry.ts';
import { ModelError } from '../../models/errors.ts';
import { OnnxRuntimeBackend } from '../../models/backends/onnxruntime/onnxruntime-backend.ts';
import { now, type Backend, type InferOutput, type Tensor } from '../../models/backends/types.ts';
import type { ImageFrame } from '../../models/types.ts';
import { PATTERNS, syntheticImage } from './synthetic.ts';
import { loadPreprocess, maxAbsDiff } from './helpers.ts';

const LABELS = ['Drawing', 'Hentai', 'Neutral', 'Porn', 'Sexy'];

/**
 * A controllable backend: the Porn probability of a frame is its first byte / 100 (the rest goes to
 * Neutral), so a test can put frames exactly inside or outside the band. The deep model answers `deepPorn`.
 */
class ScriptedBackend implements Backend {
  readonly name = 'scripted';
  calls: { model: string; n: number }[] = [];
  readonly #deepPorn: number;
  constructor(deepPorn: number) {
    this.#deepPorn = deepPorn;
  }
  async load(): Promise<void> {}
  async infer(model: string, input: Tensor): Promise<InferOutput> {
    const n = input.shape[0]!;
    const per = input.data.length / n;
    this.calls.push({ model, n });
    const out = new Float32Array(n * 5);
    for (let i = 0; i < n; i++) {
      // preprocess below is the identity on a 1x1 frame: data[i*per] = byte/255.
      const porn = model === 'nsfw-inception-v3' ? this.#deepPorn : Math.round(input.data[i * per]! * 255) / 100;
      out[i * 5 + 3] = porn;
      out[i * 5 + 2] = 1 - porn;
    }
    return { data: out, shape: [n, 5], inferMs: 0 };
  }
  status() {
    return { backend: this.name, ready: true, models: [] };
  }
  async close(): Promise<void> {}
}

const onePixel = (byte: number): ImageFrame => ({ width: 1, height: 1, rgb: new Uint8Array([byte, 0, 0]) });
// Fills the model's input with the frame's first byte /255, whatever the size.
const flatPreprocess = (f: ImageFrame, size: number) => new Float32Array(size * size * 3).fill(f.rgb[0]! / 255);

test('default band 0.40-0.70: exactly the in-band frames go to the deep model', { timeout: 60_000 }, async () => {
  const backend = new ScriptedBackend(0.9);
  await using cascade = await NsfwCascade.load({ preprocess: flatPreprocess, backend, warmUp: false });
  const cases = [
    { porn: 39, escalate: false },
    { porn: 40, escalate: true },
    { porn: 55, escalate: true },
    { porn: 70, escalate: true },
    { porn: 71, escalate: false },
    { porn: 5, escalate: false },
    { porn: 95, escalate: false },
  ];
  for (const c of cases) {
    backend.calls = [];
    const r = await cascade.classify(onePixel(c.porn), { deadline: now() + 5_000 });
    assert.equal(r.status, 'ok');
    assert.equal(r.escalated, c.escalate, `porn=${c.porn / 100}`);
    assert.equal(
      backend.calls.some((x) => x.model === 'nsfw-inception-v3'),
      c.escalate,
    );
    if (c.escalate) {
      // The deep model answered 0.9 for Porn: confident, so not uncertain, and its scores are reported.
      assert.ok(Math.abs(r.scores.sexual_explicit! - 0.9) < 1e-6);
      assert.deepEqual(
        r.models.map((m) => m.name),
        ['nsfw-mobilenet-v2', 'nsfw-inception-v3'],
      );
      assert.equal(r.uncertain, false);
      assert.ok(r.timings.deep_inference !== undefined);
    } else {
      assert.ok(Math.abs(r.scores.sexual_explicit! - c.porn / 100) < 1e-6);
      assert.deepEqual(
        r.models.map((m) => m.name),
        ['nsfw-mobilenet-v2'],
      );
      assert.equal(r.uncertain, false);
    }
    assert.ok(r.models.every((m) => m.version === 'nsfwjs-4.4.0'));
  }
  assert.equal(cascade.stats().escalated, 3);
});

test(
  'an answer that comes after the deadline is used (late): a late fast answer is not escalated and left for humans when in the band, a late deep answer settles it',
  { timeout: 60_000 },
  async () => {
    const slow = new ScriptedBackend(0.1);
    const infer = slow.infer.bind(slow);
    slow.infer = async (model, input) => {
      await new Promise((r) => setTimeout(r, 80)); // past the 30 ms deadline below, within the late grace
      return infer(model, input);
    };
    await using cascade = await NsfwCascade.load({ preprocess: flatPreprocess, backend: slow, warmUp: false });
    const clear = await cascade.classify(onePixel(10), { deadline: now() + 30 });
    assert.equal(clear.status, 'ok');
    assert.equal(clear.late, true);
    assert.ok(Math.abs(clear.scores.sexual_explicit! - 0.1) < 1e-6, JSON.stringify(clear.scores));
    const unsure = await cascade.classify(onePixel(60), { deadline: now() + 30 });
    assert.equal(unsure.status, 'ok');
    assert.equal(unsure.escalated, false, 'its deadline has passed: no deep run');
    assert.equal(unsure.uncertain, true);
    assert.deepEqual(
      slow.calls.map((c) => c.model),
      ['nsfw-mobilenet-v2', 'nsfw-mobilenet-v2'],
    );
    assert.equal(cascade.stats().late, 2);

    // in time for the fast model (80 ms of 150), late for the deep one (another 80): its answer settles the band
    const settled = await cascade.classify(onePixel(60), { deadline: now() + 150 });
    assert.equal(settled.escalated, true);
    assert.equal(settled.late, true);
    assert.equal(settled.uncertain, false, 'the deep model scored 0.1');
    assert.deepEqual(
      settled.models.map((m) => m.name),
      ['nsfw-mobilenet-v2', 'nsfw-inception-v3'],
    );
  },
);

test(
  'what the deep model leaves in the band is marked uncertain; a failed deep stage too',
  { timeout: 60_000 },
  async () => {
    await using unsure = await NsfwCascade.load({
      preprocess: flatPreprocess,
      backend: new ScriptedBackend(0.5),
      warmUp: false,
    });
    const r = await unsure.classify(onePixel(60), { deadline: now() + 5_000 });
    assert.equal(r.escalated, true);
    assert.equal(r.uncertain, true);

    const failing = new ScriptedBackend(0.5);
    failing.infer = async (model, input) => {
      if (model === 'nsfw-inception-v3') throw new ModelError('MOD_ERR_BACKEND_DOWN', 'deep backend down');
      return ScriptedBackend.prototype.infer.call(failing, model, input);
    };
    await using cascade = await NsfwCascade.load({ preprocess: flatPreprocess, backend: failing, warmUp: false });
    const f = await cascade.classify(onePixel(60), { deadline: now() + 5_000 });
    assert.equal(f.status, 'ok');
    assert.equal(f.deepStatus, 'unavailable');
    assert.equal(f.uncertain, true);
    assert.deepEqual(
      f.models.map((m) => m.name),
      ['nsfw-mobilenet-v2'],
    );
  },
);

test(
  'real models: a band placed between observed fast scores escalates exactly the frames inside it',
  { timeout: 300_000 },
  async (t) => {
    const { fn: preprocess } = await loadPreprocess();
    const registry = ModelRegistry.load();
    await using backend = new OnnxRuntimeBackend({ registry, intraOpNumThreads: 1 });
    const frames = PATTERNS.flatMap((p) => [1, 2].map((seed) => syntheticImage(p, 160 + seed * 40, 120, seed)));
    // Fast-model violating score of each frame, straight from the backend.
    const fastMax: number[] = [];
    const fastOut: Float32Array[] = [];
    for (const f of frames) {
      const out = await backend.infer('nsfw-mobilenet-v2', { data: preprocess(f, 224), shape: [1, 224, 224, 3] });
      fastOut.push(out.data);
      fastMax.push(Math.max(out.data[1]!, out.data[3]!, out.data[4]!));
    }
    const sorted = [...new Set(fastMax)].sort((a, b) => a - b);
    assert.ok(sorted.length >= 6, 'need distinct scores to place a band');
    // A band covering the middle third of the observed scores.
    const a = Math.floor(sorted.length / 3);
    const b = Math.floor((2 * sorted.length) / 3);
    const lo = (sorted[a - 1]! + sorted[a]!) / 2;
    const hi = (sorted[b]! + sorted[b + 1]!) / 2;
    t.diagnostic(`band [${lo.toExponential(3)}, ${hi.toExponential(3)}] over ${frames.length} frames`);
    await using cascade = await NsfwCascade.load({ preprocess, backend, registry, uncertainBand: [lo, hi] });
    let escalated = 0;
    for (let i = 0; i < frames.length; i++) {
      const r = await cascade.classify(frames[i]!, { deadline: now() + 60_000 });
      assert.equal(r.status, 'ok');
      const inBand = fastMax[i]! >= lo && fastMax[i]! <= hi;
      assert.equal(r.escalated, inBand, `frame ${i} score ${fastMax[i]}`);
      if (inBand) {
        escalated++;
        // The reported labels are the deep model's own output for this frame.
        const deep = await backend.infer('nsfw-inception-v3', {
          data: preprocess(frames[i]!, 299),
          shape: [1, 299, 299, 3],
        });
        assert.ok(
          maxAbsDiff(
            LABELS.map((l) => r.labels[l]!),
            deep.data,
          ) < 1e-5,
        );
        assert.equal(r.models.length, 2);
      } else {
        assert.ok(
          maxAbsDiff(
            LABELS.map((l) => r.labels[l]!),
            fastOut[i]!,
          ) < 1e-5,
        );
        assert.equal(r.models.length, 1);
      }
    }
    assert.ok(escalated > 0 && escalated < frames.length);
    assert.equal(cascade.stats().escalated, escalated);
    // Warm-up bypasses the batcher: every deep submission is an escalation.
    assert.equal(cascade.stats().deep.submitted, escalated);
  },
);
