// Thin WHIP/WHEP clients on werift for the load test, on the peer plumbing of loadtest/clients/peer.ts.
// Unlike the general-purpose clients, these expose exactly what the measurement needs: the publisher
// sends RTP payloads the caller paces (so the send instant is known to the microsecond), and the
// viewer hands every received payload to a callback with its arrival time, on the same process clock.
//
// Loopback only: no STUN, host candidates on 127.0.0.1.

import { RtpHeader, RtpPacket, type RTCPeerConnection, type RTCRtpTransceiver } from 'werift';
import { WhipHttpError, clientPeer, gatheredOffer, nowMs, postOffer, waitConnected } from './clients/peer.ts';

export const now = nowMs;

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
  constructor(
    readonly code: string,
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'PeerError';
  }
}

/** Offer -> POST -> answer -> connected; returns the session URL from `Location`. */
async function negotiate(pc: RTCPeerConnection, path: 'whip' | 'whep', o: PeerOptions): Promise<string> {
  const timeoutMs = o.timeoutMs ?? 15000;
  const url = `${o.baseUrl}/${path}/${encodeURIComponent(o.streamId)}`;
  let location: string;
  try {
    const r = await postOffer(url, await gatheredOffer(pc), o.token, { headers: o.headers, timeoutMs });
    await pc.setRemoteDescription({ type: 'answer', sdp: r.answer });
    location = r.location;
  } catch (err) {
    if (!(err instanceof WhipHttpError)) throw err;
    throw new PeerError(
      err.code ?? `LT_ERR_${path.toUpperCase()}_${err.status}`,
      `${path.toUpperCase()} ${o.streamId}: ${err.message}`,
      err.status,
    );
  }
  await waitConnected(pc, timeoutMs).catch((err: unknown) => {
    throw new PeerError('LT_ERR_CONNECT_FAILED', err instanceof Error ? err.message : String(err));
  });
  return location;
}

abstract class Session {
  closed = false;
  closedAt: number | undefined;
  closeReason: string | undefined;
  readonly #closeListeners: ((reason: string) => void)[] = [];
  protected sessionUrl: string | undefined;

  constructor(
    protected readonly pc: RTCPeerConnection,
    protected readonly options: PeerOptions,
  ) {
    pc.connectionStateChange.subscribe((s) => {
      if (s === 'closed' || s === 'failed' || s === 'disconnected') this.markClosed(`connection ${s}`);
    });
  }

  onClose(listener: (reason: string) => void): void {
    this.#closeListeners.push(listener);
  }

  /** Records the end of the session (the server ended it, or we did) once. */
  markClosed(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.closedAt = now();
    this.closeReason = reason;
    for (const l of this.#closeListeners) {
      try {
        l(reason);
      } catch (err) {
        console.error('loadtest: close listener failed', err);
      }
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
    await this.pc.close().catch((err: unknown) => {
      if (process.env.LOADTEST_DEBUG) console.error('loadtest: close failed', err);
    });
    // werift can leave the ICE socket open when the remote side closed first; stop it explicitly
    await Promise.all(ice.map((t) => t.stop().catch(() => undefined)));
    const url = this.sessionUrl;
    this.sessionUrl = undefined;
    if (url) {
      await fetch(url, {
        method: 'DELETE',
        headers: this.options.token ? { authorization: `Bearer ${this.options.token}` } : {},
        signal: AbortSignal.timeout(3000),
      })
        .then((r) => r.body?.cancel())
        .catch((err: unknown) => {
          if (process.env.LOADTEST_DEBUG) console.error('loadtest: DELETE failed', err);
        });
    }
  }
}

/** A WHIP publisher that sends caller-paced RTP payloads (VP8 pt 96, Opus pt 111). */
export class WhipSender extends Session {
  readonly #tx: Record<Kind, RTCRtpTransceiver>;
  readonly #seq: Record<Kind, number> = {
    audio: Math.floor(Math.random() * 30000),
    video: Math.floor(Math.random() * 30000),
  };
  /** Keyframe requests (PLI) received from the server. */
  pliCount = 0;
  sendErrors = 0;

  private constructor(pc: RTCPeerConnection, options: PeerOptions) {
    super(pc, options);
    this.#tx = {
      video: pc.addTransceiver('video', { direction: 'sendonly' }),
      audio: pc.addTransceiver('audio', { direction: 'sendonly' }),
    };
    this.#tx.video.sender.onRtcp.subscribe((rtcp) => {
      if (rtcp.type === 206) this.pliCount++;
    });
  }

  static async connect(options: PeerOptions): Promise<WhipSender> {
    const s = new WhipSender(clientPeer(['VP8']), options);
    try {
      s.sessionUrl = await negotiate(s.pc, 'whip', options);
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
      sequenceNumber: (this.#seq[kind] = (this.#seq[kind] + 1) & 0xffff),
      timestamp: rtpTimestamp >>> 0,
      marker,
    });
    const at = now();
    this.#tx[kind].sender
      .sendRtp(new RtpPacket(header, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)))
      .catch(() => {
        this.sendErrors++;
      });
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
    const v = new WhepReceiver(clientPeer(['VP8']), options, listener);
    try {
      v.sessionUrl = await negotiate(v.pc, 'whep', options);
    } catch (err) {
      await v.close();
      throw err;
    }
    return v;
  }
}
