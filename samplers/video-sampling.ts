// Which decoded frames become samples: the first decodable frame, then one every 1/fps seconds of
// RTP time, plus scene changes (a cheap difference of downscaled luma against the previous frame).
// Deciding needs only the luma plane, so frames that are not sampled are never converted to RGB.

export type SampleReason = 'first' | 'interval' | 'scene';

export interface VideoSamplingOptions {
  /** Sampling rate (frames/s of RTP time). Default 2. */
  fps: number;
  /** Sample on scene changes as well. Default true. */
  sceneChange: boolean;
  /** Mean absolute luma difference (0..1) of the 16x9 thumbnails that counts as a scene change. Default 0.08 (a cut between two stills of similar brightness measured 0.12-0.13; moving content 0.015 mean, 0.034 max). */
  sceneThreshold: number;
  /** Least RTP time (ms) between two scene-change samples. Default 250. */
  sceneMinGapMs: number;
}

export const DEFAULT_VIDEO_SAMPLING: Readonly<VideoSamplingOptions> = Object.freeze({
  fps: 2,
  sceneChange: true,
  sceneThreshold: 0.08,
  sceneMinGapMs: 250,
});

export const THUMB_W = 16;
export const THUMB_H = 9;

/** Downscales a luma plane to THUMB_W x THUMB_H by block averaging over a sparse grid (0..1). */
export function lumaThumbnail(y: Uint8Array, width: number, height: number, stride: number): Float32Array {
  const out = new Float32Array(THUMB_W * THUMB_H);
  const step = Math.max(1, Math.floor(Math.min(width / THUMB_W, height / THUMB_H) / 4));
  for (let ty = 0; ty < THUMB_H; ty++) {
    const y0 = Math.floor((ty * height) / THUMB_H);
    const y1 = Math.floor(((ty + 1) * height) / THUMB_H);
    for (let tx = 0; tx < THUMB_W; tx++) {
      const x0 = Math.floor((tx * width) / THUMB_W);
      const x1 = Math.floor(((tx + 1) * width) / THUMB_W);
      let sum = 0;
      let n = 0;
      for (let r = y0; r < y1; r += step) {
        const row = r * stride;
        for (let c = x0; c < x1; c += step) {
          sum += y[row + c];
          n++;
        }
      }
      out[ty * THUMB_W + tx] = n ? sum / n / 255 : 0;
    }
  }
  return out;
}

/** A video sample's luma for PDQ (SamplerPoolOptions.lumaMaxSide), scaled natively by the decode thread. */
export interface LumaPlane {
  width: number;
  height: number;
  /** Full-range luma (GRAY8: what PDQ computes from the RGB), row-major. */
  data: Uint8Array;
}

export function thumbnailDistance(a: Float32Array, b: Float32Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d += Math.abs(a[i] - b[i]);
  return d / a.length;
}

/** Per-track state of the sampling rule. Times are RTP timestamps at the given clock rate. */
export class VideoSamplingRule {
  #lastSampleTs: number | undefined;
  #lastSceneTs: number | undefined;
  #previous: Float32Array | undefined;
  readonly #interval: number;
  readonly #sceneGap: number;
  readonly #opts: VideoSamplingOptions;

  constructor(opts: VideoSamplingOptions, clockRate = 90000) {
    this.#opts = opts;
    this.#interval = opts.fps > 0 ? clockRate / opts.fps : Number.POSITIVE_INFINITY;
    this.#sceneGap = (opts.sceneMinGapMs * clockRate) / 1000;
  }

  /** Whether the frame needs a thumbnail at all (scene detection on). */
  get wantsThumbnail(): boolean {
    return this.#opts.sceneChange;
  }

  /** Decides for one decoded frame; `thumb` is its luma thumbnail when wantsThumbnail. */
  decide(rtpTimestamp: number, thumb?: Float32Array): SampleReason | null {
    const prev = this.#previous;
    if (thumb) this.#previous = thumb;
    if (this.#lastSampleTs === undefined) {
      this.#take(rtpTimestamp);
      return 'first';
    }
    const since = elapsed(this.#lastSampleTs, rtpTimestamp);
    if (since < 0) {
      this.#lastSampleTs = rtpTimestamp; // timestamp jumped back (new source): restart the clock
      return null;
    }
    // A cut is reported as such even when the frame is also due by the interval: later stages do
    // more for a new scene (hash matching at once), and a cut that lands on an interval frame is no less one.
    let scene = false;
    if (this.#opts.sceneChange && thumb && prev) {
      const sinceScene = this.#lastSceneTs === undefined ? Infinity : elapsed(this.#lastSceneTs, rtpTimestamp);
      scene = sinceScene >= this.#sceneGap && thumbnailDistance(prev, thumb) >= this.#opts.sceneThreshold;
    }
    if (scene) this.#lastSceneTs = rtpTimestamp;
    if (since >= this.#interval) {
      this.#take(rtpTimestamp);
      return scene ? 'scene' : 'interval';
    }
    // The interval clock is left alone: scene samples come on top of the regular rate.
    if (scene) return 'scene';
    return null;
  }

  /** A new source after loss or a restart: the next decodable frame counts as first again. */
  reset(): void {
    this.#lastSampleTs = undefined;
    this.#previous = undefined;
  }

  #take(ts: number): void {
    this.#lastSampleTs = ts;
  }
}

/** Signed difference b - a of two 32-bit RTP timestamps. */
function elapsed(a: number, b: number): number {
  return ((b - a) << 0) | 0;
}
