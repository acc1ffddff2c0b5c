// PDQ perceptual image hash, written from Meta's published description (ThreatExchange "PDQ hashing"
// document and its reference implementations' documented steps):
//   RGB -> luminance (Rec. 601 weights) -> two X/Y passes of 1-D box filters (Jarosz: a tent filter) with
//   a window of ceil(dim / 128) -> decimate to 64x64 by sampling pixel centres -> DCT rows/cols 1..16 of
//   the 64x64 (DC dropped) -> 256 bits: coefficient > median -> quality 0..100 from image-domain gradients.
// Dihedral variants (rotations, flips) come from sign changes and transposition of the 16x16 DCT output,
// so one downsample serves all eight.

import type { ImageFrame } from '../types.ts';
import { thumbnail } from './resample.ts';

/** A 256-bit PDQ hash: 32 bytes in the order of its 64-digit hex form (first byte = first two digits). */
export type PdqHash = Uint8Array;

export interface PdqResult {
  hash: PdqHash;
  /** 0..100; below ~50 the picture is too flat for its hash to mean much (Meta's guidance). */
  quality: number;
}

export type Dihedral =
  'original' | 'rotate90' | 'rotate180' | 'rotate270' | 'flipX' | 'flipY' | 'flipPlus1' | 'flipMinus1';

export const DIHEDRALS: readonly Dihedral[] = Object.freeze([
  'original',
  'rotate90',
  'rotate180',
  'rotate270',
  'flipX',
  'flipY',
  'flipPlus1',
  'flipMinus1',
]);

export interface PdqDihedralResult {
  hashes: Record<Dihedral, PdqHash>;
  quality: number;
}

/** Greyscale input: one float per pixel, row-major. */
export interface LumaImage {
  width: number;
  height: number;
  luma: Float64Array;
}

/** 8-bit greyscale input (full-range luma, e.g. a decoder's GRAY8 plane), row-major. */
export interface GrayImage {
  width: number;
  height: number;
  gray: Uint8Array;
}

export interface PdqOptions {
  /**
   * Shrink RGB input (bicubic, aspect kept) so neither side exceeds this many pixels before hashing, as
   * Meta's Python reference does (512 reproduces its published hashes bit for bit). 0 hashes at full
   * size, as Meta's C++ reference does: about 3x faster on 640x480 frames and, measured on our variant
   * set, a little more robust to resizing. Default 0.
   */
  maxDimension: number;
}

/** Python-reference-compatible setting (reproduces the ThreatExchange test hashes exactly). */
export const PDQ_REFERENCE_MAX_DIMENSION = 512;

export const PDQ_DEFAULTS: Readonly<PdqOptions> = Object.freeze({ maxDimension: 0 });

/** Hamming distance at or below which two PDQ hashes are the same picture (Meta's recommendation). */
export const PDQ_MATCH_DISTANCE = 31;

const LUMA_R = 0.299;
const LUMA_G = 0.587;
const LUMA_B = 0.114;
const JAROSZ_PASSES = 2;
const WINDOW_DIVISOR = 128;

// 16x64 DCT-II basis rows 1..16 (row 0, the DC term, carries no structure and is skipped).
const DCT = (() => {
  const d = new Float64Array(16 * 64);
  const scale = Math.sqrt(2 / 64);
  for (let i = 0; i < 16; i++) {
    for (let j = 0; j < 64; j++) d[i * 64 + j] = scale * Math.cos((Math.PI / 128) * (i + 1) * (2 * j + 1));
  }
  return d;
})();

export function lumaFromRgb(frame: ImageFrame): LumaImage {
  const { width, height, rgb } = frame;
  const n = width * height;
  if (rgb.length < n * 3) throw new RangeError(`rgb buffer holds ${rgb.length} bytes, need ${n * 3}`);
  const luma = new Float64Array(n);
  for (let p = 0, q = 0; p < n; p++, q += 3) luma[p] = LUMA_R * rgb[q] + LUMA_G * rgb[q + 1] + LUMA_B * rgb[q + 2];
  return { width, height, luma };
}

export function lumaFromGray(image: GrayImage): LumaImage {
  const { width, height, gray } = image;
  if (gray.length < width * height)
    throw new RangeError(`gray buffer holds ${gray.length} bytes, need ${width * height}`);
  return { width, height, luma: Float64Array.from(gray.subarray(0, width * height)) };
}

function windowSize(dim: number): number {
  return Math.floor((dim + WINDOW_DIVISOR - 1) / WINDOW_DIVISOR);
}

