// One image model behind a DeadlineBatcher: frames in, label probabilities and category scores out.
// Preprocessing is injected (models/ does not import samplers/): (frame, size) -> NHWC float32 in [0,1].
import { DeadlineBatcher, type BatchAnswer, type DeadlineBatcherOptions } from './deadline-batcher.ts';
import { inputShape, modelRef, normalizeInput, postprocess, type ModelSpec } from './registry.ts';
import { now, type Backend } from './backends/types.ts';
import type { Category, ImageFrame, ModelRef } from './types.ts';

/** (frame, size, out?) -> NHWC float32 in [0,1]; written into `out` (size*size*3 floats) when given. */
export type PreprocessFn = (frame: ImageFrame, size: number, out?: Float32Array) => Float32Array;

export interface Classification {
  labels: Record<string, number>;
  scores: Record<Category, number>;
}

export class ImageClassifier {
  readonly batcher: DeadlineBatcher<ImageFrame, Classification>;
  readonly ref: ModelRef;
  readonly #backend: Backend;
  readonly #preprocess: PreprocessFn;

  constructor(
    readonly spec: ModelSpec,
    backend: Backend,
    preprocess: PreprocessFn,
    batcher: Partial<DeadlineBatcherOptions> = {},
  ) {
    this.#backend = backend;
    this.#preprocess = preprocess;
    this.ref = modelRef(spec);
    this.batcher = new DeadlineBatcher<ImageFrame, Classification>(
      (frames, ctx) => this.#runBatch(frames, ctx.deadline),
      { maxBatchSize: spec.maxBatchSize, ...batcher },
    );
  }

  classify(frame: ImageFrame, deadline: number): Promise<BatchAnswer<Classification>> {
    return this.batcher.submit(frame, deadline);
  }

  /**
   * Runs a batch of `n` black frames once: loads the model and seeds the batch-time estimate. Also
   * preprocesses a few 640x360 frames, so that the first samples do not run the resize (on the
   * caller's thread) as cold code.
   */
  async warmUp(sizes: number[] = [1]): Promise<void> {
    await this.#backend.load(this.spec.name);
    const size = this.spec.input.size;
    const slot = new Float32Array(size * size * 3);
    const frame = { width: 640, height: 360, rgb: new Uint8Array(640 * 360 * 3).fill(128) };
    for (let n = 0; n < 3; n++) this.#preprocess(frame, size, slot);
    for (const n of sizes) {
      const input = { data: new Float32Array(n * size * size * 3), shape: inputShape(this.spec, n) };
      // The first run of a fresh session pays one-off initialisation: observe the second.
      await this.#backend.infer(this.spec.name, input);
      const t0 = now();
      await this.#backend.infer(this.spec.name, input);
      this.batcher.estimator.observe(n, now() - t0);
    }
  }

  async #runBatch(
    frames: ImageFrame[],
    deadline: number,
  ): Promise<{ outputs: Classification[]; timings: Record<string, number> }> {
    const size = this.spec.input.size;
    const per = size * size * 3;
    const t0 = now();
    // each frame resized straight into its slot of the batch (no per-frame array to copy and collect)
    const unit = new Float32Array(frames.length * per);
    frames.forEach((f, i) => {
      const slot = unit.subarray(i * per, (i + 1) * per);
      const out = this.#preprocess(f, size, slot);
      if (out !== slot) slot.set(out);
    });
    const input = normalizeInput(this.spec, unit, frames.length);
    const t1 = now();
    const out = await this.#backend.infer(
      this.spec.name,
      { data: input, shape: inputShape(this.spec, frames.length) },
      // the batch's input is made for this call alone: a session thread may take it without a copy
      { deadline, transferInput: true },
    );
    const t2 = now();
    const width = out.shape[out.shape.length - 1] ?? this.spec.labels.length;
    const outputs = frames.map((_, i) => postprocess(this.spec, out.data.subarray(i * width, (i + 1) * width)));
    const t3 = now();
    const timings: Record<string, number> = { preprocess: t1 - t0, inference: t2 - t1, postprocess: t3 - t2 };
    if (out.runMs !== undefined) timings.run = out.runMs;
    return { outputs, timings };
  }

  close(): void {
    this.batcher.close();
  }
}
