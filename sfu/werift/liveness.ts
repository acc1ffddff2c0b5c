// Liveness of a werift session: the server is ICE-lite, and werift skips its RFC 7675 consent checks
// for an ICE-lite agent, so a peer whose process died (OBS crash, laptop lid closed, network gone)
// left its session "connected" for ever. Measured before this file: a publisher killed with SIGKILL
// kept its stream live and its reconnect got 409 ALREADY_LIVE until the server restarted.
// A session is alive while anything of it arrives at its socket: STUN (every client sends consent
// checks, browsers every ~5 s), DTLS, RTP or RTCP. `watchLiveness` calls `onSilent` once when none of
// it has arrived for `idleMs`. It subscribes to events werift already raises per datagram (no work
// of its own per packet beyond storing a timestamp) and checks on a coarse timer.

import type { RTCPeerConnection } from 'werift';

export interface Liveness {
  /** Server clock (ms, performance.now()) of the last datagram of this session. */
  readonly lastHeardAt: number;
  stop(): void;
}

/** Call after the answer is made (the ICE sockets exist then). Silence counts only while `connected()` (the connect timeout covers the rest). */
export function watchLiveness(
  pc: RTCPeerConnection,
  idleMs: number,
  connected: () => boolean,
  onSilent: (silentMs: number) => void,
): Liveness {
  let last = performance.now();
  const heard = (): void => {
    last = performance.now();
  };
  const subs: { unSubscribe(): void }[] = [];
  for (const dtls of pc.dtlsTransports) {
    const connection = dtls.iceTransport.connection;
    subs.push(connection.onData.subscribe(heard));
    // STUN requests never reach onData; werift keeps its sockets (`protocols`) private.
    const protocols: unknown = Reflect.get(connection, 'protocols');
    for (const protocol of Array.isArray(protocols) ? protocols : []) {
      const requests: unknown = Reflect.get(protocol as object, 'onRequestReceived');
      if (requests && typeof (requests as { subscribe?: unknown }).subscribe === 'function')
        subs.push((requests as { subscribe(f: () => void): { unSubscribe(): void } }).subscribe(heard));
    }
  }
  let stopped = false;
  const timer = setInterval(
    () => {
      if (!connected()) {
        last = performance.now();
        return;
      }
      const silent = performance.now() - last;
      if (silent < idleMs) return;
      stop();
      onSilent(silent);
    },
    Math.max(50, Math.min(1000, Math.floor(idleMs / 4))),
  );
  timer.unref();
  function stop(): void {
    if (stopped) return;
    stopped = true;
    clearInterval(timer);
    for (const s of subs) s.unSubscribe();
  }
  return {
    get lastHeardAt() {
      return last;
    },
    stop,
  };
}
