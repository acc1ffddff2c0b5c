// RTP and RTCP framing (RFC 3550 5.1, RFC 5761 4): what a receiver of plain RTP needs to find a
// packet's fields and payload. The SFU engines read it from their tap consumers, the samplers from
// the loopback UDP a mediasoup worker sends them. Never throws: garbage is `undefined`.

export interface RtpView {
  pt: number;
  marker: boolean;
  seq: number;
  ts: number;
  ssrc: number;
  /** The payload (CSRCs, header extension and padding skipped), a view of the packet's bytes. */
  payload: Uint8Array;
}

/** The fields and payload of an RTP packet, or undefined when it is not one (too short, not version 2, lengths that overrun it). */
export function rtpView(buf: Uint8Array): RtpView | undefined {
  if (buf.length < 12 || buf[0]! >> 6 !== 2) return undefined;
  let offset = 12 + (buf[0]! & 0x0f) * 4;
  if (buf[0]! & 0x10) {
    if (buf.length < offset + 4) return undefined;
    offset += 4 + ((buf[offset + 2]! << 8) | buf[offset + 3]!) * 4;
  }
  let end = buf.length;
  if (buf[0]! & 0x20) end -= buf[buf.length - 1]!;
  if (end < offset) return undefined;
  return {
    pt: buf[1]! & 0x7f,
    marker: (buf[1]! & 0x80) !== 0,
    seq: (buf[2]! << 8) | buf[3]!,
    ts: ((buf[4]! << 24) | (buf[5]! << 16) | (buf[6]! << 8) | buf[7]!) >>> 0,
    ssrc: ((buf[8]! << 24) | (buf[9]! << 16) | (buf[10]! << 8) | buf[11]!) >>> 0,
    payload: buf.subarray(offset, end),
  };
}

/**
 * An RTCP packet on a port that also carries RTP (RFC 5761 4): version 2 and a packet type in
 * 192-223, a range no dynamic RTP payload type (with or without the marker bit) falls in.
 */
export function isRtcp(buf: Uint8Array): boolean {
  return buf.length >= 8 && buf[0]! >> 6 === 2 && buf[1]! >= 192 && buf[1]! <= 223;
}
