// SamplerPool end to end: node-av encodes -> RTP -> pool (worker threads, node-av decode) -> samples.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SamplerPool } from '../../samplers/sampler-pool.ts';
import type { AudioSample, Sample, VideoSample } from '../../samplers/types.ts';
import { lumaThumbnail, thumbnailDistance } from '../../samplers/video-sampling.ts';
import {
  dominantFrequency,
  encodeOpus,
  encodeVideo,
  psnr,
  pushLive,
  pushPaced,
  rtpizeOpus,
  rtpizeVideo,
  testPicture,
  tone,
  waitFor,
  yuvToRgb,
} from './helpers.ts';

const W = 320;
const H = 240;

function collect(pool: SamplerPool): Sample[] {
  const samples: Sample[] = [];
  pool.on('sample', (s) => samples.push(s));
  return samples;
}

const videoOf = (samples: Sample[], streamId: string): VideoSample[] =>
  samples.filter((s): s is VideoSample => s.kind === 'video' && s.streamId === streamId);

describe('SamplerPool round trip', () => {
  let pool: SamplerPool;
  let samples: Sample[];
  before(async () => {
    pool = await SamplerPool.create({ workers: 2, maxLagMs: 60000 });
    samples = collect(pool);
  });
  after(() => pool.close());

  for (const codec of ['VP8', 'H264'] as const) {
    it(`${codec}: the first sample matches the encoded picture (PSNR >= 30 dB)`, async () => {
      const pictures = Array.from({ length: 10 }, () => testPicture(W, H, 0));
      const frames = encodeVideo(pictures, { codec, width: W, height: H, bitrateKbps: 2000 });
      const streamId = `rt-${codec}`;
      pushLive(pool, rtpizeVideo(frames, codec, { streamId, trackId: 'video' }));
      const first = await waitFor(() => videoOf(samples, streamId)[0], 20000, `${codec} sample`);
      assert.equal(first.reason, 'first');
      assert.equal(first.trackId, 'video');
      assert.equal(first.width, W);
      assert.equal(first.height, H);
      assert.equal(first.rgb.length, W * H * 3);
      const db = psnr(first.rgb, yuvToRgb(pictures[0], W, H));
      assert.ok(db >= 30, `PSNR ${db.toFixed(1)} dB`);
      // A wrong picture would not pass: the check can fail.
      assert.ok(psnr(first.rgb, yuvToRgb(testPicture(W, H, 0, 1), W, H)) < 30);
    });
  }

  it('Opus: a 440 Hz tone comes back as 1 s windows at 16 kHz mono with that frequency', async () => {
    const packets = rtpizeOpus(encodeOpus(tone(440, 2.2)), { streamId: 'rt-audio', trackId: 'audio' });
    pushLive(pool, packets);
    const windows = await waitFor(
      () => {
        const w = samples.filter((s): s is AudioSample => s.kind === 'audio' && s.streamId === 'rt-audio');
        return w.length >= 2 ? w : undefined;
      },
      20000,
      'two audio windows',
    );
    for (const w of windows) {
      assert.equal(w.sampleRate, 16000);
      assert.equal(w.pcm.length, 16000);
      const f = dominantFrequency(w.pcm, 16000);
      assert.ok(Math.abs(f - 440) <= 3, `dominant ${f} Hz`);
    }
    assert.equal(windows[0].rtpTimestamp, packets[0].timestamp, 'window starts at the first packet');
    assert.equal(windows[1].seq, windows[0].seq + 1);
  });

  it('large frames are scaled down to maxWidth, aspect kept', async () => {
    const pictures = [testPicture(1280, 720, 0)];
    const frames = encodeVideo(pictures, { codec: 'VP8', width: 1280, height: 720 });
    pushLive(pool, rtpizeVideo(frames, 'VP8', { streamId: 'rt-big' }));
    const s = await waitFor(() => videoOf(samples, 'rt-big')[0], 20000, 'big sample');
    assert.equal(s.width, 640);
    assert.equal(s.height, 360);
    assert.equal(s.rgb.length, 640 * 360 * 3);
  });
});

