// The slate pictures both engines send to blanked viewers: every keyframe decodes on its own to the
// drawn picture, H264 stays constrained baseline (what every WHEP player and OBS-published stream
// negotiates), and each frame stays a few packets (it is sent several times a second per gate).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FF_DECODER_H264, FF_DECODER_VP8 } from 'node-av/constants';
import { rgbToI420 } from '../../media/encode.ts';
import { encodeSlate, renderSlate } from '../../sfu/slate.ts';
import { decodeWith } from './helpers.ts';

const W = 640;
const H = 360;

/** Luma of the drawn slate, as the encoders are given it (the Y plane of rgbToI420). */
function drawnLuma(): Uint8Array {
  return rgbToI420(renderSlate(W, H), W, H).subarray(0, W * H);
}

for (const [codec, maxBytes] of [
  ['VP8', 4500],
  ['H264', 8000],
] as const) {
  test(`${codec} slate: each keyframe decodes alone to the drawn picture and is at most ${maxBytes} bytes`, async () => {
    const slate = await encodeSlate(codec);
    assert.equal(slate.width, W);
    assert.ok(slate.keyframes.length >= 1);
    const want = drawnLuma();
    for (const [i, frame] of slate.keyframes.entries()) {
      assert.ok(frame.length <= maxBytes, `keyframe ${i}: ${frame.length} bytes`);
      let pictures = 0;
      let err = 0;
      decodeWith(codec === 'H264' ? FF_DECODER_H264 : FF_DECODER_VP8, [frame], (f) => {
        pictures++;
        const y = f.data![0]!;
        const stride = f.linesize[0]!;
        for (let r = 0; r < H; r++) for (let c = 0; c < W; c++) err += Math.abs(y[r * stride + c]! - want[r * W + c]!);
      });
      assert.equal(pictures, 1, `keyframe ${i} decodes on its own`);
      const meanErr = err / (W * H);
      assert.ok(meanErr < 2, `keyframe ${i}: mean luma error ${meanErr.toFixed(2)} of 255`);
    }
  });
}

test('H264 slate: constrained baseline SPS, and SPS/PPS in every keyframe', async () => {
  const slate = await encodeSlate('H264');
  for (const frame of slate.keyframes) {
    const nals: number[] = [];
    let sps: Uint8Array | undefined;
    for (let i = 0; i + 3 < frame.length; i++) {
      if (frame[i] === 0 && frame[i + 1] === 0 && frame[i + 2] === 1) {
        const type = frame[i + 3]! & 0x1f;
        nals.push(type);
        if (type === 7) sps = frame.subarray(i + 4, i + 7);
      }
    }
    assert.ok(nals.includes(7) && nals.includes(8) && nals.includes(5), `NAL types ${nals.join(',')}`);
    assert.equal(sps![0], 66, 'profile_idc 66 (baseline)');
    assert.ok((sps![1]! & 0x40) !== 0, 'constraint_set1_flag (constrained baseline)');
  }
});
