// Counts what arrives at media ports and is not a session's traffic: datagrams that are neither STUN,
// DTLS nor RTP/RTCP (by first byte, RFC 7983), and RTP/RTCP-looking datagrams that fail SRTP/SRTCP
// authentication or parsing. werift drops both silently; the counts make attacks and bugs visible.

import type { RTCDtlsTransport, RTCPeerConnection } from 'werift';

const counters = { garbageDatagrams: 0, rejectedMediaDatagrams: 0 };

export function garbageCounters(): { garbageDatagrams: number; rejectedMediaDatagrams: number } {
  return { ...counters };
}

function wrapDecrypt(target: object, what: string): void {
  const original: unknown = Reflect.get(target, 'decrypt');
  if (typeof original !== 'function' || Reflect.get(target, '__sfuCounted')) return;
  Reflect.set(target, '__sfuCounted', true);
  Reflect.set(target, 'decrypt', function (this: unknown, data: Buffer) {
    try {
      return (original as (d: Buffer) => Buffer).call(this, data);
    } catch (err) {
      counters.rejectedMediaDatagrams++;
      throw err;
    }
  });
  void what;
}

function watchDtls(dtls: RTCDtlsTransport): void {
  dtls.iceTransport.connection.onData.subscribe((data: Buffer) => {
    const b = data[0];
    if (b === undefined) {
      counters.garbageDatagrams++;
      return;
    }
    // RFC 7983 demultiplexing: 20..63 DTLS, 128..191 RTP/RTCP (STUN never reaches onData)
    const dtlsByte = b >= 20 && b <= 63;
    const media = b >= 128 && b <= 191;
    if (!dtlsByte && !media) counters.garbageDatagrams++;
    else if (media && dtls.state !== 'connected') counters.rejectedMediaDatagrams++;
    else if (media && data.length < 12) counters.rejectedMediaDatagrams++;
  });
  const wrap = (): void => {
    if (dtls.srtp) wrapDecrypt(dtls.srtp, 'srtp');
    if (dtls.srtcp) wrapDecrypt(dtls.srtcp, 'srtcp');
  };
  dtls.onStateChange.subscribe((s) => {
    if (s === 'connected') wrap();
  });
}

/** Starts counting for every transport of a peer connection (call after setLocalDescription). */
export function countGarbage(pc: RTCPeerConnection): void {
  for (const dtls of pc.dtlsTransports) watchDtls(dtls);
}
