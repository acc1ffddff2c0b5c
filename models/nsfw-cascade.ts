// The fast-to-deep cascade: the fast model (MobileNetV2) scores every frame; frames whose score for any
// violating category lands in the uncertain band are re-scored by the deep model (InceptionV3); what the
// deep model leaves in the band is marked `uncertain` for human review.
import { GuardedBackend, type BreakerStats, type CircuitBreakerOptions } from './circuit-breaker.ts';
import type { BatcherStats, DeadlineBatcherOptions } from './deadline-batcher.ts';
import { ImageClassifier, type Classification, type PreprocessFn } from './image-classifier.ts';
import { ModelRegistry } from './registry.ts';
import { OnnxRuntimeBackend, type OnnxRuntimeBackendOptions } from './backends/onnxruntime/onnxruntime-backend.ts';
import { now, type Backend } from './backends/types.ts';
import type { Category, ImageFrame, ModelRef, SignalStatus } from './types.ts';

export interface CascadeResult {
  status: SignalStatus;
  /** Category -> probability: the deep model's where it ran and answered, else the fast model's. */
  scores: Record<Category, number>;
  /** Label probabilities of the model whose scores are reported. */
  labels: Record<string, number>;
  /** The fast model was uncertain and the deep model was asked. */
  escalated: boolean;
  /** Still uncertain after the cascade (or the deep model could not answer): for humans. */
  uncertain: boolean;
  /** Models whose answers contributed (name + version). */
  models: ModelRef[];
  /** ms: queue, preprocess, inference, postprocess (sums over stages), deep_* for the deep stage, total. */
  timings: Record<string, number>;
  /** Status of the deep stage when it was asked. */
  deepStatus?: SignalStatus;
  /**
   * An answer the result uses came after the deadline (status is still 'ok': the scores are what the
   * model saw, and the budget miss is the caller's to count). After a late fast answer the deep model is
   * not asked: its deadline has passed. A late deep answer still settles the band.
   */
  late?: boolean;
  error?: { code: string; message: string };
}

export interface NsfwCascadeOptions {
  /** (frame, size) -> NHWC float32 in [0,1], bilinear align-corners (samplers/preprocess.ts). Required. */
  preprocess: PreprocessFn;
  registry: ModelRegistry;
  /** Backend for both models. Default: onnxruntime-node in process (wrapped in a circuit breaker). */
  backend: Backend;
  /** Options for the default onnxruntime backend. */
  onnxruntime: Partial<Omit<OnnxRuntimeBackendOptions, 'registry'>>;
  /** Fast model (registry name). Default 'nsfw-mobilenet-v2'. */
  fastModel: string;
  /** Deep model (registry name). Default 'nsfw-inception-v3'. */
  deepModel: string;
  /** Inclusive band of violating-category scores that escalate. Default [0.40, 0.70]. */
  uncertainBand: [number, number];
  /** Budget from `arrivedAt` when no deadline is given (ms). Default 100. */
  budgetMs: number;
  /** Batcher options for both stages. */
  batcher: Partial<DeadlineBatcherOptions>;
  /**
   * Batcher options of the fast stage on top of `batcher`. Default { concurrency: 2 }: the next batch is
   * already waiting in the session thread when one finishes, so a busy event loop does not hold the model
   * idle between batches (issue 16, 10-stream load test: decision p50 50 -> 37 ms, p95 160-206 -> 120-137).
   */
  fastBatcher: Partial<DeadlineBatcherOptions>;
  /** Circuit breaker around the backend. */
  breaker: Partial<CircuitBreakerOptions>;
  /** Warm both models up at load (loads sessions, seeds batch-time estimates). Default true. */
  warmUp: boolean;
}

/** The cascade's models by default (registry names). */
export const CASCADE_MODELS = Object.freeze({ fast: 'nsfw-mobilenet-v2', deep: 'nsfw-inception-v3' });

const DEFAULTS = Object.freeze({
  fastModel: CASCADE_MODELS.fast,
  deepModel: CASCADE_MODELS.deep,
  uncertainBand: [0.4, 0.7] as [number, number],
  budgetMs: 100,
  batcher: {},
  fastBatcher: { concurrency: 2 },
  breaker: {},
  onnxruntime: {},
  warmUp: true,
});

export interface ClassifyOptions {
  /** Server clock (ms) by which the answer is needed. Default arrivedAt + budgetMs. */
  deadline?: number;
  /** Server clock (ms) when the frame was complete. Default now. */
  arrivedAt?: number;
}

export class NsfwCascade {
  readonly fast: ImageClassifier;
  readonly deep: ImageClassifier;
  readonly backend: GuardedBackend;
  readonly #counters = { frames: 0, escalated: 0, uncertain: 0, late: 0 };
  #closed = false;
  readonly #ownsBackend: boolean;

