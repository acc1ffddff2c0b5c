// Encoding helpers for synthetic media (loadtest, tests, the SFU's slate). node-av (FFmpeg) does the work;
// no transcoding ever happens on the forwarding path, only here, ahead of time.
//
//   encodeVideo(frames, { codec: 'VP8' | 'H264', width, height, fps, bitrateKbps?, keyframeInterval? })
//     -> Promise<EncodedFrame[]>   one entry per input frame, in order; H264 as Annex-B access units
//   encodeAudio(pcm48kMono, { bitrateKbps? }) -> Promise<EncodedFrame[]>   20 ms Opus packets
//   rgbTestPattern(width, height, index) -> { rgb }   a moving colour-bar frame (cheap, deterministic)
//   sine48k(seconds, hz?) -> Float32Array            mono 48 kHz test tone
//
// Video encoders are configured for real time (no B-frames, no lookahead), so each input frame yields
// exactly one packet: ptsMs = index * 1000 / fps.

import {
  AV_CH_LAYOUT_MONO,
  AV_CHANNEL_LAYOUT_MONO,
  AV_CHANNEL_ORDER_NATIVE,
  AV_LOG_ERROR,
  AV_PIX_FMT_YUV420P,
  AV_SAMPLE_FMT_FLT,
  AVERROR_EAGAIN,
  AVERROR_EOF,
  Codec,
  CodecContext,
  FF_ENCODER_LIBOPUS,
  FF_ENCODER_LIBVPX_VP8,
  FF_ENCODER_LIBX264,
  FFmpegError,
  Frame,
  Log,
  Packet,
  Rational,
} from 'node-av';
import type { FFEncoderCodec } from 'node-av/constants';

// libx264/libvpx print banners and statistics at info level; keep test and bench output readable.
Log.setLevel(AV_LOG_ERROR);

export interface EncodedFrame {
  /** VP8 frame, H264 Annex-B access unit, or one Opus packet. */
  data: Uint8Array;
  keyframe: boolean;
  /** Presentation time from the start of the clip (ms). */
  ptsMs: number;
  durationMs: number;
}

export interface RgbFrame {
  /** Packed RGB24, width * height * 3 bytes. */
  rgb: Uint8Array;
}

export interface VideoEncodeOptions {
  codec: 'VP8' | 'H264';
  width: number;
  height: number;
  /** Frames per second. */
  fps: number;
  /** Target bitrate (kbit/s). Default 600. */
  bitrateKbps?: number;
  /** Frames between keyframes. Default fps * 2 (a keyframe every 2 s). */
  keyframeInterval?: number;
  /** H264: x264's preset. Default 'ultrafast' (the cheapest encode); a picture encoded once, such as the slate, can afford a slower one and come out smaller. */
  x264Preset?: 'ultrafast' | 'veryfast' | 'fast' | 'medium' | 'slow' | 'veryslow';
}

export interface AudioEncodeOptions {
  /** Target bitrate (kbit/s). Default 48. */
  bitrateKbps?: number;
  /** libopus application: 'lowdelay' (default, as WebRTC senders use) or 'audio' (music-tuned). */
  application?: 'lowdelay' | 'audio' | 'voip';
}

/** BT.601 limited-range RGB24 -> I420. Width and height must be even. */
export function rgbToI420(rgb: Uint8Array, width: number, height: number): Buffer {
  const ySize = width * height;
  const cw = width >> 1;
  const ch = height >> 1;
  const out = Buffer.alloc(ySize + 2 * cw * ch);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      const r = rgb[i]!,
        g = rgb[i + 1]!,
        b = rgb[i + 2]!;
      out[y * width + x] = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16;
    }
  }
  for (let y = 0; y < ch; y++) {
    for (let x = 0; x < cw; x++) {
      let r = 0,
        g = 0,
        b = 0;
      for (let dy = 0; dy < 2; dy++) {
        for (let dx = 0; dx < 2; dx++) {
          const i = ((2 * y + dy) * width + 2 * x + dx) * 3;
          r += rgb[i]!;
          g += rgb[i + 1]!;
          b += rgb[i + 2]!;
        }
      }
      r >>= 2;
      g >>= 2;
      b >>= 2;
      out[ySize + y * cw + x] = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128;
      out[ySize + cw * ch + y * cw + x] = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128;
    }
  }
  return out;
}

