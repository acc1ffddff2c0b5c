// Lip sync: the audio-video offset a viewer derives from the sender reports the SFU forwards equals the
// publisher's own, within 10 ms. The publisher announces a deliberate 150 ms audio offset, so a
// re-timed mapping (werift's default: forwarding time) would be off by about that much.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WhipPublisher, syntheticClip } from '../../loadtest/clients/whip-publisher.ts';
import type { TrackMapping } from '../../loadtest/clients/whip-publisher.ts';
import { WhepViewer } from '../../loadtest/clients/whep-viewer.ts';
import type { ReceivedSenderReport } from '../../loadtest/clients/whep-viewer.ts';
import { startServer } from './helpers.ts';

const NTP_UNIT = 4294967296;

/** NTP time (ms) of a track's clip start (RTP timestamp rtpBase), under a sender report's mapping. */
function clipStartMs(sr: ReceivedSenderReport, m: TrackMapping): number {
  const diff = (sr.rtp - m.rtpBase) | 0;
  return (Number(sr.ntp) / NTP_UNIT) * 1000 - (diff / m.clockRate) * 1000;
}

test('A/V offset from forwarded sender reports equals the publisher\'s within 10 ms', async () => {
  await using srv = await startServer();
  const clip = await syntheticClip({ codec: 'VP8' });
  const pub = await WhipPublisher.connect({ url: `${srv.base}/whip/sync`, ...clip, audioNtpOffsetMs: 150 });
  pub.start();
  const viewer = await WhepViewer.connect({ url: `${srv.base}/whep/sync` });
  try {
    await viewer.waitFor(() => viewer.senderReports('audio').length >= 3 && viewer.senderReports('video').length >= 3, 20_000, 'three sender reports per kind');
    const vm = pub.mapping('video')!;
    const am = pub.mapping('audio')!;
    // the publisher's own offset, from its exact mapping: audio clip start minus video clip start
    const publisherOffset = (Number(am.ntpBase - vm.ntpBase) / NTP_UNIT) * 1000;
    assert.ok(Math.abs(publisherOffset - 150) < 1);
    const vs = viewer.senderReports('video').slice(1);
    const as = viewer.senderReports('audio').slice(1);
    for (const v of vs) {
      for (const a of as) {
        const viewerOffset = clipStartMs(a, am) - clipStartMs(v, vm);
        assert.ok(Math.abs(viewerOffset - publisherOffset) <= 10, `viewer offset ${viewerOffset.toFixed(2)} ms vs publisher ${publisherOffset.toFixed(2)} ms`);
      }
    }
  } finally {
    await viewer.close();
    await pub.stop();
  }
});
