// The slate a blanked viewer sees: "NOT AVAILABLE IN YOUR REGION", drawn with a built-in 5x7 font and
// encoded once per codec at startup as keyframes only, so each slate frame is decodable on its own.

import { encodeVideo } from '../media/encode.ts';
import type { VideoCodec } from './types.ts';

export interface SlateFrames {
  codec: VideoCodec;
  width: number;
  height: number;
  /** Keyframes (VP8 frames or H264 Annex-B access units); senders alternate between them. */
  keyframes: Uint8Array[];
}

const GLYPHS: Record<string, string[]> = {
  N: ['10001', '11001', '10101', '10011', '10001', '10001', '10001'],
  O: ['01110', '10001', '10001', '10001', '10001', '10001', '01110'],
  T: ['11111', '00100', '00100', '00100', '00100', '00100', '00100'],
  A: ['01110', '10001', '10001', '11111', '10001', '10001', '10001'],
  V: ['10001', '10001', '10001', '10001', '10001', '01010', '00100'],
  I: ['01110', '00100', '00100', '00100', '00100', '00100', '01110'],
  L: ['10000', '10000', '10000', '10000', '10000', '10000', '11111'],
  B: ['11110', '10001', '10001', '11110', '10001', '10001', '11110'],
  E: ['11111', '10000', '10000', '11110', '10000', '10000', '11111'],
  Y: ['10001', '10001', '01010', '00100', '00100', '00100', '00100'],
  U: ['10001', '10001', '10001', '10001', '10001', '10001', '01110'],
  R: ['11110', '10001', '10001', '11110', '10100', '10010', '10001'],
  G: ['01110', '10001', '10000', '10111', '10001', '10001', '01111'],
};

/** Renders the slate picture as packed RGB24. */
export function renderSlate(width = 640, height = 360, lines = ['NOT AVAILABLE', 'IN YOUR REGION']): Uint8Array {
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    rgb[i * 3] = 32;
    rgb[i * 3 + 1] = 36;
    rgb[i * 3 + 2] = 44;
  }
  const scale = Math.max(1, Math.floor(width / 128));
  const advance = 6 * scale;
  const lineHeight = 10 * scale;
  const top = Math.floor((height - lines.length * lineHeight) / 2);
  lines.forEach((text, row) => {
    const left = Math.floor((width - text.length * advance) / 2);
    [...text].forEach((ch, col) => {
      const glyph = GLYPHS[ch];
      if (!glyph) return;
      for (let gy = 0; gy < 7; gy++) {
        for (let gx = 0; gx < 5; gx++) {
          if (glyph[gy]![gx] !== '1') continue;
          for (let sy = 0; sy < scale; sy++) {
            for (let sx = 0; sx < scale; sx++) {
              const x = left + col * advance + gx * scale + sx;
              const y = top + row * lineHeight + gy * scale + sy;
              if (x < 0 || y < 0 || x >= width || y >= height) continue;
              const i = (y * width + x) * 3;
              rgb[i] = 240;
              rgb[i + 1] = 240;
              rgb[i + 2] = 240;
            }
          }
        }
      }
    });
  });
  return rgb;
}

/**
 * Both engines send the slate at several frames a second to every blanked viewer (mediasoup: into every
 * stream's gate), so its size is paid per frame: encoded once, H264 with x264's 'medium' preset (intra
 * 4x4 prediction; 'ultrafast' codes the text with 16x16 blocks only) at 100 kbit/s. Measured: VP8
 * 2.7-3.4 KB, H264 5.7-6.4 KB a keyframe (was 3.6-4.9 and 17.3-17.9 KB at 300 kbit/s, ultrafast), mean
 * luma error against the drawn picture 0.4-0.7 of 255.
 */
export async function encodeSlate(codec: VideoCodec, width = 640, height = 360): Promise<SlateFrames> {
  const rgb = renderSlate(width, height);
  const frames = await encodeVideo([{ rgb }, { rgb }], {
    codec,
    width,
    height,
    fps: 2,
    bitrateKbps: 100,
    keyframeInterval: 1,
    x264Preset: 'medium',
  });
  const keyframes = frames.filter((f) => f.keyframe).map((f) => f.data);
  if (keyframes.length === 0) throw new Error(`slate: ${codec} encoder produced no keyframe`);
  return { codec, width, height, keyframes };
}

/** Both codecs' slates, encoded once at engine start; `ready` never rejects (a failure is logged and blanking sends no video). */
export class Slates {
  readonly #frames = new Map<VideoCodec, SlateFrames>();
  readonly ready: Promise<void>;
  constructor() {
    this.ready = Promise.all(
      (['VP8', 'H264'] as const).map(async (codec) => {
        this.#frames.set(codec, await encodeSlate(codec));
      }),
    ).then(
      () => undefined,
      (err: unknown) => console.error('sfu: slate encoding failed; blanked viewers will get no video', err),
    );
  }
  /** A codec's slate frames, or undefined while they are still being encoded. */
  get(codec: VideoCodec): SlateFrames | undefined {
    return this.#frames.get(codec);
  }
}
