// Where onnxruntime sessions live: in a worker thread (default; keeps the event loop free) or on the calling
// thread (for comparison and for tools that do not care about the loop).
import { Worker } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { ModelError } from '../../errors.ts';
import type { FromOrtWorker, ToOrtWorker } from './ort-worker.ts';

export interface RunResult {
  data: Float32Array;
  dims: number[];
}

export interface SessionHost {
  load(model: string, file: string, options: ort.InferenceSession.SessionOptions): Promise<void>;
  run(model: string, inputName: string, outputName: string, data: Float32Array, shape: number[]): Promise<RunResult>;
  close(): Promise<void>;
}

export class InlineSessionHost implements SessionHost {
  private readonly sessions = new Map<string, ort.InferenceSession>();

  async load(model: string, file: string, options: ort.InferenceSession.SessionOptions): Promise<void> {
    if (!this.sessions.has(model)) this.sessions.set(model, await ort.InferenceSession.create(file, options));
  }

  async run(model: string, inputName: string, outputName: string, data: Float32Array, shape: number[]): Promise<RunResult> {
    const s = this.sessions.get(model);
    if (!s) throw new ModelError('MOD_ERR_INFERENCE', `model ${model} not loaded`);
    const out = await s.run({ [inputName]: new ort.Tensor('float32', data, shape) }, [outputName]);
    const t = out[outputName];
    if (!t || t.type !== 'float32') throw new ModelError('MOD_ERR_INFERENCE', `model ${model}: no float32 output ${outputName}`);
    return { data: t.data as Float32Array, dims: t.dims.map(Number) };
  }

  async close(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.allSettled(all.map((s) => s.release()));
  }
}

type Waiter = { resolve: (m: FromOrtWorker) => void; reject: (e: Error) => void };

/** One worker thread holding every session; requests are correlated by id. A crashed worker is replaced. */
export class WorkerSessionHost implements SessionHost {
  private worker: Worker | null = null;
  private readonly waiting = new Map<number, Waiter>();
  private readonly loaded = new Map<string, { file: string; options: ort.InferenceSession.SessionOptions }>();
  private seq = 0;
  private closed = false;

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const tsxApi = import.meta.resolve('tsx/esm/api');
    const entry = new URL('./ort-worker.ts', import.meta.url).href;
    // Workers do not inherit tsx's loader from `--import tsx`; register it inside the worker first.
    const bootstrap = `import(${JSON.stringify(tsxApi)}).then((api) => { api.register(); return import(${JSON.stringify(entry)}); });`;
    const w = new Worker(bootstrap, { eval: true, name: 'onnxruntime' });
    w.on('message', (m: FromOrtWorker) => {
      const waiter = this.waiting.get(m.id);
      if (!waiter) return;
      this.waiting.delete(m.id);
      waiter.resolve(m);
    });
    const fail = (why: string) => {
      if (this.worker !== w) return;
      this.worker = null;
      // Sessions died with the worker: they are reloaded on the next run.
      const err = new ModelError(this.closed ? 'MOD_ERR_CLOSED' : 'MOD_ERR_BACKEND_DOWN', `onnxruntime worker ${why}`);
      for (const waiter of this.waiting.values()) waiter.reject(err);
      this.waiting.clear();
    };
    w.on('error', (err) => fail(`failed: ${err.message}`));
    w.on('exit', (code) => fail(`exited (${code})`));
    this.worker = w;
    return w;
  }

  private request(msg: ToOrtWorker, transfer: ArrayBuffer[] = []): Promise<FromOrtWorker> {
    if (this.closed) return Promise.reject(new ModelError('MOD_ERR_CLOSED', 'backend closed'));
    const w = this.ensureWorker();
    return new Promise((resolve, reject) => {
      this.waiting.set(msg.id, { resolve, reject });
      w.postMessage(msg, transfer);
    });
  }

  async load(model: string, file: string, options: ort.InferenceSession.SessionOptions): Promise<void> {
    const res = await this.request({ t: 'load', id: ++this.seq, model, file, options });
    if (res.t === 'error') throw new ModelError('MOD_ERR_CONFIG', `model ${model}: cannot create session: ${res.message}`);
    this.loaded.set(model, { file, options });
  }

  async run(model: string, inputName: string, outputName: string, data: Float32Array, shape: number[]): Promise<RunResult> {
    if (!this.worker) {
      const l = this.loaded.get(model);
      if (l) await this.load(model, l.file, l.options);
    }
    const res = await this.request({ t: 'run', id: ++this.seq, model, inputName, outputName, data, shape });
    if (res.t === 'error') throw new ModelError('MOD_ERR_INFERENCE', `model ${model}: ${res.message}`);
    if (res.t !== 'result') throw new ModelError('MOD_ERR_INFERENCE', `model ${model}: unexpected worker reply`);
    return { data: res.data, dims: res.dims };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    const w = this.worker;
    if (w) {
      await this.request({ t: 'release', id: ++this.seq }).catch(() => undefined);
    }
    this.closed = true;
    if (w) await w.terminate();
  }
}
