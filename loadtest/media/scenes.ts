// Generated scenes for the synthetic publishers: raw RGB frames and 48 kHz mono PCM, each encoded
// once to VP8 + Opus (media/encode.ts) and cached under .cache/loadtest/, so a run spends
// no CPU on encoding. A violating stream plays its clean scene, then switches to the violating clip
// at the scripted second (the clip starts on a keyframe, so the switch is clean for every decoder).
//
//   clean            moving shapes over a drifting gradient + a harmless melody
//   banked_picture   one fixed synthetic picture (its PDQ hash is registered in the server's bank)
//   banned_text      the clean motion with banned words drawn large on screen (drawtext, DejaVu Sans)
//   protected_audio  clean video, audio = the protected melody (registered in the audio bank)
//   regional         the clean motion with text that is red only in some jurisdictions

import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FilterAPI, Frame } from 'node-av';
import { AV_PIX_FMT_RGB24 } from 'node-av/constants';
import { encodeAudio, encodeVideo, type EncodedFrame, type RgbFrame } from '../../media/encode.ts';
import { encodeWav } from '../../media/wav.ts';
import type { ViolationKind } from '../script.ts';

export type SceneKind = 'clean' | ViolationKind;

export const DEFAULT_FONT = '/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf';

export interface SceneOptions {
  /** Frame size (even numbers). Default 640x360. */
  width: number;
  height: number;
  /** Frames per second. Default 15. */
  fps: number;
  /** Length of the clip, which loops (s). Default 6. */
  seconds: number;
  /** Video bitrate (kbit/s). Default 500. */
  videoKbps: number;
  /** Opus bitrate (kbit/s). Default 32. */
  audioKbps: number;
  /** Words drawn for `banned_text`. */
  bannedText: string;
  /** Words drawn for `regional` (red only where the policy says so). */
  regionalText: string;
  /** TrueType font for drawtext. */
  fontFile: string;
}

export const SCENE_DEFAULTS: Readonly<SceneOptions> = Object.freeze({
  width: 640,
  height: 360,
  fps: 15,
  seconds: 6,
  videoKbps: 500,
  audioKbps: 32,
  // in DE's banned_text lexicon (policies/jurisdictions/DE.yaml)
  bannedText: 'SIEG HEIL',
  // in the global profanity lexicon, which only SA restricts (policies/jurisdictions/SA.yaml)
  regionalText: 'FUCK THIS',
  fontFile: DEFAULT_FONT,
});

/** Bump when the generators change, so cached clips are re-encoded. */
const GENERATOR_VERSION = 3;

// ---------------------------------------------------------------- video

/** Clean motion: a slowly drifting two-colour gradient, a bouncing disc and a sweeping bar. */
export function cleanFrame(width: number, height: number, index: number, fps: number): RgbFrame {
  const rgb = new Uint8Array(width * height * 3);
  const t = index / fps;
  const cx = width * (0.5 + 0.35 * Math.sin(t * 1.3));
  const cy = height * (0.5 + 0.3 * Math.cos(t * 0.9));
  const r2 = (Math.min(width, height) * 0.12) ** 2;
  const barX = Math.floor(((t * 0.25) % 1) * width);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      const g = (x / width + y / height + t * 0.05) % 1;
      let r = 40 + 60 * g;
      let gr = 90 + 80 * (1 - g);
      let b = 140 + 60 * g;
      const dx = x - cx;
      const dy = y - cy;
      if (dx * dx + dy * dy < r2) {
        r = 230;
        gr = 200;
        b = 60;
      }
      if (x >= barX && x < barX + 12) {
        r = 250;
        gr = 250;
        b = 250;
      }
      rgb[i] = r;
      rgb[i + 1] = gr;
      rgb[i + 2] = b;
    }
  }
  return { rgb };
}

/**
 * The banked picture: a fixed, high-contrast composition (quadrants of rings, stripes, a checker
 * and a diagonal ramp) whose PDQ hash survives VP8 at modest bitrates and sits far from the clean
 * scene's frames.
 */
