// OBS Studio's WHIP output, as a werift client shaped like it (test/interop/obs-publisher.ts): audio mid
// 0, video mid 1, H.264 announced as 42e01f while x264 sends High profile, no RTX, sdes:mid +
// rtp-stream-id. The server must answer it (201 + Location + a non-empty answer), forward what a WHEP
// viewer decodes, hand the moderation samplers decodable High-profile pictures and audio (they decode
// by the bitstream, not by the SDP's profile), and answer OBS's DELETE with 200.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WhepViewer } from '../../loadtest/clients/whep-viewer.ts';
import { SamplerPool } from '../../samplers/sampler-pool.ts';
import type { AudioSample, Sample, VideoSample } from '../../samplers/types.ts';
import { parseOffer } from '../../sfu/sdp.ts';
import { ENGINES, decodePictures, startServer, until } from '../sfu/helpers.ts';
import { ObsShapedPublisher } from './obs-publisher.ts';

/** profile_idc of the first SPS in an Annex-B access unit, or undefined. */
function spsProfile(au: Uint8Array): number | undefined {
  for (let i = 0; i + 4 < au.length; i++) {
    if (au[i] === 0 && au[i + 1] === 0 && au[i + 2] === 1 && (au[i + 3]! & 0x1f) === 7) return au[i + 4];
  }
  return undefined;
}

for (const engine of ENGINES) {
  describe(`OBS-shaped WHIP publisher [${engine}]`, () => {
    test('High profile negotiated as 42e01f: answered, viewed, decoded, sampled; DELETE answers 200', async () => {
      await using srv = await startServer({ engine });
      await srv.sfu.slateReady;
      const pool = await SamplerPool.create({ workers: 1, maxLagMs: 60_000 });
      const samples: Sample[] = [];
      pool.on('sample', (s) => samples.push(s));
      const pub = await ObsShapedPublisher.connect(`${srv.base}/whip/obs`, { profile: 'high' });
      let viewer: WhepViewer | undefined;
      try {
        assert.ok(pub.location.includes('/whip/obs/'), 'Location of the session');
        const offer = parseOffer(pub.offer);
        assert.deepEqual(
          offer.media.map((m) => [m.kind, m.mid]),
          [
            ['audio', '0'],
            ['video', '1'],
          ],
          'OBS order: audio mid 0, video mid 1',
        );
        assert.ok(!offer.media[1]!.codecs.some((c) => c.name === 'rtx'), 'no RTX offered');
        const answer = parseOffer(pub.answer);
        assert.deepEqual(
          answer.media.map((m) => [m.kind, m.mid, m.codecs.map((c) => `${c.name}/${c.payloadType}`).join(',')]),
          [
            ['audio', '0', 'opus/111'],
            ['video', '1', 'H264/96'],
          ],
        );
        const stream = srv.sfu.getStream('obs')!;
        const sub = stream.tap.subscribe((p) => pool.push(p));
        pub.start();
        viewer = await WhepViewer.connect({ url: `${srv.base}/whep/obs`, recordPayloads: true });
        const v = viewer;
        await v
          .waitFor(
            () => v.keyframes > 0 && v.frames('video').length >= 40 && v.count('audio') >= 50,
            15_000,
            'keyframe, 40 frames and 1 s of audio at the viewer',
          )
          .catch((err: unknown) => {
            throw new Error(
              `${err instanceof Error ? err.message : String(err)}: ${v.keyframes} keyframes, ${v.frames('video').length} frames, ${v.count('audio')} audio packets; ingest ${JSON.stringify(stream.tracks)}`,
            );
          });
        const frames = v.frames('video');
        // the first keyframe may be mediasoup's slate (Constrained Baseline)
        const key = frames.find((f) => f.keyframe && spsProfile(f.data) === 100);
        assert.ok(key, 'the bitstream is High profile (profile_idc 100)');
        const pictures = decodePictures(
          'H264',
          frames.slice(frames.indexOf(key!)).map((f) => f.data),
        ).filter((p) => p.width === 320);
        assert.ok(pictures.length >= 10, `the viewer decodes ${pictures.length} High-profile pictures`);
        await until(
          () => samples.some((s) => s.kind === 'video') && samples.some((s) => s.kind === 'audio'),
          15_000,
          'a video sample and an audio window from the samplers',
        );
        const video = samples.find((s): s is VideoSample => s.kind === 'video')!;
        assert.equal(video.width, 320);
        assert.equal(video.height, 240);
        const audio = samples.find((s): s is AudioSample => s.kind === 'audio')!;
        assert.equal(audio.sampleRate, 16000);
        sub.close();
      } finally {
        await viewer?.close();
        const status = await pub.stop();
        assert.equal(status, 200, "OBS's DELETE is answered 200");
        await pool.close();
      }
      await until(() => srv.sfu.getStream('obs') === undefined, 5000, 'the stream to end on the DELETE');
    });
  });
}

