// The synthetic publisher's pacer (pacingKbps), which bench:forward uses to publish as a browser
// does: video leaves no faster than the rate allows (a token bucket of PACING_BURST_MS), so a
// frame's packets are spread out instead of leaving in one burst; nothing is lost, reordered or
// held back for ever, and audio is never held behind video. Unpaced, a frame leaves at once. The
// bounds hold on a loaded machine too: a late timer only makes the pacer slower.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  PACING_BURST_MS,
  WhipPublisher,
  syntheticClip,
  type SentPacket,
} from '../../loadtest/clients/whip-publisher.ts';
import { startServer, type TestServer } from '../sfu/helpers.ts';

// The 720p synthetic clip's frames are mostly 2-8 packets (~700 kbit/s of video): paced at about twice
// that, a frame of three packets takes at least ~6 ms to leave.
const RATE_KBPS = 1500;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function publish(srv: TestServer, id: string, pacingKbps: number | undefined): Promise<SentPacket[]> {
  const clip = await syntheticClip({ codec: 'VP8', width: 1280, height: 720, bitrateKbps: 2000, keyframeInterval: 15 });
  const pub = await WhipPublisher.connect({ url: `${srv.base}/whip/${id}`, ...clip, pacingKbps });
  const sent: SentPacket[] = [];
  pub.onPacket = (p) => sent.push(p);
  pub.start();
  await sleep(3000);
  await pub.stop();
  return sent;
}

/** Video packets grouped by frame (RTP timestamp), in send order. */
function frames(sent: SentPacket[]): SentPacket[][] {
  const byTs = new Map<number, SentPacket[]>();
  for (const p of sent.filter((q) => q.kind === 'video')) {
    const f = byTs.get(p.timestamp);
    if (f) f.push(p);
    else byTs.set(p.timestamp, [p]);
  }
  return [...byTs.values()];
}

describe('synthetic publisher pacing', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startServer({ engine: 'werift' });
  });
  after(async () => {
    await srv?.close();
  });

  test('paced video never beats the rate, spreads frames, and loses or reorders nothing', async () => {
    const sent = await publish(srv, 'paced', RATE_KBPS);
    const video = sent.filter((p) => p.kind === 'video');
    assert.ok(video.length > 60, `video packets sent in 3 s: ${video.length}`);
    // every packet in sequence, every frame complete (its marker last)
    for (let i = 1; i < video.length; i++)
      assert.equal(video[i]!.seq, (video[i - 1]!.seq + 1) & 0xffff, `video packet ${i} out of sequence`);
    // (the pacer may still hold more than one frame when the publisher stops: those are left out)
    let lastMarker = sent.length - 1;
    while (lastMarker >= 0 && !(sent[lastMarker]!.kind === 'video' && sent[lastMarker]!.marker)) lastMarker--;
    for (const f of frames(sent.slice(0, lastMarker + 1)))
      assert.ok(f.at(-1)!.marker && f.slice(0, -1).every((p) => !p.marker), 'a frame left incomplete or out of order');
    // token bucket: what left before packet j since packet i fits in the burst plus the rate
    const bytesPerMs = RATE_KBPS / 8;
    const cap = Math.max(1200, PACING_BURST_MS * bytesPerMs);
    for (let i = 0; i < video.length; i++) {
      let bytes = 0;
      for (let j = i + 1; j < video.length; j++) {
        bytes += video[j - 1]!.bytes;
        // (1 ms of slack: a packet's sentAt is read as it is sent, after the pacer counted its budget)
        const allowed = cap + (video[j]!.sentAt - video[i]!.sentAt + 1) * bytesPerMs;
        assert.ok(
          bytes <= allowed,
          `${bytes} bytes left in ${video[j]!.sentAt - video[i]!.sentAt} ms (allowed ${allowed})`,
        );
        if (bytes > 8 * cap) break;
      }
    }
    // a frame whose packets before its last hold k bytes takes at least (k - burst) / rate to leave
    let spreadOut = 0;
    for (const f of frames(sent).filter((g) => g.length > 1 && g.at(-1)!.marker)) {
      const least = (f.slice(0, -1).reduce((a, p) => a + p.bytes, 0) - cap) / bytesPerMs;
      const spread = f.at(-1)!.sentAt - f[0]!.sentAt;
      assert.ok(spread >= least - 1, `a frame of ${f.length} packets left in ${spread} ms (at least ${least})`);
      if (least >= 5) spreadOut++;
    }
    assert.ok(spreadOut >= 3, `frames the rate had to spread over 5 ms or more: ${spreadOut}`);
    // audio goes out on its own clock, never behind a keyframe
    const audio = sent.filter((p) => p.kind === 'audio');
    assert.ok(audio.length > 100, `audio packets: ${audio.length}`);
    const gaps = audio.slice(1).map((p, i) => p.sentAt - audio[i]!.sentAt);
    assert.ok(Math.max(...gaps) < 250, `longest audio gap ${Math.max(...gaps)} ms`);
  });

  test('unpaced, each frame leaves at once', async () => {
    const sent = await publish(srv, 'unpaced', undefined);
    const multi = frames(sent).filter((f) => f.length > 2);
    assert.ok(multi.length >= 3, `frames of 3 packets or more: ${multi.length}`);
    // one synchronous loop: a frame's packets within microseconds (10 ms allows for a GC pause)
    for (const f of multi) assert.ok(f.at(-1)!.sentAt - f[0]!.sentAt < 10, 'an unpaced frame was spread out');
  });
});
