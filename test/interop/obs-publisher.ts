// A WHIP publisher shaped like OBS Studio's WHIP output (libdatachannel), which does not run here:
// audio first (mid 0, Opus 111 stereo), video second (mid 1, H.264 96 announced as
// profile-level-id=42e01f whatever the encoder makes), no RTX, sdes:mid + sdes:rtp-stream-id header
// extensions, no trickle, and a DELETE at the end that expects 200. It sends what OBS sends by
// default: x264 High profile (no B-frames, as OBS's WHIP output configures it), so an SFU that went by
// the SDP profile instead of the bitstream would fail to decode it. The offer comes from a real stack
// (werift) configured that way, not from text.
//
//   const pub = await ObsShapedPublisher.connect(`${base}/whip/obs`, { profile: 'high' });
//   pub.start(); ...; const status = await pub.stop();   // status of the DELETE
//
// With `simulcast: true` it sends what OBS 31's WHIP simulcast sends (whip-output.cpp): one video m-line
// with a=rid:0/1/2 send and a=simulcast:send 0;1;2, one a=ssrc announced, each layer its own SSRC
// (base + index) with the mid and rid header extensions in every packet, rid 0 the full output size and
// each next layer smaller (OBS's steps of 1/layers). werift cannot send simulcast, so the layers go
// straight to the peer connection's SRTP transport, each with its own sender reports.

import {
  RTCPeerConnection,
  RTCRtpCodecParameters,
  RtcpSenderInfo,
  RtcpSrPacket,
  RtpHeader,
  RtpPacket,
  serializeSdesMid,
  serializeSdesRTPStreamID,
  useNACK,
  usePLI,
  useREMB,
  useSdesMid,
  useSdesRTPStreamId,
} from 'werift';
import type { RTCRtpSender } from 'werift';
import { AV_PIX_FMT_YUV420P, Encoder, FF_ENCODER_LIBX264, Frame } from 'node-av';
import type { Packet } from 'node-av';
import { encodeAudio, rgbTestPattern, rgbToI420, sine48k } from '../../media/encode.ts';
import type { EncodedFrame } from '../../media/encode.ts';
import { packetizeH264, packetizeOpus } from '../../media/packetize.ts';
import { loopbackIce, deleteSession, gatheredOffer, postOffer, waitConnected } from '../../loadtest/clients/peer.ts';

/** The peer connection OBS's WHIP output amounts to, on werift. */
export function obsShapedPeer(): RTCPeerConnection {
  return new RTCPeerConnection({
    ...loopbackIce(),
    codecs: {
      audio: [
        new RTCRtpCodecParameters({
          mimeType: 'audio/opus',
          clockRate: 48000,
          channels: 2,
          payloadType: 111,
          parameters: 'minptime=10;maxaveragebitrate=96000;stereo=1;sprop-stereo=1;useinbandfec=1',
        }),
      ],
      video: [
        new RTCRtpCodecParameters({
          mimeType: 'video/H264',
          clockRate: 90000,
          payloadType: 96,
          parameters: 'profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1',
          rtcpFeedback: [useNACK(), usePLI(), useREMB()],
        }),
      ],
    },
    headerExtensions: { audio: [useSdesMid(), useSdesRTPStreamId()], video: [useSdesMid(), useSdesRTPStreamId()] },
  });
}

/** H.264 access units (Annex-B) from x264 with the given profile, a keyframe every `fps` frames, no B-frames. */
/**
 * `picture`: an RGB picture of width x height shown in every frame instead of the moving test pattern.
 */
export async function encodeH264Profile(
  profile: 'high' | 'baseline',
  frames: number,
  width = 320,
  height = 240,
  fps = 30,
  picture?: Uint8Array,
): Promise<EncodedFrame[]> {
  const encoder = await Encoder.create(FF_ENCODER_LIBX264, {
    timeBase: { num: 1, den: fps },
    frameRate: { num: fps, den: 1 },
    context: { bitRate: 600_000, gopSize: fps, maxBFrames: 0 },
    // x264's profile is a ceiling: ultrafast (no CABAC, no 8x8 transform) would make Constrained Baseline whatever it says
    options: {
      preset: profile === 'high' ? 'superfast' : 'ultrafast',
      tune: 'zerolatency',
      profile,
      'x264-params': `keyint=${fps}:min-keyint=${fps}:scenecut=0:repeat-headers=1:bframes=0`,
    },
  } as Parameters<typeof Encoder.create>[1]);
  const out: EncodedFrame[] = [];
  const push = (packets: Packet[]): void => {
    for (const p of packets) {
      out.push({
        data: new Uint8Array(p.data ?? new Uint8Array(0)),
        keyframe: p.isKeyframe,
        ptsMs: (Number(p.pts) * 1000) / fps,
        durationMs: 1000 / fps,
      });
      p.free();
    }
  };
  try {
    for (let i = 0; i < frames; i++) {
      const f = Frame.fromVideoBuffer(rgbToI420(picture ?? rgbTestPattern(width, height, i).rgb, width, height), {
        width,
        height,
        format: AV_PIX_FMT_YUV420P,
        timeBase: { num: 1, den: fps },
        pts: BigInt(i),
      });
      push(await encoder.encodeAll(f));
      f.free();
    }
    push(await encoder.encodeAll(null));
  } finally {
    encoder.close();
  }
  return out;
}