describe('SamplerPool sampling rules and timings', () => {
  it('first frame, then one per 1/fps of RTP time, plus scene changes; timings ordered', async () => {
    await using pool = await SamplerPool.create({ workers: 1, videoFps: 2, maxLagMs: 60000 });
    const samples = collect(pool);
    // 3 s at 30 fps; the picture changes completely at frame 40 (t = 1.333 s).
    const pictures = Array.from({ length: 90 }, (_, i) => testPicture(W, H, i, i >= 40 ? 3 : 0));
    const frames = encodeVideo(pictures, { codec: 'VP8', width: W, height: H, keyframeInterval: 300 });
    const packets = rtpizeVideo(frames, 'VP8', { streamId: 'rules', firstTimestamp: 1000 });
    await pushPaced(pool, packets, 3); // 3x real time keeps the test short
    const video = await waitFor(
      () => {
        const v = videoOf(samples, 'rules');
        return v.length > 0 && v[v.length - 1].rtpTimestamp >= 1000 + 2.5 * 90000 ? v : undefined;
      },
      30000,
      'samples up to 2.5 s',
    );
    const t = (s: VideoSample): number => (s.rtpTimestamp - 1000) / 90000;
    assert.equal(video[0].reason, 'first');
    assert.equal(t(video[0]), 0);
    const scene = video.filter((s) => s.reason === 'scene');
    assert.equal(scene.length, 1, `scene samples at ${scene.map(t)}`);
    assert.ok(Math.abs(t(scene[0]) - 40 / 30) < 0.01, `scene cut sampled at ${t(scene[0])}`);
    const interval = video.filter((s) => s.reason === 'interval').map(t);
    assert.deepEqual(
      interval.map((x) => Math.round(x * 30)),
      [15, 30, 45, 60, 75],
      `interval samples at ${interval}`,
    );
    video.forEach((s, i) => {
      assert.equal(s.seq, i);
      const { arrivedAt, queuedAt, decodedAt, readyAt } = s.timings;
      for (const v of [arrivedAt, queuedAt, decodedAt, readyAt])
        assert.ok(Number.isFinite(v) && v > 1e12, 'server-clock ms');
      assert.ok(arrivedAt <= queuedAt && queuedAt <= decodedAt && decodedAt <= readyAt, JSON.stringify(s.timings));
      assert.ok(readyAt - arrivedAt < 10000);
    });
    const st = await waitFor(
      () => pool.stats().find((x) => x.streamId === 'rules' && x.frames === 90),
      20000,
      'all 90 frames decoded',
    );
    assert.equal(st.samples, videoOf(samples, 'rules').length);
    assert.equal(st.drops, 0);
  });

  it("a sample's thumbnail is its picture's 16x9 mean luma, as lumaThumbnail defines it", async () => {
    // The decoder scales it natively (never reading the planes from JavaScript); the luma plane the
    // sample carries (full-range GRAY8 at the decoded size, mapped back to video range) gives the reference.
    await using pool = await SamplerPool.create({ workers: 1, videoFps: 30, maxLagMs: 60000, lumaMaxSide: W });
    const samples = collect(pool);
    const pictures = Array.from({ length: 6 }, (_, i) => testPicture(W, H, i * 7, i % 4));
    const frames = encodeVideo(pictures, { codec: 'VP8', width: W, height: H });
    pushLive(pool, rtpizeVideo(frames, 'VP8', { streamId: 'thumbs' }));
    const video = await waitFor(
      () => (videoOf(samples, 'thumbs').length === 6 ? videoOf(samples, 'thumbs') : undefined),
      20000,
      '6 samples',
    );
    const distances = video.map((s) => {
      assert.ok(s.thumbnail, 'scene detection is on: the sample carries its thumbnail');
      assert.ok(s.lumaPlane && s.lumaPlane.width === W, 'the full-size luma plane');
      const y = lumaThumbnail(
        s.lumaPlane.data.map((g) => Math.round(16 + (g * 219) / 255)),
        W,
        H,
        W,
      );
      return thumbnailDistance(s.thumbnail, y);
    });
    // A scene cut is 0.08 (the default threshold); the two computations agree far closer than that.
    assert.ok(Math.max(...distances) < 0.02, `distances ${distances.map((d) => d.toFixed(4))}`);
  });
});

