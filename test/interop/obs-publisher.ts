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

import { RTCPeerConnection, RTCRtpCodecParameters, RtpHeader, RtpPacket, useNACK, usePLI, useREMB, useSdesMid, useSdesRTPStreamId } from 'werift';
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
      audio: [new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2, payloadType: 111, parameters: 'minptime=10;maxaveragebitrate=96000;stereo=1;sprop-stereo=1;useinbandfec=1' })],
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
export async function encodeH264Profile(profile: 'high' | 'baseline', frames: number, width = 320, height = 240, fps = 30): Promise<EncodedFrame[]> {
  const encoder = await Encoder.create(FF_ENCODER_LIBX264, {
    timeBase: { num: 1, den: fps },
    frameRate: { num: fps, den: 1 },
    context: { bitRate: 600_000, gopSize: fps, maxBFrames: 0 },
    // x264's profile is a ceiling: ultrafast (no CABAC, no 8x8 transform) would make Constrained Baseline whatever it says
    options: { preset: profile === 'high' ? 'superfast' : 'ultrafast', tune: 'zerolatency', profile, 'x264-params': `keyint=${fps}:min-keyint=${fps}:scenecut=0:repeat-headers=1:bframes=0` },
  } as Parameters<typeof Encoder.create>[1]);
  const out: EncodedFrame[] = [];
  const push = (packets: Packet[]): void => {
    for (const p of packets) {
      out.push({ data: new Uint8Array(p.data ?? new Uint8Array(0)), keyframe: p.isKeyframe, ptsMs: (Number(p.pts) * 1000) / fps, durationMs: 1000 / fps });
      p.free();
    }
  };
  try {
    for (let i = 0; i < frames; i++) {
      const f = Frame.fromVideoBuffer(rgbToI420(rgbTestPattern(width, height, i).rgb, width, height), { width, height, format: AV_PIX_FMT_YUV420P, timeBase: { num: 1, den: fps }, pts: BigInt(i) });
      push(await encoder.encodeAll(f));
      f.free();
    }
    push(await encoder.encodeAll(null));
  } finally {
    encoder.close();
  }
  return out;
}

export class ObsShapedPublisher {
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly offer: string;

  private constructor(
    readonly pc: RTCPeerConnection,
    readonly location: string,
    offer: string,
    readonly answer: string,
    private readonly senders: { audio: RTCRtpSender; video: RTCRtpSender },
    private readonly clip: { video: EncodedFrame[]; audio: EncodedFrame[] },
  ) {
    this.offer = offer;
  }

  static async connect(url: string, opts: { profile?: 'high' | 'baseline'; connectTimeoutMs?: number } = {}): Promise<ObsShapedPublisher> {
    const [video, audio] = await Promise.all([encodeH264Profile(opts.profile ?? 'high', 60), encodeAudio(sine48k(2))]);
    const pc = obsShapedPeer();
    const audioSender = pc.addTransceiver('audio', { direction: 'sendonly' }).sender;
    const videoSender = pc.addTransceiver('video', { direction: 'sendonly' }).sender;
    try {
      const offer = await gatheredOffer(pc);
      const { answer, location } = await postOffer(url, offer);
      await pc.setRemoteDescription({ type: 'answer', sdp: answer });
      await waitConnected(pc, opts.connectTimeoutMs ?? 10_000);
      return new ObsShapedPublisher(pc, location, offer, answer, { audio: audioSender, video: videoSender }, { video, audio });
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
      this.senders[kind].sendRtp(new RtpPacket(header, Buffer.from(payload))).catch(() => undefined);
    };
    const tick = (): void => {
      if (this.#stopped) return;
      const elapsed = performance.now() - t0;
      while ((v * 1000) / 30 <= elapsed) {
        const frame = this.clip.video[v % this.clip.video.length]!;
        const payloads = packetizeH264(frame.data, 1200);
        const ts = (base.video + Math.round((v * 90000) / 30)) >>> 0;
        payloads.forEach((p, i) => send('video', p, ts, i === payloads.length - 1));
        v++;
      }
      while (a * 20 <= elapsed) {
        const ts = (base.audio + a * 960) >>> 0;
        for (const p of packetizeOpus(this.clip.audio[a % this.clip.audio.length]!.data)) send('audio', p, ts, false);
        a++;
      }
      this.#timer = setTimeout(tick, 10);
    };
    tick();
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
