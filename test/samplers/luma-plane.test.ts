// The prescaled luma plane video samples can carry for PDQ (issue 16). Off by default: hashing it is
// ~10x cheaper but drifts too far from the hash of the full picture on the load test's banked
// picture, so by default PDQ still hashes the RGB sample and matches.
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
const framesOf = (scene: Awaited<ReturnType<typeof loadScene>>, n: number) =>
  scene.video.slice(0, n).map((f, index) => ({ ...f, index }));

test('box-shrinking a luma plane: the smallest integer factor that fits, averages of whole blocks', () => {
  const y = new Uint8Array(10 * 4).map((_, i) => (i % 10 < 5 ? 10 : 200));
  const p = lumaPlane(y, 10, 4, 10, 5);
  assert.deepEqual([p.width, p.height], [5, 2]);
  assert.deepEqual([...p.data], [10, 10, 105, 200, 200, 10, 10, 105, 200, 200]);
  assert.deepEqual(
    [
      lumaPlane(new Uint8Array(640 * 360), 640, 360, 640, 256).width,
      lumaPlane(new Uint8Array(1280 * 720), 1280, 720, 1280, 256).width,
    ],
    [213, 256],
  );
});

test(
  "by default samples carry no luma plane and the RGB sample's PDQ matches the banked picture; configured, the plane comes at its size",
  { timeout: 120_000 },
  async () => {
    const banked = pdqHash({ width: o.width, height: o.height, rgb: bankedPicture(o.width, o.height) }).hash;
    for (const lumaMaxSide of [undefined, 256]) {
      const pool = await SamplerPool.create({ workers: 1, maxLagMs: 60_000, ...(lumaMaxSide ? { lumaMaxSide } : {}) });
      try {
        const samples: VideoSample[] = [];
        pool.on('sample', (s) => {
          if (s.kind === 'video') samples.push(s);
        });
        pushLive(
          pool,
          rtpizeVideo(framesOf(await loadScene('banked_picture', o), 20), 'VP8', {
            streamId: 'pic',
            trackId: 'video',
            fps: o.fps,
          }),
        );
        const pic = await waitFor(() => samples[0], 60_000, 'a banked_picture sample');
        const d = hammingDistance(pdqHash({ width: pic.width, height: pic.height, rgb: pic.rgb }).hash, banked);
        assert.ok(d <= PDQ_MATCH_DISTANCE, `RGB sample: ${d} bits from the banked hash`);
        if (lumaMaxSide) assert.deepEqual([pic.lumaPlane?.width, pic.lumaPlane?.height], [213, 120]);
        else assert.equal(pic.lumaPlane, undefined);
      } finally {
        await pool.close();
      }
    }
  },
);
