// What only the mediasoup engine has: viewers spread over worker processes (pipeToRouter), and a
// worker that dies mid-stream (the server survives, the stream ends with 'error', a new worker
// takes its place and a new stream works). The shared suites (forwarding, H.264, lip sync, bad
// input, Chromium) run on this engine too.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { getPriority } from 'node:os';
import { isKeyframeStart } from '../../media/keyframe.ts';
import { isRtcp, rtpView } from '../../media/rtp.ts';
import { WhipPublisher, syntheticClip } from '../../loadtest/clients/whip-publisher.ts';
import { WhepViewer } from '../../loadtest/clients/whep-viewer.ts';
import { createMediasoupSfu, mediasoupWorkerBin } from '../../sfu/mediasoup/index.ts';
import type { MediasoupSfu } from '../../sfu/mediasoup/index.ts';
import { procSched } from '../../sfu/mediasoup/workers.ts';
import { SlateSource } from '../../sfu/mediasoup/slate.ts';
import { routerCodec } from '../../sfu/mediasoup/sdp.ts';
import { Slates } from '../../sfu/slate.ts';
import type { MediaWorker } from '../../sfu/mediasoup/workers.ts';
import type { MediasoupStream } from '../../sfu/mediasoup/stream.ts';
import type { MediasoupViewer } from '../../sfu/mediasoup/viewer.ts';
import type { CloseReason } from '../../sfu/types.ts';
import { pageRoutes, webrtcRoutes } from '../../server/routes/webrtc.ts';
import Fastify from 'fastify';
import { RTCPeerConnection, RTCRtpCodecParameters, useNACK, usePLI, useSdesMid } from 'werift';
import type { MediaStreamTrack, RtpPacket } from 'werift';
import { loopbackIce, gatheredOffer, postOffer, waitConnected } from '../../loadtest/clients/peer.ts';
import type { FastifyInstance } from 'fastify';
import { ENGINES, sleep, until } from './helpers.ts';

const skip = ENGINES.includes('mediasoup') ? false : 'MEDIASOUP_WORKER_OPTIONAL=1 and no mediasoup worker binary';

