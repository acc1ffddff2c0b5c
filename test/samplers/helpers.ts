// Minimal node-av encoders for sampler tests and fixtures: synthetic pictures and tones in,
// encoded frames out. (media/encode.ts is the shared encoder; this stays small and
// synchronous so fixtures are reproducible.)
import { Codec, CodecContext, FFmpegError, Frame, Log, Packet, Rational, SoftwareScaleContext } from 'node-av';
import {
  AV_CHANNEL_LAYOUT_MONO,
  AV_LOG_QUIET,
  AV_PIX_FMT_RGB24,
  AV_PIX_FMT_YUV420P,
  AV_SAMPLE_FMT_FLT,
  AVERROR_EAGAIN,
  AVERROR_EOF,
  FF_ENCODER_LIBOPUS,
  FF_ENCODER_LIBVPX_VP8,
  FF_DECODER_MJPEG,
  FF_ENCODER_LIBX264,
  SWS_BILINEAR,
} from 'node-av/constants';
import { packetizeH264, packetizeOpus, packetizeVp8 } from '../../media/packetize.ts';
import type { RtpPacketIn } from '../../samplers/types.ts';

Log.setLevel(AV_LOG_QUIET);

export interface EncodedFrame {
  data: Uint8Array;
  keyframe: boolean;
  /** Frame index in presentation order. */
  index: number;
}

/** A test card: smooth colour gradients plus a moving bar, so PSNR has something to measure. */
export function testPicture(width: number, height: number, t = 0, variant = 0): Uint8Array {
  const y = width * height;
  const c = (width / 2) * (height / 2);
  const out = new Uint8Array(y + 2 * c);
  for (let r = 0; r < height; r++) {
    for (let x = 0; x < width; x++) {
      let v = 16 + (((x * 200) / width + (r * 20) / height + variant * 97) % 220);
      if ((x + t * 4) % width < width / 10) v = 235 - ((variant * 60) % 200);
      out[r * width + x] = v;
    }
  }
  for (let r = 0; r < height / 2; r++) {
    for (let x = 0; x < width / 2; x++) {
      out[y + r * (width / 2) + x] = (64 + (x * 128) / (width / 2) + variant * 50) % 240;
      out[y + c + r * (width / 2) + x] = (192 - (r * 128) / (height / 2) + variant * 30) % 240;
    }
  }
  return out;
}

export interface VideoEncodeOptions {
  codec: 'VP8' | 'H264';
  width: number;
  height: number;
  fps?: number;
  bitrateKbps?: number;
  keyframeInterval?: number;
}

/** Encodes YUV420P pictures; returns one encoded frame per input picture (no B-frames). */
export function encodeVideo(pictures: Uint8Array[], opts: VideoEncodeOptions): EncodedFrame[] {
  const fps = opts.fps ?? 30;
  const codec = Codec.findEncoderByName(opts.codec === 'VP8' ? FF_ENCODER_LIBVPX_VP8 : FF_ENCODER_LIBX264);
  if (!codec) throw new Error(`no ${opts.codec} encoder in node-av`);
  const ctx = new CodecContext();
  ctx.allocContext3(codec);
  ctx.width = opts.width;
  ctx.height = opts.height;
  ctx.pixelFormat = AV_PIX_FMT_YUV420P;
  ctx.timeBase = new Rational(1, fps);
  ctx.framerate = new Rational(fps, 1);
  ctx.bitRate = BigInt((opts.bitrateKbps ?? 1500) * 1000);
  ctx.gopSize = opts.keyframeInterval ?? 60;
  ctx.maxBFrames = 0;
  ctx.threadCount = 1;
  const options =
    opts.codec === 'VP8'
      ? { deadline: 'realtime', 'cpu-used': '8', 'lag-in-frames': '0' }
      : { preset: 'ultrafast', tune: 'zerolatency', profile: 'baseline', 'x264-params': 'repeat-headers=1' };
  // Private options go through setOption: passing a Dictionary to open2Sync crashes node-av 6.1.1
  // at process exit (double free).
  for (const [k, v] of Object.entries(options)) FFmpegError.throwIfError(ctx.setOption(k, v), `option ${k}`);
  FFmpegError.throwIfError(ctx.open2Sync(codec, null), 'open encoder');
  const out: EncodedFrame[] = [];
  const pkt = new Packet();
  pkt.alloc();
  const drain = (): void => {
    for (;;) {
      const ret = ctx.receivePacketSync(pkt);
      if (ret === AVERROR_EAGAIN || ret === AVERROR_EOF) return;
      FFmpegError.throwIfError(ret, 'receivePacket');
      const data = pkt.data;
      if (data) out.push({ data: new Uint8Array(data), keyframe: pkt.isKeyframe, index: Number(pkt.pts) });
      pkt.unref();
    }
  };
  pictures.forEach((pic, i) => {
    const frame = new Frame();
    frame.alloc();
    frame.width = opts.width;
    frame.height = opts.height;
    frame.format = AV_PIX_FMT_YUV420P;
    frame.pts = BigInt(i);
    FFmpegError.throwIfError(frame.allocBuffer(), 'allocBuffer');
    FFmpegError.throwIfError(frame.fromBuffer(Buffer.from(pic.buffer, pic.byteOffset, pic.byteLength)), 'fromBuffer');
    FFmpegError.throwIfError(ctx.sendFrameSync(frame), 'sendFrame');
    frame.free();
    drain();
  });
  ctx.sendFrameSync(null);
  drain();
  pkt.free();
  ctx.freeContext();
  return out;
}

