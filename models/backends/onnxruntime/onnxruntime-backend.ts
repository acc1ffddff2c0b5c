// In-process inference with onnxruntime-node. Its session.run() blocks the calling thread for the whole
// inference (measured: 140 ms event-loop gaps during InceptionV3 batches), so by default the sessions live
// in a worker thread (session-host.ts) and the event loop only exchanges messages.
import type ort from 'onnxruntime-node';
import type { WorkerEventListener } from '../../../threads/index.ts';
import { InlineSessionHost, WorkerSessionHost, type SessionHost } from './session-host.ts';
import { ModelError, isModelError } from '../../errors.ts';
import { ModelStore } from '../../model-store.ts';
import { ModelRegistry, inputShape, type ModelSpec } from '../../registry.ts';
import {
  now,
  shapeSize,
  type Backend,
  type BackendStatus,
  type InferOptions,
  type InferOutput,
  type Tensor,
} from '../types.ts';

export type ExecutionProvider = 'cpu' | 'cuda' | 'tensorrt' | 'dml' | 'coreml' | 'webgpu';

export interface OnnxRuntimeBackendOptions {
  registry: ModelRegistry;
  store: ModelStore;
  /** Execution providers in order of preference. Default ['cpu']. CUDA needs onnxruntime-node's CUDA binaries. */
  executionProviders: ExecutionProvider[];
  /** Threads per operator (onnxruntime intra-op pool). Default 2. */
  intraOpNumThreads: number;
  /** Threads across independent graph branches. Default 1. */
  interOpNumThreads: number;
  /**
   * Let the intra-op threads spin for work between runs (onnxruntime's default). Default false: at
   * the moderation's rate (a few images per second per stream) the spinning is wasted CPU, 39-43 ms
   * per image instead of 11 for the fast model run every 25 ms with 2 threads (measured, issue 16),
   * and on 2 shared cores it takes them from decoding, OCR and forwarding.
   */
  intraOpSpinning: boolean;
  /** Run sessions in a worker thread (true) or on the event loop's thread (false). Default true. */
  worker: boolean;
  /**
   * With worker: each model gets its own worker thread (true), so a slow model (the cascade's deep stage)
   * never queues the fast one behind it; or all share one (false). Default true.
   */
  workerPerModel: boolean;
  /** Crashes, restarts and timeouts of the session threads (metrics, warnings); each thread is named `onnxruntime:<model>` (or `onnxruntime` when shared). */
  onWorkerEvent?: WorkerEventListener;
  /**
   * With workerPerModel: nice values of models' threads by model name (others: MODERATION_NICE), so a
   * model on the budgeted path (the cascade's fast stage) runs before the slower ones when cores are scarce.
   */
  threadNice?: Readonly<Record<string, number>>;
}

const DEFAULTS: Readonly<Omit<OnnxRuntimeBackendOptions, 'registry' | 'store' | 'onWorkerEvent' | 'threadNice'>> =
  Object.freeze({
    executionProviders: ['cpu'] as ExecutionProvider[],
    intraOpNumThreads: 2,
    interOpNumThreads: 1,
    intraOpSpinning: false,
    worker: true,
    workerPerModel: true,
  });

interface Loaded {
  spec: ModelSpec;
}

export class OnnxRuntimeBackend implements Backend {
  readonly name: string;
  readonly options: Readonly<OnnxRuntimeBackendOptions>;
  readonly #sessions = new Map<string, Promise<Loaded>>();
  readonly #inflight = new Set<(err: Error) => void>();
  /** Model -> its session host ('' when every model shares one). */
  readonly #hosts = new Map<string, SessionHost>();
  /** Model -> why it runs on CPU although an accelerator was asked for. */
  readonly #fallbacks = new Map<string, string>();
  #closed = false;

  constructor(opts: Partial<OnnxRuntimeBackendOptions> = {}) {
    const registry = opts.registry ?? ModelRegistry.load();
    this.options = Object.freeze({
      ...DEFAULTS,
      ...opts,
      registry,
      store: opts.store ?? new ModelStore({ baseDir: registry.baseDir }),
    });
    this.name = `onnxruntime(${this.options.executionProviders.join(',')};t=${this.options.intraOpNumThreads}${this.options.worker ? '' : ';inline'})`;
  }

