// VP8 over RTP (RFC 7741): the payload descriptor, keyframe detection, depacketizing. The one parser
// of the descriptor: the forwarding path (keyframe starts, picture ids), the samplers and the load
// tester's viewers all read it here. (The packetizer is media/packetize.ts.)
import { PayloadFormatError } from './errors.ts';

/*
 * VP8 payload descriptor (RFC 7741 section 4.2):
 *
 *        0 1 2 3 4 5 6 7
 *       +-+-+-+-+-+-+-+-+
 *       |X|R|N|S|R| PID | (REQUIRED)
 *       +-+-+-+-+-+-+-+-+
 *  X:   |I|L|T|K| RSV   | (OPTIONAL)
 *       +-+-+-+-+-+-+-+-+
 *  I:   |M| PictureID   | (OPTIONAL)
 *       +-+-+-+-+-+-+-+-+
 *  M:   | PictureID     | (OPTIONAL, 15-bit PictureID)
 *       +-+-+-+-+-+-+-+-+
 *  L:   |   TL0PICIDX   | (OPTIONAL)
 *       +-+-+-+-+-+-+-+-+
 *  T/K: |TID|Y| KEYIDX  | (OPTIONAL)
 *       +-+-+-+-+-+-+-+-+
 *
 * At the start of partition 0 (S=1, PID=0) the VP8 payload header follows; its first byte is
 * |Size0|H|VER|P| where P=0 marks a key frame (RFC 7741 section 4.3).
 */
export class Vp8PayloadDescriptor {
  constructor(
    /** N: the frame is not used as a reference. */
    readonly nonReference: boolean,
    /** S: first packet of a partition. */
    readonly startOfPartition: boolean,
    /** Partition index (0..7). */
    readonly partitionId: number,
    readonly pictureId: number | undefined,
    readonly tl0PicIdx: number | undefined,
    readonly temporalId: number | undefined,
    readonly layerSync: boolean | undefined,
    readonly keyIdx: number | undefined,
    /** Bytes taken by the descriptor; the VP8 data starts here. */
    readonly length: number,
  ) {}

  /** First packet of a frame: start of partition 0. */
  get startOfFrame(): boolean {
    return this.startOfPartition && this.partitionId === 0;
  }

  /** The descriptor, or undefined for a payload too short to hold one (no throw: the forwarding path asks per packet). */
  static tryDeSerialize(buf: Uint8Array): Vp8PayloadDescriptor | undefined {
    try {
      return Vp8PayloadDescriptor.deSerialize(buf);
    } catch {
      return undefined;
    }
  }

  static deSerialize(buf: Uint8Array): Vp8PayloadDescriptor {
    if (buf.length < 1) throw new PayloadFormatError('VP8', 'empty');
    const b0 = buf[0];
    let o = 1;
    let pictureId: number | undefined;
    let tl0PicIdx: number | undefined;
    let temporalId: number | undefined;
    let layerSync: boolean | undefined;
    let keyIdx: number | undefined;
    if (b0 & 0x80) {
      if (buf.length < 2) throw new PayloadFormatError('VP8', 'truncated extension');
      const x = buf[o++];
      if (x & 0x80) {
        if (o >= buf.length) throw new PayloadFormatError('VP8', 'truncated PictureID');
        if (buf[o] & 0x80) {
          if (o + 1 >= buf.length) throw new PayloadFormatError('VP8', 'truncated 15-bit PictureID');
          pictureId = ((buf[o] & 0x7f) << 8) | buf[o + 1];
          o += 2;
        } else {
          pictureId = buf[o] & 0x7f;
          o += 1;
        }
      }
      if (x & 0x40) {
        if (o >= buf.length) throw new PayloadFormatError('VP8', 'truncated TL0PICIDX');
        tl0PicIdx = buf[o++];
      }
      if (x & 0x30) {
        if (o >= buf.length) throw new PayloadFormatError('VP8', 'truncated TID/KEYIDX');
        const t = buf[o++];
        if (x & 0x20) {
          temporalId = t >> 6;
          layerSync = (t & 0x20) !== 0;
        }
        if (x & 0x10) keyIdx = t & 0x1f;
      }
    }
    if (o > buf.length) throw new PayloadFormatError('VP8', 'descriptor longer than packet');
    return new Vp8PayloadDescriptor(
      (b0 & 0x20) !== 0,
      (b0 & 0x10) !== 0,
      b0 & 0x07,
      pictureId,
      tl0PicIdx,
      temporalId,
      layerSync,
      keyIdx,
      o,
    );
  }
}

/** True when the first packet of a frame (descriptor included) carries a VP8 key frame. Throws on a malformed descriptor. */
export function vp8PacketIsKeyframe(payload: Uint8Array): boolean {
  const d = Vp8PayloadDescriptor.deSerialize(payload);
  return d.startOfFrame && payload.length > d.length && (payload[d.length] & 0x01) === 0;
}

/** Whether a decodable picture starts in this packet: start of partition 0 and the payload header's P bit 0. Never throws. */
export function isVp8KeyframeStart(payload: Uint8Array): boolean {
  const d = Vp8PayloadDescriptor.tryDeSerialize(payload);
  return d !== undefined && d.startOfFrame && payload.length > d.length && (payload[d.length]! & 0x01) === 0;
}

/** The PictureID, when the descriptor carries one. Never throws. */
export function vp8PictureId(payload: Uint8Array): number | undefined {
  return Vp8PayloadDescriptor.tryDeSerialize(payload)?.pictureId;
}

/** Reassembles one frame from its packets' payloads (in sequence order): descriptors stripped, partitions concatenated. */
export function depacketizeVp8(payloads: Uint8Array[]): { data: Uint8Array; keyframe: boolean } {
  if (payloads.length === 0) throw new PayloadFormatError('VP8', 'no packets');
  const first = Vp8PayloadDescriptor.deSerialize(payloads[0]);
  if (!first.startOfFrame) throw new PayloadFormatError('VP8', 'frame does not start at partition 0');
  const parts: Uint8Array[] = [];
  let size = 0;
  for (const p of payloads) {
    const d = Vp8PayloadDescriptor.deSerialize(p);
    const body = p.subarray(d.length);
    parts.push(body);
    size += body.length;
  }
  const data = new Uint8Array(size);
  let o = 0;
  for (const b of parts) {
    data.set(b, o);
    o += b.length;
  }
  return { data, keyframe: data.length > 0 && (data[0] & 0x01) === 0 };
}

/** Picture size of a VP8 keyframe (RFC 6386 9.1: 3-byte tag, start code 9d 01 2a, 14-bit width and height). */
export function vp8FrameSize(frame: Uint8Array): { width: number; height: number } | undefined {
  if (frame.length < 10 || (frame[0]! & 1) !== 0) return undefined;
  if (frame[3] !== 0x9d || frame[4] !== 0x01 || frame[5] !== 0x2a) return undefined;
  return { width: (frame[6]! | (frame[7]! << 8)) & 0x3fff, height: (frame[8]! | (frame[9]! << 8)) & 0x3fff };
}
