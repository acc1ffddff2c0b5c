// Test helpers: decode pictures, re-encode frames and audio, and draw text, all with node-av (FFmpeg),
// so the tests exercise the same codecs the samplers use. Synchronous node-av calls where a generator
// would need Promise.withResolvers (absent in Node 20).
import { Demuxer, Decoder, Encoder, FilterAPI } from 'node-av/api';
import {
  AV_CH_LAYOUT_MONO,
  AV_CHANNEL_ORDER_NATIVE,
  AV_CODEC_ID_MJPEG,
  AV_CODEC_ID_OPUS,
  AV_CODEC_ID_VP8,
  AV_LOG_ERROR,
  AV_PIX_FMT_RGB24,
  AV_SAMPLE_FMT_FLT,
  Codec,
  CodecContext,
  FF_ENCODER_LIBVPX_VP8,
  FF_ENCODER_MJPEG,
  Frame,
  Log,
  Packet,
  Rational,
} from 'node-av';
import { fileURLToPath } from 'node:url';
import type { AVCodecID } from 'node-av/constants';
import type { ImageFrame } from '../../models/types.ts';
import { encodeAudio } from '../../media/encode.ts';

Log.setLevel(AV_LOG_ERROR);

// Accurate full-chroma YUV->RGB: closest to libjpeg's output, which the reference hashes were made with.
export const RGB_FILTER = 'scale=flags=bilinear+accurate_rnd+full_chroma_int+full_chroma_inp+bitexact,format=rgb24';

function toImage(f: Frame): ImageFrame {
  return { width: f.width, height: f.height, rgb: new Uint8Array(f.toBuffer()) };
}

/** Decode the first picture of an image/video file to RGB24. */
export async function decodeImage(path: string): Promise<ImageFrame> {
  await using input = await Demuxer.open(path);
  const stream = input.video();
  if (!stream) throw new Error(`${path}: no picture`);
  using dec = await Decoder.create(stream);
  using rgb = FilterAPI.create(RGB_FILTER);
  for (using pkt of input.packetsSync(stream.index)) {
    const frames = pkt ? dec.decodeAllSync(pkt) : [...dec.flushFramesSync()];
    for (const f of frames) {
      const out = rgb.processAllSync(f);
      if (out.length > 0) return toImage(out[0]);
    }
  }
  throw new Error(`${path}: no frame decoded`);
}

/** Run RGB24 pictures through a video filter graph (e.g. 'scale=320:240', 'eq=brightness=0.05'). */
export function filterImage(frame: ImageFrame, description: string): ImageFrame {
  using src = Frame.fromVideoBuffer(Buffer.from(frame.rgb), {
    width: frame.width,
    height: frame.height,
    format: AV_PIX_FMT_RGB24,
    timeBase: { num: 1, den: 30 },
    pts: 0n,
  });
  using f = FilterAPI.create(`${description},${RGB_FILTER}`);
  const out = [...f.processAllSync(src), ...f.flushFramesSync()];
  if (out.length === 0) throw new Error(`filter '${description}' produced no frame`);
  return toImage(out[0]);
}

function decodePackets(
  codecId: AVCodecID,
  packets: Buffer[],
  timeBase: { num: number; den: number },
  setup?: (ctx: CodecContext) => void,
): Frame[] {
  const codec = Codec.findDecoder(codecId);
  if (!codec) throw new Error(`no decoder for codec ${codecId}`);
  const ctx = new CodecContext();
  ctx.allocContext3(codec);
  setup?.(ctx);
  if (ctx.open2Sync(codec, null) < 0) throw new Error('decoder open failed');
  const frames: Frame[] = [];
  const drain = (): void => {
    for (;;) {
      const f = new Frame();
      f.alloc();
      if (ctx.receiveFrameSync(f) < 0) {
        f.free();
        return;
      }
      f.timeBase = new Rational(timeBase.num, timeBase.den);
      f.pts = BigInt(frames.length);
      frames.push(f);
    }
  };
  for (const data of packets) {
    const p = new Packet();
    p.alloc();
    p.data = data;
    ctx.sendPacketSync(p);
    p.free();
    drain();
  }
  ctx.sendPacketSync(null);
  drain();
  ctx.freeContext();
  return frames;
}

async function encodeVideoFrames(
  frame: ImageFrame,
  codec: 'mjpeg' | 'vp8',
  count: number,
  kbps: number,
): Promise<Buffer[]> {
  const timeBase = { num: 1, den: 30 };
  const enc =
    codec === 'mjpeg'
      ? await Encoder.create(FF_ENCODER_MJPEG, {
          timeBase,
          frameRate: { num: 30, den: 1 },
          context: { bitRate: kbps * 1000 },
        } as Parameters<typeof Encoder.create>[1])
      : await Encoder.create(FF_ENCODER_LIBVPX_VP8, {
          timeBase,
          frameRate: { num: 30, den: 1 },
          context: { bitRate: kbps * 1000, gopSize: 60, maxBFrames: 0 },
          options: { deadline: 'realtime', 'cpu-used': '8', 'lag-in-frames': '0' },
        } as Parameters<typeof Encoder.create>[1]);
  using toYuv = FilterAPI.create(`format=${codec === 'mjpeg' ? 'yuvj420p' : 'yuv420p'}`);
  const out: Buffer[] = [];
  try {
    for (let i = 0; i < count; i++) {
      using src = Frame.fromVideoBuffer(Buffer.from(frame.rgb), {
        width: frame.width,
        height: frame.height,
        format: AV_PIX_FMT_RGB24,
        timeBase,
        pts: BigInt(i),
      });
      for (const y of toYuv.processAllSync(src)) {
        for (const p of await enc.encodeAll(y)) {
          if (p.data) out.push(Buffer.from(p.data));
          p.free();
        }
      }
    }
    for (const p of await enc.encodeAll(null)) {
      if (p.data) out.push(Buffer.from(p.data));
      p.free();
    }
  } finally {
    enc.close();
  }
  return out;
}

