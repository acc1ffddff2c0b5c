// Lip sync: the audio-video offset a viewer derives from the sender reports the SFU forwards equals the
// publisher's own, within 10 ms. The publisher announces a deliberate -150 ms audio offset (its audio
// leaves 150 ms after capture, as a buffering audio path would), so a re-timed mapping (werift's
// default: forwarding time; mediasoup's without a shared CNAME) would be off by about that much.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WhipPublisher, syntheticClip } from '../../loadtest/clients/whip-publisher.ts';
import type { TrackMapping } from '../../loadtest/clients/whip-publisher.ts';
import { WhepViewer } from '../../loadtest/clients/whep-viewer.ts';
import type { ReceivedSenderReport } from '../../loadtest/clients/whep-viewer.ts';
import { ENGINES, startServer } from './helpers.ts';

const NTP_UNIT = 4294967296;
/** Reports a viewer gets this long after the publisher started are the ones judged (ms). */
const SETTLE_MS = 5000;

/** NTP time (ms) of a track's clip start (RTP timestamp rtpBase), under a sender report's mapping. */
function clipStartMs(sr: ReceivedSenderReport, m: TrackMapping): number {
  const diff = (sr.rtp - m.rtpBase) | 0;
  return (Number(sr.ntp) / NTP_UNIT) * 1000 - (diff / m.clockRate) * 1000;
}

for (const engine of ENGINES) {
  describe(`lip sync [${engine}]`, () => {
    test("A/V offset from forwarded sender reports equals the publisher's within 10 ms", async () => {
      await using srv = await startServer({ engine });
      const clip = await syntheticClip({ codec: 'VP8' });
      const pub = await WhipPublisher.connect({ url: `${srv.base}/whip/sync`, ...clip, audioNtpOffsetMs: -150 });
      pub.start();
      const startedAt = performance.timeOrigin + performance.now();
      const viewer = await WhepViewer.connect({ url: `${srv.base}/whep/sync` });
      try {
        // the reports a viewer gets once the SFU has had the publisher's own for a while: werift maps
        // from the publisher's latest report, mediasoup estimates the publisher's clock from three
        const settled = (kind: 'audio' | 'video') =>
          viewer.senderReports(kind).filter((r) => r.receivedAt >= startedAt + SETTLE_MS);
        await viewer.waitFor(
          () => settled('audio').length >= 3 && settled('video').length >= 3,
          30_000,
          'three settled sender reports per kind',
        );
        const vm = pub.mapping('video')!;
        const am = pub.mapping('audio')!;
        // the publisher's own offset, from its exact mapping: audio clip start minus video clip start
        const publisherOffset = (Number(am.ntpBase - vm.ntpBase) / NTP_UNIT) * 1000;
        assert.ok(Math.abs(publisherOffset + 150) < 1);
        const vs = settled('video');
        let worst = 0;
        // each audio report against the video report nearest in time, as a receiver pairs them
        for (const a of settled('audio')) {
          const v = vs.reduce((best, x) =>
            Math.abs(x.receivedAt - a.receivedAt) < Math.abs(best.receivedAt - a.receivedAt) ? x : best,
          );
          const viewerOffset = clipStartMs(a, am) - clipStartMs(v, vm);
          assert.ok(
            Math.abs(viewerOffset - publisherOffset) <= 10,
            `viewer offset ${viewerOffset.toFixed(2)} ms vs publisher ${publisherOffset.toFixed(2)} ms`,
          );
          worst = Math.max(worst, Math.abs(viewerOffset - publisherOffset));
        }
        console.log(
          `lip sync [${engine}]: worst |viewer - publisher| A/V offset ${worst.toFixed(2)} ms over ${settled('audio').length} audio reports`,
        );
      } finally {
        await viewer.close();
        await pub.stop();
      }
    });
  });
}