/** A sine tone at 48 kHz mono, amplitude 0.5. */
export function tone(freqHz: number, seconds: number, rate = 48000): Float32Array {
  const pcm = new Float32Array(Math.round(seconds * rate));
  for (let i = 0; i < pcm.length; i++) pcm[i] = 0.5 * Math.sin((2 * Math.PI * freqHz * i) / rate);
  return pcm;
}

/** Encodes 48 kHz mono float PCM into 20 ms Opus packets. */
export function encodeOpus(pcm48k: Float32Array, bitrateKbps = 32): Uint8Array[] {
  const codec = Codec.findEncoderByName(FF_ENCODER_LIBOPUS);
  if (!codec) throw new Error('no libopus encoder in node-av');
  const ctx = new CodecContext();
  ctx.allocContext3(codec);
  ctx.sampleRate = 48000;
  ctx.sampleFormat = AV_SAMPLE_FMT_FLT;
  ctx.channelLayout = AV_CHANNEL_LAYOUT_MONO;
  ctx.bitRate = BigInt(bitrateKbps * 1000);
  ctx.timeBase = new Rational(1, 48000);
  FFmpegError.throwIfError(ctx.open2Sync(codec, null), 'open opus encoder');
  const frameSize = 960;
  const out: Uint8Array[] = [];
  const pkt = new Packet();
  pkt.alloc();
  const drain = (): void => {
    for (;;) {
      const ret = ctx.receivePacketSync(pkt);
      if (ret === AVERROR_EAGAIN || ret === AVERROR_EOF) return;
      FFmpegError.throwIfError(ret, 'receivePacket');
      if (pkt.data) out.push(new Uint8Array(pkt.data));
      pkt.unref();
    }
  };
  for (let off = 0; off + frameSize <= pcm48k.length; off += frameSize) {
    const chunk = pcm48k.slice(off, off + frameSize);
    const frame = new Frame();
    frame.alloc();
    frame.nbSamples = frameSize;
    frame.format = AV_SAMPLE_FMT_FLT;
    frame.sampleRate = 48000;
    frame.channelLayout = AV_CHANNEL_LAYOUT_MONO;
    frame.pts = BigInt(off);
    FFmpegError.throwIfError(frame.allocBuffer(), 'allocBuffer');
    FFmpegError.throwIfError(frame.fromBuffer(Buffer.from(chunk.buffer)), 'fromBuffer');
    FFmpegError.throwIfError(ctx.sendFrameSync(frame), 'sendFrame');
    frame.free();
    drain();
  }
  ctx.sendFrameSync(null);
  drain();
  pkt.free();
  ctx.freeContext();
  return out;
}

export interface RtpizeOptions {
  streamId?: string;
  trackId?: string;
  ssrc?: number;
  firstSeq?: number;
  firstTimestamp?: number;
  fps?: number;
  maxPayload?: number;
  /** Server-clock time of the first packet (ms); later packets are spaced by the frame interval. */
  startAt?: number;
}

/** Turns encoded video frames into RtpPacketIn with real payload bytes. */
export function rtpizeVideo(frames: EncodedFrame[], codec: 'VP8' | 'H264', o: RtpizeOptions = {}): RtpPacketIn[] {
  const fps = o.fps ?? 30;
  let seq = o.firstSeq ?? 1000;
  const out: RtpPacketIn[] = [];
  frames.forEach((f, i) => {
    const payloads =
      codec === 'VP8'
        ? packetizeVp8(f.data, o.maxPayload ?? 1200, i & 0x7fff)
        : packetizeH264(f.data, o.maxPayload ?? 1200);
    const ts = ((o.firstTimestamp ?? 90000) + Math.round((i * 90000) / fps)) >>> 0;
    const at = (o.startAt ?? 0) + (i * 1000) / fps;
    payloads.forEach((p, k) => {
      out.push({
        streamId: o.streamId ?? 's1',
        trackId: o.trackId ?? 'v',
        kind: 'video',
        codec,
        clockRate: 90000,
        payloadType: codec === 'VP8' ? 96 : 102,
        sequenceNumber: seq & 0xffff,
        timestamp: ts,
        marker: k === payloads.length - 1,
        ssrc: o.ssrc ?? 0x1234,
        payload: p,
        arrivedAt: at,
      });
      seq++;
    });
  });
  return out;
}

