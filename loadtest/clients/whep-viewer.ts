// Synthetic WHEP viewer (werift, no browser). Records what arrives, per packet and per sender report.
//
//   const v = await WhepViewer.connect({ url: 'http://127.0.0.1:8080/whep/cam1', token });
//   v.onPacket = (p) => ...          // { kind, seq, timestamp, marker, receivedAt, keyframeStart, size }
//   v.count('video'); v.keyframes;   // packets per kind; keyframe starts seen (VP8/H264)
//   v.senderReports('audio')         // [{ ntp, rtp, receivedAt }] as the SFU sent them
//   v.frames('video')                // reassembled frames (recordPayloads: true): { timestamp, keyframe, data }
//   await v.waitFor(() => v.keyframes > 0, 5000);
//   await v.ended                    // resolves when the server ends the session (stream killed/ended)
//   await v.close();                 // DELETE + close
//
// `codecs` chooses which video codecs the offer carries (default VP8 and H264), e.g. ['H264'] to
// provoke a codec mismatch with a VP8 stream.

import { RtcpSrPacket } from 'werift';
import type { MediaStreamTrack, RTCPeerConnection, RtcpPacket, RtpPacket } from 'werift';
import { clientPeer, deleteSession, sessionEnded, gatheredOffer, nowMs, postOffer, waitConnected } from './peer.ts';
import type { ClientVideoCodec } from './peer.ts';
import { isKeyframeStart } from '../../media/keyframe.ts';
import { depacketizeVp8 } from '../../media/vp8.ts';
import { h264PayloadNals, toAnnexB } from '../../media/h264.ts';

export interface WhepViewerOptions {
  url: string;
  token?: string;
  /** Video codecs offered. Default ['VP8', 'H264']. */
  codecs?: ClientVideoCodec[];
  /** Offer a video m-line. Default true. */
  video?: boolean;
  /** Offer an audio m-line. Default true. */
  audio?: boolean;
  /** Keep payloads so frames can be reassembled (memory grows with time). Default false. */
  recordPayloads?: boolean;
  /** Keep at most this many packet records. Default 200000. */
  maxRecords?: number;
  /** How long to wait for ICE + DTLS (ms). Default CONNECT_TIMEOUT_MS (peer.ts). */
  connectTimeoutMs?: number;
  /**
   * Load generation: read each RTP packet's header in the clear (RFC 3711 encrypts only the payload)
   * straight off the socket and skip SRTP decryption and werift's receive path, so one process can
   * stand in for hundreds of viewers. Packets then carry no payload and `keyframeStart` is false;
   * sender reports are still decrypted and recorded. Default false.
   */
  headersOnly?: boolean;
  /**
   * The offer's DTLS setup (RFC 8842). 'actpass' (default, as browsers offer) makes the server the DTLS
   * client; 'active' makes this viewer the client. Load generation uses 'active': werift's DTLS server
   * loses handshakes when mediasoup's DTLS client retransmits its last flight under CPU load (the viewer
   * stays in DTLS 'connecting').
   */
  setup?: 'actpass' | 'active';
}

export interface ReceivedPacket {
  kind: 'audio' | 'video';
  seq: number;
  timestamp: number;
  marker: boolean;
  payloadType: number;
  receivedAt: number;
  keyframeStart: boolean;
  size: number;
  payload?: Uint8Array;
}

export interface ReceivedSenderReport {
  ntp: bigint;
  rtp: number;
  receivedAt: number;
}

export interface ReassembledFrame {
  timestamp: number;
  keyframe: boolean;
  /** VP8 frame bytes, or H264 Annex-B access unit. */
  data: Uint8Array;
}

/** Depacketizes one frame's payloads (RFC 7741 / RFC 6184) into a VP8 frame or an Annex-B access unit. */
export function depacketize(codec: string, payloads: Uint8Array[]): Uint8Array {
  if (codec === 'VP8') return depacketizeVp8(payloads).data;
  if (codec === 'H264') {
    const fu = { pending: null as Uint8Array[] | null, header: 0 };
    return toAnnexB(payloads.flatMap((p) => h264PayloadNals(p, fu)));
  }
  return concat(payloads);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, x) => n + x.length, 0));
  let o = 0;
  for (const x of parts) {
    out.set(x, o);
    o += x.length;
  }
  return out;
}

