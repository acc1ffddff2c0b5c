// The pipeline's own bookkeeping: video signals carry a reference to their frame, the newest frames of a
// stream are kept so a review item can show the frame it is about (a real JPEG, encoded only when asked),
// older frames are let go, and an ended stream's frames are released. The SFU, sampler pool, models and
// enforcer are stand-ins here: what they do is proven in their own suites and in test/e2e.
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ModerationPipeline } from '../../server/pipeline.ts';
import type { Signals } from '../../models/types.ts';
import type { AudioSample, VideoSample } from '../../samplers/types.ts';
import { decodeJpeg } from '../samplers/helpers.ts';

function videoSample(seq: number, shade: number): VideoSample {
  const width = 64;
  const height = 48;
  const at = performance.timeOrigin + performance.now();
  return {
    kind: 'video',
    streamId: 's1',
    trackId: 'v',
    rtpTimestamp: seq * 9000,
    reason: 'interval',
    width,
    height,
    rgb: new Uint8Array(width * height * 3).fill(shade),
    seq,
    timings: { arrivedAt: at, queuedAt: at, decodedAt: at, readyAt: at },
  };
}

/** The pipeline with stand-ins around it, keeping `evidenceFrames` frames per stream. */
function harness(evidenceFrames: number) {
  const stream = Object.assign(new EventEmitter(), {
    id: 's1',
    closed: false,
    tap: { subscribe: () => ({ close() {}, delivered: 0, dropped: 0 }) },
    requestKeyFrame() {},
  });
  const sfu = Object.assign(new EventEmitter(), { streams: () => [stream], getStream: () => stream });
  const samplers = Object.assign(new EventEmitter(), { push() {}, releaseStream() {} });
  const seen: (Signals & { thumbnailRef?: string })[] = [];
  const moderator = {
    moderate: async (sample: VideoSample, emit: (s: Signals) => void) => {
      emit({
        streamId: sample.streamId,
        trackId: sample.trackId,
        kind: 'video',
        sampleSeq: sample.seq,
        rtpTimestamp: sample.rtpTimestamp,
        arrivedAt: sample.timings.arrivedAt,
        completedAt: sample.timings.readyAt,
        status: 'ok',
        scores: { sexual_suggestive: 0.5 },
        matches: [],
        text: [],
        escalated: false,
        uncertain: false,
        models: [],
        timings: {},
      } as unknown as Signals);
    },
    releaseStream() {},
  };
  const enforcer = { attachStream() {}, streamEnded() {}, onSignal: (s: Signals) => (seen.push(s), undefined) };
  const pipeline = new ModerationPipeline({
    sfu,
    samplers,
    moderator,
    enforcer,
    evidenceFrames,
  } as unknown as ConstructorParameters<typeof ModerationPipeline>[0]);

  return { stream, samplers, pipeline, seen };
}

test('video signals carry their frame reference; the newest frames give review thumbnails; ended streams let go', async () => {
  const { stream, samplers, pipeline, seen } = harness(3);
  for (let seq = 1; seq <= 5; seq++) samplers.emit('sample', videoSample(seq, seq * 40));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(
    seen.map((s) => s.thumbnailRef),
    ['frame:v:1', 'frame:v:2', 'frame:v:3', 'frame:v:4', 'frame:v:5'],
  );

  // the newest referenced frame that is still held wins; frames 1 and 2 are gone (3 kept)
  const url = pipeline.thumbnailFor('s1', ['frame:v:2', 'frame:v:4', 'frame:v:3']);
  assert.ok(url?.startsWith('data:image/jpeg;base64,'), String(url).slice(0, 40));
  const jpeg = Buffer.from(url!.slice('data:image/jpeg;base64,'.length), 'base64');
  assert.deepEqual([...jpeg.subarray(0, 3)], [0xff, 0xd8, 0xff]);
  const pic = decodeJpeg(jpeg);
  assert.deepEqual({ width: pic.width, height: pic.height }, { width: 64, height: 48 });
  pic.free();
  assert.equal(
    pipeline.thumbnailFor('s1', ['frame:v:1', 'frame:v:2']),
    undefined,
    'evicted frames give no (wrong) picture',
  );
  assert.equal(pipeline.thumbnailFor('other', ['frame:v:5']), undefined);

  stream.emit('close');
  assert.equal(pipeline.thumbnailFor('s1', ['frame:v:5']), undefined, 'an ended stream holds no frames');
  pipeline.close();
});