/** Turns Opus packets (20 ms each) into RtpPacketIn. */
export function rtpizeOpus(packets: Uint8Array[], o: RtpizeOptions = {}): RtpPacketIn[] {
  let seq = o.firstSeq ?? 5000;
  return packets.map((p, i) => ({
    streamId: o.streamId ?? 's1',
    trackId: o.trackId ?? 'a',
    kind: 'audio',
    codec: 'opus',
    clockRate: 48000,
    payloadType: 111,
    sequenceNumber: seq++ & 0xffff,
    timestamp: ((o.firstTimestamp ?? 48000) + i * 960) >>> 0,
    marker: false,
    ssrc: o.ssrc ?? 0x5678,
    payload: packetizeOpus(p)[0],
    arrivedAt: (o.startAt ?? 0) + i * 20,
  }));
}

/** PSNR (dB) between two equally sized byte arrays. */
export function psnr(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) throw new Error(`size mismatch ${a.length} vs ${b.length}`);
  let se = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    se += d * d;
  }
  const mse = se / a.length;
  return mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse);
}

/** YUV420P -> RGB24 through swscale (the same conversion the sampler uses), tightly packed. */
export function yuvToRgb(yuv: Uint8Array, width: number, height: number): Uint8Array {
  const src = new Frame();
  src.alloc();
  src.width = width;
  src.height = height;
  src.format = AV_PIX_FMT_YUV420P;
  FFmpegError.throwIfError(src.allocBuffer(), 'allocBuffer');
  FFmpegError.throwIfError(src.fromBuffer(Buffer.from(yuv.buffer, yuv.byteOffset, yuv.byteLength)), 'fromBuffer');
  const dst = new Frame();
  dst.alloc();
  dst.width = width;
  dst.height = height;
  dst.format = AV_PIX_FMT_RGB24;
  FFmpegError.throwIfError(dst.allocBuffer(), 'allocBuffer');
  const sws = new SoftwareScaleContext();
  sws.getContext(width, height, AV_PIX_FMT_YUV420P, width, height, AV_PIX_FMT_RGB24, SWS_BILINEAR);
  FFmpegError.throwIfError(sws.initContext(), 'sws');
  sws.scaleFrameSync(dst, src);
  const out = new Uint8Array(dst.toBuffer());
  sws.freeContext();
  src.free();
  dst.free();
  return out.length === width * height * 3 ? out : out.subarray(0, width * height * 3);
}

/** Strongest frequency (Hz, 1 Hz steps) of a PCM window in [lo, hi], by Goertzel. */
export function dominantFrequency(pcm: Float32Array, sampleRate: number, lo = 50, hi = 4000): number {
  let best = lo;
  let bestPower = -1;
  for (let f = lo; f <= hi; f++) {
    const w = (2 * Math.PI * f) / sampleRate;
    const coeff = 2 * Math.cos(w);
    let s1 = 0;
    let s2 = 0;
    for (let i = 0; i < pcm.length; i++) {
      const s0 = pcm[i] + coeff * s1 - s2;
      s2 = s1;
      s1 = s0;
    }
    const power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    if (power > bestPower) {
      bestPower = power;
      best = f;
    }
  }
  return best;
}

/** Pushes packets the way the SFU tap would: arrivedAt is the server clock at push time. */
export function pushLive(pool: { push(p: RtpPacketIn): void }, packets: RtpPacketIn[]): void {
  for (const p of packets) pool.push({ ...p, arrivedAt: performance.timeOrigin + performance.now() });
}

/** Pushes packets in real time (paced by their arrivedAt offsets), stamping the server clock. */
export async function pushPaced(
  pool: { push(p: RtpPacketIn): void },
  packets: RtpPacketIn[],
  speed = 1,
): Promise<void> {
  if (packets.length === 0) return;
  const t0 = performance.now();
  const base = packets[0].arrivedAt;
  for (const p of packets) {
    const due = (p.arrivedAt - base) / speed;
    const wait = due - (performance.now() - t0);
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    pool.push({ ...p, arrivedAt: performance.timeOrigin + performance.now() });
  }
}

export function waitFor<T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      const v = check();
      if (v !== undefined) return resolve(v);
      if (Date.now() - start > timeoutMs) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 20);
    };
    tick();
  });
}

/** Decodes one JPEG (a thumbnail) with FFmpeg's MJPEG decoder; the caller frees the frame. */
export function decodeJpeg(jpeg: Uint8Array): Frame {
  const codec = Codec.findDecoderByName(FF_DECODER_MJPEG);
  if (!codec) throw new Error('no MJPEG decoder');
  const ctx = new CodecContext();
  ctx.allocContext3(codec);
  const pkt = new Packet();
  pkt.alloc();
  const frame = new Frame();
  frame.alloc();
  try {
    FFmpegError.throwIfError(ctx.open2Sync(codec, null), 'mjpeg open');
    pkt.data = Buffer.from(jpeg);
    FFmpegError.throwIfError(ctx.sendPacketSync(pkt), 'mjpeg send');
    FFmpegError.throwIfError(ctx.receiveFrameSync(frame), 'mjpeg receive');
    return frame;
  } catch (err) {
    frame.free();
    throw err;
  } finally {
    pkt.free();
    ctx.freeContext();
  }
}
