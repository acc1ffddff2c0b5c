// Decode worker: depacketizes, reassembles and decodes the tracks assigned to it, samples video
// frames and windows audio, and posts samples back with their buffers transferred (or, with
// sharedFrames, video pictures written into the track's shared ring and named by slot).
import {
  Codec,
  CodecContext,
  FFmpegError,
  Frame,
  Log,
  Packet,
  SoftwareResampleContext,
  SoftwareScaleContext,
} from 'node-av';
import {
  AV_CHANNEL_LAYOUT_MONO,
  AV_CHANNEL_LAYOUT_STEREO,
  AV_LOG_QUIET,
  AV_PIX_FMT_GRAY8,
  AV_PIX_FMT_RGB24,
  AV_SAMPLE_FMT_FLT,
  AVERROR_EAGAIN,
  AVERROR_EOF,
  FF_DECODER_H264,
  FF_DECODER_OPUS,
  FF_DECODER_VP8,
  SWS_AREA,
  SWS_BILINEAR,
} from 'node-av/constants';
import type { AVPixelFormat, SwsFlags } from 'node-av/constants';
import { createSocket, type Socket } from 'node:dgram';
import { isRtcp, rtpView } from '../media/rtp.ts';
import { FrameAssembler, h264Format, vp8Format } from './frame-assembler.ts';
import { PACKET_HEADER, UDP_COUNTERS_MS } from './protocol.ts';
import type { FromWorker, ToWorker, TrackCounters, TrackInfo, WorkerConfig } from './protocol.ts';
import { THUMB_H, THUMB_W, VideoSamplingRule, type LumaPlane } from './video-sampling.ts';
import { announceReady, onClose, supervisedPort } from '../threads/thread.ts';

// The port answers the supervisor's control messages too (the crash hook of SamplerPool.crashWorkerOf).
const port = supervisedPort();
Log.setLevel(AV_LOG_QUIET);

const now = (): number => performance.timeOrigin + performance.now();
let config: WorkerConfig | undefined;

function post(msg: FromWorker, transfer: ArrayBuffer[] = []): void {
  port.postMessage(msg, transfer);
}

function check(ret: number, what: string): void {
  FFmpegError.throwIfError(ret, what);
}

abstract class TrackDecoder {
  frames = 0;
  drops = 0;
  lagMs = 0;
  touched = false;
  constructor(readonly info: TrackInfo) {}
  abstract onPacket(seq: number, ts: number, marker: boolean, payload: Uint8Array, arrivedAt: number): void;
  abstract close(): void;
}

class VideoTrack extends TrackDecoder {
  readonly #assembler: FrameAssembler;
  readonly #rule: VideoSamplingRule;
  #ctx: CodecContext | null = null;
  readonly #pkt = new Packet();
  readonly #frame = new Frame();
  #waitingForKeyframe = true;
  /** Frames sent to the decoder and not yet returned, by RTP timestamp. */
  readonly #inDecoder = new Map<number, { arrivedAt: number; queuedAt: number }>();
  #scaler: Scaler | null = null;
  #thumbScaler: Scaler | null = null;
  #lumaScaler: Scaler | null = null;
  /** The shared ring of sampled pictures (WorkerConfig.sharedFrames), for the current picture size. */
  #ring: FrameRing | null = null;
  #stamp = 0;
  readonly #cfg: WorkerConfig;

