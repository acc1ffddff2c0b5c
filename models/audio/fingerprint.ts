// Audio fingerprints by spectral-peak landmarks (A. Wang, "An Industrial-Strength Audio Search
// Algorithm", ISMIR 2003): a log-magnitude spectrogram of 16 kHz mono audio, its prominent local maxima
// ("constellation"), and hashes of peak pairs (anchor frequency, frequency delta, time delta) with the
// anchor's time. Pairs survive codecs (Opus at 32 kbit/s keeps the strongest peaks in place) and the
// time of a pair is what lets a match also say where in the recording the excerpt comes from.

import { ModelError } from '../errors.ts';

export interface FingerprintOptions {
  /** Expected sample rate (Hz). Default 16000. */
  sampleRate: number;
  /** FFT size (samples). Default 1024 (64 ms). */
  fftSize: number;
  /** Hop between frames (samples). Default 256 (16 ms): the time resolution of offsets. */
  hop: number;
  /** Lowest and highest frequency considered (Hz). Default 250..5000. */
  minHz: number;
  maxHz: number;
  /** Peak neighbourhood half-size in frames and bins. Default 6 and 8. */
  peakFrames: number;
  peakBins: number;
  /** Peaks kept per second (strongest first). Default 40. */
  peaksPerSecond: number;
  /** Target zone: pairs per anchor, and the frame range after the anchor. Default 6, 2..64. */
  fanOut: number;
  minDt: number;
  maxDt: number;
  /** Largest |frequency delta| of a pair (bins). Default 63. */
  maxDf: number;
  /**
   * A peak is the first frame of its neighbourhood to come within this much of the neighbourhood's
   * maximum (natural-log power; 0.7 is ~3 dB). A sustained note is a plateau whose exact maximum lands
   * wherever noise or the codec puts it; its first frame near the top (the end of the attack) does not
   * move. 0 = plain local maxima. Default 0.7.
   */
  plateauTolerance: number;
}

export const FINGERPRINT_DEFAULTS: Readonly<FingerprintOptions> = Object.freeze({
  sampleRate: 16000,
  fftSize: 1024,
  hop: 256,
  minHz: 250,
  maxHz: 5000,
  peakFrames: 6,
  peakBins: 8,
  peaksPerSecond: 40,
  fanOut: 6,
  minDt: 2,
  maxDt: 64,
  maxDf: 63,
  plateauTolerance: 0.7,
});

export interface Peak {
  frame: number;
  bin: number;
  /** log magnitude */
  value: number;
}

/** Landmark hashes with the anchor frame of each (parallel arrays). */
export interface Fingerprint {
  hashes: Uint32Array;
  frames: Uint32Array;
  /** Number of spectrogram frames covered. */
  frameCount: number;
  /** Seconds per frame (hop / sampleRate). */
  frameSec: number;
}

/** A fingerprint as JSON carries it (a bank registration shared through the cluster's store). */
export interface FingerprintWire {
  /** The landmark hashes, then their frames: each a Uint32Array, little-endian, base64. */
  hashes: string;
  frames: string;
  frameCount: number;
  frameSec: number;
}

function u32ToBase64(a: Uint32Array): string {
  const out = Buffer.alloc(a.length * 4);
  for (let i = 0; i < a.length; i++) out.writeUInt32LE(a[i]!, i * 4);
  return out.toString('base64');
}

