// Keyframe detection on RTP payloads, without depacketizing whole frames: the forwarding path asks
// "does a decodable picture start in this packet?" so a waiting viewer can start exactly there.

import type { CodecName } from './types.ts';

/*
 * VP8 payload descriptor (RFC 7741 4.2), then the VP8 payload header (RFC 6386 9.1) whose first
 * byte's lowest bit P is 0 for a key frame:
 *   |X|R|N|S|R| PID |  [X: |I|L|T|K| RSV |]  [I: |M| PictureID (7 or 15)|]  [L: TL0PICIDX]  [T|K: |TID|Y| KEYIDX |]
 */
export function isVp8KeyframeStart(payload: Uint8Array): boolean {
  if (payload.length < 1) return false;
  const b0 = payload[0]!;
  const start = (b0 & 0x10) !== 0;
  const pid = b0 & 0x07;
  if (!start || pid !== 0) return false;
  let i = 1;
  if (b0 & 0x80) {
    if (payload.length < 2) return false;
    const x = payload[1]!;
    i = 2;
    if (x & 0x80) {
      if (payload.length <= i) return false;
      i += payload[i]! & 0x80 ? 2 : 1;
    }
    if (x & 0x40) i += 1;
    if (x & 0x30) i += 1;
  }
  if (payload.length <= i) return false;
  return (payload[i]! & 0x01) === 0;
}

/** H264 (RFC 6184): an IDR slice or SPS at the start of a single NAL, STAP-A or FU-A start fragment. */
export function isH264KeyframeStart(payload: Uint8Array): boolean {
  if (payload.length < 2) return false;
  const type = payload[0]! & 0x1f;
  if (type === 5 || type === 7) return true;
  if (type === 24) {
    // STAP-A: 16-bit size + NAL, repeated
    let i = 1;
    while (i + 2 < payload.length) {
      const size = (payload[i]! << 8) | payload[i + 1]!;
      const nal = payload[i + 2]! & 0x1f;
      if (nal === 5 || nal === 7) return true;
      i += 2 + size;
    }
    return false;
  }
  if (type === 28) {
    const fu = payload[1]!;
    const startBit = (fu & 0x80) !== 0;
    const nal = fu & 0x1f;
    return startBit && (nal === 5 || nal === 7);
  }
  return false;
}

export function isKeyframeStart(codec: CodecName, payload: Uint8Array): boolean {
  if (codec === 'VP8') return isVp8KeyframeStart(payload);
  if (codec === 'H264') return isH264KeyframeStart(payload);
  return true;
}

/**
 * Keyframe requests to a publisher, at most one per `minIntervalMs`: a request inside the window is
 * coalesced into one sent when it ends, which serves everyone who asked meanwhile.
 */
export class KeyframeThrottle {
  #last = -Infinity;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  constructor(
    /** Requests at least this far apart (ms). */
    readonly minIntervalMs: number,
    readonly send: (trackId?: string) => void,
  ) {}

  request(trackId?: string): void {
    if (this.#closed || this.#timer) return;
    const wait = this.#last + this.minIntervalMs - performance.now();
    if (wait > 0) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#fire(trackId);
      }, wait);
      return;
    }
    this.#fire(trackId);
  }

  #fire(trackId?: string): void {
    if (this.#closed) return;
    this.#last = performance.now();
    this.send(trackId);
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
