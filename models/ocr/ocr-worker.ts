// OCR in a worker thread. PaddleOCR's pre- and post-processing (resizing, normalising, contour
// finding, CTC decoding) is plain JavaScript that takes tens of milliseconds per frame; on the main
// thread it would stall the event loop that forwards media. Same read() contract as Ocr.
//
// The thread is supervised (threads/request-worker): a crash rejects the frames it held
// (MOD_ERR_BACKEND_DOWN) and a new thread loads the models again after a backoff; a read not answered
// within timeoutMs is rejected MOD_ERR_TIMEOUT. It is not recycled on silence: the thread may be inside
// onnxruntime, where terminating it is not safe.
import {
  MODERATION_NICE,
  RequestWorker,
  isThreadError,
  reportWorkerEvents,
  type WorkerEventListener,
} from '../../threads/index.ts';
import { ModelError } from '../errors.ts';
import { modelErrorOf } from '../threads.ts';
import type { ImageFrame, ModelRef } from '../types.ts';
import type { OcrOptions, OcrReadOptions, OcrResult } from './ocr.ts';
import type { OcrReply, OcrRequest } from './ocr-thread.ts';

export interface OcrWorkerOptions extends Partial<OcrOptions> {
  /** Requests waiting for the worker; a read beyond this is refused at once (MOD_ERR_QUEUE_FULL). Default 2. */
  maxQueue?: number;
  /** A read not answered within this long (ms) is rejected MOD_ERR_TIMEOUT. Default 10000. */
  timeoutMs?: number;
  /** First restart delay after a crash (ms); doubles per crash in a row up to 10 s. Default 100. */
  restartDelayMs?: number;
  /** Crashes, restarts and timeouts of the thread (metrics, warnings). */
  onWorkerEvent?: WorkerEventListener;
}

export class OcrWorker {
  readonly ref: ModelRef = { name: 'paddleocr', version: 'ch_PP-OCRv4_det+rec' };
  readonly #rpc: RequestWorker<OcrRequest, OcrReply>;

  private constructor(rpc: RequestWorker<OcrRequest, OcrReply>) {
    this.#rpc = rpc;
  }

  /** Starts the worker and waits until its models are loaded (MOD_ERR_CONFIG when they cannot be). */
  static async load(opts: OcrWorkerOptions = {}): Promise<OcrWorker> {
    const { maxQueue = 2, timeoutMs = 10_000, restartDelayMs, onWorkerEvent, ...ocrOptions } = opts;
    // One intra-op thread: OCR is the slow, low-rate signal and must not crowd out the classifiers.
    const workerData: Partial<OcrOptions> = { threads: 1, ...ocrOptions };
    const rpc = new RequestWorker<OcrRequest, OcrReply>({
      entry: new URL('./ocr-thread.ts', import.meta.url),
      name: 'ocr',
      nice: MODERATION_NICE,
      workerData,
      maxPending: maxQueue,
      timeoutMs,
      ...(restartDelayMs !== undefined ? { restartDelayMs } : {}),
    });
    reportWorkerEvents(rpc, onWorkerEvent);
    try {
      await rpc.started();
    } catch (err) {
      await rpc.close();
      // The thread could not load its models (or start at all): a configuration problem, as before.
      throw isThreadError(err, 'THR_ERR_START')
        ? new ModelError('MOD_ERR_CONFIG', `cannot load OCR models: ${err.message}`, { cause: err })
        : modelErrorOf(err);
    }
    return new OcrWorker(rpc);
  }

  get queued(): number {
    return this.#rpc.stats().pending;
  }

  /** The supervised thread (stats, and the crash hook for tests and chaos drills). */
  get worker(): RequestWorker<OcrRequest, OcrReply> {
    return this.#rpc;
  }

  /** Text lines in the frame. The pixels are copied once into a buffer handed to the worker. */
  async read(frame: ImageFrame, opts: OcrReadOptions = {}): Promise<OcrResult> {
    const rgb = frame.rgb.slice().buffer as ArrayBuffer;
    try {
      const r = await this.#rpc.call(
        {
          width: frame.width,
          height: frame.height,
          rgb,
          ...(opts.detLimitSide !== undefined ? { detLimitSide: opts.detLimitSide } : {}),
        },
        { transfer: [rgb] },
      );
      return {
        lines: r.lines,
        timings: { detect: r.timings.detect ?? 0, recognize: r.timings.recognize ?? 0, total: r.timings.total ?? 0 },
      };
    } catch (err) {
      throw modelErrorOf(err);
    }
  }

  async close(): Promise<void> {
    await this.#rpc.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
