// The video sampling rule on its own: first frame, the interval clock in RTP time, scene changes on top
// of it (rate-limited), and a cut that falls on an interval frame reported as a cut.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { THUMB_H, THUMB_W, VideoSamplingRule } from '../../samplers/video-sampling.ts';

const flat = (v: number): Float32Array => new Float32Array(THUMB_W * THUMB_H).fill(v);
const ms = (t: number): number => Math.round(t * 90); // RTP ticks at 90 kHz

test('first, interval at 2 fps, scene changes between intervals (at most one per 250 ms)', () => {
  const rule = new VideoSamplingRule({ fps: 2, sceneChange: true, sceneThreshold: 0.08, sceneMinGapMs: 250 });
  const seen: [number, string | null][] = [];
  const frame = (t: number, v: number) => seen.push([t, rule.decide(ms(t), flat(v))]);
  frame(0, 0.2); // first
  frame(100, 0.21); // small change: nothing
  frame(200, 0.5); // cut
  frame(300, 0.2); // another cut, but within 250 ms of the last one
  frame(500, 0.2); // interval
  frame(600, 0.21);
  assert.deepEqual(seen, [
    [0, 'first'],
    [100, null],
    [200, 'scene'],
    [300, null],
    [500, 'interval'],
    [600, null],
  ]);
});

test('a cut on a frame that is also due by the interval is reported as a scene change', () => {
  const rule = new VideoSamplingRule({ fps: 2, sceneChange: true, sceneThreshold: 0.08, sceneMinGapMs: 250 });
  assert.equal(rule.decide(ms(0), flat(0.2)), 'first');
  assert.equal(rule.decide(ms(400), flat(0.2)), null);
  assert.equal(rule.decide(ms(500), flat(0.6)), 'scene', 'due by the interval and a cut');
  assert.equal(rule.decide(ms(600), flat(0.6)), null, 'the interval clock restarted at the cut');
  assert.equal(rule.decide(ms(1000), flat(0.6)), 'interval');
});

test('with scene detection off, only first and interval frames', () => {
  const rule = new VideoSamplingRule({ fps: 2, sceneChange: false, sceneThreshold: 0.08, sceneMinGapMs: 250 });
  assert.equal(rule.decide(ms(0)), 'first');
  assert.equal(rule.decide(ms(200)), null);
  assert.equal(rule.decide(ms(500)), 'interval');
});
