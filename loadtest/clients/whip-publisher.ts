// Synthetic WHIP publisher (werift, no browser). Sends a pre-encoded clip in a loop, in real time.
//
//   const clip = await syntheticClip({ codec: 'VP8' });                  // or your own EncodedFrame[]s
//   const pub = await WhipPublisher.connect({ url: 'http://127.0.0.1:8080/whip/cam1', token, ...clip });
//   pub.start();                                   // real-time loop; answers PLI with the next keyframe
//   pub.sentAt('video', seq)                       // send time (ms, server clock) of a packet, for latency
//   pub.onPacket = (p) => ...                      // every packet sent: { kind, seq, timestamp, sentAt, keyframe }
//   await pub.stop();                              // DELETE the session, close the peer connection
//   await pub.ended                                // resolves when the server ends the session (e.g. a kill)
//
// RTP timestamps run at 90 kHz / 48 kHz from the moment start() is called; sender reports carry an exact
// linear RTP->NTP mapping per track (`mapping(kind)`), optionally with a deliberate audio offset
// (`audioNtpOffsetMs`) so lip-sync tests can tell a preserved mapping from a re-timed one. As RFC 3550
// 6.4.1 says, a report's NTP field is the clip clock at the moment it is built (one clock for both
// tracks) and its RTP field is the track's timestamp for that instant under the mapping: a negative
// offset is audio that left the sender later than it was captured (a buffering audio path), what an
// SFU that estimates capture instants from the reports (mediasoup) must and can keep.

import { RtpHeader, RtpPacket, ntpTime } from 'werift';
import type { RTCPeerConnection, RTCRtpSender } from 'werift';
import { encodeAudio, encodeVideo, rgbTestPattern, sine48k } from '../../media/encode.ts';
import type { EncodedFrame } from '../../media/encode.ts';
import { packetizeH264, packetizeOpus, packetizeVp8 } from '../../media/packetize.ts';
import { clientPeer, deleteSession, sessionEnded, gatheredOffer, nowMs, postOffer, waitConnected } from './peer.ts';
import type { ClientVideoCodec } from './peer.ts';

export interface WhipPublisherOptions {
  /** WHIP endpoint, e.g. http://127.0.0.1:8080/whip/cam1 */
  url: string;
  /** Bearer token. */
  token?: string;
  /** Video clip (looped). Omit for audio only. */
  video?: { codec: ClientVideoCodec; frames: EncodedFrame[]; fps: number };
  /** Opus clip, 20 ms packets (looped). Omit for video only. */
  audio?: { frames: EncodedFrame[] };
  /** Shift the audio track's RTP->NTP mapping by this much (ms); negative = audio captured before it is sent. Default 0. */
  audioNtpOffsetMs?: number;
  /** How long to wait for ICE + DTLS (ms). Default CONNECT_TIMEOUT_MS (peer.ts). */
  connectTimeoutMs?: number;
  /** Ignore keyframe requests, as FFmpeg's whip muxer does (it cannot make a keyframe on request). Default false. */
  ignorePli?: boolean;
  /**
   * Pace video at this rate (kbit/s), as a browser's pacer does (libwebrtc paces at 2.5x the target
   * bitrate): a frame's packets leave one by one as the rate allows, bursts of at most
   * PACING_BURST_MS' worth (at least one packet), so a frame's packets leave spread out. Audio is never held. Default:
   * unpaced, every packet of a frame at once (FFmpeg's whip muxer).
   */
  pacingKbps?: number;
}

/** The most a paced publisher sends at once: this many ms of its pacing rate (and at least one packet). */
export const PACING_BURST_MS = 5;

interface PacedPacket {
  payload: Uint8Array;
  timestamp: number;
  marker: boolean;
  keyframe: boolean;
}

export interface SentPacket {
  kind: 'audio' | 'video';
  seq: number;
  timestamp: number;
  sentAt: number;
  keyframe: boolean;
  marker: boolean;
  /** Payload bytes. */
  bytes: number;
}

