// Bad input gets a clear coded error, and the server keeps serving.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { WhipPublisher, syntheticClip } from '../../loadtest/clients/whip-publisher.ts';
import { WhepViewer } from '../../loadtest/clients/whep-viewer.ts';
import { clientPeer, gatheredOffer } from '../../loadtest/clients/peer.ts';
import { ENGINES, sleep, startServer } from './helpers.ts';
import type { TestServer } from './helpers.ts';

for (const engine of ENGINES) {
  describe(`bad input [${engine}]`, () => {
    let srv: TestServer;
    before(async () => {
      srv = await startServer({ engine });
    });
    after(async () => {
      await srv?.close();
    });

    async function post(
      path: string,
      body: string,
      contentType = 'application/sdp',
    ): Promise<{ status: number; json: { statusCode?: number; code?: string; message?: string } }> {
      const res = await fetch(`${srv.base}${path}`, { method: 'POST', headers: { 'content-type': contentType }, body });
      const text = await res.text();
      let json: { statusCode?: number; code?: string; message?: string };
      try {
        json = JSON.parse(text);
      } catch {
        json = {};
      }
      return { status: res.status, json };
    }

    test('malformed SDP -> 400 SFU_ERR_BAD_SDP', async () => {
      for (const body of ['hello', 'v=0\r\nthis is not sdp', 'v=1\r\no=- 1 1 IN IP4 0.0.0.0\r\n']) {
        const r = await post('/whip/bad', body);
        assert.equal(r.status, 400, body);
        assert.equal(r.json.code, 'SFU_ERR_BAD_SDP');
      }
    });

    test('no media -> 400 SFU_ERR_NO_MEDIA; no usable codec -> 406 SFU_ERR_NO_COMMON_CODEC', async () => {
      const noMedia = await post('/whip/bad', 'v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n');
      assert.equal(noMedia.status, 400);
      assert.equal(noMedia.json.code, 'SFU_ERR_NO_MEDIA');
      const vp9Only =
        'v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 98\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\na=rtpmap:98 VP9/90000\r\n';
      const r = await post('/whip/bad', vp9Only);
      assert.equal(r.status, 406);
      assert.equal(r.json.code, 'SFU_ERR_NO_COMMON_CODEC');
      assert.match(r.json.message ?? '', /VP9/);
    });

    test('wrong content type -> 415; body over the limit -> 413; PATCH -> 405 with Allow; OPTIONS exposes Location', async () => {
      const json = await post('/whip/bad', '{}', 'application/json');
      assert.equal(json.status, 415);
      const big = await post('/whip/bad', 'v=0\r\n' + 'a=x\r\n'.repeat(20_000));
      assert.equal(big.status, 413);
      const patch = await fetch(`${srv.base}/whip/bad/sess`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/trickle-ice-sdpfrag' },
        body: 'a=candidate',
      });
      assert.equal(patch.status, 405);
      assert.match(patch.headers.get('allow') ?? '', /DELETE/);
      const opt = await fetch(`${srv.base}/whip/bad`, {
        method: 'OPTIONS',
        headers: { origin: 'http://elsewhere.example', 'access-control-request-method': 'POST' },
      });
      assert.equal(opt.status, 204);
      assert.equal(opt.headers.get('access-control-allow-origin'), '*');
      assert.match(opt.headers.get('access-control-expose-headers') ?? '', /Location/);
      assert.match(opt.headers.get('access-control-allow-headers') ?? '', /Authorization/);
    });

    test('unknown stream -> 404 for WHEP; unknown session -> 404 on DELETE', async () => {
      const pc = clientPeer(['VP8']);
      pc.addTransceiver('video', { direction: 'recvonly' });
      const offer = await gatheredOffer(pc);
      await pc.close();
      const r = await post('/whep/nobody', offer);
      assert.equal(r.status, 404);
      assert.equal(r.json.code, 'SFU_ERR_STREAM_NOT_FOUND');
      const del = await fetch(`${srv.base}/whip/nobody/nosuchsession`, { method: 'DELETE' });
      assert.equal(del.status, 404);
      assert.equal(((await del.json()) as { code: string }).code, 'SFU_ERR_SESSION_NOT_FOUND');
    });

    test('stream already live -> 409; garbage at the media ports is counted and forwarding carries on', async () => {
      const clip = await syntheticClip({ codec: 'VP8' });
      const pub = await WhipPublisher.connect({ url: `${srv.base}/whip/busy`, ...clip });
      pub.start();
      try {
        await assert.rejects(
          WhipPublisher.connect({ url: `${srv.base}/whip/busy`, ...clip }),
          (err: { status?: number; code?: string }) => err.status === 409 && err.code === 'SFU_ERR_ALREADY_LIVE',
        );
        const viewer = await WhepViewer.connect({ url: `${srv.base}/whep/busy` });
        await viewer.waitFor(() => viewer.count('video') > 10, 10_000, 'video');
        // the SFU's media port from the viewer's selected remote candidate
        const answerPorts = [
          ...(viewer.pc.remoteDescription?.sdp ?? '').matchAll(
            /a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 (\d+) typ host/g,
          ),
        ].map((m) => Number(m[1]));
        assert.ok(answerPorts.length > 0);
        const before = srv.werift?.counters();
        const sock = createSocket('udp4');
        const junk: Buffer[] = [
          Buffer.from('hello garbage'),
          Buffer.alloc(0),
          Buffer.from([0x80, 0x60, 0x00, 0x01]), // truncated RTP
          Buffer.concat([
            Buffer.from([0x80, 0x60, 0x12, 0x34, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef]),
            Buffer.alloc(100, 7),
          ]), // RTP, not SRTP
          Buffer.concat([Buffer.from([0x80, 0xc8, 0x00, 0x06]), Buffer.alloc(40, 1)]), // RTCP SR, not SRTCP
          Buffer.from([0x16, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4, 5]), // stray DTLS record
          Buffer.from([0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]), // STUN without integrity
        ];
        for (let i = 0; i < 20; i++)
          for (const j of junk) for (const port of answerPorts) sock.send(j, port, '127.0.0.1');
        for (let i = 0; i < 200; i++)
          sock.send(
            Buffer.from(Array.from({ length: 200 }, () => Math.floor(Math.random() * 256))),
            answerPorts[0]!,
            '127.0.0.1',
          );
        await sleep(800);
        sock.close();
        if (srv.werift && before) {
          const afterCounts = srv.werift.counters();
          assert.ok(
            afterCounts.garbageDatagrams > before.garbageDatagrams,
            `garbage counted (${before.garbageDatagrams} -> ${afterCounts.garbageDatagrams})`,
          );
          assert.ok(
            afterCounts.rejectedMediaDatagrams > before.rejectedMediaDatagrams,
            `bad SRTP/SRTCP counted (${afterCounts.rejectedMediaDatagrams})`,
          );
        } else {
          // mediasoup's workers drop such datagrams without counting them; what must hold is that none died
          assert.equal(srv.mediasoup!.pool.deaths, 0, 'no mediasoup worker died of the garbage');
        }
        const n = viewer.count('video');
        await viewer.waitFor(() => viewer.count('video') > n + 20, 10_000, 'video still flowing after the garbage');
        const health = await post('/whip/bad', 'hello');
        assert.equal(health.status, 400, 'the server still answers');
        await viewer.close();
      } finally {
        await pub.stop();
      }
    });
  });
}
