// A blank in the first seconds of a stream takes effect at once (both engines). On mediasoup the slate
// is a simulcast layer; the worker would not switch a consumer between layers before both had an
// RTP->capture-time mapping (3 RTCP compounds, then a sender report: ~3-4 s), so a viewer blanked in
// a stream's (or a viewer edition's) first seconds kept getting the live picture for up to ~3 s
// (measured 3.2 s). scripts/mediasoup-worker/worker.patch lets it switch while the reference layer has
// no mapping yet.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WhipPublisher, syntheticClip } from '../../loadtest/clients/whip-publisher.ts';
import { WhepViewer } from '../../loadtest/clients/whep-viewer.ts';
import { nowMs } from '../../loadtest/clients/peer.ts';
import { ENGINES, sleep, startServer, until } from './helpers.ts';

/** Width of a VP8 key frame (RFC 6386 9.1), undefined for an inter frame. */
function vp8KeyframeWidth(frame: Uint8Array): number | undefined {
  if (frame.length < 10 || (frame[0]! & 0x01) !== 0 || frame[3] !== 0x9d || frame[4] !== 0x01 || frame[5] !== 0x2a)
    return undefined;
  return (frame[6]! | (frame[7]! << 8)) & 0x3fff;
}

for (const engine of ENGINES) {
  describe(`a blank in a stream's first seconds [${engine}]`, () => {
    test('no live picture reaches a viewer later than 1 s after it was blanked', async (t) => {
      await using srv = await startServer({ engine });
      const clip = await syntheticClip({
        codec: 'VP8',
        width: 320,
        height: 240,
        fps: 30,
        seconds: 2,
        keyframeInterval: 15,
      });
      const pub = await WhipPublisher.connect({ url: `${srv.base}/whip/early`, ...clip });
      pub.start();
      const v = await WhepViewer.connect({ url: `${srv.base}/whep/early`, recordPayloads: true });
      try {
        await until(() => v.keyframes > 0, 15_000, 'the live picture at the viewer');
        const viewer = [...srv.sfu.getStream('early')!.viewers.values()][0]!;
        const blankedAt = nowMs();
        viewer.setVideoGate('blank');
        await sleep(2500);
        // every frame belongs to the layer of the key frame before it (layers switch at key frames)
        const frames = v.frames('video');
        const late = new Set(v.frames('video', blankedAt + 1000).map((f) => f.timestamp));
        let width: number | undefined;
        let liveLate = 0;
        let slateLate = 0;
        let firstSlate: number | undefined;
        for (const f of frames) {
          width = vp8KeyframeWidth(f.data) ?? width;
          if (width === 640) firstSlate ??= f.timestamp;
          if (!late.has(f.timestamp)) continue;
          if (width === 320) liveLate++;
          else if (width === 640) slateLate++;
        }
        t.diagnostic(`${engine}: frames more than 1 s after the blank: ${slateLate} slate, ${liveLate} live`);
        assert.ok(slateLate > 0, 'the slate arrives');
        assert.equal(liveLate, 0, 'no live picture 1 s after the blank');
      } finally {
        await v.close();
        await pub.stop();
      }
    });
  });
}