export interface TrackMapping {
  /** RTP timestamp of clip time 0. */
  rtpBase: number;
  /** NTP (64-bit fixed point) of clip time 0. */
  ntpBase: bigint;
  clockRate: number;
}

class Outbound {
  seq = Math.floor(Math.random() * 0xffff);
  readonly sentAt = new Float64Array(65536);
  index = 0;
  count = 0;
  packets = 0;
  constructor(
    readonly kind: 'audio' | 'video',
    readonly sender: RTCRtpSender,
    readonly mapping: TrackMapping,
    /** What the sender reports' RTP field adds to the packet's timestamp (the mapping's offset, in clock units). */
    readonly srRtpShift = 0,
  ) {}
}

export class WhipPublisher {
  readonly #ntpBase: bigint;
  onPacket: ((p: SentPacket) => void) | undefined;
  pliReceived = 0;
  keyframesSent = 0;
  readonly ended: Promise<void>;
  #video: Outbound | undefined;
  #audio: Outbound | undefined;
  #timer: NodeJS.Timeout | undefined;
  #forceKeyframe = false;
  #pictureId = Math.floor(Math.random() * 0x7fff);
  #stopped = false;
  #startedAt = 0;
  readonly #opts: WhipPublisherOptions;
  /** Video waiting for the pacer (pacingKbps), its budget (bytes; negative: debt) and when it was counted. */
  readonly #paced: PacedPacket[] = [];
  #paceBudget = 0;
  #paceAt = 0;
  #paceTimer: NodeJS.Timeout | undefined;

