// The prescaled luma plane video samples carry for PDQ (issue 16): hashing it instead of the RGB
// frame must still match the banked picture (the load test's, registered from its RGB pixels) and
// keep unrelated pictures apart.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hammingDistance, PDQ_MATCH_DISTANCE, pdqHash } from '../../models/pdq/pdq.ts';
import { bankedPicture, loadScene, SCENE_DEFAULTS } from '../../loadtest/media/scenes.ts';
import { SamplerPool } from '../../samplers/sampler-pool.ts';
import type { VideoSample } from '../../samplers/types.ts';
import { lumaPlane } from '../../samplers/video-sampling.ts';
import { pushLive, rtpizeVideo, waitFor } from './helpers.ts';

const o = { ...SCENE_DEFAULTS };
/** The load test's encoded clip as the sampler helpers' frames (they number them). */
const framesOf = (scene: Awaited<ReturnType<typeof loadScene>>, n: number) => scene.video.slice(0, n).map((f, index) => ({ ...f, index }));
const planeHash = (s: VideoSample) => pdqHash({ width: s.lumaPlane!.width, height: s.lumaPlane!.height, luma: Float64Array.from(s.lumaPlane!.data) }).hash;

test('box-shrinking a luma plane: the smallest integer factor that fits, averages of whole blocks', () => {
  const y = new Uint8Array(10 * 4).map((_, i) => (i % 10 < 5 ? 10 : 200));
  const p = lumaPlane(y, 10, 4, 10, 5);
  assert.deepEqual([p.width, p.height], [5, 2]);
  assert.deepEqual([...p.data], [10, 10, 105, 200, 200, 10, 10, 105, 200, 200]);
  assert.deepEqual([lumaPlane(new Uint8Array(640 * 360), 640, 360, 640, 256).width, lumaPlane(new Uint8Array(1280 * 720), 1280, 720, 1280, 256).width], [213, 256]);
});

test('video samples carry a luma plane of at most 256 px whose PDQ matches the banked picture; clean motion stays far', { timeout: 120_000 }, async () => {
  const pool = await SamplerPool.create({ workers: 1, maxLagMs: 60_000 });
  try {
    const samples: VideoSample[] = [];
    pool.on('sample', (s) => { if (s.kind === 'video') samples.push(s); });
    const banked = pdqHash({ width: o.width, height: o.height, rgb: bankedPicture(o.width, o.height) }).hash;
    for (const kind of ['banked_picture', 'clean'] as const) {
      const scene = await loadScene(kind, o);
      pushLive(pool, rtpizeVideo(framesOf(scene, 20), 'VP8', { streamId: kind, trackId: 'video', fps: o.fps }));
    }
    const first = (id: string) => waitFor(() => samples.find((s) => s.streamId === id), 60_000, `a ${id} sample`);
    const pic = await first('banked_picture');
    const clean = await first('clean');
    assert.deepEqual([pic.lumaPlane?.width, pic.lumaPlane?.height], [213, 120]);
    const d = hammingDistance(planeHash(pic), banked);
    const dRgb = hammingDistance(pdqHash({ width: pic.width, height: pic.height, rgb: pic.rgb }).hash, banked);
    assert.ok(d <= PDQ_MATCH_DISTANCE, `banked picture from the luma plane: ${d} bits (from the RGB frame: ${dRgb})`);
    assert.ok(hammingDistance(planeHash(clean), banked) > 64, `clean motion: ${hammingDistance(planeHash(clean), banked)} bits`);
  } finally {
    await pool.close();
  }
  const none = await SamplerPool.create({ workers: 1, lumaMaxSide: 0, maxLagMs: 60_000 });
  try {
    const got: VideoSample[] = [];
    none.on('sample', (s) => { if (s.kind === 'video') got.push(s); });
    pushLive(none, rtpizeVideo(framesOf(await loadScene('clean', o), 5), 'VP8', { streamId: 'x', trackId: 'video', fps: o.fps }));
    const s = await waitFor(() => got[0], 60_000, 'a sample');
    assert.equal(s.lumaPlane, undefined, 'lumaMaxSide 0: no plane');
  } finally {
    await none.close();
  }
});
