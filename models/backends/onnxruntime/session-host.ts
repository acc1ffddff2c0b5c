// Where onnxruntime sessions live: in a worker thread (default; keeps the event loop free) or on the calling
// thread (for comparison and for tools that do not care about the loop).
import ort from 'onnxruntime-node';
import {
  MODERATION_NICE,
  RequestWorker,
  isThreadError,
  reportWorkerEvents,
  type WorkerEventListener,
} from '../../../threads/index.ts';
import { ModelError } from '../../errors.ts';
import { modelErrorOf } from '../../threads.ts';
import type { FromOrtWorker, ToOrtWorker } from './ort-worker.ts';

export interface RunResult {
  data: Float32Array;
  dims: number[];
  /** Wall time of the run itself (ms), on the thread that ran it: the rest of a call's time is waiting for that thread and the hops to it. */
  runMs?: number;
}

export interface SessionHost {
  load(model: string, file: string, options: ort.InferenceSession.SessionOptions): Promise<void>;
  /** `transfer`: the caller gives `data`'s buffer up (a host in another thread moves it instead of copying it). */
  run(
    model: string,
    inputName: string,
    outputName: string,
    data: Float32Array,
    shape: number[],
    transfer?: boolean,
  ): Promise<RunResult>;
  close(): Promise<void>;
}

export class InlineSessionHost implements SessionHost {
  readonly #sessions = new Map<string, ort.InferenceSession>();

  async load(model: string, file: string, options: ort.InferenceSession.SessionOptions): Promise<void> {
    if (!this.#sessions.has(model)) this.#sessions.set(model, await ort.InferenceSession.create(file, options));
  }

  async run(
    model: string,
    inputName: string,
    outputName: string,
    data: Float32Array,
    shape: number[],
  ): Promise<RunResult> {
    const s = this.#sessions.get(model);
    if (!s) throw new ModelError('MOD_ERR_INFERENCE', `model ${model} not loaded`);
    const t0 = performance.now();
    const out = await s.run({ [inputName]: new ort.Tensor('float32', data, shape) }, [outputName]);
    const t = out[outputName];
    if (!t || t.type !== 'float32')
      throw new ModelError('MOD_ERR_INFERENCE', `model ${model}: no float32 output ${outputName}`);
    return { data: t.data as Float32Array, dims: t.dims.map(Number), runMs: performance.now() - t0 };
  }

  async close(): Promise<void> {
    const all = [...this.#sessions.values()];
    this.#sessions.clear();
    await Promise.allSettled(all.map((s) => s.release()));
  }
}

export interface WorkerSessionHostOptions {
  /** Thread name (metrics label, warnings). Default 'onnxruntime'. */
  name?: string;
  /** A run not answered within this long (ms) is rejected MOD_ERR_TIMEOUT (the backend's deadline usually answers first). Default 30000. */
  runTimeoutMs?: number;
  /** A session that takes longer than this to create (ms) fails MOD_ERR_TIMEOUT. Default 120000. */
  loadTimeoutMs?: number;
  /** Requests pending at once; one beyond it is refused MOD_ERR_QUEUE_FULL. Default 256. */
  maxPending?: number;
  /** First restart delay after a crash (ms); doubles per crash in a row up to 10 s. Default 100. */
  restartDelayMs?: number;
  /** Crashes, restarts and timeouts of the thread (metrics, warnings). */
  onWorkerEvent?: WorkerEventListener;
  /** Nice value of the thread and the intra-op threads onnxruntime starts in it. Default MODERATION_NICE. */
  nice?: number;
}

/**
 * One supervised worker thread holding sessions (threads/request-worker). A crash rejects the runs it
 * held MOD_ERR_BACKEND_DOWN (a backend fault: the circuit breaker counts it); the replacement thread
 * loads every session again before it takes new runs. It is not recycled on silence: terminating a
 * thread inside onnxruntime is not safe.
 */
export class WorkerSessionHost implements SessionHost {
  readonly #rpc: RequestWorker<ToOrtWorker, FromOrtWorker>;
  readonly #loaded = new Map<string, { file: string; options: ort.InferenceSession.SessionOptions }>();
  readonly #runTimeoutMs: number;
  readonly #loadTimeoutMs: number;
  #closed = false;

  constructor(opts: WorkerSessionHostOptions = {}) {
    this.#runTimeoutMs = opts.runTimeoutMs ?? 30_000;
    this.#loadTimeoutMs = opts.loadTimeoutMs ?? 120_000;
    this.#rpc = new RequestWorker<ToOrtWorker, FromOrtWorker>({
      entry: new URL('./ort-worker.ts', import.meta.url),
      name: opts.name ?? 'onnxruntime',
      nice: opts.nice ?? MODERATION_NICE,
      maxPending: opts.maxPending ?? 256,
      timeoutMs: this.#runTimeoutMs,
      startTimeoutMs: this.#loadTimeoutMs,
      ...(opts.restartDelayMs !== undefined ? { restartDelayMs: opts.restartDelayMs } : {}),
      // Sessions die with their thread: a restarted one loads them all before it serves a run.
      onStart: async (call) => {
        for (const [model, l] of this.#loaded)
          await call({ t: 'load', model, file: l.file, options: l.options } satisfies ToOrtWorker, {
            timeoutMs: this.#loadTimeoutMs,
          });
      },
    });
    reportWorkerEvents(this.#rpc, opts.onWorkerEvent);
  }

  /** The supervised thread (stats, and the crash hook for tests and chaos drills). */
  get worker(): RequestWorker<ToOrtWorker, FromOrtWorker> {
    return this.#rpc;
  }

  async load(model: string, file: string, options: ort.InferenceSession.SessionOptions): Promise<void> {
    if (this.#closed) throw new ModelError('MOD_ERR_CLOSED', 'backend closed');
    try {
      await this.#rpc.call({ t: 'load', model, file, options }, { timeoutMs: this.#loadTimeoutMs });
    } catch (err) {
      if (isThreadError(err, 'THR_ERR_REMOTE'))
        throw new ModelError('MOD_ERR_CONFIG', `model ${model}: cannot create session: ${err.message}`, { cause: err });
      throw modelErrorOf(err);
    }
    this.#loaded.set(model, { file, options });
  }

  async run(
    model: string,
    inputName: string,
    outputName: string,
    data: Float32Array,
    shape: number[],
    transfer = false,
  ): Promise<RunResult> {
    if (this.#closed) throw new ModelError('MOD_ERR_CLOSED', 'backend closed');
    let res: FromOrtWorker;
    try {
      const whole = transfer && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength;
      res = await this.#rpc.call(
        { t: 'run', model, inputName, outputName, data, shape },
        whole ? { transfer: [data.buffer as ArrayBuffer] } : {},
      );
    } catch (err) {
      const e = modelErrorOf(err);
      throw new ModelError(e.code, `model ${model}: ${e.message}`, { cause: err });
    }
    if (res.t !== 'result') throw new ModelError('MOD_ERR_INFERENCE', `model ${model}: unexpected worker reply`);
    return { data: res.data, dims: res.dims, runMs: res.runMs };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // The thread finishes the runs in progress, releases its sessions and ends (threads/ close).
    await this.#rpc.close();
  }
}