  private constructor(
    readonly pc: RTCPeerConnection,
    readonly location: string,
    opts: WhipPublisherOptions,
    senders: { video?: RTCRtpSender; audio?: RTCRtpSender },
  ) {
    this.#opts = opts;
    const ntpBase = ntpTime();
    this.#ntpBase = ntpBase;
    const offsetMs = opts.audioNtpOffsetMs ?? 0;
    const audioShift = BigInt(Math.round((offsetMs * 4294967296) / 1000));
    if (senders.video)
      this.#video = new Outbound('video', senders.video, {
        rtpBase: Math.floor(Math.random() * 2 ** 31),
        ntpBase,
        clockRate: 90000,
      });
    // mapping: audio clip start at ntpBase + offset; the report sent at clip time m carries audio's
    // timestamp for ntpBase + m, i.e. the packet's own minus the offset
    if (senders.audio)
      this.#audio = new Outbound(
        'audio',
        senders.audio,
        { rtpBase: Math.floor(Math.random() * 2 ** 31), ntpBase: ntpBase + audioShift, clockRate: 48000 },
        -Math.round(offsetMs * 48),
      );
    for (const out of [this.#video, this.#audio]) if (out) this.#exactSenderReports(out);
    senders.video?.onPictureLossIndication.subscribe(() => {
      this.pliReceived++;
      if (!this.#opts.ignorePli) this.#forceKeyframe = true;
    });
    this.ended = sessionEnded(pc);
  }

  static async connect(opts: WhipPublisherOptions): Promise<WhipPublisher> {
    const pc = clientPeer(opts.video ? [opts.video.codec] : ['VP8']);
    const senders: { video?: RTCRtpSender; audio?: RTCRtpSender } = {};
    if (opts.video) senders.video = pc.addTransceiver('video', { direction: 'sendonly' }).sender;
    if (opts.audio) senders.audio = pc.addTransceiver('audio', { direction: 'sendonly' }).sender;
    try {
      const offer = await gatheredOffer(pc);
      const { answer, location } = await postOffer(opts.url, offer, opts.token);
      await pc.setRemoteDescription({ type: 'answer', sdp: answer });
      const pub = new WhipPublisher(pc, location, opts, senders);
      await waitConnected(pc, opts.connectTimeoutMs);
      return pub;
    } catch (err) {
      await pc.close().catch(() => undefined);
      throw err;
    }
  }

  /** RTP->NTP mapping this publisher announces for a kind (the truth its sender reports carry). */
  mapping(kind: 'audio' | 'video'): TrackMapping | undefined {
    return (kind === 'video' ? this.#video : this.#audio)?.mapping;
  }

  /** Send time (ms, server clock) of the packet with this sequence number, if still remembered. */
  sentAt(kind: 'audio' | 'video', seq: number): number | undefined {
    const out = kind === 'video' ? this.#video : this.#audio;
    const t = out?.sentAt[seq & 0xffff];
    return t ? t : undefined;
  }

  packetsSent(kind: 'audio' | 'video'): number {
    return (kind === 'video' ? this.#video : this.#audio)?.packets ?? 0;
  }

  /** Starts the real-time send loop. */
  /**
   * Sender reports as RFC 3550 6.4.1 has them: NTP = the clip clock when the report is built (one
   * clock for both tracks, which tracks the send time), RTP = this track's timestamp for that same
   * instant under its exact mapping. werift would pair the last packet's timestamp with the time it
   * was sent; its two fields are replaced by accessors (they are private in its typings).
   */
  #exactSenderReports(out: Outbound): void {
    const elapsedMs = (): number => (this.#startedAt === 0 ? 0 : performance.now() - this.#startedAt);
    Object.defineProperty(out.sender, 'ntpTimestamp', {
      configurable: true,
      get: () => this.#ntpBase + BigInt(Math.round((elapsedMs() * 4294967296) / 1000)),
      set: () => undefined,
    });
    Object.defineProperty(out.sender, 'rtpTimestamp', {
      configurable: true,
      get: () =>
        (out.mapping.rtpBase + Math.round((elapsedMs() * out.mapping.clockRate) / 1000) + out.srRtpShift) >>> 0,
      set: () => undefined,
    });
  }

  start(): void {
    if (this.#timer || this.#stopped) return;
    this.#startedAt = performance.now();
    let videoFrame = 0;
    let audioFrame = 0;
    let clipIndex = 0;
    const video = this.#opts.video;
    const audio = this.#opts.audio;
    const videoStep = video ? 1000 / video.fps : Infinity;
    const tick = (): void => {
      if (this.#stopped) return;
      const elapsed = performance.now() - this.#startedAt;
      while (video && this.#video && videoFrame * videoStep <= elapsed) {
        if (this.#forceKeyframe) {
          this.#forceKeyframe = false;
          const n = video.frames.length;
          for (let k = 0; k < n; k++) {
            if (video.frames[(clipIndex + k) % n]!.keyframe) {
              clipIndex = (clipIndex + k) % n;
              break;
            }
          }
        }
        const frame = video.frames[clipIndex % video.frames.length]!;
        this.#sendVideo(frame, videoFrame * videoStep, video.codec);
        clipIndex = (clipIndex + 1) % video.frames.length;
        videoFrame++;
      }
      while (audio && this.#audio && audioFrame * 20 <= elapsed) {
        this.#sendAudio(audio.frames[audioFrame % audio.frames.length]!, audioFrame * 20);
        audioFrame++;
      }
      const nextVideo = video ? videoFrame * videoStep : Infinity;
      const nextAudio = audio ? audioFrame * 20 : Infinity;
      const wait = Math.max(0, Math.min(nextVideo, nextAudio) - (performance.now() - this.#startedAt));
      this.#timer = setTimeout(tick, wait);
    };
    tick();
  }

  #send(out: Outbound, payload: Uint8Array, timestamp: number, marker: boolean, keyframe: boolean): void {
    out.seq = (out.seq + 1) & 0xffff;
    const header = new RtpHeader({ payloadType: 0, sequenceNumber: out.seq, timestamp, marker, ssrc: 0 });
    const sentAt = nowMs();
    out.sentAt[out.seq] = sentAt;
    out.packets++;
    out.sender.sendRtp(new RtpPacket(header, Buffer.from(payload))).catch(() => undefined);
    this.onPacket?.({ kind: out.kind, seq: out.seq, timestamp, sentAt, keyframe, marker, bytes: payload.length });
  }

  #sendVideo(frame: EncodedFrame, mediaMs: number, codec: ClientVideoCodec): void {
    const out = this.#video!;
    const ts = (out.mapping.rtpBase + Math.round(mediaMs * 90)) >>> 0;
    const payloads =
      codec === 'VP8'
        ? packetizeVp8(frame.data, 1200, (this.#pictureId = (this.#pictureId + 1) & 0x7fff))
        : packetizeH264(frame.data, 1200);
    if (frame.keyframe) this.keyframesSent++;
    if (this.#opts.pacingKbps) {
      payloads.forEach((payload, i) =>
        this.#paced.push({
          payload,
          timestamp: ts,
          marker: i === payloads.length - 1,
          keyframe: frame.keyframe && i === 0,
        }),
      );
      this.#pace();
      return;
    }
    payloads.forEach((p, i) => this.#send(out, p, ts, i === payloads.length - 1, frame.keyframe && i === 0));
  }

  /** Sends the paced video the budget allows now and waits for the rest (a token bucket with debt). */
  #pace(): void {
    const bytesPerMs = this.#opts.pacingKbps! / 8;
    const now = performance.now();
    const cap = Math.max(1200, PACING_BURST_MS * bytesPerMs);
    this.#paceBudget = this.#paceAt === 0 ? cap : Math.min(cap, this.#paceBudget + (now - this.#paceAt) * bytesPerMs);
    this.#paceAt = now;
    while (this.#paced.length > 0 && this.#paceBudget >= 0 && !this.#stopped) {
      const p = this.#paced.shift()!;
      this.#paceBudget -= p.payload.length;
      this.#send(this.#video!, p.payload, p.timestamp, p.marker, p.keyframe);
    }
    if (this.#paced.length > 0 && !this.#paceTimer && !this.#stopped)
      this.#paceTimer = setTimeout(
        () => {
          this.#paceTimer = undefined;
          this.#pace();
        },
        Math.max(1, -this.#paceBudget / bytesPerMs),
      );
  }

  #sendAudio(frame: EncodedFrame, mediaMs: number): void {
    const out = this.#audio!;
    const ts = (out.mapping.rtpBase + Math.round(mediaMs * 48)) >>> 0;
    for (const p of packetizeOpus(frame.data)) this.#send(out, p, ts, false, false);
  }

  /** Stops sending, DELETEs the session (unless `deleteSession` is false) and closes the connection. */
  async stop(options: { deleteSession?: boolean } = {}): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#paceTimer) clearTimeout(this.#paceTimer);
    if (options.deleteSession !== false) await deleteSession(this.location, this.#opts.token);
    await this.pc.close().catch(() => undefined);
  }
}

/** A ready-made looping clip: moving colour bars (VP8 or H264) plus a 440 Hz tone. Cached per settings. */
export async function syntheticClip(
  options: {
    codec?: ClientVideoCodec;
    width?: number;
    height?: number;
    fps?: number;
    seconds?: number;
    bitrateKbps?: number;
    keyframeInterval?: number;
  } = {},
): Promise<{
  video: { codec: ClientVideoCodec; frames: EncodedFrame[]; fps: number };
  audio: { frames: EncodedFrame[] };
}> {
  const codec = options.codec ?? 'VP8';
  const width = options.width ?? 320;
  const height = options.height ?? 240;
  const fps = options.fps ?? 30;
  const seconds = options.seconds ?? 2;
  const key = JSON.stringify([codec, width, height, fps, seconds, options.bitrateKbps, options.keyframeInterval]);
  let clip = clipCache.get(key);
  if (!clip) {
    clip = (async () => {
      const n = Math.round(fps * seconds);
      const frames = Array.from({ length: n }, (_, i) => rgbTestPattern(width, height, i));
      const video = await encodeVideo(frames, {
        codec,
        width,
        height,
        fps,
        bitrateKbps: options.bitrateKbps ?? 500,
        keyframeInterval: options.keyframeInterval ?? fps,
      });
      const audio = await encodeAudio(sine48k(seconds));
      return { video: { codec, frames: video, fps }, audio: { frames: audio } };
    })();
    clipCache.set(key, clip);
  }
  return clip;
}

const clipCache = new Map<string, ReturnType<typeof syntheticClip>>();