test("frames in the samplers' shared ring: a statement's cited frames are copied when it is made; a frame its slot no longer holds gives no picture", async () => {
  const { samplers, pipeline } = harness(4);
  // a stand-in for the decode thread's ring: one slot per frame here, rewritten on demand
  const slots = new Map<number, { view: Uint8Array; current: boolean }>();
  for (let seq = 1; seq <= 2; seq++) {
    const s = videoSample(seq, seq * 50);
    const slot = { view: s.rgb, current: true };
    slots.set(seq, slot);
    samplers.emit('sample', { ...s, copyRgb: () => (slot.current ? slot.view.slice() : undefined) });
  }
  await new Promise((r) => setImmediate(r));
  const snapshot = pipeline.citedFrames('s1', [1, 2])!;
  // the decode thread writes both slots again: the snapshot keeps the pictures the statement saw
  for (const slot of slots.values()) {
    slot.view.fill(255);
    slot.current = false;
  }
  const shades = snapshot().map((f) => {
    const pic = decodeJpeg(Buffer.from(f.jpeg));
    const y = pic.data![0]![0]!;
    pic.free();
    return [f.seq, y];
  });
  assert.equal(shades.length, 2);
  for (const [seq, y] of shades)
    assert.ok(Math.abs(y! - 255) > 40, `frame ${seq}: its own picture, not the newer one (Y ${y})`);
  assert.equal(pipeline.thumbnailFor('s1', ['frame:v:2']), undefined, 'a written-over frame is not shown');
  assert.equal(pipeline.citedFrames('s1', [1, 2]), undefined, 'nor cited');
  pipeline.close();
});

test("audio windows a statement cites are held for evidence: the newest few, and a closed stream's for a kill's statement", async () => {
  const stream = Object.assign(new EventEmitter(), {
    id: 's1',
    closed: false,
    tap: { subscribe: () => ({ close() {}, delivered: 0, dropped: 0 }) },
    requestKeyFrame() {},
  });
  const sfu = Object.assign(new EventEmitter(), { streams: () => [stream], getStream: () => stream });
  const samplers = Object.assign(new EventEmitter(), { push() {}, releaseStream() {} });
  const moderator = { moderate: async () => undefined, releaseStream() {} };
  const enforcer = { attachStream() {}, streamEnded() {}, onSignal: () => undefined };
  const pipeline = new ModerationPipeline({
    sfu,
    samplers,
    moderator,
    enforcer,
    evidenceAudio: 2,
  } as unknown as ConstructorParameters<typeof ModerationPipeline>[0]);
  const at = performance.timeOrigin + performance.now();
  const window = (seq: number): AudioSample => ({
    kind: 'audio',
    streamId: 's1',
    trackId: 'a',
    rtpTimestamp: seq * 48000,
    sampleRate: 16000,
    pcm: new Float32Array(16000).fill(seq / 10),
    seq,
    timings: { arrivedAt: at, queuedAt: at, decodedAt: at, readyAt: at },
  });
  for (let seq = 1; seq <= 3; seq++) samplers.emit('sample', window(seq));
  await new Promise((r) => setImmediate(r));
  const cited = pipeline.citedAudio('s1', [1, 3]);
  assert.deepEqual(
    cited.map((a) => [a.seq, a.sampleRate, a.pcm.length, a.pcm[0]]),
    [[3, 16000, 16000, Math.fround(0.3)]],
    'window 1 was let go (2 kept); window 3 as the models heard it',
  );
  stream.emit('close');
  assert.deepEqual(
    pipeline.citedAudio('s1', [2, 3]).map((a) => a.seq),
    [2, 3],
    "a closed stream's windows stay for its kill's statement",
  );
  assert.deepEqual(pipeline.citedAudio('other', [3]), []);
  pipeline.close();
});
