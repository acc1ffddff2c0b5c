// RTP payload packetizers (media/: imports nothing else of the project; the SFU slates, the synthetic
// publishers and the tests use them): encoded frames in, RTP payloads out (the RTP header is the
// sender's business). Each function returns the payloads of one frame in order;
// the sender sets the marker bit on the last one and gives all of them the frame's timestamp.

/** Default largest payload, leaving room for RTP header, extensions and SRTP tag under a 1280 MTU. */
export const DEFAULT_MAX_PAYLOAD = 1200;

/*
 * VP8 payload descriptor (RFC 7741 section 4.2), with the extended control bits and a 15-bit
 * PictureID so receivers can spot missing frames:
 *
 *        0 1 2 3 4 5 6 7
 *       +-+-+-+-+-+-+-+-+
 *       |X|R|N|S|R| PID | (REQUIRED)
 *       +-+-+-+-+-+-+-+-+
 *  X:   |I|L|T|K| RSV   | (OPTIONAL)
 *       +-+-+-+-+-+-+-+-+
 *  I:   |M| PictureID   | (OPTIONAL, M=1: 15 bits)
 *       +-+-+-+-+-+-+-+-+
 *       |   PictureID   |
 *       +-+-+-+-+-+-+-+-+
 */
export function packetizeVp8(frame: Uint8Array, maxPayload = DEFAULT_MAX_PAYLOAD, pictureId?: number): Uint8Array[] {
  if (frame.length === 0) return [];
  const headerLength = pictureId === undefined ? 1 : 4;
  const chunk = maxPayload - headerLength;
  if (chunk <= 0) throw new RangeError(`maxPayload ${maxPayload} leaves no room for VP8 data`);
  const payloads: Uint8Array[] = [];
  for (let offset = 0; offset < frame.length; offset += chunk) {
    const end = Math.min(offset + chunk, frame.length);
    const payload = new Uint8Array(headerLength + end - offset);
    const start = offset === 0 ? 0x10 : 0; // S bit on the first packet of partition 0
    if (pictureId === undefined) {
      payload[0] = start;
    } else {
      const pid = pictureId & 0x7fff;
      payload[0] = 0x80 | start; // X
      payload[1] = 0x80; // I
      payload[2] = 0x80 | (pid >> 8); // M + high bits
      payload[3] = pid & 0xff;
    }
    payload.set(frame.subarray(offset, end), headerLength);
    payloads.push(payload);
  }
  return payloads;
}

/** Splits an Annex-B byte stream (00 00 01 / 00 00 00 01 start codes) into NAL units without start codes. */
export function splitAnnexB(stream: Uint8Array): Uint8Array[] {
  const nals: Uint8Array[] = [];
  let start = -1;
  let i = 0;
  while (i + 2 < stream.length) {
    if (stream[i] === 0 && stream[i + 1] === 0 && stream[i + 2] === 1) {
      if (start >= 0) nals.push(trimTrailingZeros(stream.subarray(start, i)));
      i += 3;
      start = i;
    } else {
      i++;
    }
  }
  if (start >= 0 && start < stream.length) nals.push(stream.subarray(start));
  else if (start < 0 && stream.length > 0) nals.push(stream); // no start code: one bare NAL
  return nals.filter((n) => n.length > 0);
}

function trimTrailingZeros(nal: Uint8Array): Uint8Array {
  let end = nal.length;
  while (end > 0 && nal[end - 1] === 0) end--; // zero byte of the next 4-byte start code
  return nal.subarray(0, end);
}

const NAL_STAP_A = 24;
const NAL_FU_A = 28;

/**
 * H264 (RFC 6184, packetization-mode 1): small NAL units are aggregated into STAP-A packets (this is
 * how SPS/PPS travel ahead of an IDR), NAL units that fit go as single NAL unit packets, larger ones
 * are fragmented with FU-A.
 */
export function packetizeH264(accessUnit: Uint8Array, maxPayload = DEFAULT_MAX_PAYLOAD): Uint8Array[] {
  const nals = splitAnnexB(accessUnit).filter((n) => (n[0] & 0x1f) !== 9); // drop access unit delimiters
  const payloads: Uint8Array[] = [];
  let pending: Uint8Array[] = [];
  let pendingSize = 1; // STAP-A header byte

  const flush = (): void => {
    if (pending.length === 1) payloads.push(pending[0]);
    else if (pending.length > 1) payloads.push(stapA(pending));
    pending = [];
    pendingSize = 1;
  };

  for (const nal of nals) {
    if (nal.length > maxPayload) {
      flush();
      payloads.push(...fuA(nal, maxPayload));
      continue;
    }
    if (pendingSize + 2 + nal.length > maxPayload) flush();
    pending.push(nal);
    pendingSize += 2 + nal.length;
  }
  flush();
  return payloads;
}

/*
 *  STAP-A (RFC 6184 section 5.7.1)
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |F|NRI| Type=24 | NALU 1 Size (16) | NALU 1 ... | NALU 2 Size | NALU 2 ...
 */
function stapA(nals: Uint8Array[]): Uint8Array {
  const size = 1 + nals.reduce((sum, n) => sum + 2 + n.length, 0);
  const out = new Uint8Array(size);
  let nri = 0;
  for (const n of nals) nri = Math.max(nri, n[0] & 0x60);
  out[0] = nri | NAL_STAP_A;
  let offset = 1;
  for (const n of nals) {
    out[offset] = n.length >> 8;
    out[offset + 1] = n.length & 0xff;
    out.set(n, offset + 2);
    offset += 2 + n.length;
  }
  return out;
}

/*
 *  FU-A (RFC 6184 section 5.8)
 *  FU indicator: |F|NRI| Type=28 |   FU header: |S|E|R| Type |   FU payload ...
 */
function fuA(nal: Uint8Array, maxPayload: number): Uint8Array[] {
  const header = nal[0];
  const body = nal.subarray(1);
  const chunk = maxPayload - 2;
  const out: Uint8Array[] = [];
  for (let offset = 0; offset < body.length; offset += chunk) {
    const end = Math.min(offset + chunk, body.length);
    const payload = new Uint8Array(2 + end - offset);
    payload[0] = (header & 0xe0) | NAL_FU_A;
    payload[1] = (offset === 0 ? 0x80 : 0) | (end === body.length ? 0x40 : 0) | (header & 0x1f);
    payload.set(body.subarray(offset, end), 2);
    out.push(payload);
  }
  return out;
}

/** Opus (RFC 7587): one Opus packet per RTP packet, unchanged. */
export function packetizeOpus(packet: Uint8Array): Uint8Array[] {
  return packet.length === 0 ? [] : [packet];
}
