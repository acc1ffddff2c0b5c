// Preprocessing the models need, on plain RGB frames. Pure functions: no I/O, no state.

export interface RgbFrame {
  width: number;
  height: number;
  /** RGB24, row-major, width*height*3 bytes. */
  rgb: Uint8Array;
}

/**
 * Square resize with bilinear interpolation and align-corners sampling, scaled to [0, 1], NHWC
 * float32 (batch dimension implied). This is what nsfwjs does (tf.image.resizeBilinear with
 * alignCorners=true): half-pixel centres move its probabilities by up to 0.05.
 */
export function resizeBilinearAlignCorners(frame: RgbFrame, size: number, out?: Float32Array): Float32Array {
  const { width, height, rgb } = frame;
  if (rgb.length < width * height * 3)
    throw new RangeError(`frame holds ${rgb.length} bytes, expected ${width * height * 3}`);
  const target = out ?? new Float32Array(size * size * 3);
  if (target.length < size * size * 3) throw new RangeError('output buffer too small');
  const scaleY = size > 1 ? (height - 1) / (size - 1) : 0;
  const scaleX = size > 1 ? (width - 1) / (size - 1) : 0;
  const inv = 1 / 255;
  for (let y = 0; y < size; y++) {
    const sy = y * scaleY;
    const y0 = Math.floor(sy);
    const y1 = Math.min(y0 + 1, height - 1);
    const dy = sy - y0;
    const row0 = y0 * width * 3;
    const row1 = y1 * width * 3;
    for (let x = 0; x < size; x++) {
      const sx = x * scaleX;
      const x0 = Math.floor(sx);
      const x1 = Math.min(x0 + 1, width - 1);
      const dx = sx - x0;
      const o = (y * size + x) * 3;
      for (let c = 0; c < 3; c++) {
        const tl = rgb[row0 + x0 * 3 + c];
        const tr = rgb[row0 + x1 * 3 + c];
        const bl = rgb[row1 + x0 * 3 + c];
        const br = rgb[row1 + x1 * 3 + c];
        const top = tl + (tr - tl) * dx;
        const bottom = bl + (br - bl) * dx;
        target[o + c] = (top + (bottom - top) * dy) * inv;
      }
    }
  }
  return target;
}

/** Luminance (BT.601 weights, as PDQ uses), 0..255 floats, row-major. */
export function toLuma(frame: RgbFrame, out?: Float32Array): Float32Array {
  const { width, height, rgb } = frame;
  const n = width * height;
  const target = out ?? new Float32Array(n);
  for (let i = 0, p = 0; i < n; i++, p += 3) {
    target[i] = 0.299 * rgb[p] + 0.587 * rgb[p + 1] + 0.114 * rgb[p + 2];
  }
  return target;
}