// One 1-D box pass; the window is centred and shrinks at the edges (averages over what exists).
function box1D(src: Float64Array, dst: Float64Array, off: number, length: number, stride: number, win: number): void {
  const half = Math.floor((win + 2) / 2);
  const p1 = half - 1;
  const p2 = win - half + 1;
  const p3 = length - win;
  const p4 = half - 1;
  let li = off;
  let ri = off;
  let oi = off;
  let sum = 0;
  let count = 0;
  for (let i = 0; i < p1; i++) {
    sum += src[ri];
    count++;
    ri += stride;
  }
  for (let i = 0; i < p2; i++) {
    sum += src[ri];
    count++;
    dst[oi] = sum / count;
    ri += stride;
    oi += stride;
  }
  for (let i = 0; i < p3; i++) {
    sum += src[ri] - src[li];
    dst[oi] = sum / count;
    li += stride;
    ri += stride;
    oi += stride;
  }
  for (let i = 0; i < p4; i++) {
    sum -= src[li];
    count--;
    dst[oi] = sum / count;
    li += stride;
    oi += stride;
  }
}

/** JAROSZ_PASSES box passes over one line, back and forth between two buffers; returns the one holding the result. */
function boxPasses(line: Float64Array, scratch: Float64Array, length: number, win: number): Float64Array {
  let src = line;
  let dst = scratch;
  for (let k = 0; k < JAROSZ_PASSES; k++) {
    box1D(src, dst, 0, length, 1, win);
    [src, dst] = [dst, src];
  }
  return src;
}

/**
 * The Jarosz filter (two box passes along each row, two along each column) sampled at 64x64 pixel
 * centres. A pass along rows and a pass along columns commute (each acts on one index only), so the row
 * passes run first, over every row, and the column passes only over the 64 columns that are sampled:
 * about half the work of filtering the whole picture both ways, and no picture-sized scratch buffers
 * (issue 16: 8-10 ms per 640x360 frame before, most of it those passes and their garbage).
 */
function downsample64(input: ImageFrame | LumaImage): Float64Array {
  const { width: cols, height: rows } = input;
  const winAlongRows = windowSize(cols);
  const winAlongCols = windowSize(rows);
  const sampledCols = Array.from({ length: 64 }, (_, j) => Math.floor(((j + 0.5) * cols) / 64));
  const a = new Float64Array(cols);
  const b = new Float64Array(cols);
  // the 64 sampled columns after the row passes, column after column
  const columns = new Float64Array(64 * rows);
  const rgb = 'rgb' in input ? input.rgb : undefined;
  if (rgb && rgb.length < cols * rows * 3)
    throw new RangeError(`rgb buffer holds ${rgb.length} bytes, need ${cols * rows * 3}`);
  const luma = 'luma' in input ? input.luma : undefined;
  for (let i = 0; i < rows; i++) {
    if (rgb) {
      for (let x = 0, q = i * cols * 3; x < cols; x++, q += 3)
        a[x] = LUMA_R * rgb[q] + LUMA_G * rgb[q + 1] + LUMA_B * rgb[q + 2];
    } else a.set(luma!.subarray(i * cols, (i + 1) * cols));
    const filtered = boxPasses(a, b, cols, winAlongRows);
    for (let j = 0; j < 64; j++) columns[j * rows + i] = filtered[sampledCols[j]];
  }
  const c = new Float64Array(rows);
  const d = new Float64Array(rows);
  const out = new Float64Array(64 * 64);
  for (let j = 0; j < 64; j++) {
    c.set(columns.subarray(j * rows, (j + 1) * rows));
    const filtered = boxPasses(c, d, rows, winAlongCols);
    for (let i = 0; i < 64; i++) out[i * 64 + j] = filtered[Math.floor(((i + 0.5) * rows) / 64)];
  }
  return out;
}

function quality64(buf: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < 63; i++) {
    for (let j = 0; j < 64; j++) sum += Math.abs(Math.trunc(((buf[i * 64 + j] - buf[(i + 1) * 64 + j]) * 100) / 255));
  }
  for (let i = 0; i < 64; i++) {
    for (let j = 0; j < 63; j++) sum += Math.abs(Math.trunc(((buf[i * 64 + j] - buf[i * 64 + j + 1]) * 100) / 255));
  }
  return Math.min(100, Math.trunc(sum / 90));
}