describe('mediasoup engine: workers', { skip }, () => {
  let sfu: MediasoupSfu;
  let app: FastifyInstance;
  let base: string;
  const open: { close(): Promise<void> }[] = [];

  before(async () => {
    assert.ok(mediasoupWorkerBin(), 'a mediasoup worker binary (npm run mediasoup:worker)');
    // homeBias 0: every viewer goes to the least loaded worker, so a second viewer is piped to the other one
    sfu = await createMediasoupSfu({ workers: 2, homeBias: 0, connectTimeoutMs: 8000, listenAddress: '127.0.0.1' });
    app = Fastify({ logger: false });
    await app.register(webrtcRoutes, { sfu });
    await app.register(pageRoutes);
    await app.listen({ host: '127.0.0.1', port: 0 });
    const addr = app.server.address();
    base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  });

  after(async () => {
    for (const x of open.reverse()) await x.close().catch(() => undefined);
    await sfu?.close();
    await app?.close();
  });

  const publish = async (id: string): Promise<WhipPublisher> => {
    const pub = await WhipPublisher.connect({ url: `${base}/whip/${id}`, ...(await syntheticClip({ codec: 'VP8' })) });
    open.push({ close: () => pub.stop() });
    pub.start();
    return pub;
  };
  const watch = async (id: string): Promise<WhepViewer> => {
    const v = await WhepViewer.connect({ url: `${base}/whep/${id}` });
    open.push({ close: () => v.close() });
    return v;
  };

  test('tap.openRtp: each track as plain RTP over loopback UDP from the worker, from the announced port, until the stream closes', async () => {
    await publish('rtplink');
    const stream = sfu.getStream('rtplink')!;
    assert.ok(stream.tap.openRtp, 'the mediasoup engine has RTP links');
    const got = new Map<
      string,
      { packets: number; keyframes: number; foreign: number; ssrcs: Set<number>; pts: Set<number> }
    >();
    const sockets = [];
    const starts = [];
    for (const track of stream.tracks) {
      const link = await stream.tap.openRtp(track.trackId);
      const sock = createSocket('udp4');
      sockets.push(sock);
      const seen = { packets: 0, keyframes: 0, foreign: 0, ssrcs: new Set<number>(), pts: new Set<number>() };
      got.set(track.kind, seen);
      sock.on('message', (msg, from) => {
        if (from.port !== link.sourcePort || isRtcp(msg)) return void seen.foreign++;
        const rtp = rtpView(msg);
        if (!rtp) return;
        seen.packets++;
        seen.ssrcs.add(rtp.ssrc);
        seen.pts.add(rtp.pt);
        if (isKeyframeStart(track.codec, rtp.payload)) seen.keyframes++;
      });
      await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
      starts.push({ seen, sent: await link.start(sock.address().port) });
      await assert.rejects(link.start(sock.address().port), /already started/);
    }
    try {
      const video = got.get('video')!;
      const audio = got.get('audio')!;
      await until(() => video.keyframes > 0 && video.packets > 50 && audio.packets > 20, 15_000, 'RTP of both tracks');
      for (const { seen, sent } of starts) {
        assert.deepEqual([...seen.ssrcs], [sent.ssrc], 'one SSRC, the one start() named');
        assert.deepEqual([...seen.pts], [sent.payloadType]);
      }
      stream.close({ code: 'killed', message: 'test' });
      await new Promise((r) => setTimeout(r, 300));
      const n = video.packets + audio.packets;
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(video.packets + audio.packets, n, 'no packet after the stream closed');
      await assert.rejects(stream.tap.openRtp(stream.tracks[0]!.trackId), /closed/);
    } finally {
      for (const sock of sockets) sock.close();
    }
  });

  test('viewers spread over both workers and each gets media; gates work on the piped copy', async () => {
    await publish('spread');
    const viewers = [await watch('spread'), await watch('spread'), await watch('spread'), await watch('spread')];
    for (const v of viewers)
      await v.waitFor(
        () => v.keyframes > 0 && v.count('video') > 20 && v.count('audio') > 10,
        15_000,
        'media at each viewer',
      );
    const sv = [...sfu.getStream('spread')!.viewers.values()] as MediasoupViewer[];
    const workers = new Set(sv.map((v) => v.worker.index));
    assert.equal(workers.size, 2, `viewers on both workers (${[...workers].join(', ')})`);
    const home = (sfu.getStream('spread') as MediasoupStream).worker.index;
    const piped = sv.findIndex((v) => v.worker.index !== home);
    assert.ok(piped >= 0);
    const v = viewers[piped]!;
    sv[piped]!.setAudioGate('mute');
    await new Promise((r) => setTimeout(r, 300));
    const a = v.count('audio');
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(v.count('audio'), a, 'no audio at the muted viewer on the other worker');
    const other = viewers[(piped + 1) % viewers.length]!;
    const o = other.count('audio');
    await other.waitFor(() => other.count('audio') > o + 10, 5000, 'audio at the others');
    sv[piped]!.setAudioGate('forward');
    await v.waitFor(() => v.count('audio') > a + 10, 5000, 'audio again after unmute');
    const stats = await sfu.engineStats();
    assert.equal(stats.workers, 2);
    assert.ok(stats.consumers >= 8, `consumers ${stats.consumers}`);
    assert.ok(stats.packetsForwarded > 100, `packets forwarded ${stats.packetsForwarded}`);
    assert.ok(stats.workerCpuMs > 0, 'worker CPU is reported');
  });

  test('a viewer whose offer maps other payload types receives with its own (RFC 3264 6.1), from its own edition', async () => {
    await publish('pts');
    // VP8 as 100 and Opus as 109, where the publisher (and mediasoup's router for it) use 96 and 111
    const pc = new RTCPeerConnection({
      ...loopbackIce(),
      codecs: {
        video: [
          new RTCRtpCodecParameters({
            mimeType: 'video/VP8',
            clockRate: 90000,
            payloadType: 100,
            rtcpFeedback: [useNACK(), usePLI()],
          }),
        ],
        audio: [new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2, payloadType: 109 })],
      },
      headerExtensions: { video: [useSdesMid()], audio: [useSdesMid()] },
    });
    open.push({ close: () => pc.close() });
    const got = { video: new Set<number>(), audio: new Set<number>(), videoPackets: 0, audioPackets: 0 };
    pc.onTrack.subscribe((track: MediaStreamTrack) => {
      track.onReceiveRtp.subscribe((rtp: RtpPacket) => {
        const kind = track.kind === 'video' ? 'video' : 'audio';
        got[kind].add(rtp.header.payloadType);
        if (kind === 'video') got.videoPackets++;
        else got.audioPackets++;
      });
    });
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    const { answer } = await postOffer(`${base}/whep/pts`, await gatheredOffer(pc));
    assert.match(answer, /a=rtpmap:100 VP8\/90000/);
    assert.match(answer, /a=rtpmap:109 opus\/48000\/2/);
    assert.doesNotMatch(answer, /a=rtpmap:96 /, "the answer keeps the viewer's payload types");
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    await waitConnected(pc, 10_000);
    await until(() => got.videoPackets > 30 && got.audioPackets > 20, 15_000, "media with the viewer's payload types");
    assert.deepEqual([...got.video], [100]);
    assert.deepEqual([...got.audio], [109]);
  });

  test('a worker killed mid-stream: its stream ends with error, the server keeps serving, a new stream works', async () => {
    const pub = await publish('doomed');
    const v = await watch('doomed');
    await v.waitFor(() => v.count('video') > 20, 15_000, 'media before the kill');
    const stream = sfu.getStream('doomed')!;
    const reasons: CloseReason[] = [];
    stream.on('close', (r) => reasons.push(r));
    const viewerReasons: CloseReason[] = [];
    for (const sv of stream.viewers.values()) sv.on('close', (r) => viewerReasons.push(r));
    const victim = (stream as MediasoupStream).worker;
    const deathsBefore = sfu.pool.deaths;
    process.kill(victim.pid, 'SIGKILL');
    await until(() => reasons.length > 0, 10_000, 'the stream to close');
    assert.equal(reasons[0]!.code, 'error');
    assert.match(reasons[0]!.message, /worker/);
    assert.ok(
      viewerReasons.length > 0 && viewerReasons.every((r) => r.code === 'error'),
      `viewer reasons ${JSON.stringify(viewerReasons)}`,
    );
    assert.equal(sfu.getStream('doomed'), undefined);
    assert.equal(sfu.pool.deaths, deathsBefore + 1);
    await until(
      () => sfu.pool.workers.length === 2 && sfu.pool.workers.every((w) => w.pid !== victim.pid),
      15_000,
      'a replacement worker',
    );
    await pub.stop();
    // the publisher may reconnect at once, and new viewers get media (on either worker, the new one too)
    await publish('doomed');
    const after = [await watch('doomed'), await watch('doomed')];
    for (const x of after)
      await x.waitFor(() => x.count('video') > 20 && x.count('audio') > 10, 15_000, 'media after the replacement');
  });
});

