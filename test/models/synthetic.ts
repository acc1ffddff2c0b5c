// Deterministic synthetic RGB pictures, shared by the reference-fixture script and the tests so both
// sides feed the models exactly the same bytes. Integer arithmetic only: reproducible everywhere.
import type { ImageFrame } from '../../models/types.ts';

export type Pattern = 'gradient' | 'checker' | 'rings' | 'skin' | 'noise';
export const PATTERNS: Pattern[] = ['gradient', 'checker', 'rings', 'skin', 'noise'];

export function syntheticImage(pattern: Pattern, width: number, height: number, seed = 1): ImageFrame {
  const rgb = new Uint8Array(width * height * 3);
  let state = (seed * 2654435761) >>> 0;
  const next = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state >>> 24;
  };
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      let r: number;
      let g: number;
      let b: number;
      switch (pattern) {
        case 'gradient':
          r = Math.floor((x * 255) / Math.max(1, width - 1));
          g = Math.floor((y * 255) / Math.max(1, height - 1));
          b = (r + g) >> 1;
          break;
        case 'checker': {
          const on = ((x >> 4) + (y >> 4)) & 1;
          r = on ? 230 : 20;
          g = on ? 200 : 40;
          b = on ? 40 : 160;
          break;
        }
        case 'rings': {
          const dx = x - (width >> 1);
          const dy = y - (height >> 1);
          const d = (dx * dx + dy * dy) >> 5;
          r = (d * 7) & 255;
          g = (d * 3 + 80) & 255;
          b = 255 - ((d * 5) & 255);
          break;
        }
        case 'skin': {
          // Warm skin-like tones with soft vertical shading: pushes nsfw models off 'Neutral'.
          const shade = (Math.abs(x - (width >> 1)) * 90) / Math.max(1, width >> 1);
          r = Math.max(0, 224 - Math.floor(shade));
          g = Math.max(0, 172 - Math.floor(shade));
          b = Math.max(0, 140 - Math.floor(shade));
          break;
        }
        case 'noise':
          r = next();
          g = next();
          b = next();
          break;
      }
      rgb[i] = r;
      rgb[i + 1] = g;
      rgb[i + 2] = b;
    }
  }
  return { width, height, rgb };
}

/** RGB bytes /255 as an NHWC float tensor (for pictures already at the model's input size). */
export function toUnitFloat(frame: ImageFrame): Float32Array {
  const out = new Float32Array(frame.rgb.length);
  for (let i = 0; i < out.length; i++) out[i] = frame.rgb[i]! / 255;
  return out;
}
