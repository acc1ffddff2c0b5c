// The load generator's headers-only viewer (bench:forward plays hundreds of viewers with it): it reads
// RTP headers off the socket without decrypting, and must see exactly the packets a decrypting viewer
// of the same stream sees (same sequence numbers, timestamps and marker bits per kind), and still get
// the sender reports. Both engines.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WhipPublisher, syntheticClip } from '../../loadtest/clients/whip-publisher.ts';
import { WhepViewer } from '../../loadtest/clients/whep-viewer.ts';
import { ENGINES, startServer, type TestServer } from '../sfu/helpers.ts';

for (const engine of ENGINES)
  describe(`headers-only viewer [${engine}]`, () => {
    let srv: TestServer;
    let pub: WhipPublisher;
    const viewers: WhepViewer[] = [];

    before(async () => {
      srv = await startServer({ engine });
      await srv.sfu.slateReady;
      const clip = await syntheticClip({ codec: 'VP8', keyframeInterval: 30 });
      pub = await WhipPublisher.connect({ url: `${srv.base}/whip/hdr`, ...clip });
      pub.start();
    });

    after(async () => {
      for (const v of viewers) await v.close();
      await pub?.stop();
      await srv?.close();
    });

    test('sees the same packets as a decrypting viewer, without payloads, and the sender reports', async () => {
      const full = await WhepViewer.connect({ url: `${srv.base}/whep/hdr` });
      viewers.push(full);
      // as bench:forward plays them: headers only, and the DTLS client (a=setup:active)
      const light = await WhepViewer.connect({ url: `${srv.base}/whep/hdr`, headersOnly: true, setup: 'active' });
      viewers.push(light);
      // mediasoup numbers each consumer's packets on its own, so compare what both received in one
      // stretch of time: the same timestamps (frames), the same packets per frame, no sequence gaps.
      // The stretch starts 500 ms after the later first packet: a joiner's first burst is the cached
      // GOP (both engines), which arrives at once and would let packet counts alone be met early.
      const stretch = () => ({
        from: Math.max(full.packets[0]?.receivedAt ?? Infinity, light.packets[0]?.receivedAt ?? Infinity) + 500,
        to: Math.min(full.packets.at(-1)?.receivedAt ?? 0, light.packets.at(-1)?.receivedAt ?? 0) - 500,
      });
      const inStretch = (kind: 'video' | 'audio') => {
        const { from, to } = stretch();
        return light.packets.filter((p) => p.kind === kind && p.receivedAt >= from && p.receivedAt <= to);
      };
      await full.waitFor(
        () => inStretch('video').length > 150 && inStretch('audio').length > 100,
        20_000,
        'a stretch of video and audio received by both viewers',
      );
      await light.waitFor(
        () => light.senderReports('video').length > 0 && light.senderReports('audio').length > 0,
        15_000,
        'sender reports at the headers-only viewer',
      );
      for (const kind of ['video', 'audio'] as const) {
        const l = inStretch(kind);
        assert.ok(l.length > 50, `${kind}: ${l.length} packets compared`);
        assert.ok(
          l.every((p) => p.payload === undefined && p.size > 0),
          `${kind}: no payloads kept, sizes read`,
        );
        const perFrame = (v: WhepViewer) => {
          const m = new Map<number, number>();
          for (const p of v.packets) if (p.kind === kind) m.set(p.timestamp, (m.get(p.timestamp) ?? 0) + 1);
          return m;
        };
        const lf = perFrame(light);
        const ff = perFrame(full);
        const frames = [...new Set(l.map((p) => p.timestamp))].slice(1, -1);
        const differ = frames.filter((ts) => lf.get(ts) !== ff.get(ts)).map((ts) => [ts, lf.get(ts), ff.get(ts)]);
        assert.deepEqual(
          differ,
          [],
          `${kind}: frames (timestamp, packets headers-only, packets decrypted) that differ`,
        );
        const gaps = l.slice(1).filter((p, i) => ((p.seq - l[i]!.seq) & 0xffff) !== 1).length;
        assert.equal(gaps, 0, `${kind}: sequence gaps`);
        if (kind === 'video')
          assert.equal(
            l.filter((p) => p.marker).length,
            new Set(l.map((p) => p.timestamp)).size - (l.at(-1)!.marker ? 0 : 1),
            'one marker bit per frame',
          );
      }
      assert.ok(
        light.packets.some((p) => p.kind === 'video' && p.marker),
        'marker bits read',
      );
    });
  });
