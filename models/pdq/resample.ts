// Bicubic (a = -0.5) area-aware resize of an RGB24 picture, two separable passes with 8-bit intermediate
// rounding: the way Pillow's `thumbnail()` shrinks a picture, which is what Meta's Python PDQ reference
// does before hashing (longest side capped at 512). Reproducing it lets our hashes match the published
// reference hashes bit for bit, and shrinking first also makes hashing large frames cheaper.

import type { ImageFrame } from '../types.ts';

const PRECISION_BITS = 22;
const ONE = 1 << PRECISION_BITS;
const HALF = 1 << (PRECISION_BITS - 1);
const SUPPORT = 2;

function bicubic(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

interface Taps {
  ksize: number;
  /** Per output index: first source index and tap count. */
  bounds: Int32Array;
  /** Fixed-point weights, ksize per output index. */
  weights: Int32Array;
}

function taps(inSize: number, outSize: number): Taps {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = SUPPORT * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let total = 0;
    for (let x = 0; x < xmax; x++) {
      w[x] = bicubic((x + xmin - center + 0.5) / filterScale);
      total += w[x];
    }
    for (let x = 0; x < xmax; x++) {
      const v = total !== 0 ? w[x] / total : w[x];
      weights[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, weights };
}

function clip8(v: number): number {
  if (v >= ONE * 256) return 255;
  if (v <= 0) return 0;
  return Math.floor(v / ONE);
}

/** Output size that keeps the aspect ratio with both sides <= maxDim (Pillow's rounding). */
export function thumbnailSize(width: number, height: number, maxDim: number): [number, number] {
  if (width <= maxDim && height <= maxDim) return [width, height];
  const aspect = width / height;
  let x = maxDim;
  let y = maxDim;
  const pick = (n: number, err: (k: number) => number): number => {
    const lo = Math.floor(n);
    const hi = Math.ceil(n);
    return Math.max(err(lo) <= err(hi) ? lo : hi, 1);
  };
  if (x / y >= aspect) x = pick(y * aspect, (k) => Math.abs(aspect - k / y));
  else y = pick(x / aspect, (k) => (k === 0 ? 0 : Math.abs(aspect - x / k)));
  return [x, y];
}

/** Resize an RGB24 frame with the bicubic antialiasing filter. */
export function resizeRgbBicubic(frame: ImageFrame, outW: number, outH: number): ImageFrame {
  const { width: inW, height: inH, rgb } = frame;
  let src = rgb;
  let curW = inW;
  if (outW !== inW) {
    const t = taps(inW, outW);
    const out = new Uint8Array(outW * inH * 3);
    for (let y = 0; y < inH; y++) {
      const row = y * inW * 3;
      for (let xx = 0; xx < outW; xx++) {
        const xmin = t.bounds[xx * 2];
        const n = t.bounds[xx * 2 + 1];
        const k = xx * t.ksize;
        let s0 = HALF;
        let s1 = HALF;
        let s2 = HALF;
        for (let x = 0; x < n; x++) {
          const wgt = t.weights[k + x];
          const p = row + (xmin + x) * 3;
          s0 += src[p] * wgt;
          s1 += src[p + 1] * wgt;
          s2 += src[p + 2] * wgt;
        }
        const o = (y * outW + xx) * 3;
        out[o] = clip8(s0);
        out[o + 1] = clip8(s1);
        out[o + 2] = clip8(s2);
      }
    }
    src = out;
    curW = outW;
  }
  if (outH !== inH) {
    const t = taps(inH, outH);
    const out = new Uint8Array(curW * outH * 3);
    const stride = curW * 3;
    for (let yy = 0; yy < outH; yy++) {
      const ymin = t.bounds[yy * 2];
      const n = t.bounds[yy * 2 + 1];
      const k = yy * t.ksize;
      for (let c = 0; c < stride; c++) {
        let s = HALF;
        for (let y = 0; y < n; y++) s += src[(ymin + y) * stride + c] * t.weights[k + y];
        out[yy * stride + c] = clip8(s);
      }
    }
    src = out;
  }
  return { width: outW, height: outH, rgb: src === rgb ? rgb.slice() : src };
}

/** Shrink so that neither side exceeds maxDim (no-op copy-free return when it already fits). */
export function thumbnail(frame: ImageFrame, maxDim: number): ImageFrame {
  const [w, h] = thumbnailSize(frame.width, frame.height, maxDim);
  if (w === frame.width && h === frame.height) return frame;
  return resizeRgbBicubic(frame, w, h);
}
