// PDQ hashes in a worker thread. A 640x360 frame cost 8-10 ms of CPU (issue 16, measured alone; about
// 4 ms since the column passes run over the sampled columns only), run once a second per stream and on
// every first and scene-change frame: on the main thread ten streams whose sampled frames arrived
// together held the event loop for 80-100 ms at a time, and with it the
// packets on their way to the decoders and the classifier's answers, so the classifier missed its
// deadlines. The thread is supervised like the other moderation threads (threads/request-worker): a
// crash rejects the pictures it held (MOD_ERR_BACKEND_DOWN), a new thread starts with backoff, a
// picture not hashed within timeoutMs is rejected MOD_ERR_TIMEOUT and a silent thread is recycled
// (pure JavaScript, safe to terminate).
import { DECISION_NICE, type RequestWorker } from '../../threads/index.ts';
import { modelErrorOf, modelThread, type ModelThreadOptions } from '../threads.ts';
import type { ImageFrame } from '../types.ts';
import type { GrayImage, LumaImage, PdqResult } from './pdq.ts';
import type { PdqReply, PdqRequest } from './pdq-thread.ts';

/** The thread's options: maxQueue default 32 pictures, timeoutMs default 5000. */
export type PdqWorkerOptions = ModelThreadOptions;

export class PdqWorker {
  readonly #rpc: RequestWorker<PdqRequest, PdqReply>;

  constructor(opts: PdqWorkerOptions = {}) {
    this.#rpc = modelThread<PdqRequest, PdqReply>(
      {
        entry: new URL('./pdq-thread.ts', import.meta.url),
        name: 'pdq',
        nice: DECISION_NICE,
        recycleUnresponsive: true,
        maxQueue: 32,
        timeoutMs: 5000,
      },
      opts,
    );
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

  /**
   * PDQ hash and quality of the picture, as pdqHash computes them (a GrayImage as its lumaFromGray).
   * The pixels are copied at the call, unless `take`: then a picture whose pixels fill their own
   * ArrayBuffer hands it over (it is detached here) and the copy is saved.
   */
  async hash(picture: ImageFrame | LumaImage | GrayImage, opts: { take?: boolean } = {}): Promise<PdqResult> {
    const { width, height } = picture;
    const px = 'rgb' in picture ? picture.rgb : 'gray' in picture ? picture.gray : picture.luma;
    const whole = px.byteOffset === 0 && px.byteLength === px.buffer.byteLength && px.buffer instanceof ArrayBuffer;
    const pixels = (opts.take && whole ? px.buffer : px.slice().buffer) as ArrayBuffer;
    const req: PdqRequest =
      'rgb' in picture
        ? { width, height, rgb: pixels }
        : 'gray' in picture
          ? { width, height, gray: pixels }
          : { width, height, luma: pixels };
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
