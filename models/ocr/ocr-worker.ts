// OCR in a worker thread. PaddleOCR's pre- and post-processing (resizing, normalising, contour
// finding, CTC decoding) is plain JavaScript that takes tens of milliseconds per frame; on the main
// thread it would stall the event loop that forwards media. Same read() contract as Ocr.
//
// The thread is supervised (threads/request-worker): a crash rejects the frames it held
// (MOD_ERR_BACKEND_DOWN) and a new thread loads the models again after a backoff; a read not answered
// within timeoutMs is rejected MOD_ERR_TIMEOUT. It is not recycled on silence: the thread may be inside
// onnxruntime, where terminating it is not safe.
import { MODERATION_NICE, type RequestWorker } from '../../threads/index.ts';
import { modelErrorOf, modelThread, modelThreadLoaded, type ModelThreadOptions } from '../threads.ts';
import type { ImageFrame, ModelRef } from '../types.ts';
import type { OcrOptions, OcrReadOptions, OcrResult } from './ocr.ts';
import type { OcrReply, OcrRequest } from './ocr-thread.ts';

/** The OCR options, and the thread's: maxQueue default 2 reads, timeoutMs default 10000. */
export interface OcrWorkerOptions extends Partial<OcrOptions>, ModelThreadOptions {}

export class OcrWorker {
  readonly ref: ModelRef = { name: 'paddleocr', version: 'ch_PP-OCRv4_det+rec' };
  readonly #rpc: RequestWorker<OcrRequest, OcrReply>;

  private constructor(rpc: RequestWorker<OcrRequest, OcrReply>) {
    this.#rpc = rpc;
  }

  /** Starts the worker and waits until its models are loaded (MOD_ERR_CONFIG when they cannot be). */
  static async load(opts: OcrWorkerOptions = {}): Promise<OcrWorker> {
    const { maxQueue, timeoutMs, restartDelayMs, onWorkerEvent, ...ocrOptions } = opts;
    // One intra-op thread: OCR is the slow, low-rate signal and must not crowd out the classifiers.
    const workerData: Partial<OcrOptions> = { threads: 1, ...ocrOptions };
    const rpc = modelThread<OcrRequest, OcrReply>(
      {
        entry: new URL('./ocr-thread.ts', import.meta.url),
        name: 'ocr',
        nice: MODERATION_NICE,
        workerData,
        maxQueue: 2,
        timeoutMs: 10_000,
      },
      opts,
    );
    await modelThreadLoaded(rpc, 'OCR models');
    return new OcrWorker(rpc);
  }

  get queued(): number {
    return this.#rpc.stats().pending;
  }

  /** The supervised thread (stats, and the crash hook for tests and chaos drills). */
  get worker(): RequestWorker<OcrRequest, OcrReply> {
    return this.#rpc;
  }

  /** Text lines in the frame. The pixels are copied once into a buffer handed to the worker, or handed over themselves with `take`. */
  async read(frame: ImageFrame, opts: OcrReadOptions = {}): Promise<OcrResult> {
    const px = frame.rgb;
    const whole = px.byteOffset === 0 && px.byteLength === px.buffer.byteLength && px.buffer instanceof ArrayBuffer;
    const rgb = (opts.take && whole ? px.buffer : px.slice().buffer) as ArrayBuffer;
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