export class WhepViewer {
  onPacket: ((p: ReceivedPacket) => void) | undefined;
  readonly packets: ReceivedPacket[] = [];
  keyframes = 0;
  /** Negotiated codec names per kind, from the answer. */
  readonly codecOf: { video?: string; audio?: string } = {};
  readonly ended: Promise<void>;
  #counts = { audio: 0, video: 0 };
  #srs: { audio: ReceivedSenderReport[]; video: ReceivedSenderReport[] } = { audio: [], video: [] };
  #closed = false;
  #firstPacketAt: { audio?: number; video?: number } = {};
  #firstKeyframeAt: number | undefined;
  /** Payload type -> kind, from the answer. */
  readonly #kindOfPt = new Map<number, 'audio' | 'video'>();
  readonly #opts: WhepViewerOptions;

  private constructor(
    readonly pc: RTCPeerConnection,
    readonly location: string,
    opts: WhepViewerOptions,
    answer: string,
  ) {
    this.#opts = opts;
    const m = answer.split(/\r?\n/);
    let kind: 'audio' | 'video' | undefined;
    for (const line of m) {
      const mm = /^m=(audio|video) (\d+)/.exec(line);
      if (mm) kind = mm[2] === '0' ? undefined : (mm[1] as 'audio' | 'video');
      const r = /^a=rtpmap:(\d+) ([^/]+)\//.exec(line);
      if (!r || !kind) continue;
      this.#kindOfPt.set(Number(r[1]), kind);
      if (!this.codecOf[kind] && r[2]!.toLowerCase() !== 'rtx')
        this.codecOf[kind] = r[2]!.toUpperCase() === 'OPUS' ? 'opus' : r[2]!.toUpperCase();
    }
    pc.onTrack.subscribe((track: MediaStreamTrack) => this.#attach(track));
    this.ended = sessionEnded(pc);
  }

  static async connect(opts: WhepViewerOptions): Promise<WhepViewer> {
    const pc = clientPeer(opts.codecs ?? ['VP8', 'H264']);
    if (opts.video !== false) pc.addTransceiver('video', { direction: 'recvonly' });
    if (opts.audio !== false) pc.addTransceiver('audio', { direction: 'recvonly' });
    try {
      let offer = await gatheredOffer(pc);
      if (opts.setup === 'active') offer = offer.replace(/a=setup:actpass/g, 'a=setup:active');
      const { answer, location } = await postOffer(opts.url, offer, opts.token);
      const viewer = new WhepViewer(pc, location, opts, answer);
      await pc.setRemoteDescription({ type: 'answer', sdp: answer });
      await waitConnected(pc, opts.connectTimeoutMs);
      if (opts.headersOnly) viewer.#readHeadersOnly();
      return viewer;
    } catch (err) {
      await pc.close().catch(() => undefined);
      throw err;
    }
  }

  #attach(track: MediaStreamTrack): void {
    const kind = track.kind as 'audio' | 'video';
    const codec = this.codecOf[kind] ?? '';
    track.onReceiveRtp.subscribe((rtp: RtpPacket) => {
      const receivedAt = nowMs();
      const h = rtp.header;
      this.#record({
        kind,
        seq: h.sequenceNumber,
        timestamp: h.timestamp,
        marker: h.marker,
        payloadType: h.payloadType,
        receivedAt,
        keyframeStart: kind === 'video' && (codec === 'VP8' || codec === 'H264') && isKeyframeStart(codec, rtp.payload),
        size: rtp.payload.length,
        payload: this.#opts.recordPayloads ? new Uint8Array(rtp.payload) : undefined,
      });
    });
    track.onReceiveRtcp.subscribe((rtcp: RtcpPacket) => {
      if (rtcp instanceof RtcpSrPacket)
        this.#srs[kind].push({
          ntp: rtcp.senderInfo.ntpTimestamp,
          rtp: rtcp.senderInfo.rtpTimestamp,
          receivedAt: nowMs(),
        });
    });
  }

  #record(p: ReceivedPacket): void {
    if (p.keyframeStart) {
      this.keyframes++;
      this.#firstKeyframeAt ??= p.receivedAt;
    }
    this.#counts[p.kind]++;
    this.#firstPacketAt[p.kind] ??= p.receivedAt;
    if (this.packets.length < (this.#opts.maxRecords ?? 200_000)) this.packets.push(p);
    this.onPacket?.(p);
  }

  /** headersOnly: RTP packets are taken off the ICE sockets before werift sees them (see the option). */
  #readHeadersOnly(): void {
    const kindOfPt = this.#kindOfPt;
    for (const ice of this.pc.iceTransports) {
      for (const protocol of (ice.connection as unknown as { protocols: unknown[] }).protocols as {
        transport?: { onData: (data: Buffer, addr: unknown) => void };
      }[]) {
        const transport = protocol.transport;
        if (!transport) continue;
        const werift = transport.onData;
        transport.onData = (data, addr) => {
          // RTP (RFC 5761 demultiplexing: version 2, second byte outside RTCP's 192-223)
          const b1 = data.length >= 12 && data[0]! >> 6 === 2 ? data[1]! : -1;
          const kind = b1 >= 0 && (b1 < 192 || b1 > 223) ? kindOfPt.get(b1 & 0x7f) : undefined;
          if (!kind) return werift(data, addr);
          this.#record({
            kind,
            seq: data.readUInt16BE(2),
            timestamp: data.readUInt32BE(4),
            marker: (b1 & 0x80) !== 0,
            payloadType: b1 & 0x7f,
            receivedAt: nowMs(),
            keyframeStart: false,
            size: data.length - 12,
          });
        };
      }
    }
  }

  count(kind: 'audio' | 'video'): number {
    return this.#counts[kind];
  }

  firstPacketAt(kind: 'audio' | 'video'): number | undefined {
    return this.#firstPacketAt[kind];
  }

  get firstKeyframeAt(): number | undefined {
    return this.#firstKeyframeAt;
  }

  senderReports(kind: 'audio' | 'video'): readonly ReceivedSenderReport[] {
    return this.#srs[kind];
  }

  /**
   * Frames reassembled from recorded payloads (needs recordPayloads), grouped by timestamp, in the
   * order their first packets arrived. Within a frame packets go by sequence number and a repeat
   * (a retransmission) counts once, so reordering on a loaded machine does not break a frame; a video
   * frame with a gap in its sequence numbers or without its marker packet is incomplete and left out,
   * as is one whose start fell before `since`.
   */
  frames(kind: 'audio' | 'video' = 'video', since = 0): ReassembledFrame[] {
    const codec = this.codecOf[kind] ?? '';
    const byTs = new Map<number, Map<number, ReceivedPacket>>();
    for (const p of this.packets) {
      if (p.kind !== kind || !p.payload || p.receivedAt < since) continue;
      let frame = byTs.get(p.timestamp);
      if (!frame) byTs.set(p.timestamp, (frame = new Map<number, ReceivedPacket>()));
      if (!frame.has(p.seq)) frame.set(p.seq, p);
    }
    const out: ReassembledFrame[] = [];
    for (const [timestamp, frame] of byTs) {
      const first = frame.values().next().value!.seq;
      // sequence numbers relative to the first one that arrived (16-bit wrap-around)
      const rel = (seq: number): number => ((seq - first + 0x8000) & 0xffff) - 0x8000;
      const packets = [...frame.values()].sort((x, y) => rel(x.seq) - rel(y.seq));
      const complete =
        kind === 'audio' ||
        (packets.at(-1)!.marker && packets.every((q, i) => i === 0 || rel(q.seq) === rel(packets[i - 1]!.seq) + 1));
      if (!complete) continue;
      try {
        out.push({
          timestamp,
          keyframe: packets[0]!.keyframeStart,
          data: depacketize(
            codec,
            packets.map((q) => q.payload!),
          ),
        });
      } catch {
        // a payload that does not depacketize: the frame is left out
      }
    }
    return out;
  }

  /** Polls `predicate` every 20 ms until it holds; rejects after `timeoutMs`. */
  async waitFor(predicate: () => boolean, timeoutMs: number, what = 'condition'): Promise<void> {
    const end = performance.now() + timeoutMs;
    while (!predicate()) {
      if (performance.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async close(options: { deleteSession?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (options.deleteSession !== false) await deleteSession(this.location, this.#opts.token);
    await this.pc.close().catch(() => undefined);
  }
}
