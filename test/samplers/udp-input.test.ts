// SamplerPool.listenRtp: a track whose RTP comes by loopback UDP straight to its decode thread (what
// the mediasoup engine's tap links send), so that no packet of it crosses the main thread.
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { RtpHeader, RtpPacket } from 'werift';
import { SamplerPool } from '../../samplers/sampler-pool.ts';
import type { AudioSample, RtpPacketIn, Sample, VideoSample } from '../../samplers/types.ts';
import {
  dominantFrequency,
  encodeOpus,
  encodeVideo,
  psnr,
  rtpizeOpus,
  rtpizeVideo,
  testPicture,
  tone,
  waitFor,
  yuvToRgb,
} from './helpers.ts';

const W = 320;
const H = 240;

async function socket(): Promise<Socket> {
  const s = createSocket('udp4');
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  return s;
}

function wire(p: RtpPacketIn): Buffer {
  const header = new RtpHeader({
    payloadType: p.payloadType,
    sequenceNumber: p.sequenceNumber,
    timestamp: p.timestamp,
    marker: p.marker,
    ssrc: p.ssrc,
  });
  return new RtpPacket(header, Buffer.from(p.payload)).serialize();
}

/** Sends packets to 127.0.0.1:port in real time (by their arrivedAt offsets) times speed. */
async function sendPaced(from: Socket, port: number, packets: RtpPacketIn[], speed = 1): Promise<void> {
  const t0 = performance.now();
  const base = packets[0]!.arrivedAt;
  for (const p of packets) {
    const due = (p.arrivedAt - base) / speed - (performance.now() - t0);
    if (due > 1) await sleep(due);
    from.send(wire(p), port, '127.0.0.1');
  }
}

const videoOf = (samples: Sample[], streamId: string): VideoSample[] =>
  samples.filter((s): s is VideoSample => s.kind === 'video' && s.streamId === streamId);