for (const engine of ENGINES) {
  describe(`simulcast WHIP publisher [${engine}]`, () => {
    // OBS numbers its layers from the full size down; a page may name them otherwise (the mediasoup
    // engine's first guess of the order is wrong there and its probe must correct it)
    for (const rids of [
      ['0', '1', '2'],
      ['f', 'h', 'q'],
    ] as const)
      test(`rids ${rids.join('/')}, largest first: every layer accepted in the answer; viewers and the samplers get the largest layer`, async () => {
        await using srv = await startServer({ engine });
        await srv.sfu.slateReady;
        const pool = await SamplerPool.create({ workers: 1, maxLagMs: 60_000 });
        const samples: Sample[] = [];
        pool.on('sample', (s) => samples.push(s));
        const pub = await ObsShapedPublisher.connect(`${srv.base}/whip/obs-sim`, {
          profile: 'high',
          simulcast: true,
          rids,
        });
        let viewer: WhepViewer | undefined;
        let linkPool: SamplerPool | undefined;
        const linkSamples: Sample[] = [];
        try {
          const video = parseOffer(pub.offer).media.find((m) => m.kind === 'video')!;
          assert.ok(
            video.lines.includes(`a=simulcast:send ${rids.join(';')}`),
            `the offer is a simulcast offer: ${video.lines.filter((l) => /rid|simulcast/.test(l)).join(' | ')}`,
          );
          const answered = parseOffer(pub.answer).media.find((m) => m.kind === 'video')!;
          assert.deepEqual(
            answered.lines.filter((l) => /^a=(rid|simulcast):/.test(l)),
            [...rids.map((r) => `a=rid:${r} recv`), `a=simulcast:recv ${rids.join(';')}`],
            'every layer taken (OBS fails otherwise)',
          );
          assert.ok(
            answered.lines.some((l) => /^a=extmap:\d+ urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id$/.test(l)),
            'the rid header extension is negotiated',
          );
          const stream = srv.sfu.getStream('obs-sim')!;
          const sub = stream.tap.subscribe((p) => pool.push(p));
          // where the engine has loopback RTP links (mediasoup), the link's consumer is made before the
          // layer probe has answered: it must move to the forwarded layer with the others
          const videoTrack = stream.tracks.find((t) => t.kind === 'video')!;
          const link = stream.tap.openRtp ? await stream.tap.openRtp(videoTrack.trackId) : undefined;
          if (link) {
            linkPool = await SamplerPool.create({ workers: 1, maxLagMs: 60_000 });
            linkPool.on('sample', (s) => linkSamples.push(s));
            const { trackId, kind, codec, clockRate } = videoTrack;
            const port = await linkPool.listenRtp(
              { streamId: stream.id, trackId, kind, codec, clockRate },
              link.sourcePort,
            );
            await link.start(port);
          }
          pub.start();
          viewer = await WhepViewer.connect({ url: `${srv.base}/whep/obs-sim`, recordPayloads: true });
          const v = viewer;
          const track = (): string => JSON.stringify(stream.tracks.find((t) => t.kind === 'video'));
          await until(
            () => stream.tracks.find((t) => t.kind === 'video')?.simulcast?.forwarded === rids[0],
            15_000,
            `rid ${rids[0]} (the largest) forwarded: ${track()}`,
          );
          await v
            .waitFor(
              () => v.keyframes > 0 && v.frames('video').length >= 60 && v.count('audio') >= 50,
              15_000,
              'a keyframe, 60 frames and 1 s of audio at the viewer',
            )
            .catch((err: unknown) => {
              throw new Error(
                `${err instanceof Error ? err.message : String(err)}: ${v.keyframes} keyframes, ${v.frames('video').length} frames, ${v.count('audio')} audio packets; ${track()}`,
              );
            });
          const frames = v.frames('video');
          const key = [...frames].reverse().find((f) => f.keyframe && spsProfile(f.data) === 100);
          assert.ok(key, 'a High-profile keyframe of the publisher reached the viewer');
          const pictures = decodePictures(
            'H264',
            frames.slice(frames.indexOf(key!)).map((f) => f.data),
          );
          const sizes = [...new Set(pictures.map((p) => `${p.width}x${p.height}`))];
          assert.ok(pictures.length >= 10, `the viewer decodes ${pictures.length} pictures`);
          assert.deepEqual(sizes, ['384x216'], 'only the largest layer reaches the viewer, never a mix of layers');
          await until(
            () => samples.some((s) => s.kind === 'video' && s.width === 384),
            15_000,
            `a 384x216 video sample (the forwarded layer) from the samplers; got ${[...new Set(samples.filter((s): s is VideoSample => s.kind === 'video').map((s) => `${s.width}x${s.height}`))].join(', ') || 'none'}`,
          );
          if (link) {
            const sizes = (): string =>
              [
                ...new Set(
                  linkSamples.filter((s): s is VideoSample => s.kind === 'video').map((s) => `${s.width}x${s.height}`),
                ),
              ].join(', ') || 'none';
            await until(
              () => linkSamples.some((s) => s.kind === 'video' && s.width === 384),
              15_000,
              `a 384x216 video sample by the RTP link; got ${sizes()}`,
            );
            const n = linkSamples.length;
            await until(() => linkSamples.length >= n + 2, 10_000, 'two more samples by the RTP link');
            assert.deepEqual(
              [...new Set(linkSamples.slice(n).map((s) => (s as VideoSample).width))],
              [384],
              'the link stays on the forwarded layer',
            );
            link.close();
          }
          sub.close();
        } finally {
          await viewer?.close();
          const status = await pub.stop();
          assert.equal(status, 200, "OBS's DELETE is answered 200");
          await pool.close();
          await linkPool?.close();
        }
      });
  });
}
