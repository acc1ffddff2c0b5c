import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeAudio, encodeVideo, rgbTestPattern, sine48k } from '../../media/encode.ts';

function nalTypes(au: Uint8Array): number[] {
  const types: number[] = [];
  for (let i = 0; i + 3 < au.length; i++) {
    if (au[i] === 0 && au[i + 1] === 0 && au[i + 2] === 1) types.push(au[i + 3]! & 0x1f);
  }
  return types;
}

test('encodeVideo VP8: one frame per input, keyframes at the interval, keyframe bit set', async () => {
  const frames = Array.from({ length: 40 }, (_, i) => rgbTestPattern(160, 120, i));
  const out = await encodeVideo(frames, { codec: 'VP8', width: 160, height: 120, fps: 20, keyframeInterval: 20 });
  assert.equal(out.length, 40);
  assert.deepEqual(
    out.filter((f) => f.keyframe).map((f) => f.ptsMs),
    [0, 1000],
  );
  for (const f of out) assert.equal((f.data[0]! & 1) === 0, f.keyframe, 'VP8 P bit (0 = keyframe) matches the flag');
  assert.equal(out[1]!.ptsMs, 50);
  assert.equal(out[1]!.durationMs, 50);
});

test('encodeVideo H264: Annex-B access units, SPS+PPS+IDR on keyframes', async () => {
  const frames = Array.from({ length: 30 }, (_, i) => rgbTestPattern(160, 120, i));
  const out = await encodeVideo(frames, { codec: 'H264', width: 160, height: 120, fps: 30, keyframeInterval: 15 });
  assert.equal(out.length, 30);
  assert.deepEqual(
    out.filter((f) => f.keyframe).map((f) => Math.round(f.ptsMs)),
    [0, 500],
  );
  const key = nalTypes(out[0]!.data);
  assert.ok(key.includes(7) && key.includes(8) && key.includes(5), `keyframe NALs ${key}`);
  assert.ok(nalTypes(out[1]!.data).includes(1));
});

test('encodeAudio: 20 ms Opus packets covering the input', async () => {
  const out = await encodeAudio(sine48k(1), { bitrateKbps: 32 });
  assert.ok(out.length >= 50 && out.length <= 52, `packets ${out.length}`);
  assert.ok(out.every((f) => f.durationMs === 20 && f.data.length > 10));
  assert.equal(out[5]!.ptsMs, 100);
  // TOC byte: config 11 or 15/31 region = 20 ms frames (CELT/SILK/hybrid 20 ms configs are 1,5,9,13,15,19,23,27,31 per RFC 6716)
  const config = out[3]!.data[0]! >> 3;
  assert.ok([1, 5, 9, 13, 15, 19, 23, 27, 31].includes(config), `TOC config ${config}`);
});
