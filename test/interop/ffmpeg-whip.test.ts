// A third-party WHIP client in the suite: FFmpeg 8.1's own whip muxer (node-av's libavformat) publishes
// live H.264 + Opus with each DTLS role it has (its default a=setup:passive, and whip_flags=dtls_active,
// a=setup:active: before RFC 8842 roles in the werift engine both sides waited as DTLS clients), a
// WHEP viewer joins and decodes both, and FFmpeg's trailer DELETE ends the stream. Prints the figures:
// POST -> first RTP (ICE + DTLS), viewer POST -> first keyframe and -> first of FFmpeg's pictures (join to
// first frame; FFmpeg answers no PLI, so a joining viewer waits for its next 1 s GOP).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { WhepViewer } from '../../loadtest/clients/whep-viewer.ts';
import { ENGINES, decodePictures, startServer, until } from '../sfu/helpers.ts';
import { decodeOpus, startClient } from './helpers.ts';

const PUBLISHER = join(import.meta.dirname, 'ffmpeg-whip-publisher.ts');
const SECONDS = 8;

function now(): number {
  return performance.timeOrigin + performance.now();
}

for (const engine of ENGINES) {
  describe(`FFmpeg whip muxer [${engine}]`, () => {
    for (const role of ['passive', 'active'] as const) {
      test(`FFmpeg offering a=setup:${role} publishes H.264 + Opus; a WHEP viewer decodes both; its DELETE ends the stream`, async (t) => {
        await using srv = await startServer({ engine });
        await srv.sfu.slateReady;
        const id = `ffmpeg-${role}`;
        const startedAt = now();
        const client = startClient(
          PUBLISHER,
          [`${srv.base}/whip/${id}`, '--seconds', String(SECONDS), ...(role === 'active' ? ['--dtls-active'] : [])],
          (SECONDS + 30) * 1000,
        );
        let viewer: WhepViewer | undefined;
        try {
          // the child's start (tsx, encoders) takes a while on a loaded machine
          await until(
            () => srv.sfu.getStream(id) !== undefined || client.child.exitCode !== null,
            20_000,
            "FFmpeg's WHIP POST",
          );
          const stream = srv.sfu.getStream(id);
          assert.ok(stream, `FFmpeg's POST made no stream: ${client.stderr().slice(-600)}`);
          const liveAt = now();
          const firstRtp: { audio?: number; video?: number } = {};
          const sub = stream.tap.subscribe((p) => {
            firstRtp[p.kind] ??= now();
          });
          await until(
            () => (firstRtp.audio !== undefined && firstRtp.video !== undefined) || stream.closed,
            10_000,
            'RTP of both tracks from FFmpeg (ICE and DTLS done)',
          );
          sub.close();
          assert.ok(!stream.closed, 'the stream is live');
          const handshakeMs = Math.min(firstRtp.audio!, firstRtp.video!) - liveAt;

          const joinAt = now();
          viewer = await WhepViewer.connect({ url: `${srv.base}/whep/${id}`, recordPayloads: true });
          const v = viewer;
          assert.equal(v.codecOf.video, 'H264');
          assert.equal(v.codecOf.audio, 'opus');
          await v.waitFor(
            () => v.keyframes > 0 && v.count('audio') >= 50 && v.frames('video').length >= 45,
            15_000,
            'a keyframe, 45 video frames and 1 s of audio at the viewer',
          );
          const joinToFirstKeyframeMs = v.firstKeyframeAt! - joinAt;

          const frames = v.frames('video');
          const first = frames.findIndex((f) => f.keyframe);
          const decoded = decodePictures(
            'H264',
            frames.slice(first).map((f) => f.data),
          );
          // mediasoup's gate may show its slate layer (640 wide) until the live layer's next keyframe:
          // FFmpeg never answers PLI, so that is its next 1 s GOP
          const pictures = decoded.filter((p) => p.width === 320 && p.height === 240);
          assert.ok(
            pictures.length >= 10,
            `decoded ${pictures.length} of FFmpeg's 320x240 pictures (all: ${decoded.map((p) => p.width).join(',')})`,
          );
          // join to first frame: the first packet of the first of FFmpeg's pictures (one picture per frame: no B-frames)
          const firstLive = frames.slice(first)[decoded.findIndex((p) => p.width === 320)];
          const firstLiveAt = v.packets.find(
            (p) => p.kind === 'video' && p.timestamp === firstLive?.timestamp,
          )?.receivedAt;
          assert.ok(firstLiveAt !== undefined, 'the first live picture was received');
          const joinToFirstFrameMs = firstLiveAt - joinAt;
          const audio = decodeOpus(v.packets.filter((p) => p.kind === 'audio' && p.payload).map((p) => p.payload!));
          assert.ok(audio.samples >= 48_000, `decoded ${audio.samples} audio samples`);
          assert.ok(audio.rms > 0.05, `the 440 Hz tone is heard (RMS ${audio.rms.toFixed(3)})`);

          const code = await client.exited;
          assert.equal(code, 0, `FFmpeg publisher exit code (${client.stderr().slice(-600)})`);
          await until(() => srv.sfu.getStream(id) === undefined, 10_000, "the stream to end on FFmpeg's DELETE");
          t.diagnostic(
            JSON.stringify({
              engine,
              dtls: role,
              childStartToPostMs: Math.round(liveAt - startedAt),
              postToFirstRtpMs: Math.round(handshakeMs),
              joinToFirstKeyframeMs: Math.round(joinToFirstKeyframeMs),
              joinToFirstFrameMs: Math.round(joinToFirstFrameMs),
              pictures: pictures.length,
              audioSamples: audio.samples,
            }),
          );
        } finally {
          await viewer?.close();
          client.kill();
          await client.exited;
        }
      });
    }
  });
}
