// Audio fingerprints in a worker thread. A live stream's matcher re-fingerprints its last few seconds
// after every 1 s window: 25-100 ms of FFTs and peak picking per window per stream, which on the main
// thread stalled the event loop that forwards media (seen: 48-130 ms gaps each second with one stream).
// Matching the landmarks against the bank stays on the caller's thread (about 1 ms).
import { Worker } from 'node:worker_threads';
import { ModelError } from '../errors.ts';
import type { Fingerprint, FingerprintOptions } from './fingerprint.ts';
import type { FingerprintReply, FingerprintRequest } from './fingerprint-thread.ts';

interface Pending {
  resolve: (fp: Fingerprint) => void;
  reject: (e: Error) => void;
}

export class FingerprintWorker {
  readonly #worker: Worker;
  readonly #ready: Promise<void>;
  readonly #pending = new Map<number, Pending>();
  readonly #maxQueue: number;
  #nextId = 1;
  #closed = false;

  /** `options` must be the bank's fingerprint options, so query landmarks match the registered ones. */
  constructor(options: Partial<FingerprintOptions> = {}, opts: { maxQueue?: number } = {}) {
    this.#maxQueue = opts.maxQueue ?? 64;
    const tsxApi = import.meta.resolve('tsx/esm/api');
    const entry = new URL('./fingerprint-thread.ts', import.meta.url).href;
    // Workers do not inherit tsx's loader from `--import tsx`: register it inside the worker first.
    const bootstrap = `import(${JSON.stringify(tsxApi)}).then((api) => { api.register(); return import(${JSON.stringify(entry)}); });`;
    const worker = new Worker(bootstrap, { eval: true, name: 'audio-fingerprint', workerData: options });
    this.#worker = worker;
    this.#ready = new Promise<void>((resolve) => {
      const onReady = (msg: FingerprintReply): void => {
        if (msg.t !== 'ready') return;
        worker.off('message', onReady);
        resolve();
      };
      worker.on('message', onReady);
    });
    worker.on('message', (msg: FingerprintReply) => {
      if (msg.t === 'ready') return;
      const p = this.#pending.get(msg.id);
      if (!p) return;
      this.#pending.delete(msg.id);
      if (msg.t === 'result') p.resolve({ hashes: msg.hashes, frames: msg.frames, frameCount: msg.frameCount, frameSec: msg.frameSec });
      else p.reject(new ModelError('MOD_ERR_INFERENCE', `audio fingerprint: ${msg.message}`));
    });
    worker.on('error', (err) => this.#failAll(new ModelError('MOD_ERR_INFERENCE', `audio fingerprint worker crashed: ${err.message}`)));
    worker.on('exit', () => this.#failAll(new ModelError('MOD_ERR_CLOSED', 'audio fingerprint worker exited')));
  }

  get queued(): number {
    return this.#pending.size;
  }

  /** Landmarks of mono PCM at the bank's sample rate. The samples are copied into the request at the call, before anything is awaited. */
  async fingerprint(pcm: Float32Array): Promise<Fingerprint> {
    if (this.#closed) throw new ModelError('MOD_ERR_CLOSED', 'audio fingerprint worker is closed');
    if (this.#pending.size >= this.#maxQueue) throw new ModelError('MOD_ERR_QUEUE_FULL', `audio fingerprint worker has ${this.#pending.size} windows queued`);
    const copy = pcm.slice().buffer as ArrayBuffer;
    const id = this.#nextId++;
    const result = new Promise<Fingerprint>((resolve, reject) => this.#pending.set(id, { resolve, reject }));
    await this.#ready;
    this.#worker.postMessage({ id, pcm: copy } satisfies FingerprintRequest, [copy]);
    return result;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#failAll(new ModelError('MOD_ERR_CLOSED', 'audio fingerprint worker is closed'));
    await this.#worker.terminate();
  }

  #failAll(err: Error): void {
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }
}
