// Shared test helpers for test/models (the inference tests).
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { ImageFrame } from '../../models/types.ts';

export type Preprocess = (frame: ImageFrame, size: number) => Float32Array;

const LEAD_PREPROCESS = path.resolve(import.meta.dirname, '..', '..', 'samplers', 'preprocess.ts');

/**
 * The production preprocess (samplers/preprocess.ts, the lead's) when it exists; until then a test-local
 * align-corners bilinear resize written from nsfwjs's definition (tf.image.resizeBilinear alignCorners=true).
 */
export async function loadPreprocess(): Promise<{ fn: Preprocess; source: string }> {
  if (existsSync(LEAD_PREPROCESS)) {
    const mod = (await import(LEAD_PREPROCESS)) as { resizeBilinearAlignCorners?: Preprocess };
    if (typeof mod.resizeBilinearAlignCorners === 'function')
      return { fn: mod.resizeBilinearAlignCorners, source: 'samplers/preprocess.ts' };
  }
  return { fn: resizeAlignCornersReference, source: 'test/models/helpers.ts' };
}

export function resizeAlignCornersReference(frame: ImageFrame, size: number): Float32Array {
  const { width: w, height: h, rgb } = frame;
  const out = new Float32Array(size * size * 3);
  // tfjs computes in float32 on values already divided by 255.
  const src = new Float32Array(rgb.length);
  for (let i = 0; i < rgb.length; i++) src[i] = rgb[i]! / 255;
  const sy = size > 1 ? (h - 1) / (size - 1) : 0;
  const sx = size > 1 ? (w - 1) / (size - 1) : 0;
  for (let y = 0; y < size; y++) {
    const fy = y * sy;
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, h - 1);
    const dy = fy - y0;
    for (let x = 0; x < size; x++) {
      const fx = x * sx;
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, w - 1);
      const dx = fx - x0;
      for (let c = 0; c < 3; c++) {
        const tl = src[(y0 * w + x0) * 3 + c]!;
        const tr = src[(y0 * w + x1) * 3 + c]!;
        const bl = src[(y1 * w + x0) * 3 + c]!;
        const br = src[(y1 * w + x1) * 3 + c]!;
        const top = tl + (tr - tl) * dx;
        const bottom = bl + (br - bl) * dx;
        out[(y * size + x) * 3 + c] = top + (bottom - top) * dy;
      }
    }
  }
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
