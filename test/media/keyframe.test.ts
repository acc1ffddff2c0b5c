// Keyframe detection (media/keyframe.ts, media/vp8.ts, media/h264.ts) on real encoder output,
// packetized as the publishers packetize it; and it never throws on bytes that are not the format
// (the forwarding path calls it on every video packet).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeVideo, rgbTestPattern } from '../../media/encode.ts';
import { isH264KeyframeStart } from '../../media/h264.ts';
import { isKeyframeStart, keyframePictureSize } from '../../media/keyframe.ts';
import { encodeH264Profile } from '../interop/obs-publisher.ts';
import { packetizeH264, packetizeVp8 } from '../../media/packetize.ts';
import { Vp8PayloadDescriptor, isVp8KeyframeStart, vp8PictureId } from '../../media/vp8.ts';

const frames = Array.from({ length: 6 }, (_, i) => rgbTestPattern(160, 120, i));

for (const codec of ['VP8', 'H264'] as const) {
  test(`${codec}: exactly the first packet of each keyframe is a keyframe start`, async () => {
    const encoded = await encodeVideo(frames, {
      codec,
      width: 160,
      height: 120,
      fps: 30,
      bitrateKbps: 300,
      keyframeInterval: 3,
    });
    let starts = 0;
    let keyframes = 0;
    for (const [i, f] of encoded.entries()) {
      const payloads = codec === 'VP8' ? packetizeVp8(f.data, 300, i) : packetizeH264(f.data, 300);
      const flagged = payloads.map((p) => isKeyframeStart(codec, p));
      if (f.keyframe) keyframes++;
      starts += flagged.filter(Boolean).length;
      assert.equal(flagged[0], f.keyframe, `frame ${i}: the first packet is a start iff the frame is a keyframe`);
      if (codec === 'VP8')
        assert.deepEqual(
          flagged.slice(1),
          payloads.slice(1).map(() => false),
          `frame ${i}: only the first packet`,
        );
      if (codec === 'VP8') assert.equal(vp8PictureId(payloads[0]!), i);
    }
    assert.ok(keyframes >= 2, `the clip has keyframes (${keyframes})`);
    assert.ok(starts >= keyframes);
  });
}

test('malformed payloads are never keyframe starts and never throw', () => {
  const junk = [
    new Uint8Array(0),
    new Uint8Array([0x80]),
    new Uint8Array([0x90, 0x80]),
    new Uint8Array([0x90, 0x80, 0x80]),
    new Uint8Array([0x10]),
    new Uint8Array([0x7c]),
    new Uint8Array([0x18, 0xff, 0xff]),
    new Uint8Array([0x1c, 0x85]),
  ];
  for (const p of junk) {
    assert.doesNotThrow(() => isVp8KeyframeStart(p));
    assert.doesNotThrow(() => isH264KeyframeStart(p));
    assert.doesNotThrow(() => vp8PictureId(p));
  }
  assert.equal(isVp8KeyframeStart(new Uint8Array([0x10])), false, 'start of partition 0 with no payload header');
  assert.equal(isVp8KeyframeStart(new Uint8Array([0x10, 0x00])), true);
  assert.equal(Vp8PayloadDescriptor.tryDeSerialize(new Uint8Array([0x80])), undefined);
  assert.equal(isH264KeyframeStart(new Uint8Array([0x1c, 0x85])), true, 'FU-A start of an IDR');
  assert.equal(isH264KeyframeStart(new Uint8Array([0x1c, 0x05])), false, 'FU-A continuation');
  assert.equal(isKeyframeStart('opus', new Uint8Array([1])), true, 'audio: every packet');
});

test('keyframePictureSize: the size a keyframe declares (VP8 header, H.264 SPS with cropping, High and Baseline), nothing for other packets', async () => {
  const cases: { codec: 'VP8' | 'H264'; profile?: 'high' | 'baseline'; width: number; height: number }[] = [
    { codec: 'VP8', width: 384, height: 216 },
    { codec: 'H264', width: 320, height: 240 },
    { codec: 'H264', profile: 'high', width: 384, height: 216 },
    { codec: 'H264', profile: 'high', width: 1280, height: 720 },
    { codec: 'H264', profile: 'baseline', width: 130, height: 98 },
  ];
  for (const c of cases) {
    const encoded = c.profile
      ? await encodeH264Profile(c.profile, 2, c.width, c.height)
      : await encodeVideo(
          [0, 1].map((i) => rgbTestPattern(c.width, c.height, i)),
          { codec: c.codec, width: c.width, height: c.height, fps: 30, keyframeInterval: 30 },
        );
    const key = encoded.find((f) => f.keyframe)!;
    const packets = c.codec === 'VP8' ? packetizeVp8(key.data, 1200, 0) : packetizeH264(key.data, 1200);
    const label = `${c.codec}${c.profile ? ` ${c.profile}` : ''} ${c.width}x${c.height}`;
    assert.deepEqual(keyframePictureSize(c.codec, packets[0]!), { width: c.width, height: c.height }, label);
    const delta = encoded.find((f) => !f.keyframe);
    if (delta) {
      const p = c.codec === 'VP8' ? packetizeVp8(delta.data, 1200, 1) : packetizeH264(delta.data, 1200);
      assert.equal(keyframePictureSize(c.codec, p[0]!), undefined, `${label}: a delta frame says nothing`);
    }
  }
  assert.equal(
    keyframePictureSize('H264', Uint8Array.from([0x67, 0x64, 0x00])),
    undefined,
    'a truncated SPS: undefined, no throw',
  );
  assert.equal(keyframePictureSize('opus', Uint8Array.from([1, 2, 3])), undefined);
});