export function bankedPicture(width: number, height: number): Uint8Array {
  const rgb = new Uint8Array(width * height * 3);
  const hw = width / 2;
  const hh = height / 2;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      let v: [number, number, number];
      if (x < hw && y < hh) {
        const d = Math.hypot(x - hw / 2, y - hh / 2);
        v = Math.floor(d / 14) % 2 ? [220, 30, 30] : [20, 20, 20];
      } else if (x >= hw && y < hh) {
        v = Math.floor(y / 18) % 2 ? [240, 240, 240] : [30, 30, 160];
      } else if (x < hw) {
        v = (Math.floor(x / 40) + Math.floor(y / 40)) % 2 ? [250, 210, 0] : [0, 90, 0];
      } else {
        const g = Math.round((255 * (x - hw + (y - hh))) / (hw + hh));
        v = [g, 255 - g, 128];
      }
      rgb[i] = v[0];
      rgb[i + 1] = v[1];
      rgb[i + 2] = v[2];
    }
  }
  return rgb;
}

function escapeDrawtext(text: string): string {
  // drawtext's own escaping inside a filtergraph description: backslash, colon, quote, percent
  return text.replace(/\\/g, '\\\\\\\\').replace(/'/g, '\u2019').replace(/:/g, '\\:').replace(/%/g, '\\%');
}

/**
 * Draws `text` centred, large and white on a dark box into each frame, with FFmpeg's drawtext filter
 * (the same renderer a streamer's OBS overlay would resemble). Frames are RGB24 in and out.
 */
export async function overlayText(
  frames: RgbFrame[],
  width: number,
  height: number,
  text: string,
  fontFile = DEFAULT_FONT,
): Promise<RgbFrame[]> {
  const size = Math.round(height / 7);
  const desc =
    `drawtext=fontfile=${fontFile}:text='${escapeDrawtext(text)}':fontsize=${size}:fontcolor=white` +
    `:box=1:boxcolor=black@0.85:boxborderw=${Math.round(size / 3)}:x=(w-text_w)/2:y=(h-text_h)/2,format=rgb24`;
  const filter = FilterAPI.create(desc, {});
  const out: RgbFrame[] = [];
  try {
    for (let i = 0; i < frames.length; i++) {
      const frame = Frame.fromVideoBuffer(Buffer.from(frames[i]!.rgb), {
        width,
        height,
        format: AV_PIX_FMT_RGB24,
        timeBase: { num: 1, den: 30 },
      });
      frame.pts = BigInt(i);
      for (const f of filter.processAllSync(frame)) {
        out.push({ rgb: new Uint8Array(f.toBuffer()) });
        f.free();
      }
      frame.free();
    }
    for (const f of filter.processAllSync(null as unknown as Frame)) {
      out.push({ rgb: new Uint8Array(f.toBuffer()) });
      f.free();
    }
  } finally {
    filter.close();
  }
  if (out.length !== frames.length) throw new Error(`drawtext returned ${out.length} frames for ${frames.length}`);
  return out;
}

// ---------------------------------------------------------------- audio

const NOTE = (semitonesFromA4: number): number => 440 * 2 ** (semitonesFromA4 / 12);

/** Notes (semitones from A4) and durations (beats) of the two melodies; disjoint pitch sets on purpose. */
const CLEAN_TUNE: [number, number][] = [
  [-9, 1],
  [-5, 1],
  [-2, 1],
  [-5, 1],
  [-9, 2],
  [-7, 1],
  [-4, 1],
  [0, 2],
  [-4, 1],
  [-7, 1],
];
const PROTECTED_TUNE: [number, number][] = [
  [3, 0.5],
  [10, 0.5],
  [8, 0.5],
  [6, 0.25],
  [13, 0.75],
  [11, 0.5],
  [3, 0.5],
  [15, 1],
  [1, 0.5],
  [6, 0.5],
  [8, 1],
  [13, 0.5],
  [10, 0.5],
];

/** A melody with a few harmonics and a soft envelope per note, mono 48 kHz, looped to `seconds`. */
export function melody(tune: [number, number][], seconds: number, bpm: number, harmonics: number[]): Float32Array {
  const sr = 48000;
  const n = Math.round(seconds * sr);
  const pcm = new Float32Array(n);
  const beat = 60 / bpm;
  const total = tune.reduce((s, [, d]) => s + d, 0) * beat;
  for (let i = 0; i < n; i++) {
    let t = (i / sr) % total;
    let k = 0;
    while (t >= tune[k]![1] * beat) t -= tune[k++]![1] * beat;
    const [note, dur] = tune[k]!;
    const f = NOTE(note);
    const len = dur * beat;
    const env = Math.min(1, t / 0.01) * Math.min(1, (len - t) / 0.03);
    let s = 0;
    harmonics.forEach((a, h) => {
      s += a * Math.sin(2 * Math.PI * f * (h + 1) * t);
    });
    pcm[i] = 0.25 * env * s;
  }
  return pcm;
}

export function cleanAudio(seconds: number): Float32Array {
  return melody(CLEAN_TUNE, seconds, 100, [1, 0.3]);
}

/** The protected recording: what the run registers in the server's audio bank. */
export function protectedAudio(seconds: number): Float32Array {
  return melody(PROTECTED_TUNE, seconds, 132, [1, 0.5, 0.35, 0.2]);
}

/** 16-bit PCM WAV (for registering audio with an API that takes files). */
export function wav(pcm: Float32Array, sampleRate = 48000): Buffer {
  return encodeWav(pcm, sampleRate);
}

// ---------------------------------------------------------------- scenes

export interface RawScene {
  kind: SceneKind;
  frames: RgbFrame[];
  pcm: Float32Array;
}

export async function renderScene(kind: SceneKind, o: SceneOptions): Promise<RawScene> {
  const count = Math.round(o.seconds * o.fps);
  const motion = (): RgbFrame[] => Array.from({ length: count }, (_, i) => cleanFrame(o.width, o.height, i, o.fps));
  switch (kind) {
    case 'clean':
      return { kind, frames: motion(), pcm: cleanAudio(o.seconds) };
    case 'banked_picture': {
      const still = bankedPicture(o.width, o.height);
      return { kind, frames: Array.from({ length: count }, () => ({ rgb: still })), pcm: cleanAudio(o.seconds) };
    }
    case 'banned_text':
      return {
        kind,
        frames: await overlayText(motion(), o.width, o.height, o.bannedText, o.fontFile),
        pcm: cleanAudio(o.seconds),
      };
    case 'regional':
      return {
        kind,
        frames: await overlayText(motion(), o.width, o.height, o.regionalText, o.fontFile),
        pcm: cleanAudio(o.seconds),
      };
    case 'protected_audio':
      return { kind, frames: motion(), pcm: protectedAudio(o.seconds) };
  }
}

export interface EncodedScene {
  kind: SceneKind;
  fps: number;
  width: number;
  height: number;
  video: EncodedFrame[];
  audio: EncodedFrame[];
}

function cacheKey(kind: SceneKind, o: SceneOptions): string {
  const text = kind === 'banned_text' ? o.bannedText : kind === 'regional' ? o.regionalText : '';
  const id = JSON.stringify([
    GENERATOR_VERSION,
    kind,
    o.width,
    o.height,
    o.fps,
    o.seconds,
    o.videoKbps,
    o.audioKbps,
    text,
    text ? o.fontFile : '',
  ]);
  return `${kind}-${createHash('sha256').update(id).digest('hex').slice(0, 16)}`;
}

interface CachedFrame {
  d: string;
  k: boolean;
  p: number;
  u: number;
}

const toCache = (f: EncodedFrame): CachedFrame => ({
  d: Buffer.from(f.data).toString('base64'),
  k: f.keyframe,
  p: f.ptsMs,
  u: f.durationMs,
});
const fromCache = (c: CachedFrame): EncodedFrame => ({
  data: new Uint8Array(Buffer.from(c.d, 'base64')),
  keyframe: c.k,
  ptsMs: c.p,
  durationMs: c.u,
});

/** The encoded clip for a scene, from the cache when present (encoded once per option set). */
export async function loadScene(
  kind: SceneKind,
  options: Partial<SceneOptions> = {},
  cacheDir = '.cache/loadtest',
): Promise<EncodedScene & { cached: boolean }> {
  const o = { ...SCENE_DEFAULTS, ...options };
  const file = join(cacheDir, `${cacheKey(kind, o)}.json`);
  try {
    const c = JSON.parse(await readFile(file, 'utf8')) as { video: CachedFrame[]; audio: CachedFrame[] };
    return {
      kind,
      fps: o.fps,
      width: o.width,
      height: o.height,
      video: c.video.map(fromCache),
      audio: c.audio.map(fromCache),
      cached: true,
    };
  } catch {
    // not cached yet (or unreadable): encode below
  }
  const raw = await renderScene(kind, o);
  const video = await encodeVideo(raw.frames, {
    codec: 'VP8',
    width: o.width,
    height: o.height,
    fps: o.fps,
    bitrateKbps: o.videoKbps,
    keyframeInterval: o.fps * 2,
  });
  const audio = await encodeAudio(raw.pcm, { bitrateKbps: o.audioKbps });
  await mkdir(cacheDir, { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify({ video: video.map(toCache), audio: audio.map(toCache) }));
  await rename(tmp, file);
  return { kind, fps: o.fps, width: o.width, height: o.height, video, audio, cached: false };
}
