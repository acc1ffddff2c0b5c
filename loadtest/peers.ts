// Thin WHIP/WHEP clients on werift for the load test. Unlike the general-purpose clients in
// loadtest/clients/, these expose exactly what the measurement needs: the publisher sends RTP
// payloads the caller paces (so the send instant is known to the microsecond), and the viewer hands
// every received payload to a callback with its arrival time, on the same process clock.
//
// Loopback only: no STUN, host candidates on 127.0.0.1.

import {
  RTCPeerConnection,
  RTCRtpCodecParameters,
  RtpHeader,
  RtpPacket,
  useNACK,
  usePLI,
  useSdesMid,
  type RTCRtpTransceiver,
} from 'werift';

export const now = (): number => performance.timeOrigin + performance.now();

export type Kind = 'audio' | 'video';

export interface PeerOptions {
  /** Server base URL, e.g. http://127.0.0.1:8080. */
  baseUrl: string;
  streamId: string;
  /** Bearer token for WHIP/WHEP (RFC 9725 section 4.5). */
  token?: string;
  /** Extra request headers (e.g. X-Viewer-Jurisdiction where the server trusts it). */
  headers?: Record<string, string>;
  /** Give up on signalling + ICE/DTLS after this long (ms). Default 15000. */
  timeoutMs?: number;
}

export class PeerError extends Error {
  constructor(readonly code: string, message: string, readonly status?: number) {
    super(message);
    this.name = 'PeerError';
  }
}

function codecs() {
  return {
    video: [new RTCRtpCodecParameters({ mimeType: 'video/VP8', clockRate: 90000, payloadType: 96, rtcpFeedback: [useNACK(), usePLI()] })],
    audio: [new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2, payloadType: 111 })],
  };
}

function newPeer(): RTCPeerConnection {
  return new RTCPeerConnection({
    iceServers: [],
    iceUseIpv6: false,
    iceUseTcp: false,
    iceInterfaceAddresses: { udp4: '127.0.0.1' },
    codecs: codecs(),
    headerExtensions: { video: [useSdesMid()], audio: [useSdesMid()] },
  });
}

async function gathered(pc: RTCPeerConnection, timeoutMs: number): Promise<void> {
  if (pc.iceGatheringState === 'complete') return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, timeoutMs);
    const sub = pc.iceGatheringStateChange.subscribe((s) => { if (s === 'complete') done(); });
    function done(): void { clearTimeout(timer); sub.unSubscribe(); resolve(); }
  });
}

async function connected(pc: RTCPeerConnection, timeoutMs: number): Promise<void> {
  if (pc.connectionState === 'connected') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { sub.unSubscribe(); reject(new PeerError('LT_ERR_CONNECT_TIMEOUT', `not connected after ${timeoutMs} ms`)); }, timeoutMs);
    const sub = pc.connectionStateChange.subscribe((s) => {
      if (s === 'connected') { clearTimeout(timer); sub.unSubscribe(); resolve(); }
      else if (s === 'failed' || s === 'closed') { clearTimeout(timer); sub.unSubscribe(); reject(new PeerError('LT_ERR_CONNECT_FAILED', `connection ${s}`)); }
    });
  });
}

/** Offer -> POST -> answer; returns the session URL from `Location`. */
async function negotiate(pc: RTCPeerConnection, path: 'whip' | 'whep', o: PeerOptions): Promise<string> {
  const timeoutMs = o.timeoutMs ?? 15000;
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc, 3000);
  const url = `${o.baseUrl}/${path}/${encodeURIComponent(o.streamId)}`;
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp', ...(o.token ? { authorization: `Bearer ${o.token}` } : {}), ...o.headers },
    body: pc.localDescription!.sdp,
    signal: AbortSignal.timeout(timeoutMs),
  });
  const body = await res.text();
  if (res.status !== 201) {
    let code = `LT_ERR_${path.toUpperCase()}_${res.status}`;
    try { code = (JSON.parse(body) as { code?: string }).code ?? code; } catch { /* SDP or text body */ }
    throw new PeerError(code, `${path.toUpperCase()} ${o.streamId}: ${res.status} ${body.slice(0, 200)}`, res.status);
  }
  await pc.setRemoteDescription({ type: 'answer', sdp: body });
  const location = res.headers.get('location');
  return location ? new URL(location, o.baseUrl).toString() : url;
}

abstract class Session {
  closed = false;
  closedAt: number | undefined;
  closeReason: string | undefined;
  private readonly closeListeners: ((reason: string) => void)[] = [];
  protected sessionUrl: string | undefined;