  #hostFor(model: string): SessionHost {
    const key = this.options.worker && this.options.workerPerModel ? model : '';
    let host = this.#hosts.get(key);
    if (!host) {
      host = this.options.worker
        ? new WorkerSessionHost({
            name: key ? `onnxruntime:${key}` : 'onnxruntime',
            ...(this.options.onWorkerEvent ? { onWorkerEvent: this.options.onWorkerEvent } : {}),
            ...(key && this.options.threadNice?.[key] !== undefined ? { nice: this.options.threadNice[key] } : {}),
          })
        : new InlineSessionHost();
      this.#hosts.set(key, host);
    }
    return host;
  }

  get registry(): ModelRegistry {
    return this.options.registry;
  }

  async load(model: string): Promise<void> {
    await this.#session(model);
  }

  #session(model: string): Promise<Loaded> {
    if (this.#closed) return Promise.reject(new ModelError('MOD_ERR_CLOSED', 'backend closed'));
    let p = this.#sessions.get(model);
    if (!p) {
      const spec = this.options.registry.get(model);
      p = this.#createSession(spec);
      this.#sessions.set(model, p);
      // A failed load may succeed later (e.g. a file that appears): do not cache the failure.
      p.catch(() => this.#sessions.delete(model));
    }
    return p;
  }

  async #createSession(spec: ModelSpec): Promise<Loaded> {
    const file = await this.options.store.path(spec);
    const options = sessionOptionsOf(this.options);
    const eps = this.options.executionProviders;
    try {
      await this.#hostFor(spec.name).load(spec.name, file, options);
    } catch (err) {
      // An accelerator listed before 'cpu' whose library is absent (onnxruntime-node installs without CUDA
      // here) fails the whole session: honour the listed 'cpu' fallback ourselves.
      if (eps.length > 1 && eps.includes('cpu') && eps[0] !== 'cpu') {
        await this.#hostFor(spec.name).load(spec.name, file, { ...options, executionProviders: ['cpu'] });
        this.#fallbacks.set(spec.name, (err as Error).message);
      } else {
        if (isModelError(err)) throw err;
        throw new ModelError('MOD_ERR_CONFIG', `model ${spec.name}: cannot create session: ${(err as Error).message}`, {
          cause: err,
        });
      }
    }
    return { spec };
  }

  async infer(model: string, input: Tensor, opts: InferOptions = {}): Promise<InferOutput> {
    const t0 = now();
    const { spec } = await this.#session(model);
    checkShape(spec, input);
    const run = this.#hostFor(spec.name).run(
      spec.name,
      spec.input.name,
      spec.output.name,
      input.data,
      input.shape,
      opts.transferInput === true,
    );
    const out = await this.#withDeadline(run, opts.deadline, model);
    return { data: out.data, shape: out.dims, inferMs: now() - t0, runMs: out.runMs };
  }

  /** onnxruntime cannot cancel a run: past the deadline the caller is answered, the run finishes unobserved. */
  #withDeadline<T>(p: Promise<T>, deadline: number | undefined, model: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const settle = () => {
        if (timer) clearTimeout(timer);
        this.#inflight.delete(abort);
      };
      const abort = (err: Error) => {
        settle();
        reject(err);
      };
      this.#inflight.add(abort);
      if (deadline !== undefined) {
        timer = setTimeout(
          () => abort(new ModelError('MOD_ERR_TIMEOUT', `model ${model}: deadline passed during inference`)),
          Math.max(0, deadline - now()),
        );
      }
      p.then(
        (v) => {
          settle();
          resolve(v);
        },
        (err: unknown) => {
          settle();
          reject(
            isModelError(err)
              ? err
              : new ModelError('MOD_ERR_INFERENCE', `model ${model}: ${(err as Error).message}`, { cause: err }),
          );
        },
      );
    });
  }

  /**
   * Makes the session thread of `model` crash (tests, chaos drills): runs it held reject
   * MOD_ERR_BACKEND_DOWN, and a new thread reloads the sessions. False when the model has no thread.
   */
  crashWorkerOf(model: string): boolean {
    const host = this.#hosts.get(this.options.worker && this.options.workerPerModel ? model : '');
    if (!(host instanceof WorkerSessionHost)) return false;
    host.worker.crash();
    return true;
  }

  status(): BackendStatus {
    const fb = [...this.#fallbacks].map(([m, why]) => `${m} fell back to cpu (${why})`);
    return {
      backend: this.name,
      ready: !this.#closed,
      models: [...this.#sessions.keys()],
      ...(fb.length ? { detail: fb.join('; ') } : {}),
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const abort of [...this.#inflight]) abort(new ModelError('MOD_ERR_CLOSED', 'backend closed'));
    await Promise.allSettled([...this.#sessions.values()]);
    this.#sessions.clear();
    await Promise.all([...this.#hosts.values()].map((h) => h.close()));
    this.#hosts.clear();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Rejects tensors that do not fit the registry's input spec with MOD_ERR_BAD_SHAPE. */
export function checkShape(spec: ModelSpec, input: Tensor): void {
  const n = input.shape[0] ?? 0;
  const want = inputShape(spec, n);
  const ok =
    n >= 1 &&
    input.shape.length === want.length &&
    input.shape.every((d, i) => d === want[i]) &&
    input.data.length === shapeSize(input.shape);
  if (!ok) {
    throw new ModelError(
      'MOD_ERR_BAD_SHAPE',
      `model ${spec.name}: input shape [${input.shape}] (${input.data.length} values), expected [N,${want.slice(1)}]`,
    );
  }
}

/** The onnxruntime session options a backend's sessions are created with. */
export function sessionOptionsOf(
  o: Pick<
    OnnxRuntimeBackendOptions,
    'executionProviders' | 'intraOpNumThreads' | 'interOpNumThreads' | 'intraOpSpinning'
  >,
): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: [...o.executionProviders],
    intraOpNumThreads: o.intraOpNumThreads,
    interOpNumThreads: o.interOpNumThreads,
    graphOptimizationLevel: 'all',
    // onnxruntime's session config key session.intra_op.allow_spinning ("0" / "1")
    extra: { session: { intra_op: { allow_spinning: o.intraOpSpinning ? '1' : '0' } } },
  };
}