describe('SamplerPool loss, keyframe requests and back-pressure', () => {
  it('a lost packet drops frames until the next key frame and raises keyframeNeeded (throttled)', async () => {
    await using pool = await SamplerPool.create({
      workers: 1,
      videoFps: 30,
      sceneChange: false,
      reorderWaitMs: 5,
      maxLagMs: 60000,
    });
    const samples = collect(pool);
    const requests: string[] = [];
    pool.on('keyframeNeeded', (streamId, trackId) => requests.push(`${streamId}/${trackId}`));
    const pictures = Array.from({ length: 40 }, (_, i) => testPicture(W, H, i));
    const frames = encodeVideo(pictures, { codec: 'VP8', width: W, height: H, keyframeInterval: 30 });
    const packets = rtpizeVideo(frames, 'VP8', { streamId: 'lossy', trackId: 'v' });
    const lostTs = packets.find((p) => p.timestamp === 90000 + 5 * 3000)!.timestamp;
    const lost = packets.findIndex((p) => p.timestamp === lostTs);
    await pushPaced(
      pool,
      packets.filter((_, i) => i !== lost),
      2,
    );
    await waitFor(
      () => (videoOf(samples, 'lossy').some((s) => s.rtpTimestamp === 90000 + 30 * 3000) ? true : undefined),
      30000,
      'resumed at the key frame',
    );
    const got = videoOf(samples, 'lossy').map((s) => (s.rtpTimestamp - 90000) / 3000);
    assert.deepEqual(
      got.filter((i) => i < 5),
      [0, 1, 2, 3, 4],
    );
    assert.ok(!got.some((i) => i >= 5 && i < 30), `nothing between the loss and the key frame: ${got}`);
    assert.ok(got.includes(30));
    assert.ok(requests.length >= 1 && requests.every((r) => r === 'lossy/v'));
    assert.ok(requests.length <= 3, `throttled: ${requests.length} requests`);
    assert.ok(pool.stats()[0].drops >= 25);
  });

  it('drops (counted) and warns when a worker falls behind, instead of queueing without bound', async () => {
    await using pool = await SamplerPool.create({ workers: 1, maxQueueBytes: 20000 });
    const warnings: string[] = [];
    pool.on('warning', (m) => warnings.push(m));
    const frames = encodeVideo(
      Array.from({ length: 30 }, (_, i) => testPicture(640, 480, i)),
      { codec: 'VP8', width: 640, height: 480, bitrateKbps: 4000 },
    );
    pushLive(pool, rtpizeVideo(frames, 'VP8', { streamId: 'flood' }));
    const st = pool.stats().find((s) => s.streamId === 'flood')!;
    assert.ok(st.drops > 0, 'packets beyond the bound were dropped');
    assert.ok(warnings.some((w) => w.includes('slower than realtime')));
  });

  it('frames that waited longer than maxLagMs are dropped (newest wins) and the track resyncs on a key frame', async () => {
    await using pool = await SamplerPool.create({ workers: 1, maxLagMs: 500, videoFps: 30, sceneChange: false });
    const samples = collect(pool);
    const warnings: string[] = [];
    const requests: string[] = [];
    pool.on('warning', (m) => warnings.push(m));
    pool.on('keyframeNeeded', (s) => requests.push(s));
    const frames = encodeVideo(
      Array.from({ length: 20 }, (_, i) => testPicture(W, H, i)),
      { codec: 'VP8', width: W, height: H, keyframeInterval: 10 },
    );
    const packets = rtpizeVideo(frames, 'VP8', { streamId: 'stale' });
    const cut = packets.findIndex((p) => p.timestamp === 90000 + 10 * 3000);
    const stale = performance.timeOrigin + performance.now() - 5000; // as if they sat in a queue for 5 s
    for (const p of packets.slice(0, cut)) pool.push({ ...p, arrivedAt: stale });
    await waitFor(() => (requests.includes('stale') ? true : undefined), 20000, 'keyframe request');
    await waitFor(() => (pool.stats()[0]?.drops >= 10 ? true : undefined), 20000, 'stale frames dropped');
    assert.equal(videoOf(samples, 'stale').length, 0, 'nothing stale was sampled');
    pushLive(pool, packets.slice(cut));
    const fresh = await waitFor(
      () => (videoOf(samples, 'stale').length === 10 ? videoOf(samples, 'stale') : undefined),
      20000,
      'fresh samples',
    );
    assert.equal(fresh[0].rtpTimestamp, 90000 + 10 * 3000, 'resumes at the key frame');
    assert.ok(warnings.some((w) => w.includes('slower than realtime')));
  });

  it('releaseStream forgets the stream', async () => {
    await using pool = await SamplerPool.create({ workers: 1 });
    const samples = collect(pool);
    const frames = encodeVideo([testPicture(W, H, 0)], { codec: 'VP8', width: W, height: H });
    pushLive(pool, rtpizeVideo(frames, 'VP8', { streamId: 'gone' }));
    await waitFor(() => videoOf(samples, 'gone')[0], 20000, 'a sample');
    pool.releaseStream('gone');
    assert.equal(pool.stats().length, 0);
  });

  it('a stream that stops sending is released after idleReleaseMs', async () => {
    await using pool = await SamplerPool.create({ workers: 1, idleReleaseMs: 300 });
    const frames = encodeVideo([testPicture(W, H, 0)], { codec: 'VP8', width: W, height: H });
    pushLive(pool, rtpizeVideo(frames, 'VP8', { streamId: 'idle' }));
    assert.equal(pool.stats().length, 1);
    await waitFor(() => (pool.stats().length === 0 ? true : undefined), 10000, 'idle release');
  });
});

