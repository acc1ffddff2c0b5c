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
export function h264PayloadNals(
  payload: Uint8Array,
  fu: { pending: Uint8Array[] | null; header: number },
): Uint8Array[] {
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

/** Exp-Golomb reader over an RBSP (H.264 7.2: emulation prevention bytes 00 00 03 removed first). */
class BitReader {
  readonly #bytes: Uint8Array;
  #bit = 0;
  constructor(nal: Uint8Array) {
    const out: number[] = [];
    for (let i = 0; i < nal.length; i++) {
      if (
        i >= 2 &&
        nal[i] === 3 &&
        nal[i - 1] === 0 &&
        nal[i - 2] === 0 &&
        out.length >= 2 &&
        out[out.length - 1] === 0 &&
        out[out.length - 2] === 0
      )
        continue;
      out.push(nal[i]!);
    }
    this.#bytes = Uint8Array.from(out);
  }
  u(n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) {
      const byte = this.#bytes[this.#bit >> 3];
      if (byte === undefined) throw new PayloadFormatError('H264', 'SPS truncated');
      v = (v << 1) | ((byte >> (7 - (this.#bit & 7))) & 1);
      this.#bit++;
    }
    return v >>> 0;
  }
  ue(): number {
    let zeros = 0;
    while (this.u(1) === 0) if (++zeros > 31) throw new PayloadFormatError('H264', 'bad exp-Golomb code in SPS');
    return zeros === 0 ? 0 : 2 ** zeros - 1 + this.u(zeros);
  }
  se(): number {
    const k = this.ue();
    return k & 1 ? (k + 1) / 2 : -(k / 2);
  }
}

const HIGH_PROFILES = new Set([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135]);

/**
 * The picture size an SPS NAL unit (header byte included) declares, after frame cropping
 * (H.264 7.3.2.1.1 and 7.4.2.1.1). Throws PayloadFormatError on a truncated or malformed SPS.
 */
export function h264SpsSize(sps: Uint8Array): { width: number; height: number } {
  if (sps.length < 4 || (sps[0]! & 0x1f) !== NAL_SPS) throw new PayloadFormatError('H264', 'not an SPS');
  const r = new BitReader(sps.subarray(1));
  const profile = r.u(8);
  r.u(16); // constraint flags, level_idc
  r.ue(); // seq_parameter_set_id
  let chroma = 1;
  let separatePlanes = 0;
  if (HIGH_PROFILES.has(profile)) {
    chroma = r.ue();
    if (chroma === 3) separatePlanes = r.u(1);
    r.ue(); // bit_depth_luma_minus8
    r.ue(); // bit_depth_chroma_minus8
    r.u(1); // qpprime_y_zero_transform_bypass_flag
    if (r.u(1)) {
      for (let i = 0; i < (chroma !== 3 ? 8 : 12); i++) {
        if (!r.u(1)) continue;
        let last = 8;
        let next = 8;
        for (let j = 0; j < (i < 6 ? 16 : 64); j++) {
          if (next !== 0) next = (last + r.se() + 256) % 256;
          last = next === 0 ? last : next;
        }
      }
    }
  }
  r.ue(); // log2_max_frame_num_minus4
  const pocType = r.ue();
  if (pocType === 0) r.ue();
  else if (pocType === 1) {
    r.u(1);
    r.se();
    r.se();
    const cycle = r.ue();
    for (let i = 0; i < cycle; i++) r.se();
  }
  r.ue(); // max_num_ref_frames
  r.u(1); // gaps_in_frame_num_value_allowed_flag
  const widthMbs = r.ue() + 1;
  const heightMapUnits = r.ue() + 1;
  const frameMbsOnly = r.u(1);
  if (!frameMbsOnly) r.u(1); // mb_adaptive_frame_field_flag
  r.u(1); // direct_8x8_inference_flag
  let width = widthMbs * 16;
  let height = (2 - frameMbsOnly) * heightMapUnits * 16;
  if (r.u(1)) {
    const [left, right, top, bottom] = [r.ue(), r.ue(), r.ue(), r.ue()];
    const arrayType = separatePlanes ? 0 : chroma;
    const subW = arrayType === 1 || arrayType === 2 ? 2 : 1;
    const subH = arrayType === 1 ? 2 : 1;
    const cropX = arrayType === 0 ? 1 : subW;
    const cropY = (arrayType === 0 ? 1 : subH) * (2 - frameMbsOnly);
    width -= cropX * (left + right);
    height -= cropY * (top + bottom);
  }
  if (width <= 0 || height <= 0) throw new PayloadFormatError('H264', 'SPS crops the picture away');
  return { width, height };
}

/** The SPS carried by a single-NAL or STAP-A payload, or the start of one in an FU-A first fragment. */
export function h264PayloadSps(payload: Uint8Array): Uint8Array | undefined {
  if (payload.length < 2) return undefined;
  const type = payload[0]! & 0x1f;
  if (type === NAL_SPS) return payload;
  if (type === NAL_STAP_A) {
    let i = 1;
    while (i + 2 < payload.length) {
      const size = (payload[i]! << 8) | payload[i + 1]!;
      if ((payload[i + 2]! & 0x1f) === NAL_SPS) return payload.subarray(i + 2, Math.min(payload.length, i + 2 + size));
      i += 2 + size;
    }
    return undefined;
  }
  if (type === NAL_FU_A && (payload[1]! & 0x80) !== 0 && (payload[1]! & 0x1f) === NAL_SPS) {
    const nal = new Uint8Array(payload.length - 1);
    nal[0] = (payload[0]! & 0xe0) | NAL_SPS;
    nal.set(payload.subarray(2), 1);
    return nal;
  }
  return undefined;
}