function base64ToU32(s: string): Uint32Array {
  const b = Buffer.from(s, 'base64');
  if (b.length % 4 !== 0)
    throw new ModelError('MOD_ERR_BAD_SHAPE', 'a fingerprint array is not a whole number of 32-bit words');
  const out = new Uint32Array(b.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = b.readUInt32LE(i * 4);
  return out;
}

export function fingerprintToWire(fp: Fingerprint): FingerprintWire {
  return {
    hashes: u32ToBase64(fp.hashes),
    frames: u32ToBase64(fp.frames),
    frameCount: fp.frameCount,
    frameSec: fp.frameSec,
  };
}

export function fingerprintFromWire(w: FingerprintWire): Fingerprint {
  const fp = {
    hashes: base64ToU32(w.hashes),
    frames: base64ToU32(w.frames),
    frameCount: w.frameCount,
    frameSec: w.frameSec,
  };
  if (fp.hashes.length !== fp.frames.length)
    throw new ModelError('MOD_ERR_BAD_SHAPE', 'a fingerprint needs one frame per landmark hash');
  return fp;
}

// In-place iterative radix-2 FFT over interleaved arrays.
class Fft {
  readonly #n: number;
  readonly #cos: Float64Array;
  readonly #sin: Float64Array;
  readonly #rev: Uint32Array;

  constructor(n: number) {
    if (n & (n - 1)) throw new RangeError('FFT size must be a power of two');
    this.#n = n;
    this.#cos = new Float64Array(n / 2);
    this.#sin = new Float64Array(n / 2);
    for (let i = 0; i < n / 2; i++) {
      this.#cos[i] = Math.cos((2 * Math.PI * i) / n);
      this.#sin[i] = -Math.sin((2 * Math.PI * i) / n);
    }
    this.#rev = new Uint32Array(n);
    const bits = Math.log2(n);
    for (let i = 0; i < n; i++) {
      let r = 0;
      for (let b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
      this.#rev[i] = r;
    }
  }

  transform(re: Float64Array, im: Float64Array): void {
    const n = this.#n;
    for (let i = 0; i < n; i++) {
      const j = this.#rev[i];
      if (j > i) {
        let t = re[i];
        re[i] = re[j];
        re[j] = t;
        t = im[i];
        im[i] = im[j];
        im[j] = t;
      }
    }
    for (let size = 2; size <= n; size <<= 1) {
      const half = size >> 1;
      const step = n / size;
      for (let start = 0; start < n; start += size) {
        for (let k = 0; k < half; k++) {
          const wr = this.#cos[k * step];
          const wi = this.#sin[k * step];
          const a = start + k;
          const b = a + half;
          const xr = re[b] * wr - im[b] * wi;
          const xi = re[b] * wi + im[b] * wr;
          re[b] = re[a] - xr;
          im[b] = im[a] - xi;
          re[a] += xr;
          im[a] += xi;
        }
      }
    }
  }
}

const fftCache = new Map<number, Fft>();

/**
 * One spectrogram frame at a time: the FFT, its window and scratch arrays, and the band kept. The
 * frame is real, so it is transformed as n/2 complex points (even samples real, odd imaginary) and
 * the band's bins are untangled from that half-size transform: half the FFT's work (issue 16).
 */
class SpectrumFrames {
  readonly bins: number;
  readonly firstBin: number;
  readonly #half: number;
  readonly #fft: Fft;
  readonly #win: Float64Array;
  readonly #re: Float64Array;
  readonly #im: Float64Array;
  /** e^(-2 pi i k / n) for the band's bins. */
  readonly #wr: Float64Array;
  readonly #wi: Float64Array;

  constructor(o: FingerprintOptions) {
    const n = o.fftSize;
    if (n < 4 || n & (n - 1)) throw new RangeError('FFT size must be a power of two of at least 4');
    const half = n / 2;
    let fft = fftCache.get(half);
    if (!fft) {
      fft = new Fft(half);
      fftCache.set(half, fft);
    }
    this.#half = half;
    this.#fft = fft;
    this.firstBin = Math.max(1, Math.floor((o.minHz * n) / o.sampleRate));
    const lastBin = Math.min(n / 2 - 1, Math.ceil((o.maxHz * n) / o.sampleRate));
    this.bins = lastBin - this.firstBin + 1;
    this.#win = new Float64Array(n);
    for (let i = 0; i < n; i++) this.#win[i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n);
    this.#re = new Float64Array(half);
    this.#im = new Float64Array(half);
    this.#wr = new Float64Array(this.bins);
    this.#wi = new Float64Array(this.bins);
    for (let b = 0; b < this.bins; b++) {
      this.#wr[b] = Math.cos((2 * Math.PI * (b + this.firstBin)) / n);
      this.#wi[b] = -Math.sin((2 * Math.PI * (b + this.firstBin)) / n);
    }
  }

  /** Log power of the band for the frame starting at pcm[off], written to out[outOff .. outOff + bins). */
  frame(pcm: Float32Array, off: number, out: Float32Array, outOff: number): void {
    const half = this.#half;
    const re = this.#re;
    const im = this.#im;
    const win = this.#win;
    for (let m = 0; m < half; m++) {
      re[m] = pcm[off + 2 * m] * win[2 * m];
      im[m] = pcm[off + 2 * m + 1] * win[2 * m + 1];
    }
    this.#fft.transform(re, im);
    // With Z the half-size transform: X[k] = E + W^k O, E = (Z[k] + conj Z[h-k]) / 2 (the even samples'
    // transform), O = (Z[k] - conj Z[h-k]) / 2i (the odd samples'). The band lies within 1 .. h-1.
    for (let b = 0; b < this.bins; b++) {
      const k = b + this.firstBin;
      const ar = re[k];
      const ai = im[k];
      const cr = re[half - k];
      const ci = im[half - k];
      const er = (ar + cr) / 2;
      const ei = (ai - ci) / 2;
      const or = (ai + ci) / 2;
      const oi = (cr - ar) / 2;
      const wr = this.#wr[b];
      const wi = this.#wi[b];
      const xr = er + wr * or - wi * oi;
      const xi = ei + wr * oi + wi * or;
      out[outOff + b] = Math.log(xr * xr + xi * xi + 1e-10);
    }
  }
}

/** A log-magnitude spectrogram restricted to [minHz, maxHz]: frames x bins, row-major. */
export interface Spectrogram {
  data: Float32Array;
  frames: number;
  bins: number;
  firstBin: number;
}

/** Log-magnitude spectrogram restricted to [minHz, maxHz]: frames x bins, row-major. */
export function spectrogram(pcm: Float32Array, opts: Partial<FingerprintOptions> = {}): Spectrogram {
  const o = { ...FINGERPRINT_DEFAULTS, ...opts };
  const sf = new SpectrumFrames(o);
  const frames = pcm.length >= o.fftSize ? Math.floor((pcm.length - o.fftSize) / o.hop) + 1 : 0;
  const data = new Float32Array(frames * sf.bins);
  for (let f = 0; f < frames; f++) sf.frame(pcm, f * o.hop, data, f * sf.bins);
  return { data, frames, bins: sf.bins, firstBin: sf.firstBin };
}

/** Prominent local maxima of the spectrogram, at most peaksPerSecond on average, ordered by frame. */
export function findPeaks(pcm: Float32Array, opts: Partial<FingerprintOptions> = {}): Peak[] {
  const o = { ...FINGERPRINT_DEFAULTS, ...opts };
  return peaksOf(spectrogram(pcm, o), o);
}

/** findPeaks() on a spectrogram already computed. */
/** Running max over +-peakBins bins of one spectrogram row (data[off .. off + bins)), into out at the same offset. */
function rowMax(data: Float32Array, out: Float32Array, off: number, bins: number, peakBins: number): void {
  for (let b = 0; b < bins; b++) {
    let m = -Infinity;
    const lo = Math.max(0, b - peakBins);
    const hi = Math.min(bins - 1, b + peakBins);
    for (let k = lo; k <= hi; k++) if (data[off + k] > m) m = data[off + k];
    out[off + b] = m;
  }
}

/**
 * Peaks of a spectrogram. `maxB`, the running max over bins of each row (rowMax), depends on its row
 * alone: a streaming caller keeps it with the row (computed once per frame) instead of here per call.
 */
function peaksOf(spec: Spectrogram, o: FingerprintOptions, maxB?: Float32Array): Peak[] {
  const { data, frames, bins, firstBin } = spec;
  if (frames === 0) return [];
  // Separable running max: over bins, then over frames.
  if (!maxB) {
    maxB = new Float32Array(data.length);
    for (let f = 0; f < frames; f++) rowMax(data, maxB, f * bins, bins, o.peakBins);
  }
  // Silence and near-silence must not produce peaks: a floor relative to the loudest frame energy.
  let globalMax = -Infinity;
  for (let i = 0; i < data.length; i++) if (data[i] > globalMax) globalMax = data[i];
  const floor = Math.max(globalMax - 9, Math.log(1e-6));
  const candidates: Peak[] = [];
  const tol = o.plateauTolerance;
  for (let f = 0; f < frames; f++) {
    const lo = Math.max(0, f - o.peakFrames);
    const hi = Math.min(frames - 1, f + o.peakFrames);
    for (let b = 0; b < bins; b++) {
      const v = data[f * bins + b];
      if (v < floor || v !== maxB[f * bins + b]) continue;
      let top = v;
      for (let g = lo; g <= hi; g++) if (maxB[g * bins + b] > top) top = maxB[g * bins + b];
      if (tol <= 0) {
        if (top === v) candidates.push({ frame: f, bin: b + firstBin, value: v });
        continue;
      }
      if (v < top - tol) continue;
      let first = true;
      for (let g = lo; g < f && first; g++) if (data[g * bins + b] >= top - tol) first = false;
      if (first) candidates.push({ frame: f, bin: b + firstBin, value: top });
    }
  }
  // Keep the strongest per one-second block so loud passages do not starve quiet ones.
  const framesPerBlock = Math.max(1, Math.round(o.sampleRate / o.hop));
  const perBlock = Math.max(1, Math.round(o.peaksPerSecond));
  const blocks = new Map<number, Peak[]>();
  for (const p of candidates) {
    const k = Math.floor(p.frame / framesPerBlock);
    const list = blocks.get(k);
    if (list) list.push(p);
    else blocks.set(k, [p]);
  }
  const kept: Peak[] = [];
  for (const list of blocks.values()) {
    list.sort((a, b) => b.value - a.value);
    kept.push(...list.slice(0, perBlock));
  }
  kept.sort((a, b) => a.frame - b.frame || a.bin - b.bin);
  return kept;
}

/** Hash layout: anchor bin (10 bits) | df + 64 (7 bits) | dt (6 bits). */
export function landmarkHash(bin: number, df: number, dt: number): number {
  return (((bin & 0x3ff) << 13) | (((df + 64) & 0x7f) << 6) | (dt & 0x3f)) >>> 0;
}

/** Landmark hashes of a mono PCM signal at opts.sampleRate. */
export function fingerprint(pcm: Float32Array, opts: Partial<FingerprintOptions> = {}): Fingerprint {
  const o = { ...FINGERPRINT_DEFAULTS, ...opts };
  const frameCount = pcm.length >= o.fftSize ? Math.floor((pcm.length - o.fftSize) / o.hop) + 1 : 0;
  return landmarksOf(findPeaks(pcm, o), frameCount, o);
}

/** Peak pairs as landmark hashes, anchored at the first peak's frame. */
function landmarksOf(peaks: Peak[], frameCount: number, o: FingerprintOptions): Fingerprint {
  const hashes: number[] = [];
  const frames: number[] = [];
  for (let i = 0; i < peaks.length; i++) {
    const a = peaks[i];
    let paired = 0;
    for (let j = i + 1; j < peaks.length && paired < o.fanOut; j++) {
      const b = peaks[j];
      const dt = b.frame - a.frame;
      if (dt < o.minDt) continue;
      if (dt >= o.maxDt) break;
      const df = b.bin - a.bin;
      if (Math.abs(df) > o.maxDf) continue;
      hashes.push(landmarkHash(a.bin, df, dt));
      frames.push(a.frame);
      paired++;
    }
  }
  return {
    hashes: Uint32Array.from(hashes),
    frames: Uint32Array.from(frames),
    frameCount,
    frameSec: o.hop / o.sampleRate,
  };
}

/**
 * A live stream's fingerprints, each second of audio transformed once (issue 16). Re-fingerprinting
 * the last 5 s after every 1 s window ran every FFT five times: 21 ms of CPU per window, 14 ms of it
 * the spectrogram (measured). Here the spectrogram is kept as a ring of the last historySec of
 * frames on the stream's own hop grid, each push transforms only the new frames, and peaks and
 * landmarks are taken over the ring, which is what fingerprint() of the same span would see (the
 * frame grid differs by under one hop, which the bank's +-1 frame voting absorbs).
 */
export class StreamingFingerprinter {
  readonly options: Readonly<FingerprintOptions>;
  readonly #sf: SpectrumFrames;
  /** Frames the ring holds: as many as fingerprint() finds in historySec of audio. */
  readonly #capacity: number;
  readonly #ring: Float32Array;
  /** Each ring row's running max over bins (peaksOf's first pass), computed when the row is. */
  readonly #ringMax: Float32Array;
  /** Frames computed since the start (the next frame's index on the stream's grid). */
  #framesDone = 0;
  /** Samples not yet consumed by a frame, starting at stream sample tailStart. */
  #tail: Float32Array = new Float32Array(0);
  #tailStart = 0;
  /** Samples pushed since the start. */
  #samples = 0;

  constructor(historySec: number, opts: Partial<FingerprintOptions> = {}) {
    this.options = Object.freeze({ ...FINGERPRINT_DEFAULTS, ...opts });
    const o = this.options;
    this.#sf = new SpectrumFrames(o);
    const span = Math.round(historySec * o.sampleRate);
    this.#capacity = span >= o.fftSize ? Math.floor((span - o.fftSize) / o.hop) + 1 : 1;
    this.#ring = new Float32Array(this.#capacity * this.#sf.bins);
    this.#ringMax = new Float32Array(this.#capacity * this.#sf.bins);
  }

  /** Spectrogram frames transformed since the start: each frame of the stream once. */
  get transformedFrames(): number {
    return this.#framesDone;
  }

  /** Seconds of audio the ring's frames span, from the first held frame to the newest sample. */
  get historySeconds(): number {
    const first = Math.max(0, this.#framesDone - this.#capacity);
    return this.#framesDone === 0
      ? this.#samples / this.options.sampleRate
      : (this.#samples - first * this.options.hop) / this.options.sampleRate;
  }

  /** Appends samples; transforms every frame they complete. */
  push(pcm: Float32Array): void {
    const o = this.options;
    const joined = new Float32Array(this.#tail.length + pcm.length);
    joined.set(this.#tail);
    joined.set(pcm, this.#tail.length);
    this.#samples += pcm.length;
    const bins = this.#sf.bins;
    for (;;) {
      const off = this.#framesDone * o.hop - this.#tailStart;
      if (off + o.fftSize > joined.length) break;
      const slot = (this.#framesDone % this.#capacity) * bins;
      this.#sf.frame(joined, off, this.#ring, slot);
      rowMax(this.#ring, this.#ringMax, slot, bins, o.peakBins);
      this.#framesDone++;
    }
    const keepFrom = Math.min(joined.length, this.#framesDone * o.hop - this.#tailStart);
    this.#tail = joined.slice(keepFrom);
    this.#tailStart += keepFrom;
  }

  /** Landmarks over the ring, frames counted from its first (oldest) frame. */
  fingerprint(): Fingerprint {
    const bins = this.#sf.bins;
    const frames = Math.min(this.#framesDone, this.#capacity);
    const data = new Float32Array(frames * bins);
    const maxB = new Float32Array(frames * bins);
    const first = this.#framesDone - frames;
    for (let f = 0; f < frames; f++) {
      const slot = ((first + f) % this.#capacity) * bins;
      data.set(this.#ring.subarray(slot, slot + bins), f * bins);
      maxB.set(this.#ringMax.subarray(slot, slot + bins), f * bins);
    }
    const o = this.options;
    return landmarksOf(peaksOf({ data, frames, bins, firstBin: this.#sf.firstBin }, o, maxB), frames, o);
  }

  reset(): void {
    this.#framesDone = 0;
    this.#tail = new Float32Array(0);
    this.#tailStart = 0;
    this.#samples = 0;
  }
}
