// PDQ hashes in a worker thread. A 640x360 frame costs 8-10 ms of CPU (issue 16, measured alone), run
// once a second per stream and on every first and scene-change frame: on the main thread ten streams
// whose sampled frames arrive together held the event loop for 80-100 ms at a time, and with it the
// packets on their way to the decoders and the classifier's answers, so the classifier missed its
// deadlines. The thread is supervised like the other moderation threads (threads/request-worker): a
// crash rejects the pictures it held (MOD_ERR_BACKEND_DOWN), a new thread starts with backoff, a
// picture not hashed within timeoutMs is rejected MOD_ERR_TIMEOUT and a silent thread is recycled
// (pure JavaScript, safe to terminate).
import { DECISION_NICE, RequestWorker, reportWorkerEvents, type WorkerEventListener } from '../../threads/index.ts';
import { modelErrorOf } from '../threads.ts';
import type { ImageFrame } from '../types.ts';
import type { LumaImage, PdqResult } from './pdq.ts';
import type { PdqReply, PdqRequest } from './pdq-thread.ts';

export interface PdqWorkerOptions {
  /** Pictures pending (queued or in the thread); one beyond it is refused at once (MOD_ERR_QUEUE_FULL). Default 32. */
  maxQueue?: number;
  /** A picture not hashed within this long (ms) is rejected MOD_ERR_TIMEOUT. Default 5000. */
  timeoutMs?: number;
  /** First restart delay after a crash (ms); doubles per crash in a row up to 10 s. Default 100. */
  restartDelayMs?: number;
  /** Crashes, restarts and timeouts of the thread (metrics, warnings). */
  onWorkerEvent?: WorkerEventListener;
}

export class PdqWorker {
  readonly #rpc: RequestWorker<PdqRequest, PdqReply>;

  constructor(opts: PdqWorkerOptions = {}) {
    this.#rpc = new RequestWorker<PdqRequest, PdqReply>({
      entry: new URL('./pdq-thread.ts', import.meta.url),
      name: 'pdq',
      nice: DECISION_NICE,
      maxPending: opts.maxQueue ?? 32,
      timeoutMs: opts.timeoutMs ?? 5000,
      recycleUnresponsive: true,
      ...(opts.restartDelayMs !== undefined ? { restartDelayMs: opts.restartDelayMs } : {}),
    });
    reportWorkerEvents(this.#rpc, opts.onWorkerEvent);
  }

  /** The supervised thread (stats, and the crash hook for tests and chaos drills). */
  get worker(): RequestWorker<PdqRequest, PdqReply> {
    return this.#rpc;
  }

  /** Resolves once the thread is ready (calls made before simply wait for it). */
  ready(): Promise<void> {
    return this.#rpc.started().catch((err: unknown) => {
      throw modelErrorOf(err);
    });
  }

  /** PDQ hash and quality of the picture, as pdqHash computes them. The pixels are copied at the call. */
  async hash(picture: ImageFrame | LumaImage): Promise<PdqResult> {
    const { width, height } = picture;
    const pixels = 'rgb' in picture ? picture.rgb.slice().buffer : picture.luma.slice().buffer;
    const req: PdqRequest = 'rgb' in picture ? { width, height, rgb: pixels } : { width, height, luma: pixels };
    try {
      return await this.#rpc.call(req, { transfer: [pixels] });
    } catch (err) {
      throw modelErrorOf(err);
    }
  }

  async close(): Promise<void> {
    await this.#rpc.close();
  }
}