/**
 * An encoder on node-av's low-level synchronous calls, private options set one by one. node-av's
 * Encoder (an options dictionary, its calls on libuv's pool) crashed the process (SIGSEGV inside
 * node-av, in a finalizer or on a pool thread) now and then with its asynchronous calls and in every
 * run with its synchronous ones; test/samplers/helpers.ts had met the dictionary's double free before.
 */
class SyncEncoder {
  readonly #ctx = new CodecContext();
  readonly #pkt = new Packet();

  constructor(name: FFEncoderCodec, setup: (ctx: CodecContext) => void, options: Record<string, string>) {
    const codec = Codec.findEncoderByName(name);
    if (!codec) throw new Error(`no ${name} encoder in node-av`);
    this.#ctx.allocContext3(codec);
    setup(this.#ctx);
    for (const [k, v] of Object.entries(options)) FFmpegError.throwIfError(this.#ctx.setOption(k, v), `option ${k}`);
    FFmpegError.throwIfError(this.#ctx.open2Sync(codec, null), `open ${name}`);
    this.#pkt.alloc();
  }

  /** Sends a frame (null: the end) and returns what the encoder has ready: data, key flag, pts. */
  encode(frame: Frame | null): { data: Uint8Array; keyframe: boolean; pts: number }[] {
    FFmpegError.throwIfError(this.#ctx.sendFrameSync(frame), 'send frame');
    const out: { data: Uint8Array; keyframe: boolean; pts: number }[] = [];
    for (;;) {
      const ret = this.#ctx.receivePacketSync(this.#pkt);
      if (ret === AVERROR_EAGAIN || ret === AVERROR_EOF) return out;
      FFmpegError.throwIfError(ret, 'receive packet');
      const d = this.#pkt.data;
      out.push({
        data: d ? new Uint8Array(d) : new Uint8Array(0),
        keyframe: this.#pkt.isKeyframe,
        pts: Number(this.#pkt.pts),
      });
      this.#pkt.unref();
    }
  }

  close(): void {
    this.#pkt.free();
    this.#ctx.freeContext();
  }
}

export async function encodeVideo(
  frames: Iterable<RgbFrame> | AsyncIterable<RgbFrame>,
  options: VideoEncodeOptions,
): Promise<EncodedFrame[]> {
  const { width, height, fps } = options;
  if (width % 2 || height % 2) throw new RangeError('width and height must be even');
  const bitrate = (options.bitrateKbps ?? 600) * 1000;
  const gop = options.keyframeInterval ?? fps * 2;
  const setup = (ctx: CodecContext): void => {
    ctx.width = width;
    ctx.height = height;
    ctx.pixelFormat = AV_PIX_FMT_YUV420P;
    ctx.timeBase = new Rational(1, fps);
    ctx.framerate = new Rational(fps, 1);
    ctx.bitRate = BigInt(bitrate);
    ctx.gopSize = gop;
    ctx.maxBFrames = 0;
  };
  const encoder =
    options.codec === 'VP8'
      ? new SyncEncoder(FF_ENCODER_LIBVPX_VP8, setup, {
          deadline: 'realtime',
          'cpu-used': '8',
          'lag-in-frames': '0',
          'auto-alt-ref': '0',
          'error-resilient': '1',
        })
      : // constrained baseline, no lookahead, Annex-B with SPS/PPS repeated on every IDR
        new SyncEncoder(FF_ENCODER_LIBX264, setup, {
          preset: options.x264Preset ?? 'ultrafast',
          tune: 'zerolatency',
          profile: 'baseline',
          'x264-params': `keyint=${gop}:min-keyint=${gop}:scenecut=0:repeat-headers=1`,
        });
  const out: EncodedFrame[] = [];
  const frameMs = 1000 / fps;
  const push = (packets: { data: Uint8Array; keyframe: boolean; pts: number }[]): void => {
    for (const p of packets)
      out.push({
        data: p.data,
        keyframe: p.keyframe,
        ptsMs: Math.round(p.pts * frameMs * 1000) / 1000,
        durationMs: frameMs,
      });
  };
  try {
    let index = 0;
    for await (const f of frames as AsyncIterable<RgbFrame>) {
      if (f.rgb.length !== width * height * 3)
        throw new RangeError(`frame ${index}: expected ${width * height * 3} RGB bytes`);
      const frame = Frame.fromVideoBuffer(rgbToI420(f.rgb, width, height), {
        width,
        height,
        format: AV_PIX_FMT_YUV420P,
        timeBase: { num: 1, den: fps },
        pts: BigInt(index),
      });
      try {
        push(encoder.encode(frame));
      } finally {
        frame.free();
      }
      index++;
    }
    push(encoder.encode(null));
  } finally {
    encoder.close();
  }
  out.sort((a, b) => a.ptsMs - b.ptsMs);
  return out;
}

export async function encodeAudio(pcm48kMono: Float32Array, options: AudioEncodeOptions = {}): Promise<EncodedFrame[]> {
  const encoder = new SyncEncoder(
    FF_ENCODER_LIBOPUS,
    (ctx) => {
      ctx.sampleRate = 48000;
      ctx.sampleFormat = AV_SAMPLE_FMT_FLT;
      ctx.channelLayout = AV_CHANNEL_LAYOUT_MONO;
      ctx.bitRate = BigInt((options.bitrateKbps ?? 48) * 1000);
      ctx.timeBase = new Rational(1, 48000);
    },
    { application: options.application ?? 'lowdelay', frame_duration: '20', vbr: 'off' },
  );
  const out: EncodedFrame[] = [];
  const push = (packets: { data: Uint8Array }[]): void => {
    for (const p of packets) out.push({ data: p.data, keyframe: true, ptsMs: 0, durationMs: 20 });
  };
  try {
    const n = 960;
    for (let off = 0; off < pcm48kMono.length; off += n) {
      const chunk = new Float32Array(n);
      chunk.set(pcm48kMono.subarray(off, Math.min(off + n, pcm48kMono.length)));
      const frame = Frame.fromAudioBuffer(Buffer.from(chunk.buffer), {
        nbSamples: n,
        format: AV_SAMPLE_FMT_FLT,
        sampleRate: 48000,
        channelLayout: { nbChannels: 1, order: AV_CHANNEL_ORDER_NATIVE, mask: AV_CH_LAYOUT_MONO },
        timeBase: { num: 1, den: 48000 },
        pts: BigInt(off),
      });
      try {
        push(encoder.encode(frame));
      } finally {
        frame.free();
      }
    }
    push(encoder.encode(null));
  } finally {
    encoder.close();
  }
  // 0, 20, 40 ... (libopus reports a negative first pts, its pre-skip), so clip loops are seamless
  return out.map((f, i) => ({ ...f, ptsMs: i * 20 }));
}

/** A deterministic moving test pattern (vertical colour bars scrolling one bar width per second at 30 fps). */
export function rgbTestPattern(width: number, height: number, index: number): RgbFrame {
  const bars = [
    [235, 235, 235],
    [235, 235, 16],
    [16, 235, 235],
    [16, 235, 16],
    [235, 16, 235],
    [235, 16, 16],
    [16, 16, 235],
    [16, 16, 16],
  ];
  const rgb = new Uint8Array(width * height * 3);
  const barW = Math.max(1, Math.floor(width / bars.length));
  const shift = Math.floor((index * barW) / 30);
  for (let x = 0; x < width; x++) {
    const c = bars[Math.floor((x + shift) / barW) % bars.length]!;
    for (let y = 0; y < height; y++) {
      const i = (y * width + x) * 3;
      rgb[i] = c[0]!;
      rgb[i + 1] = c[1]!;
      rgb[i + 2] = c[2]!;
    }
  }
  // a small moving block so consecutive frames always differ
  const bx = (index * 4) % Math.max(1, width - 16);
  for (let y = 0; y < Math.min(16, height); y++) {
    for (let x = bx; x < bx + 16 && x < width; x++) {
      const i = (y * width + x) * 3;
      rgb[i] = 255;
      rgb[i + 1] = 128;
      rgb[i + 2] = 0;
    }
  }
  return { rgb };
}

/** Mono 48 kHz sine tone, amplitude 0.3. */
export function sine48k(seconds: number, hz = 440): Float32Array {
  const n = Math.round(seconds * 48000);
  const pcm = new Float32Array(n);
  for (let i = 0; i < n; i++) pcm[i] = 0.3 * Math.sin((2 * Math.PI * hz * i) / 48000);
  return pcm;
}
