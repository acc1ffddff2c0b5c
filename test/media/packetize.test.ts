import { test } from 'node:test';
import assert from 'node:assert/strict';
import { packetizeH264, packetizeVp8, splitAnnexB } from '../../media/packetize.ts';
import { resizeBilinearAlignCorners, toLuma } from '../../samplers/preprocess.ts';

test('VP8 payloads carry the S bit on the first packet only and reassemble to the frame', () => {
  const frame = Uint8Array.from({ length: 3000 }, (_, i) => i & 0xff);
  const payloads = packetizeVp8(frame, 1200, 0x1234);
  assert.equal(payloads.length, 3);
  assert.deepEqual(
    payloads.map((p) => p[0] & 0x10),
    [0x10, 0, 0],
  );
  assert.equal(((payloads[1][2] & 0x7f) << 8) | payloads[1][3], 0x1234);
  const joined = Buffer.concat(payloads.map((p) => p.subarray(4)));
  assert.deepEqual(new Uint8Array(joined), frame);
});

test('H264: parameter sets aggregate into STAP-A, a large IDR fragments into FU-A', () => {
  const sps = Uint8Array.from([0x67, 0x42, 0xc0, 0x1f, 0xaa]);
  const pps = Uint8Array.from([0x68, 0xce, 0x3c, 0x80]);
  const idr = new Uint8Array(2500).fill(7);
  idr[0] = 0x65;
  const au = Buffer.concat([
    Buffer.from([0, 0, 0, 1]),
    sps,
    Buffer.from([0, 0, 1]),
    pps,
    Buffer.from([0, 0, 0, 1]),
    idr,
  ]);
  assert.deepEqual(
    splitAnnexB(au).map((n) => n[0]),
    [0x67, 0x68, 0x65],
  );
  const payloads = packetizeH264(au, 1200);
  assert.equal(payloads[0][0] & 0x1f, 24);
  const fu = payloads.slice(1);
  assert.ok(fu.every((p) => (p[0] & 0x1f) === 28));
  assert.equal(fu[0][1] & 0x80, 0x80);
  assert.equal(fu[fu.length - 1][1] & 0x40, 0x40);
  const body = Buffer.concat(fu.map((p) => p.subarray(2)));
  assert.equal(body.length + 1, idr.length);
});

test('align-corners resize keeps the corner pixels and scales to [0, 1]', () => {
  const rgb = new Uint8Array(4 * 3 * 3);
  rgb.set([255, 0, 0], 0); // top-left red
  rgb.set([0, 0, 255], (2 * 4 + 3) * 3); // bottom-right blue
  const out = resizeBilinearAlignCorners({ width: 4, height: 3, rgb }, 7);
  assert.deepEqual(Array.from(out.subarray(0, 3)), [1, 0, 0]);
  assert.deepEqual(Array.from(out.subarray(out.length - 3)), [0, 0, 1]);
  const luma = toLuma({ width: 4, height: 3, rgb });
  assert.ok(Math.abs(luma[0] - 0.299 * 255) < 1e-3);
});
