// H264 end to end with synthetic clients: forwarding starts on an IDR, the H264 slate decodes, and a
// VP8-only viewer of an H264 stream is refused.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WhipPublisher, syntheticClip } from '../../loadtest/clients/whip-publisher.ts';
import { WhepViewer } from '../../loadtest/clients/whep-viewer.ts';
import { WhipHttpError } from '../../loadtest/clients/peer.ts';
import { ENGINES, decodePictures, sleep, startServer, until } from './helpers.ts';

for (const engine of ENGINES) {
  describe(`H264 [${engine}]`, () => {
    test('H264 stream: viewer decodes from an IDR, blank gives a decodable H264 slate, VP8-only viewer gets 406', async () => {
      await using srv = await startServer({ engine });
      await srv.sfu.slateReady;
      const clip = await syntheticClip({ codec: 'H264' });
      const pub = await WhipPublisher.connect({ url: `${srv.base}/whip/h`, ...clip });
      pub.start();
      const v = await WhepViewer.connect({ url: `${srv.base}/whep/h`, recordPayloads: true });
      try {
        assert.equal(v.codecOf.video, 'H264');
        await v.waitFor(() => v.keyframes > 0 && v.count('video') > 40, 15_000, 'H264 video');
        const frames = v.frames('video');
        assert.ok(frames[0]!.keyframe);
        const pics = decodePictures(
          'H264',
          frames.slice(0, 20).map((f) => f.data),
        );
        assert.ok(pics.length >= 10 && pics[0]!.width === 320, `decoded ${pics.length} source pictures`);
        const sv = [...srv.sfu.getStream('h')!.viewers.values()][0]!;
        const blankAt = performance.timeOrigin + performance.now();
        sv.setVideoGate('blank');
        // mediasoup switches on the next slate keyframe once its gate has the slate layer's clock
        // (~2-3 s after the stream starts); werift at once
        const slatePictures = () =>
          decodePictures(
            'H264',
            v.frames('video', blankAt + 50).map((f) => f.data),
          );
        await until(
          () => slatePictures().filter((p) => p.width === 640).length >= 2,
          10_000,
          'two H264 slate pictures',
        );
        await sleep(500);
        const after = slatePictures();
        const first = after.findIndex((p) => p.width === 640);
        if (engine === 'werift') assert.equal(first, 0, 'no source picture after the blank');
        const slatePics = after.slice(first);
        assert.ok(
          slatePics.length >= 2 && slatePics.every((p) => p.width === 640),
          `H264 slate decodes (${slatePics.map((p) => p.width).join(',')})`,
        );
        await assert.rejects(
          WhepViewer.connect({ url: `${srv.base}/whep/h`, codecs: ['VP8'] }),
          (err: unknown) => err instanceof WhipHttpError && err.status === 406,
        );
      } finally {
        await v.close();
        await pub.stop();
      }
    });
  });
}
