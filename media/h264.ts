// H.264 over RTP (RFC 6184): NAL units out of single, STAP-A and FU-A payloads, keyframe detection,
// parameter sets, Annex B. One owner for the forwarding path, the samplers and the load tester.
// (The packetizer is media/packetize.ts.)
import { PayloadFormatError } from './errors.ts';

export const NAL_SLICE = 1;
export const NAL_IDR = 5;
export const NAL_SPS = 7;
export const NAL_PPS = 8;
export const NAL_STAP_A = 24;
export const NAL_FU_A = 28;

const START_CODE = new Uint8Array([0, 0, 0, 1]);

/*
 * H264 RTP payloads (RFC 6184, packetization-mode 0 and 1):
 *   single NAL unit (type 1-23): the NAL itself;
 *   STAP-A (24): |F|NRI|24| then repeated |size (16)|NAL ...|;
 *   FU-A (28):   FU indicator |F|NRI|28|, FU header |S|E|R|type|, then a fragment of the NAL body.
 * STAP-B, MTAP and FU-B (interleaved mode) are not offered by our SDP and are rejected.
 */
export function h264PayloadNals(payload: Uint8Array, fu: { pending: Uint8Array[] | null; header: number }): Uint8Array[] {
  if (payload.length < 1) throw new PayloadFormatError('H264', 'empty');
  const type = payload[0] & 0x1f;
  if (type >= 1 && type <= 23) return [payload];
  if (type === NAL_STAP_A) {
    const out: Uint8Array[] = [];
    let o = 1;
    while (o + 2 <= payload.length) {
      const size = (payload[o] << 8) | payload[o + 1];
      o += 2;
      if (size === 0 || o + size > payload.length) throw new PayloadFormatError('H264', 'STAP-A size overruns packet');
      out.push(payload.subarray(o, o + size));
      o += size;
    }
    return out;
  }
  if (type === NAL_FU_A) {
    if (payload.length < 2) throw new PayloadFormatError('H264', 'truncated FU-A');
    const h = payload[1];
    const start = (h & 0x80) !== 0;
    const end = (h & 0x40) !== 0;
    if (start) {
      fu.pending = [];
      fu.header = (payload[0] & 0xe0) | (h & 0x1f);
    } else if (fu.pending === null) {
      throw new PayloadFormatError('H264', 'FU-A continuation without a start');
    }
    fu.pending!.push(payload.subarray(2));
    if (!end) return [];
    const parts = fu.pending!;
    fu.pending = null;
    const size = 1 + parts.reduce((s, p) => s + p.length, 0);
    const nal = new Uint8Array(size);
    nal[0] = fu.header;
    let o = 1;
    for (const p of parts) {
      nal.set(p, o);
      o += p.length;
    }
    return [nal];
  }
  throw new PayloadFormatError('H264', `unsupported NAL/payload type ${type}`);
}

/** H264 (RFC 6184): an IDR slice or SPS at the start of a single NAL, STAP-A or FU-A start fragment. Never throws. */
export function isH264KeyframeStart(payload: Uint8Array): boolean {
  if (payload.length < 2) return false;
  const type = payload[0]! & 0x1f;
  if (type === NAL_IDR || type === NAL_SPS) return true;
  if (type === NAL_STAP_A) {
    // 16-bit size + NAL, repeated
    let i = 1;
    while (i + 2 < payload.length) {
      const size = (payload[i]! << 8) | payload[i + 1]!;
      const nal = payload[i + 2]! & 0x1f;
      if (nal === NAL_IDR || nal === NAL_SPS) return true;
      i += 2 + size;
    }
    return false;
  }
  if (type === NAL_FU_A) {
    const fu = payload[1]!;
    const nal = fu & 0x1f;
    return (fu & 0x80) !== 0 && (nal === NAL_IDR || nal === NAL_SPS);
  }
  return false;
}

/** Whether a packet can open an access unit (not an FU-A continuation). */
export function h264PacketCanStartFrame(payload: Uint8Array): boolean {
  if (payload.length < 1) return false;
  const type = payload[0] & 0x1f;
  if (type === NAL_FU_A) return payload.length > 1 && (payload[1] & 0x80) !== 0;
  return type !== 0 && type <= 24;
}

/**
 * Keeps the latest SPS/PPS of a track so an IDR that arrives without them (some senders put them
 * only in the SDP or in an earlier packet) can still be decoded.
 */
export class H264ParameterSets {
  sps: Uint8Array | null = null;
  pps: Uint8Array | null = null;

  /** Reassembles one access unit (payloads in sequence order) into Annex-B. */
  depacketize(payloads: Uint8Array[]): { data: Uint8Array; keyframe: boolean } {
    const fu = { pending: null as Uint8Array[] | null, header: 0 };
    const nals: Uint8Array[] = [];
    for (const p of payloads) nals.push(...h264PayloadNals(p, fu));
    if (fu.pending !== null) throw new PayloadFormatError('H264', 'FU-A without an end fragment');
    let hasSps = false;
    let hasPps = false;
    let keyframe = false;
    for (const n of nals) {
      const t = n[0] & 0x1f;
      if (t === NAL_SPS) {
        this.sps = n.slice();
        hasSps = true;
      } else if (t === NAL_PPS) {
        this.pps = n.slice();
        hasPps = true;
      } else if (t === NAL_IDR) {
        keyframe = true;
      }
    }
    if (keyframe && (!hasSps || !hasPps)) {
      if (!this.sps || !this.pps) throw new PayloadFormatError('H264', 'IDR without SPS/PPS');
      const prefix: Uint8Array[] = [];
      if (!hasSps) prefix.push(this.sps);
      if (!hasPps) prefix.push(this.pps);
      nals.unshift(...prefix);
    }
    return { data: toAnnexB(nals), keyframe };
  }
}

export function toAnnexB(nals: Uint8Array[]): Uint8Array {
  const size = nals.reduce((s, n) => s + 4 + n.length, 0);
  const out = new Uint8Array(size);
  let o = 0;
  for (const n of nals) {
    out.set(START_CODE, o);
    out.set(n, o + 4);
    o += 4 + n.length;
  }
  return out;
}
