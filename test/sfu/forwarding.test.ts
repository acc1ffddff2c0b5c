// Synthetic publishers and viewers (werift, no browser) through the real WHIP/WHEP routes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WhipPublisher, syntheticClip } from '../../loadtest/clients/whip-publisher.ts';
import { WhepViewer } from '../../loadtest/clients/whep-viewer.ts';
import { WhipHttpError } from '../../loadtest/clients/peer.ts';
import type { TapPacket } from '../../sfu/types.ts';
import { vp8FrameSize } from '../../media/vp8.ts';
import { ENGINES, decodePictures, sleep, startServer, until } from './helpers.ts';
import type { TestServer } from './helpers.ts';

/** Width of a VP8 keyframe, undefined for inter frames. */
const vp8Width = (frame: Uint8Array): number | undefined => vp8FrameSize(frame)?.width;

for (const engine of ENGINES)
  describe(`forwarding (VP8 + Opus) [${engine}]`, () => {
    let srv: TestServer;
    let pub: WhipPublisher;
    const viewers: WhepViewer[] = [];
    const deleted = new Set<WhepViewer>();
    const streamId = 'fwd';

    before(async () => {
      srv = await startServer({
        engine,
        routes: {
          authorizeView: (req) => ({ jurisdiction: req.headers.authorization?.replace(/^Bearer /, '') || undefined }),
          initialGate: (_id, jurisdiction) => (jurisdiction === 'SA' ? { video: 'blank' } : undefined),
        },
      });
      await srv.sfu.slateReady;
      const clip = await syntheticClip({ codec: 'VP8', keyframeInterval: 60 });
      pub = await WhipPublisher.connect({ url: `${srv.base}/whip/${streamId}`, ...clip });
      pub.start();
    });

    after(async () => {
      for (const v of viewers) await v.close();
      await pub?.stop();
      await srv?.close();
    });

    const join = async (opts: Partial<Parameters<typeof WhepViewer.connect>[0]> = {}): Promise<WhepViewer> => {
      const v = await WhepViewer.connect({ url: `${srv.base}/whep/${streamId}`, ...opts });
      viewers.push(v);
      return v;
    };
    const sfuViewer = (n: number) => [...srv.sfu.getStream(streamId)!.viewers.values()][n]!;

    test('several viewers each get video starting at a keyframe, and audio', async () => {
      const vs = await Promise.all([join(), join(), join()]);
      for (const v of vs) {
        await v.waitFor(
          () => v.keyframes > 0 && v.count('video') > 30 && v.count('audio') > 20,
          15_000,
          'media at each viewer',
        );
        const firstVideo = v.packets.find((p) => p.kind === 'video')!;
        assert.ok(firstVideo.keyframeStart, 'the first video packet a viewer gets starts a keyframe');
        assert.equal(v.codecOf.video, 'VP8');
        assert.equal(v.codecOf.audio, 'opus');
      }
      assert.equal(srv.sfu.getStream(streamId)!.viewers.size, 3);
    });

    test('a late joiner gets a keyframe although the publisher sends one only every 2 s', async () => {
      await sleep(300);
      const t0 = performance.now();
      const v = await join();
      await v.waitFor(() => v.keyframes > 0, 10_000, 'keyframe at the late joiner');
      assert.ok(pub.pliReceived > 0, 'the SFU asked the publisher for a keyframe');
      assert.ok(v.packets.find((p) => p.kind === 'video')!.keyframeStart);
      void t0;
    });

    test('pause stops both kinds, resume restarts at a keyframe with contiguous sequence numbers', async () => {
      const v = await join();
      await v.waitFor(() => v.count('video') > 20, 10_000, 'video before pause');
      const sv = sfuViewer(srv.sfu.getStream(streamId)!.viewers.size - 1);
      sv.pause();
      assert.equal(sv.paused, true);
      await sleep(200);
      const before = { video: v.count('video'), audio: v.count('audio') };
      await sleep(600);
      assert.deepEqual({ video: v.count('video'), audio: v.count('audio') }, before, 'nothing arrives while paused');
      const mark = v.packets.length;
      sv.resume();
      await v.waitFor(
        () => v.count('video') > before.video + 20 && v.count('audio') > before.audio + 10,
        10_000,
        'media after resume',
      );
      const afterVideo = v.packets.slice(mark).filter((p) => p.kind === 'video');
      assert.ok(afterVideo[0]!.keyframeStart, 'video resumes on a keyframe');
      const lastBefore = v.packets
        .slice(0, mark)
        .filter((p) => p.kind === 'video')
        .at(-1)!;
      assert.equal(afterVideo[0]!.seq, (lastBefore.seq + 1) & 0xffff, 'no sequence gap the decoder would NACK');
    });

    test('blank sends decodable slate keyframes, then back to the source on a keyframe', async () => {
      const v = await join({ recordPayloads: true });
      await v.waitFor(() => v.count('video') > 20, 10_000, 'video before blank');
      const sv = [...srv.sfu.getStream(streamId)!.viewers.values()].at(-1)!;
      const gates: string[] = [];
      sv.on('gate', (g) => gates.push(g.video));
      const blankAt = performance.timeOrigin + performance.now();
      sv.setVideoGate('blank');
      assert.equal(sv.gate.video, 'blank');
      const isSlateFrame = (f: { keyframe: boolean; data: Uint8Array }) => f.keyframe && vp8Width(f.data) === 640;
      // werift switches at once. mediasoup's gate switches layers on the next slate keyframe, and only
      // once the worker has the slate layer's clock (three sender reports, ~2-3 s after a stream starts)
      await until(() => v.frames('video', blankAt + 50).filter(isSlateFrame).length >= 3, 10_000, 'three slate frames');
      await sleep(1000);
      const after = v.frames('video', blankAt + 50);
      const switchAt = after.findIndex(isSlateFrame);
      if (engine === 'werift') assert.equal(switchAt, 0, 'no source frame after the blank');
      const slate = after.slice(switchAt);
      assert.ok(slate.every(isSlateFrame), 'only slate keyframes once the slate is on');
      const spanS = ((slate.at(-1)!.timestamp - slate[0]!.timestamp) >>> 0) / 90_000;
      const fps = engine === 'mediasoup' ? 1 : 2; // mediasoup: the idle rate, plus the frame the blank kicked
      assert.ok(
        slate.length <= spanS * fps + 2,
        `slate frames at a low rate (${slate.length} in ${spanS.toFixed(2)} s)`,
      );
      const pics = decodePictures('VP8', [slate[0]!.data]);
      assert.equal(pics.length, 1, 'the first slate frame decodes on its own');
      assert.equal(pics[0]!.width, 640);
      assert.ok(
        pics[0]!.meanLuma < 90 && pics[0]!.brightShare > 0.01,
        `looks like the slate: ${JSON.stringify(pics[0])}`,
      );
      const backAt = performance.timeOrigin + performance.now();
      sv.setVideoGate('forward');
      await v.waitFor(
        () => v.packets.filter((p) => p.kind === 'video' && p.receivedAt > backAt + 20).length > 30,
        10_000,
        'source video again',
      );
      const isSlate = (f: { data: Uint8Array }) =>
        slate.some((x) => Buffer.compare(Buffer.from(x.data), Buffer.from(f.data)) === 0);
      const back = v.frames('video', backAt).filter((f) => !isSlate(f));
      assert.ok(back[0]!.keyframe, 'back to the source on a keyframe');
      const srcPics = decodePictures(
        'VP8',
        back.slice(0, 10).map((f) => f.data),
      );
      assert.equal(srcPics[0]!.width, 320, 'the source picture again');
      assert.deepEqual(gates, ['blank', 'forward']);
    });

    test('mute stops audio only; unmute brings it back', async () => {
      const v = await join();
      await v.waitFor(() => v.count('audio') > 10, 10_000, 'audio');
      const sv = [...srv.sfu.getStream(streamId)!.viewers.values()].at(-1)!;
      sv.setAudioGate('mute');
      await sleep(200);
      const a = v.count('audio');
      const vid = v.count('video');
      await sleep(600);
      assert.equal(v.count('audio'), a, 'no audio while muted');
      assert.ok(v.count('video') > vid + 5, 'video keeps flowing');
      sv.setAudioGate('forward');
      await v.waitFor(() => v.count('audio') > a + 10, 5000, 'audio after unmute');
    });

    test('a viewer whose jurisdiction starts blanked (initialGate) never sees a source frame', async () => {
      const v = await join({ token: 'SA', recordPayloads: true });
      await sleep(1500);
      const sv = [...srv.sfu.getStream(streamId)!.viewers.values()].at(-1)!;
      assert.equal(sv.jurisdiction, 'SA');
      assert.deepEqual(sv.gate, { video: 'blank', audio: 'forward' });
      const frames = v.frames('video');
      assert.ok(frames.length >= 2, `slate frames (${frames.length})`);
      const pics = decodePictures(
        'VP8',
        frames.map((f) => f.data),
      );
      assert.ok(pics.length >= 2 && pics.every((p) => p.width === 640), 'only slate pictures were decodable');
      assert.ok(v.count('audio') > 20, 'audio flows');
    });

    test('codec mismatch: a viewer offering only H264 for a VP8 stream is refused with a coded 406', async () => {
      await assert.rejects(
        WhepViewer.connect({ url: `${srv.base}/whep/${streamId}`, codecs: ['H264'] }),
        (err: unknown) => {
          assert.ok(err instanceof WhipHttpError);
          assert.equal(err.status, 406);
          assert.equal(err.code, 'SFU_ERR_NO_COMMON_CODEC');
          assert.match(err.body, /VP8/);
          return true;
        },
      );
    });

    test('the tap hands plain copies to subscribers; a slow subscriber loses packets, forwarding does not', async () => {
      const stream = srv.sfu.getStream(streamId)!;
      const got: TapPacket[] = [];
      const fast = stream.tap.subscribe((p) => got.push(p), { capacity: 4096 });
      let slowCalls = 0;
      const slow = stream.tap.subscribe(
        () => {
          slowCalls++;
          const end = performance.now() + 30;
          while (performance.now() < end);
        },
        { capacity: 8, kinds: ['video'] },
      );
      const v = viewers[0]!;
      const before = v.count('video');
      await sleep(1500);
      fast.close();
      slow.close();
      assert.ok(got.length > 50, `tap delivered ${got.length}`);
      const p = got.find((x) => x.kind === 'video')!;
      assert.equal(p.streamId, streamId);
      assert.equal(p.codec, 'VP8');
      assert.equal(p.clockRate, 90000);
      assert.ok(p.payload instanceof Uint8Array && p.payload.length > 0);
      assert.ok(got.some((x) => x.kind === 'audio' && x.codec === 'opus'));
      assert.ok(slow.dropped > 0, `slow subscriber dropped ${slow.dropped}`);
      assert.ok(slowCalls > 0);
      assert.ok(v.count('video') > before + 20, 'viewers kept receiving meanwhile');
      assert.equal(fast.dropped, 0);
    });

    test('DELETE of a viewer session ends only that viewer; 404 for an unknown session', async () => {
      const v = await join();
      const n = srv.sfu.getStream(streamId)!.viewers.size;
      const res = await fetch(v.location, { method: 'DELETE' });
      deleted.add(v);
      await v.ended; // the SFU told the client (DTLS close_notify)
      assert.equal(res.status, 200);
      await until(() => srv.sfu.getStream(streamId)!.viewers.size === n - 1, 5000, 'viewer removed');
      const again = await fetch(v.location, { method: 'DELETE' });
      assert.equal(again.status, 404);
      assert.equal(((await again.json()) as { code: string }).code, 'SFU_ERR_SESSION_NOT_FOUND');
    });

    test('kill: stream.close ends the publisher and every viewer, with the reason', async () => {
      const stream = srv.sfu.getStream(streamId)!;
      const reasons: string[] = [];
      for (const sv of stream.viewers.values()) sv.on('close', (r) => reasons.push(r.code));
      const live = viewers.filter((v) => !deleted.has(v));
      assert.equal(live.length, stream.viewers.size);
      const t0 = performance.now();
      stream.close({ code: 'killed', message: 'policy', statementId: 'sor-1' });
      assert.equal(stream.closed, true);
      assert.equal(srv.sfu.getStream(streamId), undefined);
      await Promise.all([pub.ended, ...live.map((v) => v.ended)]);
      const ms = performance.now() - t0;
      assert.ok(reasons.length >= live.length, `${reasons.length} close events for ${live.length} live viewers`);
      assert.deepEqual(new Set(reasons), new Set(['killed']));
      assert.ok(ms < 3000, `clients noticed in ${ms.toFixed(0)} ms (without close_notify it takes ~30 s)`);
      const res = await fetch(`${srv.base}/whep/${streamId}`, {
        method: 'POST',
        headers: { 'content-type': 'application/sdp' },
        body: 'v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n',
      });
      assert.equal(res.status, 404);
    });
  });