  constructor(info: TrackInfo, cfg: WorkerConfig) {
    super(info);
    this.#cfg = cfg;
    this.#assembler = new FrameAssembler(info.codec === 'H264' ? h264Format() : vp8Format(), {
      reorderWaitMs: cfg.reorderWaitMs,
    });
    this.#rule = new VideoSamplingRule(cfg.video, info.clockRate);
    this.#pkt.alloc();
    this.#frame.alloc();
  }

  #open(): CodecContext {
    const codec = Codec.findDecoderByName(this.info.codec === 'H264' ? FF_DECODER_H264 : FF_DECODER_VP8);
    if (!codec) throw new Error(`no ${this.info.codec} decoder`);
    const ctx = new CodecContext();
    ctx.allocContext3(codec);
    ctx.threadCount = 1;
    check(ctx.open2Sync(codec, null), 'open video decoder');
    return ctx;
  }

  onPacket(seq: number, ts: number, marker: boolean, payload: Uint8Array, arrivedAt: number): void {
    const before = this.#assembler.droppedFrames;
    const frames = this.#assembler.push({ sequenceNumber: seq, timestamp: ts, marker, payload, arrivedAt });
    if (this.#assembler.droppedFrames > before) {
      this.drops += this.#assembler.droppedFrames - before;
      this.#needKeyframe();
    }
    for (const f of frames) {
      const queuedAt = now();
      this.lagMs = queuedAt - f.arrivedAt;
      if (this.lagMs > this.#cfg.maxLagMs) {
        // Behind real time: drop the backlog (newest wins) and resync on a fresh key frame.
        this.drops++;
        this.#needKeyframe();
        continue;
      }
      if (f.afterLoss && !f.keyframe) this.#waitingForKeyframe = true;
      if (this.#waitingForKeyframe && !f.keyframe) {
        this.drops++;
        this.#needKeyframe();
        continue;
      }
      this.#waitingForKeyframe = false;
      this.#decode(f.data, f.timestamp, f.arrivedAt, queuedAt);
    }
  }

  #needKeyframe(): void {
    this.#waitingForKeyframe = true;
    post({ t: 'keyframe', key: this.info.key });
  }

  #decode(data: Uint8Array, ts: number, arrivedAt: number, queuedAt: number): void {
    this.#ctx ??= this.#open();
    const ctx = this.#ctx;
    this.#pkt.data = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    // The RTP timestamp rides along as pts: a decoder that holds frames back still reports which one it returns.
    this.#pkt.pts = BigInt(ts);
    this.#inDecoder.set(ts, { arrivedAt, queuedAt });
    if (this.#inDecoder.size > 32) this.#inDecoder.delete(this.#inDecoder.keys().next().value!);
    const sent = ctx.sendPacketSync(this.#pkt);
    this.#pkt.unref();
    if (sent < 0 && sent !== AVERROR_EAGAIN) {
      this.drops++;
      ctx.flushBuffers();
      this.#needKeyframe();
      return;
    }
    for (;;) {
      const ret = ctx.receiveFrameSync(this.#frame);
      if (ret === AVERROR_EAGAIN || ret === AVERROR_EOF) break;
      if (ret < 0) {
        this.drops++;
        this.#needKeyframe();
        break;
      }
      this.frames++;
      const pts = Number(this.#frame.pts);
      const t = this.#inDecoder.get(pts);
      if (t) {
        this.#inDecoder.delete(pts);
        this.#onDecoded(pts, t.arrivedAt, t.queuedAt);
      } else {
        this.#onDecoded(ts, arrivedAt, queuedAt);
      }
      this.#frame.unref();
    }
  }

  #onDecoded(ts: number, arrivedAt: number, queuedAt: number): void {
    const f = this.#frame;
    if (f.width <= 0 || f.height <= 0) return;
    const thumb = this.#rule.wantsThumbnail ? this.#thumbnail(f) : undefined;
    const reason = this.#rule.decide(ts, thumb);
    if (!reason) return;
    const decodedAt = now();
    const { w, h } = this.#rgbSize(f);
    const transfer: ArrayBuffer[] = [];
    let rgb: Uint8Array | { slot: number; stamp: number };
    if (this.#cfg.sharedFrames > 0) {
      const ring = this.#ringFor(w, h);
      const slot = this.#stamp % ring.slots;
      const stamp = ++this.#stamp;
      // a reader that copies the slot meanwhile sees -1 (or the new stamp) and knows its picture is gone
      Atomics.store(ring.stamps, slot, -1);
      this.#scaleRgb(f, w, h, ring.pictures.subarray(slot * ring.slotBytes, (slot + 1) * ring.slotBytes));
      Atomics.store(ring.stamps, slot, stamp);
      rgb = { slot, stamp };
    } else {
      const own = this.#scaleRgb(f, w, h);
      transfer.push(own.buffer as ArrayBuffer);
      rgb = own;
    }
    const luma = this.#cfg.lumaMaxSide > 0 ? this.#toLuma(f, w, h) : undefined;
    if (luma) transfer.push(luma.data.buffer as ArrayBuffer);
    post(
      {
        t: 'video',
        key: this.info.key,
        rtpTimestamp: ts,
        reason,
        width: w,
        height: h,
        rgb,
        ...(thumb ? { thumbnail: thumb } : {}),
        ...(luma ? { lumaPlane: luma } : {}),
        timings: { arrivedAt, queuedAt, decodedAt },
      },
      transfer,
    );
  }

  /** The ring for pictures of w x h: made (and announced) on the first sample and when the size changes. */
  #ringFor(w: number, h: number): FrameRing {
    const slotBytes = w * h * 3;
    if (this.#ring?.slotBytes === slotBytes) return this.#ring;
    const slots = this.#cfg.sharedFrames;
    const offset = Math.ceil((slots * 4) / 8) * 8;
    const buffer = new SharedArrayBuffer(offset + slots * slotBytes);
    this.#ring = {
      slots,
      slotBytes,
      stamps: new Int32Array(buffer, 0, slots),
      pictures: new Uint8Array(buffer, offset),
    };
    post({ t: 'frames', key: this.info.key, buffer, slots, slotBytes, offset });
    return this.#ring;
  }

  /**
   * The frame's 16x9 luma thumbnail (0..1), scaled natively (swscale's area average into a GRAY8 frame
   * kept for the track) so that the decoded planes, touched at every frame, never become JavaScript
   * Buffers. Same definition and scale as video-sampling.ts lumaThumbnail (mean Y per block / 255),
   * which reads a plane from JavaScript: swscale expands the video range (16-235) to GRAY8's 0-255,
   * which is undone here so that the scene threshold keeps its meaning.
   */
  #thumbnail(src: Frame): Float32Array {
    this.#thumbScaler = scalerFor(this.#thumbScaler, src, THUMB_W, THUMB_H, AV_PIX_FMT_GRAY8, SWS_AREA);
    const s = this.#thumbScaler;
    s.ctx.scaleFrameSync(s.dst, src);
    const out = new Float32Array(THUMB_W * THUMB_H);
    for (let r = 0; r < THUMB_H; r++) {
      const row = r * s.stride;
      for (let c = 0; c < THUMB_W; c++) out[r * THUMB_W + c] = (16 + (s.plane[row + c] * 219) / 255) / 255;
    }
    return out;
  }

  /**
   * The picture's luma for PDQ: GRAY8 (full range, the luma PDQ computes from RGB), scaled by swscale
   * like the RGB sample, at its size or smaller to fit lumaMaxSide. The decoded planes never become
   * JavaScript Buffers: each access wraps them in Buffers V8 counts as external memory, which at every
   * frame of every track kept this thread in major GCs.
   */
  #toLuma(src: Frame, rgbW: number, rgbH: number): LumaPlane {
    const f = Math.min(1, this.#cfg.lumaMaxSide / Math.max(rgbW, rgbH));
    const w = Math.max(2, Math.round(rgbW * f));
    const h = Math.max(2, Math.round(rgbH * f));
    this.#lumaScaler = scalerFor(this.#lumaScaler, src, w, h, AV_PIX_FMT_GRAY8, SWS_BILINEAR);
    return { width: w, height: h, data: copyPlane(this.#lumaScaler, src, w) };
  }

  #rgbSize(src: Frame): { w: number; h: number } {
    let w = Math.min(src.width, this.#cfg.maxWidth);
    let h = Math.round((src.height * w) / src.width);
    w -= w & 1;
    h -= h & 1;
    return { w, h };
  }

  #scaleRgb(src: Frame, w: number, h: number, into?: Uint8Array): Uint8Array {
    this.#scaler = scalerFor(this.#scaler, src, w, h, AV_PIX_FMT_RGB24, SWS_BILINEAR);
    return copyPlane(this.#scaler, src, w * 3, into);
  }

  close(): void {
    this.#ctx?.freeContext();
    this.#ctx = null;
    freeScaler(this.#scaler);
    this.#scaler = null;
    freeScaler(this.#thumbScaler);
    this.#thumbScaler = null;
    freeScaler(this.#lumaScaler);
    this.#lumaScaler = null;
    this.#pkt.free();
    this.#frame.free();
  }
}

/** A swscale context and the frame it writes into, kept while the source's size and format stay. */
interface Scaler {
  ctx: SoftwareScaleContext;
  key: string;
  dst: Frame;
  /** dst's first plane, wrapped once: the frame keeps its buffer, so the wrapper stays valid. */
  plane: Buffer;
  stride: number;
}

function scalerFor(
  current: Scaler | null,
  src: Frame,
  w: number,
  h: number,
  format: AVPixelFormat,
  flags: SwsFlags,
): Scaler {
  const key = `${src.width}x${src.height}:${src.format}->${w}x${h}`;
  if (current?.key === key) return current;
  freeScaler(current);
  const ctx = new SoftwareScaleContext();
  ctx.getContext(src.width, src.height, src.format as AVPixelFormat, w, h, format, flags);
  check(ctx.initContext(), 'sws init');
  const dst = new Frame();
  dst.alloc();
  dst.width = w;
  dst.height = h;
  dst.format = format;
  check(dst.allocBuffer(), 'scaled frame');
  return { ctx, key, dst, plane: dst.data![0], stride: dst.linesize[0] };
}

/** A video track's shared ring of sampled pictures (FromWorker 'frames'). */
interface FrameRing {
  slots: number;
  slotBytes: number;
  stamps: Int32Array;
  pictures: Uint8Array;
}

/** Scales src with s and copies its first plane out, rows of rowBytes, into `into` or an array of its own (to transfer). */
function copyPlane(s: Scaler, src: Frame, rowBytes: number, into?: Uint8Array): Uint8Array {
  s.ctx.scaleFrameSync(s.dst, src);
  const rows = s.dst.height;
  const out = into ?? new Uint8Array(rowBytes * rows);
  if (s.stride === rowBytes) out.set(s.plane.subarray(0, out.length));
  else for (let r = 0; r < rows; r++) out.set(s.plane.subarray(r * s.stride, r * s.stride + rowBytes), r * rowBytes);
  return out;
}

function freeScaler(s: Scaler | null): void {
  s?.ctx.freeContext();
  s?.dst.free();
}

class AudioTrack extends TrackDecoder {
  #ctx: CodecContext | null = null;
  #resampler: SoftwareResampleContext | null = null;
  readonly #pkt = new Packet();
  readonly #frame = new Frame();
  #lastExtSeq = -1;
  #window: Float32Array;
  #filled = 0;
  #windowTs = 0;
  #out = Buffer.alloc(0);
  readonly #cfg: WorkerConfig;

  constructor(info: TrackInfo, cfg: WorkerConfig) {
    super(info);
    this.#cfg = cfg;
    this.#window = new Float32Array(cfg.audioWindowSamples);
    this.#pkt.alloc();
    this.#frame.alloc();
  }

  #open(): CodecContext {
    const codec = Codec.findDecoderByName(FF_DECODER_OPUS);
    if (!codec) throw new Error('no opus decoder');
    const ctx = new CodecContext();
    ctx.allocContext3(codec);
    ctx.sampleRate = 48000;
    ctx.channelLayout = AV_CHANNEL_LAYOUT_STEREO;
    check(ctx.open2Sync(codec, null), 'open opus decoder');
    return ctx;
  }

  onPacket(seq: number, ts: number, _marker: boolean, payload: Uint8Array, arrivedAt: number): void {
    // Opus packets are whole frames: no reassembly, only late ones are discarded.
    const ext = this.#extend(seq);
    if (ext <= this.#lastExtSeq) {
      this.drops++;
      return;
    }
    this.#lastExtSeq = ext;
    const queuedAt = now();
    this.lagMs = queuedAt - arrivedAt;
    if (this.lagMs > this.#cfg.maxLagMs) {
      this.drops++;
      this.#filled = 0;
      return;
    }
    this.#ctx ??= this.#open();
    this.#pkt.data = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    const sent = this.#ctx.sendPacketSync(this.#pkt);
    this.#pkt.unref();
    if (sent < 0) {
      this.drops++;
      return;
    }
    for (;;) {
      const ret = this.#ctx.receiveFrameSync(this.#frame);
      if (ret < 0) break;
      this.frames++;
      this.#resample(ts, arrivedAt, queuedAt);
      this.#frame.unref();
    }
  }

  #extend(seq: number): number {
    if (this.#lastExtSeq < 0) return seq + 0x10000;
    const base = this.#lastExtSeq - (this.#lastExtSeq & 0xffff);
    let ext = base + seq;
    if (ext - this.#lastExtSeq > 0x8000) ext -= 0x10000;
    else if (this.#lastExtSeq - ext > 0x8000) ext += 0x10000;
    return ext;
  }

  #resample(ts: number, arrivedAt: number, queuedAt: number): void {
    const f = this.#frame;
    if (!this.#resampler) {
      const r = new SoftwareResampleContext();
      check(
        r.allocSetOpts2(
          AV_CHANNEL_LAYOUT_MONO,
          AV_SAMPLE_FMT_FLT,
          this.#cfg.audioSampleRate,
          f.channelLayout,
          f.format as Parameters<SoftwareResampleContext['allocSetOpts2']>[4],
          f.sampleRate,
        ),
        'swr alloc',
      );
      check(r.init(), 'swr init');
      this.#resampler = r;
    }
    const maxOut = this.#resampler.getOutSamples(f.nbSamples) + 32;
    if (this.#out.length < maxOut * 4) this.#out = Buffer.alloc(maxOut * 4);
    const got = this.#resampler.convertSync([this.#out], maxOut, f.extendedData ?? f.data, f.nbSamples);
    if (got <= 0) return;
    const samples = new Float32Array(this.#out.buffer, this.#out.byteOffset, got);
    const ratio = this.info.clockRate / this.#cfg.audioSampleRate;
    let used = 0;
    while (used < got) {
      if (this.#filled === 0) this.#windowTs = (ts + Math.round(used * ratio)) >>> 0;
      const n = Math.min(got - used, this.#window.length - this.#filled);
      this.#window.set(samples.subarray(used, used + n), this.#filled);
      this.#filled += n;
      used += n;
      if (this.#filled === this.#window.length) {
        const pcm = this.#window;
        this.#window = new Float32Array(this.#cfg.audioWindowSamples);
        this.#filled = 0;
        post(
          {
            t: 'audio',
            key: this.info.key,
            rtpTimestamp: this.#windowTs,
            sampleRate: this.#cfg.audioSampleRate,
            pcm,
            timings: { arrivedAt, queuedAt, decodedAt: now() },
          },
          [pcm.buffer as ArrayBuffer],
        );
      }
    }
  }

  close(): void {
    this.#ctx?.freeContext();
    this.#ctx = null;
    this.#resampler?.free();
    this.#resampler = null;
    this.#pkt.free();
    this.#frame.free();
  }
}

const tracks = new Map<number, TrackDecoder>();

/**
 * A track whose RTP comes by loopback UDP from an engine's forwarding process (TrackInfo.rtp): its
 * packets reach this thread without crossing the main thread. Datagrams from anywhere but the
 * announced source, RTCP (muxed on the port) and garbage are dropped; every packet is stamped with
 * this thread's clock when it is read.
 */
class UdpInput {
  lastPacketAt = 0;
  readonly #socket: Socket;
  #closed = false;

  constructor(
    readonly track: TrackDecoder,
    rtp: { port: number; sourcePort: number },
  ) {
    const key = track.info.key;
    this.#socket = createSocket({ type: 'udp4', recvBufferSize: 1 << 20 });
    this.#socket.on('error', (err) => {
      if (this.#closed) return;
      post({ t: 'listenFailed', key, message: err.message });
      this.close();
    });
    this.#socket.on('message', (msg, from) => {
      if (from.port !== rtp.sourcePort || from.address !== '127.0.0.1' || isRtcp(msg)) return;
      const p = rtpView(msg);
      const t = this.track;
      t.touched = true;
      if (!p) {
        t.drops++;
        return;
      }
      const at = now();
      this.lastPacketAt = at;
      try {
        t.onPacket(p.seq, p.ts, p.marker, p.payload, at);
      } catch {
        t.drops++;
      }
    });
    this.#socket.bind({ address: '127.0.0.1', port: rtp.port }, () => {
      if (!this.#closed) post({ t: 'listening', key, port: this.#socket.address().port });
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.close();
  }
}

const udpInputs = new Map<number, UdpInput>();
let countersTimer: NodeJS.Timeout | null = null;

/** Counters of the tracks touched since the last report, or of every UDP track (their heartbeat). */
function trackCounters(udpTracks = false): { counters: TrackCounters[]; behind: boolean } {
  const counters: TrackCounters[] = [];
  let behind = false;
  for (const t of tracks.values()) {
    const udp = udpInputs.get(t.info.key);
    if (udpTracks ? !udp : !t.touched) continue;
    t.touched = false;
    counters.push({
      key: t.info.key,
      frames: t.frames,
      drops: t.drops,
      lagMs: t.lagMs,
      ...(udp ? { lastPacketAt: udp.lastPacketAt } : {}),
    });
    if (config && t.lagMs > config.maxLagMs / 2) behind = true;
  }
  return { counters, behind };
}

/** UDP tracks have no batches to acknowledge: their counters go out on a timer, which doubles as a heartbeat. */
function updateCountersTimer(): void {
  if (udpInputs.size > 0 && !countersTimer) {
    countersTimer = setInterval(() => post({ t: 'counters', ...trackCounters(true) }), UDP_COUNTERS_MS);
  } else if (udpInputs.size === 0 && countersTimer) {
    clearInterval(countersTimer);
    countersTimer = null;
  }
}

function releaseTrack(key: number): void {
  udpInputs.get(key)?.close();
  udpInputs.delete(key);
  tracks.get(key)?.close();
  tracks.delete(key);
  updateCountersTimer();
}

function onPackets(buf: ArrayBuffer, count: number): void {
  const view = new DataView(buf);
  const bytes = new Uint8Array(buf);
  let o = 0;
  for (let i = 0; i < count; i++) {
    const key = view.getUint32(o, true);
    const seq = view.getUint16(o + 4, true);
    const marker = (view.getUint8(o + 6) & 1) === 1;
    const ts = view.getUint32(o + 8, true);
    const arrivedAt = view.getFloat64(o + 12, true);
    const len = view.getUint32(o + 20, true);
    const payload = bytes.subarray(o + PACKET_HEADER, o + PACKET_HEADER + len);
    o += PACKET_HEADER + len;
    const track = tracks.get(key);
    if (!track) continue;
    track.touched = true;
    try {
      track.onPacket(seq, ts, marker, payload, arrivedAt);
    } catch {
      // A malformed packet or a decoder that refuses a frame costs that frame, not the track.
      track.drops++;
    }
  }
  post({ t: 'ack', bytes: buf.byteLength, ...trackCounters() });
}

port.on('message', (msg: ToWorker) => {
  switch (msg.t) {
    case 'config':
      config = msg.config;
      break;
    case 'track': {
      if (!config) throw new Error('track before config');
      releaseTrack(msg.track.key);
      const t = msg.track.kind === 'video' ? new VideoTrack(msg.track, config) : new AudioTrack(msg.track, config);
      tracks.set(msg.track.key, t);
      if (msg.track.rtp) {
        udpInputs.set(msg.track.key, new UdpInput(t, msg.track.rtp));
        updateCountersTimer();
      }
      break;
    }
    case 'packets':
      onPackets(msg.buf, msg.count);
      break;
    case 'release':
      for (const k of msg.keys) releaseTrack(k);
      break;
  }
});

// The pool closes the thread after the packets it posted: their decoding has finished; the decoders are
// freed here, on their own thread, and then the thread ends by itself.
onClose(() => {
  for (const k of [...tracks.keys()]) releaseTrack(k);
});

announceReady();
