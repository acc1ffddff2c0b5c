// Voice activity in a worker thread. onnxruntime-node runs the silero session on the thread that calls
// it: on the main thread a 1 s window cost 3.5-5 ms of CPU there, one window a second per stream, and a
// CPU profile of a 10-stream load test found it the largest single item on the event loop (12 % of the
// main thread's time). The thread is supervised (threads/request-worker): a crash rejects the windows
// it held (MOD_ERR_BACKEND_DOWN) and a new thread loads the model again with backoff; a window not
// answered within timeoutMs is rejected MOD_ERR_TIMEOUT (the moderator then counts it as speech). It is
// not recycled on silence: terminating a thread inside onnxruntime is not safe.
import { MODERATION_NICE, type RequestWorker } from '../../threads/index.ts';
import { modelErrorOf, modelThread, modelThreadLoaded, type ModelThreadOptions } from '../threads.ts';
import type { AudioWindow, ModelRef } from '../types.ts';
import type { VadOptions } from './vad.ts';
import type { VadReply, VadRequest } from './vad-thread.ts';

/** The VAD's options, and the thread's: maxQueue default 32 windows, timeoutMs default 2000. */
export interface VadWorkerOptions extends Partial<Omit<VadOptions, 'timeoutMs' | 'maxQueue'>>, ModelThreadOptions {}

export class VadWorker {
  readonly ref: ModelRef = { name: 'silero-vad', version: 'v4' };
  readonly #rpc: RequestWorker<VadRequest, VadReply>;

  private constructor(rpc: RequestWorker<VadRequest, VadReply>) {
    this.#rpc = rpc;
  }

  /** Starts the thread and loads the model in it; MOD_ERR_CONFIG when the model cannot be loaded. */
  static async load(opts: VadWorkerOptions = {}): Promise<VadWorker> {
    const { maxQueue, timeoutMs, restartDelayMs, onWorkerEvent, ...vadOptions } = opts;
    const rpc = modelThread<VadRequest, VadReply>(
      {
        entry: new URL('./vad-thread.ts', import.meta.url),
        name: 'vad',
        nice: MODERATION_NICE,
        workerData: vadOptions,
        maxQueue: 32,
        timeoutMs: 2000,
      },
      opts,
    );
    await modelThreadLoaded(rpc, 'silero VAD');
    return new VadWorker(rpc);
  }

  /** The supervised thread (stats, and the crash hook for tests and chaos drills). */
  get worker(): RequestWorker<VadRequest, VadReply> {
    return this.#rpc;
  }

  /** Whether a 16 kHz window holds speech (a fresh model state per window). The samples are copied at the call. */
  async hasSpeech(window: AudioWindow): Promise<boolean> {
    const pcm = window.pcm.slice().buffer as ArrayBuffer;
    try {
      return (await this.#rpc.call({ sampleRate: window.sampleRate, pcm }, { transfer: [pcm] })).speech;
    } catch (err) {
      throw modelErrorOf(err);
    }
  }

  async close(): Promise<void> {
    await this.#rpc.close();
  }
}
