// Streaming use of the audio bank: a live stream hands over consecutive windows (typically 1 s at
// 16 kHz); the matcher keeps the last few seconds and asks the bank about them after every window, so a
// protected song is named a few seconds after it starts and keeps being named while it plays.

import type { AudioWindow, ContentMatch } from '../types.ts';
import { ModelError } from '../errors.ts';
import type { AudioFingerprintBank } from './bank.ts';
import type { Fingerprint } from './fingerprint.ts';

export interface AudioStreamMatcherOptions {
  /** Seconds of audio matched at once (the most recent). Default 5. */
  historySec: number;
  /** Seconds needed before the first query. Default 3. */
  minSec: number;
}

const DEFAULTS: Readonly<AudioStreamMatcherOptions> = Object.freeze({ historySec: 5, minSec: 3 });

export class AudioStreamMatcher {
  private readonly bank: AudioFingerprintBank;
  private readonly opts: AudioStreamMatcherOptions;
  private buffer: Float32Array;
  private filled = 0;
  /** Seconds of audio pushed since the start (or reset). */
  private pushedSec = 0;

  constructor(bank: AudioFingerprintBank, opts: Partial<AudioStreamMatcherOptions> = {}) {
    this.bank = bank;
    this.opts = { ...DEFAULTS, ...opts };
    this.buffer = new Float32Array(Math.round(this.opts.historySec * bank.sampleRate));
  }

  /** Seconds since the start of the stream covered by the windows pushed so far. */
  get streamTimeSec(): number {
    return this.pushedSec;
  }

  /** Seconds of audio currently held (and matched). */
  get historySeconds(): number {
    return this.filled / this.bank.sampleRate;
  }

  /**
   * Add the next window and return the matches over the recent history (empty until minSec have come
   * in). A match's offsetSec is where the start of the history sits in the recording; the recording
   * position at the end of this window is offsetSec + historySeconds.
   */
  push(window: AudioWindow): ContentMatch[] {
    const history = this.append(window);
    return history ? this.bank.match(history) : [];
  }

  /**
   * push() with the fingerprinting done by `fingerprinter` (a FingerprintWorker, off the caller's
   * thread); the landmarks are matched here. The fingerprinter must copy the samples before it first
   * awaits (FingerprintWorker does), so windows pushed meanwhile do not change what this call matches.
   */
  async pushAsync(window: AudioWindow, fingerprinter: { fingerprint(pcm: Float32Array): Promise<Fingerprint> }): Promise<ContentMatch[]> {
    const history = this.append(window);
    if (!history) return [];
    const fp = await fingerprinter.fingerprint(history);
    return this.bank.matchFingerprint(fp).map((d) => d.match);
  }

  /** Appends a window; a view of the history to match once minSec have come in, else undefined. */
  private append(window: AudioWindow): Float32Array | undefined {
    if (window.sampleRate !== this.bank.sampleRate) {
      throw new ModelError('MOD_ERR_BAD_SHAPE', `audio stream expects ${this.bank.sampleRate} Hz, got ${window.sampleRate}`);
    }
    const pcm = window.pcm;
    const cap = this.buffer.length;
    if (pcm.length >= cap) {
      this.buffer.set(pcm.subarray(pcm.length - cap));
      this.filled = cap;
    } else {
      const keep = Math.min(this.filled, cap - pcm.length);
      this.buffer.copyWithin(0, this.filled - keep, this.filled);
      this.buffer.set(pcm, keep);
      this.filled = keep + pcm.length;
    }
    this.pushedSec += pcm.length / window.sampleRate;
    if (this.filled < this.opts.minSec * this.bank.sampleRate) return undefined;
    return this.buffer.subarray(0, this.filled);
  }

  reset(): void {
    this.filled = 0;
    this.pushedSec = 0;
  }
}