// B = D A D^T restricted to the 16x16 low-frequency block.
function dct64To16(a: Float64Array): Float64Array {
  const t = new Float64Array(16 * 64);
  for (let i = 0; i < 16; i++) {
    for (let j = 0; j < 64; j++) {
      let s = 0;
      for (let k = 0; k < 64; k++) s += DCT[i * 64 + k] * a[k * 64 + j];
      t[i * 64 + j] = s;
    }
  }
  const b = new Float64Array(256);
  for (let i = 0; i < 16; i++) {
    for (let j = 0; j < 16; j++) {
      let s = 0;
      for (let k = 0; k < 64; k++) s += t[i * 64 + k] * DCT[j * 64 + k];
      b[i * 16 + j] = s;
    }
  }
  return b;
}

// The lower median (element n/2 - 1 of the sorted values), as Torben's selection returns for even n.
function lowerMedian(v: Float64Array): number {
  const s = Float64Array.from(v).sort();
  return s[(s.length >> 1) - 1];
}

/** Bit k of the hash: word k>>4 (printed last-word-first as 4 hex digits), bit k&15 inside it. */
function bitsFromDct(b: Float64Array): PdqHash {
  const median = lowerMedian(b);
  const hash = new Uint8Array(32);
  for (let k = 0; k < 256; k++) {
    if (b[k] > median) {
      const word = k >> 4;
      const bit = k & 15;
      const byte = (15 - word) * 2 + (bit >= 8 ? 0 : 1);
      hash[byte] |= 1 << (bit & 7);
    }
  }
  return hash;
}

// Coefficient (u, v) of the 16x16 block uses basis index u+1, v+1: mirroring an axis flips the sign of
// the odd-frequency terms along it, i.e. even (0-based) indices; rotation is a mirror plus a transpose.
function transformDct(a: Float64Array, d: Dihedral): Float64Array {
  if (d === 'original') return a;
  const b = new Float64Array(256);
  for (let i = 0; i < 16; i++) {
    for (let j = 0; j < 16; j++) {
      const x = a[i * 16 + j];
      switch (d) {
        case 'rotate90':
          b[j * 16 + i] = j & 1 ? x : -x;
          break;
        case 'rotate180':
          b[i * 16 + j] = (i + j) & 1 ? -x : x;
          break;
        case 'rotate270':
          b[j * 16 + i] = i & 1 ? x : -x;
          break;
        case 'flipX':
          b[i * 16 + j] = i & 1 ? x : -x;
          break;
        case 'flipY':
          b[i * 16 + j] = j & 1 ? x : -x;
          break;
        case 'flipPlus1':
          b[j * 16 + i] = x;
          break;
        case 'flipMinus1':
          b[j * 16 + i] = (i + j) & 1 ? -x : x;
          break;
      }
    }
  }
  return b;
}

function dctOf(input: ImageFrame | LumaImage, opts: Partial<PdqOptions>): { dct: Float64Array; quality: number } {
  const maxDim = opts.maxDimension ?? PDQ_DEFAULTS.maxDimension;
  const img = 'luma' in input || maxDim <= 0 ? input : thumbnail(input, maxDim);
  if (img.width < 1 || img.height < 1) throw new RangeError('empty image');
  const buf = downsample64(img);
  return { dct: dct64To16(buf), quality: quality64(buf) };
}

/** PDQ hash and quality of a picture (RGB frame or precomputed luminance). */
export function pdqHash(input: ImageFrame | LumaImage, opts: Partial<PdqOptions> = {}): PdqResult {
  const { dct, quality } = dctOf(input, opts);
  return { hash: bitsFromDct(dct), quality };
}

/** Hashes of the picture under the requested rotations/flips (default all eight), from one downsample. */
export function pdqHashDihedral(
  input: ImageFrame | LumaImage,
  which: readonly Dihedral[] = DIHEDRALS,
  opts: Partial<PdqOptions> = {},
): PdqDihedralResult {
  const { dct, quality } = dctOf(input, opts);
  const hashes = {} as Record<Dihedral, PdqHash>;
  for (const d of which) hashes[d] = bitsFromDct(transformDct(dct, d));
  return { hashes, quality };
}

const POPCOUNT8 = (() => {
  const t = new Uint8Array(256);
  for (let i = 1; i < 256; i++) t[i] = (i & 1) + t[i >> 1];
  return t;
})();

export function hammingDistance(a: PdqHash, b: PdqHash): number {
  let d = 0;
  for (let i = 0; i < 32; i++) d += POPCOUNT8[a[i] ^ b[i]];
  return d;
}

export function pdqToHex(h: PdqHash): string {
  return Buffer.from(h.buffer, h.byteOffset, 32).toString('hex');
}

export function pdqFromHex(hex: string): PdqHash {
  const s = hex.trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(s)) throw new RangeError(`not a 256-bit hex hash: '${hex.slice(0, 80)}'`);
  return new Uint8Array(Buffer.from(s, 'hex'));
}
