// Isolation: with samplers on, the forwarding loop's latency and event-loop delay stay close to
// samplers off. Asserted loosely (shared 2-core machine); bench/sampler.ts measures it precisely.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { SamplerPool } from '../../samplers/sampler-pool.ts';
import { encodeOpus, encodeVideo, rtpizeOpus, rtpizeVideo, testPicture, tone } from './helpers.ts';
import { runForwarding } from './loopback-forwarder.ts';

it('forwarding latency and event-loop delay with samplers on stay near samplers off', async (t) => {
  const W = 320;
  const H = 240;
  const frames = encodeVideo(
    Array.from({ length: 60 }, (_, i) => testPicture(W, H, i)),
    { codec: 'VP8', width: W, height: H, bitrateKbps: 800, keyframeInterval: 60 },
  );
  const opus = encodeOpus(tone(300, 2));
  const streams = [0, 1, 2].flatMap((i) => [
    rtpizeVideo(frames, 'VP8', { streamId: `iso-${i}`, trackId: 'v', startAt: 0 }),
    rtpizeOpus(opus, { streamId: `iso-${i}`, trackId: 'a', startAt: 0 }),
  ]);
  const duration = 3000;
  await runForwarding(streams, 500); // warm up sockets and JIT
  const off = await runForwarding(streams, duration);
  const pool = await SamplerPool.create({ workers: 1 });
  let samples = 0;
  pool.on('sample', () => samples++);
  const on = await runForwarding(streams, duration, (p) => pool.push(p));
  await pool.close();
  t.diagnostic(`off ${JSON.stringify(off)}`);
  t.diagnostic(`on  ${JSON.stringify(on)} samples=${samples}`);
  assert.ok(samples > 0, 'the samplers were really working');
  assert.equal(on.lost, 0);
  assert.equal(off.lost, 0);
  // Loose bounds: the target is 10%, a shared 2-core machine cannot promise that in a test.
  assert.ok(on.latencyP50Ms <= off.latencyP50Ms * 1.5 + 0.5, `p50 ${on.latencyP50Ms} vs ${off.latencyP50Ms}`);
  assert.ok(
    on.eventLoopDelayP99Ms <= off.eventLoopDelayP99Ms * 1.5 + 10,
    `eld p99 ${on.eventLoopDelayP99Ms} vs ${off.eventLoopDelayP99Ms}`,
  );
});
