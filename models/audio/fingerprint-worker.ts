// Audio fingerprints in a worker thread. A live stream's matcher fingerprints its last few seconds
// after every 1 s window: 25-100 ms of FFTs and peak picking per window per stream (when every window
// re-transformed the whole history), which on the main thread stalled the event loop that forwards
// media (seen: 48-130 ms gaps each second with one stream). Live streams now keep their spectrogram
// in the thread (fingerprintStream), so each window is transformed once.
// Matching the landmarks against the bank stays on the caller's thread (about 1 ms).
//
// The thread is supervised (threads/request-worker): a crash rejects the windows it held
// (MOD_ERR_BACKEND_DOWN) and a new thread starts with backoff; a window not answered within
// timeoutMs is rejected MOD_ERR_TIMEOUT and a thread that answers nothing at all is recycled (pure
// JavaScript, safe to terminate). It used to stay dead, and every later call waited forever.
import { MODERATION_NICE, type RequestWorker } from '../../threads/index.ts';
import { modelErrorOf, modelThread, type ModelThreadOptions } from '../threads.ts';
import type { Fingerprint, FingerprintOptions } from './fingerprint.ts';
import type { FingerprintReply, FingerprintRequest } from './fingerprint-thread.ts';

/** The thread's options: maxQueue default 64 windows, timeoutMs default 5000. */
export type FingerprintWorkerOptions = ModelThreadOptions;

export class FingerprintWorker {
  readonly #rpc: RequestWorker<FingerprintRequest, FingerprintReply>;

  /** `options` must be the bank's fingerprint options, so query landmarks match the registered ones. */
  constructor(options: Partial<FingerprintOptions> = {}, opts: FingerprintWorkerOptions = {}) {
    this.#rpc = modelThread<FingerprintRequest, FingerprintReply>(
      {
        entry: new URL('./fingerprint-thread.ts', import.meta.url),
        name: 'audio-fingerprint',
        nice: MODERATION_NICE,
        workerData: options,
        recycleUnresponsive: true,
        maxQueue: 64,
        timeoutMs: 5000,
      },
      opts,
    );
  }

  /** Windows pending (queued or in the thread). */
  get queued(): number {
    return this.#rpc.stats().pending;
  }

  /** The supervised thread (stats, and the crash hook for tests and chaos drills). */
  get worker(): RequestWorker<FingerprintRequest, FingerprintReply> {
    return this.#rpc;
  }

  /** Resolves once the thread is ready (calls made before simply wait for it). */
  ready(): Promise<void> {
    return this.#rpc.started().catch((err: unknown) => {
      throw modelErrorOf(err);
    });
  }

  /** Landmarks of mono PCM at the bank's sample rate. The samples are copied into the request at the call, before anything is awaited. */
  async fingerprint(pcm: Float32Array): Promise<Fingerprint> {
    const copy = pcm.slice().buffer as ArrayBuffer;
    try {
      return await this.#rpc.call({ pcm: copy }, { transfer: [copy] });
    } catch (err) {
      throw modelErrorOf(err);
    }
  }

  /**
   * Landmarks over the last `historySec` of a live stream after its next window: the thread keeps the
   * stream's spectrogram ring under `stream` (a key unique to one matcher), so each window is
   * transformed once. Copies the samples at the call, like fingerprint().
   */
  async fingerprintStream(stream: string, pcm: Float32Array, historySec: number): Promise<Fingerprint> {
    const copy = pcm.slice().buffer as ArrayBuffer;
    try {
      return await this.#rpc.call({ stream, historySec, pcm: copy }, { transfer: [copy] });
    } catch (err) {
      throw modelErrorOf(err);
    }
  }

  async close(): Promise<void> {
    await this.#rpc.close();
  }
}