  constructor(protected readonly pc: RTCPeerConnection, protected readonly options: PeerOptions) {
    pc.connectionStateChange.subscribe((s) => {
      if (s === 'closed' || s === 'failed' || s === 'disconnected') this.markClosed(`connection ${s}`);
    });
  }

  onClose(listener: (reason: string) => void): void {
    this.closeListeners.push(listener);
  }

  /** Records the end of the session (the server ended it, or we did) once. */
  markClosed(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.closedAt = now();
    this.closeReason = reason;
    for (const l of this.closeListeners) {
      try { l(reason); } catch (err) { console.error('loadtest: close listener failed', err); }
    }
  }

  /**
   * Close the peer, then DELETE the session (best effort: the server may already have ended it).
   * The peer goes first: once the server's DTLS close arrives, werift's close() no longer releases
   * the ICE sockets.
   */
  async close(): Promise<void> {
    this.markClosed('closed by client');
    const ice = this.pc.iceTransports;
    await this.pc.close().catch((err: unknown) => { if (process.env.LOADTEST_DEBUG) console.error('loadtest: close failed', err); });
    // werift can leave the ICE socket open when the remote side closed first; stop it explicitly
    await Promise.all(ice.map((t) => t.stop().catch(() => undefined)));
    const url = this.sessionUrl;
    this.sessionUrl = undefined;
    if (url) {
      await fetch(url, { method: 'DELETE', headers: this.options.token ? { authorization: `Bearer ${this.options.token}` } : {}, signal: AbortSignal.timeout(3000) })
        .then((r) => r.body?.cancel())
        .catch((err: unknown) => { if (process.env.LOADTEST_DEBUG) console.error('loadtest: DELETE failed', err); });
    }
  }
}

/** A WHIP publisher that sends caller-paced RTP payloads (VP8 pt 96, Opus pt 111). */
export class WhipSender extends Session {
  private readonly tx: Record<Kind, RTCRtpTransceiver>;
  private readonly seq: Record<Kind, number> = { audio: Math.floor(Math.random() * 30000), video: Math.floor(Math.random() * 30000) };
  /** Keyframe requests (PLI) received from the server. */
  pliCount = 0;
  sendErrors = 0;

  private constructor(pc: RTCPeerConnection, options: PeerOptions) {
    super(pc, options);
    this.tx = {
      video: pc.addTransceiver('video', { direction: 'sendonly' }),
      audio: pc.addTransceiver('audio', { direction: 'sendonly' }),
    };
    this.tx.video.sender.onRtcp.subscribe((rtcp) => { if (rtcp.type === 206) this.pliCount++; });
  }

  static async connect(options: PeerOptions): Promise<WhipSender> {
    const s = new WhipSender(newPeer(), options);
    try {
      s.sessionUrl = await negotiate(s.pc, 'whip', options);
      await connected(s.pc, options.timeoutMs ?? 15000);
    } catch (err) {
      await s.close();
      throw err;
    }
    return s;
  }

  /** Sends one RTP packet now; returns the send instant (process clock, ms). */
  send(kind: Kind, payload: Uint8Array, rtpTimestamp: number, marker: boolean): number {
    const header = new RtpHeader({
      payloadType: kind === 'video' ? 96 : 111,
      sequenceNumber: (this.seq[kind] = (this.seq[kind] + 1) & 0xffff),
      timestamp: rtpTimestamp >>> 0,
      marker,
    });
    const at = now();
    this.tx[kind].sender.sendRtp(new RtpPacket(header, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength))).catch(() => { this.sendErrors++; });
    return at;
  }
}

export type PacketListener = (kind: Kind, payload: Uint8Array, at: number) => void;

/** A WHEP viewer that reports every received RTP payload with its arrival time. */
export class WhepReceiver extends Session {
  packets = 0;

  private constructor(pc: RTCPeerConnection, options: PeerOptions, listener: PacketListener) {
    super(pc, options);
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.onTrack.subscribe((track) => {
      const kind: Kind = track.kind === 'audio' ? 'audio' : 'video';
      track.onReceiveRtp.subscribe((rtp) => {
        this.packets++;
        listener(kind, rtp.payload, now());
      });
    });
  }

  static async connect(options: PeerOptions, listener: PacketListener): Promise<WhepReceiver> {
    const v = new WhepReceiver(newPeer(), options, listener);
    try {
      v.sessionUrl = await negotiate(v.pc, 'whep', options);
      await connected(v.pc, options.timeoutMs ?? 15000);
    } catch (err) {
      await v.close();
      throw err;
    }
    return v;
  }
}