  private constructor(
    readonly options: Readonly<Omit<NsfwCascadeOptions, 'backend'>>,
    backend: GuardedBackend,
    ownsBackend: boolean,
  ) {
    this.#ownsBackend = ownsBackend;
    this.backend = backend;
    const { registry, preprocess, batcher } = options;
    this.fast = new ImageClassifier(registry.get(options.fastModel), backend, preprocess, {
      ...batcher,
      ...options.fastBatcher,
    });
    this.deep = new ImageClassifier(registry.get(options.deepModel), backend, preprocess, batcher);
  }

  static async load(opts: Partial<NsfwCascadeOptions> & Pick<NsfwCascadeOptions, 'preprocess'>): Promise<NsfwCascade> {
    const registry = opts.registry ?? ModelRegistry.load();
    const owns = opts.backend === undefined;
    const inner = opts.backend ?? new OnnxRuntimeBackend({ ...opts.onnxruntime, registry });
    const guarded = inner instanceof GuardedBackend ? inner : new GuardedBackend(inner, opts.breaker ?? {});
    const { backend: _b, ...rest } = opts;
    const cascade = new NsfwCascade(Object.freeze({ ...DEFAULTS, ...rest, registry }), guarded, owns);
    try {
      if (cascade.options.warmUp) {
        await cascade.fast.warmUp([1]);
        await cascade.deep.warmUp([1]);
      }
    } catch (err) {
      await cascade.close();
      throw err;
    }
    return cascade;
  }

  /** Models the cascade may use. */
  get models(): ModelRef[] {
    return [this.fast.ref, this.deep.ref];
  }

  isUncertain(scores: Record<Category, number>): boolean {
    const [lo, hi] = this.options.uncertainBand;
    return Object.values(scores).some((s) => s >= lo && s <= hi);
  }

  async classify(frame: ImageFrame, opts: ClassifyOptions = {}): Promise<CascadeResult> {
    const t0 = now();
    const deadline = opts.deadline ?? (opts.arrivedAt ?? t0) + this.options.budgetMs;
    this.#counters.frames++;
    const first = await this.fast.classify(frame, deadline);
    const timings: Record<string, number> = { ...first.timings };
    // A late answer (the batcher's deadline_missed with a value) still says what the picture shows:
    // dropping it would count a classified frame as unavailable, and three in a row put a policy's fail
    // mode (fail closed: blank) on a clean stream whenever the CPU is briefly short (issue 16).
    let late = first.status === 'deadline_missed' && first.value !== undefined;
    if ((first.status !== 'ok' && !late) || !first.value) {
      timings.total = now() - t0;
      return {
        status: first.status,
        scores: {},
        labels: {},
        escalated: false,
        uncertain: false,
        models: [],
        timings,
        ...(first.error ? { error: { code: first.error.code, message: first.error.message } } : {}),
      };
    }
    let chosen: Classification = first.value;
    const models = [this.fast.ref];
    let escalated = false;
    let uncertain = false;
    let deepStatus: SignalStatus | undefined;
    if (late) {
      // Too late for the deep model; what the band leaves open goes to humans.
      uncertain = this.isUncertain(first.value.scores);
    } else if (this.isUncertain(first.value.scores)) {
      escalated = true;
      this.#counters.escalated++;
      const second = await this.deep.classify(frame, deadline);
      deepStatus = second.status;
      for (const [k, v] of Object.entries(second.timings)) {
        timings[`deep_${k}`] = v;
        timings[k] = (timings[k] ?? 0) + v;
      }
      if ((second.status === 'ok' || second.status === 'deadline_missed') && second.value) {
        // a late deep answer (within the batcher's grace) is still the deep model's view of the frame
        if (second.status !== 'ok') late = true;
        chosen = second.value;
        models.push(this.deep.ref);
        uncertain = this.isUncertain(chosen.scores);
      } else {
        // The deep model could not settle it in time: the fast model's uncertainty stands, for humans.
        uncertain = true;
      }
    }
    if (uncertain) this.#counters.uncertain++;
    if (late) this.#counters.late++;
    timings.total = now() - t0;
    return {
      status: 'ok',
      scores: chosen.scores,
      labels: chosen.labels,
      escalated,
      uncertain,
      models,
      timings,
      ...(deepStatus ? { deepStatus } : {}),
      ...(late ? { late } : {}),
    };
  }

  stats(): {
    frames: number;
    escalated: number;
    uncertain: number;
    /** Frames whose result used an answer that came after the deadline. */
    late: number;
    fast: BatcherStats;
    deep: BatcherStats;
    breaker: BreakerStats;
  } {
    return {
      ...this.#counters,
      fast: this.fast.batcher.stats(),
      deep: this.deep.batcher.stats(),
      breaker: this.backend.breaker.stats(),
    };
  }

  /** Idempotent: answers queued frames 'unavailable', releases the backend if the cascade created it. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.fast.close();
    this.deep.close();
    if (this.#ownsBackend) await this.backend.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