describe('SamplerPool worker crash', () => {
  it('a crashed worker is replaced and its streams resume from the next key frame', async () => {
    await using pool = await SamplerPool.create({ workers: 1, videoFps: 30, sceneChange: false, maxLagMs: 60000 });
    const samples = collect(pool);
    const warnings: string[] = [];
    const requests: string[] = [];
    pool.on('warning', (m) => warnings.push(m));
    pool.on('keyframeNeeded', (s) => requests.push(s));
    const workerEvents: string[] = [];
    pool.on('worker', (e) => workerEvents.push(`${e.type}:${e.worker}`));
    const frames = encodeVideo(
      Array.from({ length: 40 }, (_, i) => testPicture(W, H, i)),
      { codec: 'VP8', width: W, height: H, keyframeInterval: 20 },
    );
    const packets = rtpizeVideo(frames, 'VP8', { streamId: 'crashy' });
    const cut = packets.findIndex((p) => p.timestamp === 90000 + 10 * 3000);
    await pushPaced(pool, packets.slice(0, cut), 2);
    await waitFor(
      () => (videoOf(samples, 'crashy').length >= 10 ? true : undefined),
      20000,
      'ten samples before the crash',
    );
    pool.crashWorkerOf('crashy');
    await waitFor(() => (warnings.some((w) => w.includes('crashed')) ? true : undefined), 20000, 'crash warning');
    await waitFor(() => (requests.includes('crashy') ? true : undefined), 20000, 'keyframe request after the crash');
    const before = videoOf(samples, 'crashy').length;
    await pushPaced(pool, packets.slice(cut), 2);
    const after = await waitFor(
      () => {
        const v = videoOf(samples, 'crashy');
        return v.some((s) => s.rtpTimestamp === 90000 + 39 * 3000) ? v : undefined;
      },
      30000,
      'samples after the crash',
    );
    const resumed = after.slice(before).map((s) => (s.rtpTimestamp - 90000) / 3000);
    assert.equal(resumed[0], 20, `resumes at the key frame: ${resumed}`);
    assert.equal(resumed.length, 20);
    assert.deepEqual(
      workerEvents,
      ['crash:sampler-0', 'restart:sampler-0'],
      'the crash and the restart are reported once each',
    );
    assert.deepEqual(
      pool.workerStats().map((w) => [w.crashes, w.restarts, w.state]),
      [[1, 1, 'ready']],
    );
  });
});