/** OBS's simulcast sizes for a 384x216 output with 3 layers: rid 0 full size, then steps of 1/3 down. */
const SIMULCAST_SIZES = [
  [384, 216],
  [256, 144],
  [128, 72],
] as const;

interface SimulcastLayer {
  rid: string;
  clip: EncodedFrame[];
  ssrc: number;
  seq: number;
  packets: number;
  octets: number;
  /** The mid and rid header extensions every packet of the layer carries, with the answer's ids. */
  extensions: { id: number; payload: Buffer }[];
}

export class ObsShapedPublisher {
  #timer: NodeJS.Timeout | undefined;
  #layers: SimulcastLayer[] | undefined;
  #stopped = false;
  readonly offer: string;
  readonly #senders: { audio: RTCRtpSender; video: RTCRtpSender };
  readonly #clip: { video: EncodedFrame[]; audio: EncodedFrame[] };

  private constructor(
    readonly pc: RTCPeerConnection,
    readonly location: string,
    offer: string,
    readonly answer: string,
    senders: { audio: RTCRtpSender; video: RTCRtpSender },
    clip: { video: EncodedFrame[]; audio: EncodedFrame[] },
  ) {
    this.#senders = senders;
    this.#clip = clip;
    this.offer = offer;
  }

  /**
   * `simulcast`: three layers, largest first, named by `rids` (OBS: 0, 1, 2; a browser page may name
   * them otherwise, e.g. f, h, q).
   */
  static async connect(
    url: string,
    opts: {
      profile?: 'high' | 'baseline';
      connectTimeoutMs?: number;
      simulcast?: boolean;
      rids?: readonly string[];
      token?: string;
      picture?: { rgb: Uint8Array; width: number; height: number };
    } = {},
  ): Promise<ObsShapedPublisher> {
    const rids = opts.rids ?? ['0', '1', '2'];
    const profile = opts.profile ?? 'high';
    const sizes: readonly (readonly [number, number])[] = opts.simulcast
      ? SIMULCAST_SIZES
      : [opts.picture ? [opts.picture.width, opts.picture.height] : [320, 240]];
    const [audio, ...layers] = await Promise.all([
      encodeAudio(sine48k(2)),
      ...sizes.map(([w, h]) => encodeH264Profile(profile, 60, w, h, 30, opts.picture?.rgb)),
    ]);
    const pc = obsShapedPeer();
    const audioSender = pc.addTransceiver('audio', { direction: 'sendonly' }).sender;
    const videoSender = pc.addTransceiver('video', {
      direction: 'sendonly',
      ...(opts.simulcast ? { sendEncodings: sizes.map((_, i) => ({ rid: rids[i]! })) } : {}),
    }).sender;
    try {
      const offer = await gatheredOffer(pc);
      const { answer, location } = await postOffer(url, offer, opts.token);
      await pc.setRemoteDescription({ type: 'answer', sdp: answer });
      await waitConnected(pc, opts.connectTimeoutMs);
      const pub = new ObsShapedPublisher(
        pc,
        location,
        offer,
        answer,
        { audio: audioSender, video: videoSender },
        { video: layers[0]!, audio },
      );
      // OBS: layer i on SSRC base + i, only the base announced in the offer
      if (opts.simulcast)
        pub.#layers = layers.map((clip, i) => ({
          rid: rids[i]!,
          clip,
          ssrc: (videoSender.ssrc + i) >>> 0,
          seq: Math.floor(Math.random() * 0xffff),
          packets: 0,
          octets: 0,
          extensions: [
            { id: pub.#extensionId('urn:ietf:params:rtp-hdrext:sdes:mid'), payload: serializeSdesMid('1') },
            {
              id: pub.#extensionId('urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id'),
              payload: serializeSdesRTPStreamID(rids[i]!),
            },
          ].filter((e) => e.id > 0),
        }));
      return pub;
    } catch (err) {
      await pc.close().catch(() => undefined);
      throw err;
    }
  }

  /** Real-time loop over the clip: 30 fps video, 20 ms Opus packets. */
  start(): void {
    if (this.#timer || this.#stopped) return;
    const t0 = performance.now();
    const seq = { audio: Math.floor(Math.random() * 0xffff), video: Math.floor(Math.random() * 0xffff) };
    const base = { audio: Math.floor(Math.random() * 0xffffffff), video: Math.floor(Math.random() * 0xffffffff) };
    let v = 0;
    let a = 0;
    const send = (kind: 'audio' | 'video', payload: Uint8Array, timestamp: number, marker: boolean): void => {
      seq[kind] = (seq[kind] + 1) & 0xffff;
      const header = new RtpHeader({ payloadType: 0, sequenceNumber: seq[kind], timestamp, marker, ssrc: 0 });
      this.#senders[kind].sendRtp(new RtpPacket(header, Buffer.from(payload))).catch(() => undefined);
    };
    const tick = (): void => {
      if (this.#stopped) return;
      const elapsed = performance.now() - t0;
      while ((v * 1000) / 30 <= elapsed) {
        const ts = (base.video + Math.round((v * 90000) / 30)) >>> 0;
        if (this.#layers) {
          for (const layer of this.#layers) {
            const payloads = packetizeH264(layer.clip[v % layer.clip.length]!.data, 1200);
            payloads.forEach((p, i) => this.#sendLayer(layer, p, ts, i === payloads.length - 1));
          }
          if (v % 30 === 0) this.#senderReports(ts);
        } else {
          const frame = this.#clip.video[v % this.#clip.video.length]!;
          const payloads = packetizeH264(frame.data, 1200);
          payloads.forEach((p, i) => send('video', p, ts, i === payloads.length - 1));
        }
        v++;
      }
      while (a * 20 <= elapsed) {
        const ts = (base.audio + a * 960) >>> 0;
        for (const p of packetizeOpus(this.#clip.audio[a % this.#clip.audio.length]!.data)) send('audio', p, ts, false);
        a++;
      }
      this.#timer = setTimeout(tick, 10);
    };
    tick();
  }

  /** The negotiated id of a header extension in the video section of the answer (RFC 8285). */
  #extensionId(uri: string): number {
    const lines = this.answer.split(/\r?\n/);
    const video = lines.slice(lines.findIndex((l) => l.startsWith('m=video')));
    const line = video.find((l) => l.startsWith('a=extmap:') && l.endsWith(` ${uri}`));
    return line ? Number(/^a=extmap:(\d+)/.exec(line)![1]) : 0;
  }

  #sendLayer(layer: SimulcastLayer, payload: Uint8Array, timestamp: number, marker: boolean): void {
    layer.seq = (layer.seq + 1) & 0xffff;
    layer.packets++;
    layer.octets += payload.length;
    const header = new RtpHeader({
      payloadType: 96,
      sequenceNumber: layer.seq,
      timestamp,
      marker,
      ssrc: layer.ssrc,
      extensions: layer.extensions,
    });
    this.#senders.video.dtlsTransport.sendRtp(Buffer.from(payload), header).catch(() => undefined);
  }

  /** One sender report per layer (the SFU relates the layers' timelines through them). */
  #senderReports(timestamp: number): void {
    const ms = performance.timeOrigin + performance.now();
    const ntp =
      (BigInt(Math.floor(ms / 1000) + 2_208_988_800) << 32n) | BigInt(Math.floor(((ms % 1000) / 1000) * 2 ** 32));
    const reports = this.#layers!.map(
      (l) =>
        new RtcpSrPacket({
          ssrc: l.ssrc,
          senderInfo: new RtcpSenderInfo({
            ntpTimestamp: ntp,
            rtpTimestamp: timestamp,
            packetCount: l.packets,
            octetCount: l.octets,
          }),
        }),
    );
    this.#senders.video.dtlsTransport.sendRtcp(reports).catch(() => undefined);
  }

  /** Stops, sends the DELETE (returns its status) and closes the connection. */
  async stop(): Promise<number> {
    if (this.#stopped) return 0;
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    const status = await deleteSession(this.location);
    await this.pc.close().catch(() => undefined);
    return status;
  }
}