describe('SamplerPool RTP by loopback UDP', () => {
  it('decodes what the announced source sends; other senders, RTCP and garbage are not taken', async () => {
    await using pool = await SamplerPool.create({ workers: 1, maxLagMs: 60000 });
    const samples: Sample[] = [];
    pool.on('sample', (s) => samples.push(s));
    const source = await socket();
    const rogue = await socket();
    try {
      const track = { streamId: 'udp', trackId: 'video', kind: 'video', codec: 'VP8', clockRate: 90000 } as const;
      const port = await pool.listenRtp(track, source.address().port);
      assert.ok(port > 0);
      await assert.rejects(pool.listenRtp(track, source.address().port), /already sampled/);

      // another local sender's keyframe of a different picture would be the first sample if it were taken
      const other = encodeVideo([testPicture(W, H, 0, 1)], { codec: 'VP8', width: W, height: H });
      for (const p of rtpizeVideo(other, 'VP8', { streamId: 'udp' })) rogue.send(wire(p), port, '127.0.0.1');
      const sr = Buffer.from([0x80, 200, 0, 6, 0, 0, 0x12, 0x34, ...new Array<number>(20).fill(0)]);
      source.send(sr, port, '127.0.0.1');
      source.send(Buffer.from([1, 2, 3]), port, '127.0.0.1');
      await sleep(100);

      const pictures = Array.from({ length: 10 }, () => testPicture(W, H, 0));
      const frames = encodeVideo(pictures, { codec: 'VP8', width: W, height: H, bitrateKbps: 2000 });
      await sendPaced(source, port, rtpizeVideo(frames, 'VP8', { streamId: 'udp', firstSeq: 3000 }), 3);
      const first = await waitFor(() => videoOf(samples, 'udp')[0], 20000, 'a sample of the UDP track');
      assert.equal(first.reason, 'first');
      assert.ok(psnr(first.rgb, yuvToRgb(pictures[0]!, W, H)) >= 30, 'the source picture');
      assert.ok(psnr(first.rgb, yuvToRgb(testPicture(W, H, 0, 1), W, H)) < 30, 'not the other sender');

      const stats = await waitFor(
        () => pool.stats().find((s) => s.streamId === 'udp' && s.frames >= 10),
        5000,
        'the thread counting the 10 frames',
      );
      assert.equal(stats.drops, 1, 'the garbage datagram (RTCP and foreign packets are not drops)');
      const last = pool.rtpLastPacketAt('udp', 'video');
      assert.ok(last !== undefined && performance.timeOrigin + performance.now() - last < 5000, `last packet ${last}`);
      assert.equal(pool.rtpLastPacketAt('udp', 'audio'), undefined);
      assert.equal(pool.rtpLastPacketAt('nope', 'video'), undefined);
    } finally {
      source.close();
      rogue.close();
    }
  });

  it('Opus windows by UDP; a released stream stops listening', async () => {
    await using pool = await SamplerPool.create({ workers: 1, maxLagMs: 60000 });
    const samples: Sample[] = [];
    pool.on('sample', (s) => samples.push(s));
    const source = await socket();
    try {
      const track = { streamId: 'udpa', trackId: 'audio', kind: 'audio', codec: 'opus', clockRate: 48000 } as const;
      const port = await pool.listenRtp(track, source.address().port);
      await sendPaced(source, port, rtpizeOpus(encodeOpus(tone(440, 2.2)), { streamId: 'udpa' }), 4);
      const windows = await waitFor(
        () => {
          const w = samples.filter((s): s is AudioSample => s.kind === 'audio');
          return w.length >= 2 ? w : undefined;
        },
        20000,
        'two audio windows',
      );
      assert.ok(Math.abs(dominantFrequency(windows[0]!.pcm, 16000) - 440) <= 3);
      pool.releaseStream('udpa');
      assert.ok(await portFreed(port), `port ${port} released with the stream`);
    } finally {
      source.close();
    }
  });

  it('a restarted decode thread listens on the same port; while it is down packets count as flowing', async () => {
    await using pool = await SamplerPool.create({ workers: 1, maxLagMs: 60000 });
    const samples: Sample[] = [];
    const requests: string[] = [];
    pool.on('sample', (s) => samples.push(s));
    pool.on('keyframeNeeded', (streamId) => requests.push(streamId));
    const source = await socket();
    try {
      const track = { streamId: 'udpc', trackId: 'video', kind: 'video', codec: 'VP8', clockRate: 90000 } as const;
      const port = await pool.listenRtp(track, source.address().port);
      const pictures = Array.from({ length: 40 }, (_, i) => testPicture(W, H, i));
      const frames = encodeVideo(pictures, { codec: 'VP8', width: W, height: H, keyframeInterval: 20 });
      const packets = rtpizeVideo(frames, 'VP8', { streamId: 'udpc' });
      const cut = packets.findIndex((p) => p.timestamp === 90000 + 20 * 3000);
      await sendPaced(source, port, packets.slice(0, cut), 3);
      await waitFor(() => videoOf(samples, 'udpc')[0], 20000, 'a sample before the crash');
      pool.crashWorkerOf('udpc');
      const down = await waitFor(
        () => (pool.workerStats()[0]!.state !== 'ready' ? pool.rtpLastPacketAt('udpc', 'video') : undefined),
        20000,
        'the thread down',
      );
      assert.ok(performance.timeOrigin + performance.now() - down < 1000, 'taken as flowing while the thread is down');
      await waitFor(() => (pool.workerStats()[0]!.state === 'ready' ? true : undefined), 20000, 'the restart');
      await waitFor(() => (requests.includes('udpc') ? true : undefined), 20000, 'a keyframe request after it');
      const before = videoOf(samples, 'udpc').length;
      // the restarted thread binds again (asynchronously): the key frame's GOP, sent until it samples,
      // each time with new sequence numbers and timestamps like a publisher's next key frame
      let after: VideoSample[] = [];
      for (let i = 0; i < 20 && after.length <= before; i++) {
        const gop = rtpizeVideo(frames.slice(20), 'VP8', {
          streamId: 'udpc',
          firstSeq: 10000 + i * 100,
          firstTimestamp: 90000 + (20 + i * 20) * 3000,
        });
        await sendPaced(source, port, gop, 5);
        await sleep(200);
        after = videoOf(samples, 'udpc');
      }
      assert.ok(after.length > before, 'a sample after the restart, on the same port');
      assert.ok((after[before]!.rtpTimestamp - 90000) / 3000 >= 20, 'from the key frame on');
    } finally {
      source.close();
    }
  });
});

/** Whether 127.0.0.1:port can be bound (within 5 s): its listener closed. */
async function portFreed(port: number): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    const free = await new Promise<boolean>((resolve) => {
      const probe = createSocket('udp4');
      probe.once('error', () => {
        probe.close();
        resolve(false);
      });
      probe.bind(port, '127.0.0.1', () => probe.close(() => resolve(true)));
    });
    if (free) return true;
    await sleep(50);
  }
  return false;
}