describe('mediasoup engine: workers at real-time priority (MEDIASOUP_REALTIME_PRIORITY)', { skip }, () => {
  // policy 2 = SCHED_RR, 0 = normal
  const scheduling = (pid: number): { rtPriority: number; policy: number } => {
    const s = procSched(pid);
    assert.ok(s, `/proc/${pid}/stat`);
    return { rtPriority: s.rtPriority, policy: s.policy };
  };

  test('every worker, a replacement too, runs SCHED_RR at the priority asked, or keeps nice and says so', async () => {
    const sfu = await createMediasoupSfu({ workers: 1, workerRealtimePriority: 7, listenAddress: '127.0.0.1' });
    try {
      const permitted = sfu.pool.scheduling.startsWith('SCHED_RR 7 ');
      const expected = permitted ? { rtPriority: 7, policy: 2 } : { rtPriority: 0, policy: 0 };
      if (!permitted) assert.match(sfu.pool.scheduling, /^nice /);
      const first = sfu.pool.workers[0]!;
      assert.deepEqual(scheduling(first.pid), expected);
      const replaced = new Promise<MediaWorker>((resolve) => sfu.pool.on('replaced', resolve));
      process.kill(first.pid, 'SIGKILL');
      const fresh = await Promise.race([
        replaced,
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error('no replacement worker within 20 s')), 20_000).unref(),
        ),
      ]);
      assert.notEqual(fresh.pid, first.pid);
      assert.deepEqual(scheduling(fresh.pid), expected);
    } finally {
      await sfu.close();
    }
  });

  test('a priority outside 0-99 is refused, and so is a share of a core outside (0, 1]', async () => {
    await assert.rejects(createMediasoupSfu({ workers: 1, workerRealtimePriority: 100 }), /0-99/);
    await assert.rejects(createMediasoupSfu({ workers: 1, realtimeMaxCpu: 0 }), /share of one core/);
    await assert.rejects(createMediasoupSfu({ workers: 1, realtimeMaxCpu: 1.5 }), /share of one core/);
  });

  test('the guard: a real-time worker that takes more than its share of a core goes back to nice -10, and gets SCHED_RR back once it stays calm', async (t) => {
    const sfu = await createMediasoupSfu({
      workers: 1,
      workerRealtimePriority: 7,
      realtimeMaxCpu: 0.1,
      realtimeWindowMs: 250,
      realtimeRestoreMs: 750,
      listenAddress: '127.0.0.1',
    });
    try {
      if (!sfu.pool.scheduling.startsWith('SCHED_RR'))
        return t.skip('real-time scheduling refused here (no CAP_SYS_NICE)');
      const w = sfu.pool.workers[0]!;
      assert.deepEqual(scheduling(w.pid), { rtPriority: 7, policy: 2 });
      assert.equal((await sfu.engineStats()).realtimeWorkers, 1);
      const changes: { realtime: boolean; cpuShare: number }[] = [];
      sfu.pool.on('realtime', (_w, c) => changes.push(c));
      // work the worker hard (routers made and closed as fast as it answers) until the guard steps in
      const codecs = [
        { kind: 'audio' as const, mimeType: 'audio/opus', clockRate: 48000, channels: 2 },
        { kind: 'video' as const, mimeType: 'video/VP8', clockRate: 90000 },
      ];
      const deadline = Date.now() + 20_000;
      while (!changes.length && Date.now() < deadline) {
        const routers = await Promise.all(
          Array.from({ length: 50 }, () => w.worker.createRouter({ mediaCodecs: codecs })),
        );
        for (const r of routers) r.close();
      }
      assert.equal(changes[0]?.realtime, false, 'no demotion within 20 s of a busy worker');
      assert.ok(changes[0]!.cpuShare > 0.1, `share ${changes[0]!.cpuShare}`);
      assert.deepEqual(scheduling(w.pid), { rtPriority: 0, policy: 0 });
      assert.equal(getPriority(w.pid), -10, 'the demoted worker keeps its nice value');
      const stats = await sfu.engineStats();
      assert.equal(stats.realtimeWorkers, 0);
      assert.equal(stats.realtimeDemotions, 1);
      // idle again: back to real-time priority after 750 ms under 5 %
      await until(() => changes.length >= 2, 15_000, 'SCHED_RR given back to the calm worker');
      assert.equal(changes[1]!.realtime, true);
      assert.deepEqual(scheduling(w.pid), { rtPriority: 7, policy: 2 });
      assert.equal((await sfu.engineStats()).realtimeWorkers, 1);
    } finally {
      await sfu.close();
    }
  });
});