/** JPEG-encode at a bit budget and decode back. */
export async function jpegRoundTrip(frame: ImageFrame, kbps = 2000): Promise<ImageFrame> {
  const packets = await encodeVideoFrames(frame, 'mjpeg', 1, kbps);
  const frames = decodePackets(AV_CODEC_ID_MJPEG, packets, { num: 1, den: 30 });
  using f = FilterAPI.create(RGB_FILTER);
  const img = toImage(f.processAllSync(frames[0])[0]);
  for (const x of frames) x.free();
  return img;
}

/** VP8 real-time encode (a few frames so rate control settles) and decode of the last frame. */
export async function vp8RoundTrip(frame: ImageFrame, kbps = 600, count = 5): Promise<ImageFrame> {
  const packets = await encodeVideoFrames(frame, 'vp8', count, kbps);
  const frames = decodePackets(AV_CODEC_ID_VP8, packets, { num: 1, den: 30 });
  using f = FilterAPI.create(RGB_FILTER);
  const img = toImage(f.processAllSync(frames[frames.length - 1])[0]);
  for (const x of frames) x.free();
  return img;
}

/** Resample mono float PCM with FFmpeg's aresample. */
export function resampleMono(pcm: Float32Array, fromRate: number, toRate: number): Float32Array {
  using src = Frame.fromAudioBuffer(Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength), {
    nbSamples: pcm.length,
    format: AV_SAMPLE_FMT_FLT,
    sampleRate: fromRate,
    channelLayout: { nbChannels: 1, order: AV_CHANNEL_ORDER_NATIVE, mask: AV_CH_LAYOUT_MONO },
    timeBase: { num: 1, den: fromRate },
    pts: 0n,
  });
  using f = FilterAPI.create(`aresample=${toRate},aformat=sample_fmts=flt:channel_layouts=mono`);
  const frames = [...f.processAllSync(src), ...f.flushFramesSync()];
  const parts = frames.map((x) => new Float32Array(new Uint8Array(x.toBuffer()).buffer));
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** 16 kHz mono -> Opus (48 kHz, 20 ms frames, CBR at kbps) -> decoded 16 kHz mono. */
export async function opusRoundTrip(pcm16k: Float32Array, kbps = 32): Promise<Float32Array> {
  const pcm48 = resampleMono(pcm16k, 16000, 48000);
  const packets = (await encodeAudio(pcm48, { bitrateKbps: kbps, application: 'audio' })).map((f) =>
    Buffer.from(f.data),
  );
  const frames = decodePackets(AV_CODEC_ID_OPUS, packets, { num: 1, den: 48000 }, (ctx) => {
    ctx.sampleRate = 48000;
    ctx.channelLayout = { nbChannels: 1, order: AV_CHANNEL_ORDER_NATIVE, mask: AV_CH_LAYOUT_MONO };
  });
  using toFlt = FilterAPI.create('aformat=sample_fmts=flt:channel_layouts=mono');
  const chunks: Float32Array[] = [];
  for (const fr of frames) {
    for (const x of toFlt.processAllSync(fr)) chunks.push(new Float32Array(new Uint8Array(x.toBuffer()).buffer));
    fr.free();
  }
  const all = new Float32Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    all.set(c, o);
    o += c.length;
  }
  return resampleMono(all, 48000, 16000);
}

/**
 * The PDQ reference pictures (`hashes.tsv` and the pictures it names): `../shared/pdq-reference/` beside
 * the repository (the checkout's parent holds shared/), or PDQ_REFERENCE_DIR. Ends with a slash.
 */
export const PDQ_REFERENCE_DIR = process.env.PDQ_REFERENCE_DIR
  ? process.env.PDQ_REFERENCE_DIR.replace(/\/?$/, '/')
  : fileURLToPath(new URL('../../../shared/pdq-reference/', import.meta.url));

export const DEJAVU_SANS = '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf';

/** Draw lines of text (black on a light background) into a frame with FFmpeg's drawtext and a real font. */
export function drawText(
  base: ImageFrame,
  lines: { text: string; x: number; y: number; size: number; color?: string; border?: number }[],
): ImageFrame {
  const esc = (s: string): string =>
    s.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/:/g, '\\:').replace(/%/g, '\\%');
  const graph = lines
    .map(
      (l) =>
        `drawtext=fontfile=${DEJAVU_SANS}:text='${esc(l.text)}':x=${l.x}:y=${l.y}:fontsize=${l.size}:fontcolor=${l.color ?? 'black'}` +
        (l.border ? `:borderw=${l.border}:bordercolor=black` : ''),
    )
    .join(',');
  return filterImage(base, graph);
}

/** A flat RGB frame. */
export function solidFrame(width: number, height: number, r: number, g: number, b: number): ImageFrame {
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0; i < rgb.length; i += 3) {
    rgb[i] = r;
    rgb[i + 1] = g;
    rgb[i + 2] = b;
  }
  return { width, height, rgb };
}
