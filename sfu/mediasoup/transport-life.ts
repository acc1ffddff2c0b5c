// What a WebRtcTransport's states mean for the session on it, publisher or viewer alike: DTLS up =
// connected; DTLS failed or no connection within the connect timeout = 'error'; DTLS closed by the
// peer or ICE consent expired (RFC 7675, the idle timeout) = the peer is gone ('ended' for a
// publisher, 'viewer_left' for a viewer). One owner, so both sessions close for the same reasons.
import type { WebRtcTransport } from 'mediasoup/types';
import type { CloseReason } from '../types.ts';

export interface TransportLife {
  /** Stops the connect timer (call on close). */
  stop(): void;
}

export function watchTransport(
  transport: WebRtcTransport,
  role: 'publisher' | 'viewer',
  connectTimeoutMs: number,
  on: { connected(): void; close(reason: CloseReason): void },
): TransportLife {
  const gone: CloseReason['code'] = role === 'publisher' ? 'ended' : 'viewer_left';
  let connected = false;
  const timer = setTimeout(() => {
    if (!connected) on.close({ code: 'error', message: `${role} never connected` });
  }, connectTimeoutMs);
  transport.on('dtlsstatechange', (state) => {
    if (state === 'connected') {
      connected = true;
      clearTimeout(timer);
      on.connected();
    } else if (state === 'failed') on.close({ code: 'error', message: `${role} DTLS failed` });
    else if (state === 'closed') on.close({ code: gone, message: `the ${role} closed its connection` });
  });
  transport.on('icestatechange', (state) => {
    if (state === 'disconnected' || state === 'closed')
      on.close({ code: gone, message: `the ${role} stopped answering (ICE consent expired)` });
  });
  return { stop: () => clearTimeout(timer) };
}