describe('mediasoup engine: the slate feed', { skip }, () => {
  test('a kick sends a slate frame at once, and a burst of kicks sends one more, not one each', async () => {
    const sfu = await createMediasoupSfu({ workers: 1, listenAddress: '127.0.0.1' });
    const slates = new Slates();
    await slates.ready;
    // an idle frame every 10 s: every frame seen below within a few seconds was kicked
    const source = new SlateSource({ fps: 0.1, frames: (codec) => slates.get(codec) });
    try {
      const worker = sfu.pool.workers[0]!;
      const codec = { kind: 'video' as const, name: 'VP8' as const, payloadType: 96, clockRate: 90000, fmtp: '' };
      const router = await worker.worker.createRouter({ mediaCodecs: [routerCodec(codec)] });
      const producer = await source.pipeInto(worker, router, codec);
      const direct = await router.createDirectTransport();
      const consumer = await direct.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities });
      let frames = 0;
      consumer.on('rtp', (packet) => {
        if (rtpView(packet)?.marker) frames++;
      });
      source.kick(worker, codec);
      await until(() => frames === 1, 5000, 'the kicked slate frame');
      await sleep(300);
      for (let i = 0; i < 10; i++) source.kick(worker, codec);
      await sleep(1500);
      assert.equal(frames, 3, 'ten kicks at once: a frame at once and one 100 ms later');
      source.kick(worker, { ...codec, name: 'H264', fmtp: 'packetization-mode=1;profile-level-id=42e01f' });
      await sleep(300);
      assert.equal(frames, 3, 'a codec without a feed on that worker: nothing');
    } finally {
      source.close();
      await sfu.close();
    }
  });
});
