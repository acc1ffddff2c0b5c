// OCR in a worker thread. PaddleOCR's pre- and post-processing (resizing, normalising, contour
// finding, CTC decoding) is plain JavaScript that takes tens of milliseconds per frame; on the main
// thread it would stall the event loop that forwards media. Same read() contract as Ocr.
import { Worker } from 'node:worker_threads';
import { ModelError } from '../errors.ts';
import type { ImageFrame, ModelRef } from '../types.ts';
import type { OcrOptions, OcrResult } from './ocr.ts';
import type { OcrReply, OcrRequest } from './ocr-thread.ts';

export interface OcrWorkerOptions extends Partial<OcrOptions> {
  /** Requests waiting for the worker; a read beyond this is refused at once (MOD_ERR_QUEUE_FULL). Default 2. */
  maxQueue?: number;
}

interface Pending {
  resolve: (r: OcrResult) => void;
  reject: (e: Error) => void;
}

export class OcrWorker {
  readonly ref: ModelRef = { name: 'paddleocr', version: 'ch_PP-OCRv4_det+rec' };
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  readonly #maxQueue: number;
  #nextId = 1;
  #closed = false;

  private constructor(worker: Worker, maxQueue: number) {
    this.#worker = worker;
    this.#maxQueue = maxQueue;
    worker.on('message', (msg: OcrReply) => {
      if (msg.t !== 'result' && msg.t !== 'error') return;
      const p = this.#pending.get(msg.id);
      if (!p) return;
      this.#pending.delete(msg.id);
      if (msg.t === 'result') p.resolve({ lines: msg.lines, timings: { detect: msg.timings.detect ?? 0, recognize: msg.timings.recognize ?? 0, total: msg.timings.total ?? 0 } });
      else p.reject(new ModelError('MOD_ERR_INFERENCE', `ocr: ${msg.message}`));
    });
    worker.on('exit', () => this.#failAll(new ModelError('MOD_ERR_CLOSED', 'ocr worker exited')));
    worker.on('error', (err) => this.#failAll(new ModelError('MOD_ERR_INFERENCE', `ocr worker crashed: ${err.message}`)));
  }

  /** Starts the worker and waits until its models are loaded. */
  static async load(opts: OcrWorkerOptions = {}): Promise<OcrWorker> {
    const { maxQueue = 2, ...ocrOptions } = opts;
    // One intra-op thread: OCR is the slow, low-rate signal and must not crowd out the classifiers.
    const workerData: Partial<OcrOptions> = { threads: 1, ...ocrOptions };
    const tsxApi = import.meta.resolve('tsx/esm/api');
    const entry = new URL('./ocr-thread.ts', import.meta.url).href;
    // Workers do not inherit tsx's loader from `--import tsx`: register it inside the worker first.
    const bootstrap = `import(${JSON.stringify(tsxApi)}).then((api) => { api.register(); return import(${JSON.stringify(entry)}); });`;
    const worker = new Worker(bootstrap, { eval: true, name: 'ocr', workerData });
    await new Promise<void>((resolve, reject) => {
      const onMessage = (msg: OcrReply): void => {
        if (msg.t === 'ready') resolve();
        else if (msg.t === 'load_error') reject(new ModelError('MOD_ERR_CONFIG', `cannot load OCR models: ${msg.message}`));
        else return;
        worker.off('message', onMessage);
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new ModelError('MOD_ERR_CONFIG', `ocr worker exited with ${code} while loading`)));
    }).catch(async (err: unknown) => {
      await worker.terminate();
      throw err;
    });
    worker.removeAllListeners('error');
    worker.removeAllListeners('exit');
    return new OcrWorker(worker, maxQueue);
  }

  get queued(): number {
    return this.#pending.size;
  }

  /** Text lines in the frame. The pixels are copied once into a buffer handed to the worker. */
  read(frame: ImageFrame): Promise<OcrResult> {
    if (this.#closed) return Promise.reject(new ModelError('MOD_ERR_CLOSED', 'OCR is closed'));
    if (this.#pending.size >= this.#maxQueue) return Promise.reject(new ModelError('MOD_ERR_QUEUE_FULL', `ocr worker has ${this.#pending.size} frames queued`));
    const rgb = frame.rgb.slice().buffer as ArrayBuffer;
    const id = this.#nextId++;
    return new Promise<OcrResult>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ id, width: frame.width, height: frame.height, rgb } satisfies OcrRequest, [rgb]);
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#failAll(new ModelError('MOD_ERR_CLOSED', 'OCR is closed'));
    await this.#worker.terminate();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #failAll(err: Error): void {
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }
}
