// Audio fingerprints by spectral-peak landmarks (A. Wang, "An Industrial-Strength Audio Search
// Algorithm", ISMIR 2003): a log-magnitude spectrogram of 16 kHz mono audio, its prominent local maxima
// ("constellation"), and hashes of peak pairs (anchor frequency, frequency delta, time delta) with the
// anchor's time. Pairs survive codecs (Opus at 32 kbit/s keeps the strongest peaks in place) and the
// time of a pair is what lets a match also say where in the recording the excerpt comes from.

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

// In-place iterative radix-2 FFT over interleaved arrays.
class Fft {
  private readonly n: number;
  private readonly cos: Float64Array;
  private readonly sin: Float64Array;
  private readonly rev: Uint32Array;

  constructor(n: number) {
    if (n & (n - 1)) throw new RangeError('FFT size must be a power of two');
    this.n = n;
    this.cos = new Float64Array(n / 2);
    this.sin = new Float64Array(n / 2);
    for (let i = 0; i < n / 2; i++) {
      this.cos[i] = Math.cos((2 * Math.PI * i) / n);
      this.sin[i] = -Math.sin((2 * Math.PI * i) / n);
    }
    this.rev = new Uint32Array(n);
    const bits = Math.log2(n);
    for (let i = 0; i < n; i++) {
      let r = 0;
      for (let b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
      this.rev[i] = r;
    }
  }

  transform(re: Float64Array, im: Float64Array): void {
    const n = this.n;
    for (let i = 0; i < n; i++) {
      const j = this.rev[i];
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
          const wr = this.cos[k * step];
          const wi = this.sin[k * step];
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

/** Log-magnitude spectrogram restricted to [minHz, maxHz]: frames x bins, row-major. */
export function spectrogram(
  pcm: Float32Array,
  opts: Partial<FingerprintOptions> = {},
): { data: Float32Array; frames: number; bins: number; firstBin: number } {
  const o = { ...FINGERPRINT_DEFAULTS, ...opts };
  const n = o.fftSize;
  let fft = fftCache.get(n);
  if (!fft) {
    fft = new Fft(n);
    fftCache.set(n, fft);
  }
  const firstBin = Math.max(1, Math.floor((o.minHz * n) / o.sampleRate));
  const lastBin = Math.min(n / 2 - 1, Math.ceil((o.maxHz * n) / o.sampleRate));
  const bins = lastBin - firstBin + 1;
  const frames = pcm.length >= n ? Math.floor((pcm.length - n) / o.hop) + 1 : 0;
  const data = new Float32Array(frames * bins);
  const win = new Float64Array(n);
  for (let i = 0; i < n; i++) win[i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n);
  const re = new Float64Array(n);
  const im = new Float64Array(n);
  for (let f = 0; f < frames; f++) {
    const off = f * o.hop;
    for (let i = 0; i < n; i++) {
      re[i] = pcm[off + i] * win[i];
      im[i] = 0;
    }
    fft.transform(re, im);
    for (let b = 0; b < bins; b++) {
      const k = b + firstBin;
      data[f * bins + b] = Math.log(re[k] * re[k] + im[k] * im[k] + 1e-10);
    }
  }
  return { data, frames, bins, firstBin };
}

/** Prominent local maxima of the spectrogram, at most peaksPerSecond on average, ordered by frame. */
export function findPeaks(pcm: Float32Array, opts: Partial<FingerprintOptions> = {}): Peak[] {
  const o = { ...FINGERPRINT_DEFAULTS, ...opts };
  const { data, frames, bins, firstBin } = spectrogram(pcm, o);
  if (frames === 0) return [];
  // Separable running max: over bins, then over frames.
  const maxB = new Float32Array(data.length);
  for (let f = 0; f < frames; f++) {
    const row = f * bins;
    for (let b = 0; b < bins; b++) {
      let m = -Infinity;
      const lo = Math.max(0, b - o.peakBins);
      const hi = Math.min(bins - 1, b + o.peakBins);
      for (let k = lo; k <= hi; k++) if (data[row + k] > m) m = data[row + k];
      maxB[row + b] = m;
    }
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
  const peaks = findPeaks(pcm, o);
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
  const frameCount = pcm.length >= o.fftSize ? Math.floor((pcm.length - o.fftSize) / o.hop) + 1 : 0;
  return { hashes: Uint32Array.from(hashes), frames: Uint32Array.from(frames), frameCount, frameSec: o.hop / o.sampleRate };
}
