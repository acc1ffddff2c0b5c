// Streaming use of the audio bank: a live stream hands over consecutive windows (typically 1 s at
// 16 kHz); the matcher keeps the last few seconds and asks the bank about them after every window, so a
// protected song is named a few seconds after it starts and keeps being named while it plays.
// Incremental (the default, issue 16): the matcher keeps the history as a spectrogram ring
// (StreamingFingerprinter, here or in the fingerprint thread), so each window is transformed once and
// only peak picking runs over the whole history: 21 -> ~9 ms of CPU per window (bench:pipeline has the
// A/B). `incremental: false` re-fingerprints the whole history after every window, as before.

import type { AudioWindow, ContentMatch } from '../types.ts';
import { ModelError } from '../errors.ts';
import type { AudioFingerprintBank } from './bank.ts';
import { FINGERPRINT_DEFAULTS, StreamingFingerprinter, type Fingerprint } from './fingerprint.ts';

export interface AudioStreamMatcherOptions {
  /** Seconds of audio matched at once (the most recent). Default 5. */
  historySec: number;
  /** Seconds needed before the first query. Default 3. */
  minSec: number;
  /** Transform each window once and keep the history as a spectrogram (else re-fingerprint the whole history per window). Default true. */
  incremental: boolean;
}

const DEFAULTS: Readonly<AudioStreamMatcherOptions> = Object.freeze({ historySec: 5, minSec: 3, incremental: true });

/** What fingerprints a matcher's windows off its thread (FingerprintWorker fits). */
export interface Fingerprinter {
  fingerprint(pcm: Float32Array): Promise<Fingerprint>;
  /** Keeps a stream's spectrogram under `stream`; without it an incremental matcher fingerprints its whole history per window. */
  fingerprintStream?(stream: string, pcm: Float32Array, historySec: number): Promise<Fingerprint>;
}

let nextStreamKey = 0;

export class AudioStreamMatcher {
  readonly #bank: AudioFingerprintBank;
  readonly #opts: AudioStreamMatcherOptions;
  #buffer: Float32Array;
  #filled = 0;
  /** Seconds of audio pushed since the start (or reset). */
  #pushedSec = 0;
  /** Incremental, fingerprinted here (push()). */
  #local: StreamingFingerprinter | undefined;
  /** Incremental, fingerprinted by a fingerprinter's thread: this matcher's key there (new after reset()). */
  #streamKey: string;
  /** Span of the history the last remote fingerprint covered (s). */
  #remoteSpanSec = 0;

  constructor(bank: AudioFingerprintBank, opts: Partial<AudioStreamMatcherOptions> = {}) {
    this.#bank = bank;
    this.#opts = { ...DEFAULTS, ...opts };
    this.#buffer = new Float32Array(Math.round(this.#opts.historySec * bank.sampleRate));
    this.#streamKey = `audio-matcher-${++nextStreamKey}`;
  }

  /** Seconds since the start of the stream covered by the windows pushed so far. */
  get streamTimeSec(): number {
    return this.#pushedSec;
  }

  /** Seconds of audio currently held (and matched). */
  get historySeconds(): number {
    if (!this.#opts.incremental) return this.#filled / this.#bank.sampleRate;
    return this.#local ? this.#local.historySeconds : this.#remoteSpanSec;
  }

  /**
   * Add the next window and return the matches over the recent history (empty until minSec have come
   * in). A match's offsetSec is where the start of the history sits in the recording; the recording
   * position at the end of this window is offsetSec + historySeconds.
   */
  push(window: AudioWindow): ContentMatch[] {
    if (this.#opts.incremental) {
      this.#check(window);
      this.#local ??= new StreamingFingerprinter(this.#opts.historySec, this.#bank.fingerprintOptions);
      this.#local.push(window.pcm);
      this.#pushedSec += window.pcm.length / window.sampleRate;
      if (this.#pushedSec < this.#opts.minSec) return [];
      return this.#bank.matchFingerprint(this.#local.fingerprint()).map((d) => d.match);
    }
    const history = this.#append(window);
    return history ? this.#bank.match(history) : [];
  }

  /**
   * push() with the fingerprinting done by `fingerprinter` (a FingerprintWorker, off the caller's
   * thread); the landmarks are matched here. The fingerprinter must copy the samples before it first
   * awaits (FingerprintWorker does), so windows pushed meanwhile do not change what this call matches.
   */
  async pushAsync(window: AudioWindow, fingerprinter: Fingerprinter): Promise<ContentMatch[]> {
    if (this.#opts.incremental && fingerprinter.fingerprintStream) {
      this.#check(window);
      this.#pushedSec += window.pcm.length / window.sampleRate;
      const enough = this.#pushedSec >= this.#opts.minSec;
      // every window goes to the thread (its ring needs them all); matched once minSec are in
      const fp = await fingerprinter.fingerprintStream(this.#streamKey, window.pcm, this.#opts.historySec);
      // the ring's first frame on the stream's grid, and from it to the newest sample
      const { fftSize, hop } = { ...FINGERPRINT_DEFAULTS, ...this.#bank.fingerprintOptions };
      const samples = Math.round(this.#pushedSec * this.#bank.sampleRate);
      const framesDone = samples >= fftSize ? Math.floor((samples - fftSize) / hop) + 1 : 0;
      this.#remoteSpanSec = (samples - Math.max(0, framesDone - fp.frameCount) * hop) / this.#bank.sampleRate;
      if (!enough) return [];
      return this.#bank.matchFingerprint(fp).map((d) => d.match);
    }
    const history = this.#append(window);
    if (!history) return [];
    const fp = await fingerprinter.fingerprint(history);
    return this.#bank.matchFingerprint(fp).map((d) => d.match);
  }

  /** Appends a window; a view of the history to match once minSec have come in, else undefined. */
  #append(window: AudioWindow): Float32Array | undefined {
    this.#check(window);
    const pcm = window.pcm;
    const cap = this.#buffer.length;
    if (pcm.length >= cap) {
      this.#buffer.set(pcm.subarray(pcm.length - cap));
      this.#filled = cap;
    } else {
      const keep = Math.min(this.#filled, cap - pcm.length);
      this.#buffer.copyWithin(0, this.#filled - keep, this.#filled);
      this.#buffer.set(pcm, keep);
      this.#filled = keep + pcm.length;
    }
    this.#pushedSec += pcm.length / window.sampleRate;
    if (this.#filled < this.#opts.minSec * this.#bank.sampleRate) return undefined;
    return this.#buffer.subarray(0, this.#filled);
  }

  #check(window: AudioWindow): void {
    if (window.sampleRate !== this.#bank.sampleRate) {
      throw new ModelError(
        'MOD_ERR_BAD_SHAPE',
        `audio stream expects ${this.#bank.sampleRate} Hz, got ${window.sampleRate}`,
      );
    }
  }

  reset(): void {
    this.#filled = 0;
    this.#pushedSec = 0;
    this.#local?.reset();
    this.#remoteSpanSec = 0;
    // the thread's ring of the old key ages out there
    this.#streamKey = `audio-matcher-${++nextStreamKey}`;
  }
}
