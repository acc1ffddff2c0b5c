// sharedFrames (issue 16): video samples' RGB lies in a ring the decode thread shares with the main
// thread, so the main isolate gets no ArrayBuffer per sample (external memory that drove most of its
// major GCs). The pictures must be the ones a buffer per sample carries, and copyRgb() must tell a
// picture its slot still holds from one written over.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadScene, SCENE_DEFAULTS } from '../../loadtest/media/scenes.ts';
import { SamplerPool } from '../../samplers/sampler-pool.ts';
import type { VideoSample } from '../../samplers/types.ts';
import { pushLive, rtpizeVideo, waitFor } from './helpers.ts';

const o = { ...SCENE_DEFAULTS };

/** Every video sample of the clean clip's 90 frames (6 s), once no new one has come for 1.5 s. */
async function samplesOf(sharedFrames: number): Promise<VideoSample[]> {
  const scene = await loadScene('clean', o);
  const frames = scene.video.slice(0, 90).map((f, index) => ({ ...f, index }));
  const pool = await SamplerPool.create({ workers: 1, maxLagMs: 60_000, sharedFrames });
  try {
    const samples: VideoSample[] = [];
    let lastAt = Date.now();
    pool.on('sample', (s) => {
      if (s.kind !== 'video') return;
      samples.push(s);
      lastAt = Date.now();
    });
    pushLive(pool, rtpizeVideo(frames, 'VP8', { streamId: 'shared', trackId: 'video', fps: o.fps }));
    await waitFor(() => (samples.length >= 8 ? true : undefined), 60_000, '8 video samples');
    await waitFor(() => (Date.now() - lastAt > 1500 ? true : undefined), 60_000, 'the samples to stop coming');
    return samples;
  } finally {
    await pool.close();
  }
}

test(
  'sharedFrames: the same pictures as a buffer per sample, as views of one shared ring',
  { timeout: 180_000 },
  async () => {
    const own = await samplesOf(0);
    const shared = await samplesOf(64); // more slots than samples: none is written over
    assert.equal(shared.length, own.length, 'the same samples');
    for (const [i, s] of shared.entries()) {
      assert.ok(s.rgb.buffer instanceof SharedArrayBuffer, `sample ${i} is a view of the ring`);
      assert.equal(own[i]!.copyRgb, undefined, 'a sample with a buffer of its own has nothing to copy');
      assert.ok(Buffer.from(s.rgb).equals(Buffer.from(own[i]!.rgb)), `sample ${i}: the same picture`);
      const copy = s.copyRgb?.();
      assert.ok(copy && copy.buffer instanceof ArrayBuffer, 'a copy of its own');
      assert.ok(Buffer.from(copy).equals(Buffer.from(own[i]!.rgb)), `sample ${i}: copied whole`);
    }
    assert.equal(new Set(shared.map((s) => s.rgb.buffer)).size, 1, 'one ring for the track');
  },
);

test('sharedFrames: a slot written over is not copied as the older sample', { timeout: 180_000 }, async () => {
  const own = await samplesOf(0);
  const shared = await samplesOf(2);
  assert.equal(shared.length, own.length);
  assert.ok(shared.length >= 4);
  for (const [i, s] of shared.slice(0, -2).entries())
    assert.equal(s.copyRgb?.(), undefined, `sample ${i}: its slot holds a newer picture`);
  for (const i of [shared.length - 2, shared.length - 1]) {
    const copy = shared[i]!.copyRgb?.();
    assert.ok(copy, `sample ${i}: still in its slot`);
    assert.ok(Buffer.from(copy).equals(Buffer.from(own[i]!.rgb)), `sample ${i}: its own picture`);
  }
});
