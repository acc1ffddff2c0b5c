// Fast join for publishers that ignore keyframe requests (issue 15): FFmpeg's whip muxer cannot make a
// keyframe on request and keyframes every 250 frames by default, so a viewer joining between keyframes
// waited up to ~8 s for a picture. Both engines keep the current GOP per video track and start a
// joining viewer from it: the werift engine in sfu/werift/stream.ts, the mediasoup engine in its worker
// (the Router's GOP cache of scripts/mediasoup-worker/worker.patch), before the viewer's gate.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WhipPublisher, syntheticClip } from '../../loadtest/clients/whip-publisher.ts';
import { WhepViewer } from '../../loadtest/clients/whep-viewer.ts';
import { nowMs } from '../../loadtest/clients/peer.ts';
import { ENGINES, decodePictures, sleep, startServer, until } from './helpers.ts';

const GOP_S = 6;

for (const engine of ENGINES) {
  describe(`join between keyframes of a publisher that ignores PLI [${engine}]`, () => {
    test('join-to-first-picture', async (t) => {
      await using srv = await startServer({ engine });
      // one keyframe every 6 s, never on request
      const clip = await syntheticClip({
        codec: 'VP8',
        width: 160,
        height: 120,
        fps: 30,
        seconds: GOP_S,
        keyframeInterval: 30 * GOP_S,
      });
      const pub = await WhipPublisher.connect({ url: `${srv.base}/whip/gop`, ...clip, ignorePli: true });
      pub.start();
      try {
        // a first viewer proves the stream flows, then the test joins well inside a GOP
        const first = await WhepViewer.connect({ url: `${srv.base}/whep/gop` });
        await until(() => first.keyframes > 0, 20_000, 'the first keyframe at the first viewer');
        const keyAt = first.firstKeyframeAt!;
        await sleep(Math.max(0, keyAt + 1000 - nowMs()));
        const joinAt = nowMs();
        const late = await WhepViewer.connect({ url: `${srv.base}/whep/gop`, recordPayloads: true });
        try {
          await until(() => late.keyframes > 0, (GOP_S + 10) * 1000, 'a keyframe at the late viewer');
          const joinMs = late.firstKeyframeAt! - joinAt;
          t.diagnostic(
            `${engine}: join -> first keyframe ${Math.round(joinMs)} ms (keyframe ${Math.round(joinAt - keyAt)} ms before the join, GOP ${GOP_S} s, PLI ignored: ${pub.pliReceived} received)`,
          );
          await sleep(500);
          const pictures = decodePictures(
            'VP8',
            late.frames('video').map((f) => f.data),
          );
          assert.ok(pictures.length >= 5, `the late viewer decodes pictures from its start (${pictures.length})`);
          assert.ok(
            joinMs < (GOP_S * 1000) / 2,
            `the joiner starts from the cached GOP, not the next keyframe (${Math.round(joinMs)} ms)`,
          );
        } finally {
          await late.close();
          await first.close();
        }
      } finally {
        await pub.stop();
      }
    });
  });
}
