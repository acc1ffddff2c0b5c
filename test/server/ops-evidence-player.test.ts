// The ops console's "Play clip" in real Chromium (issue 19): a stream fed with real VP8 + Opus
// (libvpx, libopus) through a real tap is killed by an operator; the kill's statement cites the
// evidence clip the recorder remuxed; the console shows it in the decisions table, and its button
// fetches the clip with the console's token and opens it in a tab, where Chromium's <video> decodes
// it: enough data to play, the clip's picture size, and time advancing while it plays.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { encodeAudio, encodeVideo, rgbTestPattern, sine48k } from '../../media/encode.ts';
import { packetizeVp8 } from '../../media/packetize.ts';
import { buildServer, type Server } from '../../server/app.ts';
import { loadConfig } from '../../server/config.ts';
import type { StatementOfReasons } from '../../policies/types.ts';
import { FakeSfu } from '../sfu/fake.ts';
import { launchChromium } from './helpers.ts';

const WIDTH = 320;
const HEIGHT = 180;
const FPS = 25;
const SECONDS = 3;

describe('ops console: an evidence clip plays in Chromium', { timeout: 180_000 }, () => {
  let dir: string;
  let server: Server;
  let browser: Browser;
  let admin: string;
  let statement: StatementOfReasons;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'msfu-ops-evidence-'));
    const sfu = new FakeSfu();
    server = await buildServer(
      loadConfig({
        env: {},
        overrides: {
          port: 0,
          host: '127.0.0.1',
          logLevel: 'silent',
          heartbeatMs: 200,
          moderation: false,
          evidenceDir: dir,
          evidenceSweepMs: 86_400_000,
        },
      }),
      { sfu },
    );
    await server.listen();
    admin = await server.auth.sign({ role: 'admin', sub: 'ops-admin' });
    // SECONDS of real media through the stream's tap, as forwarded RTP (arrival times in the recent past)
    const stream = sfu.add('ev-cam');
    const video = await encodeVideo(
      Array.from({ length: FPS * SECONDS }, (_, i) => rgbTestPattern(WIDTH, HEIGHT, i)),
      { codec: 'VP8', width: WIDTH, height: HEIGHT, fps: FPS, keyframeInterval: FPS },
    );
    const audio = await encodeAudio(sine48k(SECONDS));
    const t0 = performance.timeOrigin + performance.now() - SECONDS * 1000;
    let vseq = 0;
    let aseq = 0;
    const media = [
      ...video.map((f) => ({ kind: 'video' as const, f })),
      ...audio.map((f) => ({ kind: 'audio' as const, f })),
    ].sort((a, b) => a.f.ptsMs - b.f.ptsMs);
    for (const { kind, f } of media) {
      if (kind === 'video') {
        const parts = packetizeVp8(f.data);
        parts.forEach((p, i) =>
          stream.tap.offer(
            { streamId: 'ev-cam', trackId: 'video0', kind, codec: 'VP8', clockRate: 90000 },
            {
              payloadType: 96,
              sequenceNumber: vseq++ & 0xffff,
              timestamp: (f.ptsMs * 90) >>> 0,
              marker: i === parts.length - 1,
              ssrc: 1,
            },
            p,
            t0 + f.ptsMs,
          ),
        );
      } else {
        stream.tap.offer(
          { streamId: 'ev-cam', trackId: 'audio0', kind, codec: 'opus', clockRate: 48000 },
          {
            payloadType: 111,
            sequenceNumber: aseq++ & 0xffff,
            timestamp: (f.ptsMs * 48) >>> 0,
            marker: false,
            ssrc: 2,
          },
          f.data,
          t0 + f.ptsMs,
        );
      }
      if ((vseq + aseq) % 64 === 0) await new Promise((r) => setImmediate(r)); // the tap drains (its ring is bounded)
    }
    await new Promise((r) => setImmediate(r));
    const ring = server.evidence!.ringOf('ev-cam');
    assert.ok(
      ring && ring.spanMs >= (SECONDS - 0.2) * 1000,
      `the recorder's ring holds the stream (${JSON.stringify(ring)})`,
    );
    const kill = await server.app.inject({
      method: 'POST',
      url: '/v1/streams/ev-cam/kill',
      headers: { authorization: `Bearer ${admin}` },
      payload: { reason: 'evidence player test' },
    });
    assert.equal(kill.statusCode, 202, kill.body);
    statement = (kill.json() as { statement: StatementOfReasons }).statement;
    assert.equal(statement.clips?.length, 1, `the kill's statement cites one clip: ${JSON.stringify(statement.clips)}`);
    await server.evidence!.idle();
    await server.store.flush();
    const meta = server.evidence!.get(statement.clips![0]!.id);
    assert.ok(meta, 'the clip was written');
    assert.deepEqual(
      { container: meta.container, width: meta.width, height: meta.height },
      { container: 'webm', width: WIDTH, height: HEIGHT },
    );
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('the kill\'s "Play clip" opens the clip in a tab; its <video> decodes and plays it', async () => {
    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('dialog', (d) => {
      errors.push(`dialog: ${d.message()}`);
      void d.dismiss();
    });
    await page.goto(`${server.url}/ops?token=${admin}`);
    const details = `#decisions details[data-statement="${statement.id}"]`;
    await page.waitForSelector(details, { state: 'attached', timeout: 30_000 });
    await page.click(`${details} summary`);
    const button = page.locator(`${details} .clip-btn`);
    assert.equal(await button.count(), 1, 'one "Play clip" for the one clip');
    assert.equal(await button.getAttribute('data-url'), statement.clips![0]!.url);
    const [tab] = await Promise.all([context.waitForEvent('page', { timeout: 30_000 }), button.click()]);
    await tab.waitForURL(/^blob:/, { timeout: 30_000 });
    await tab.waitForSelector('video', { state: 'attached', timeout: 30_000 });
    await tab.waitForFunction(() => (document.querySelector('video')?.readyState ?? 0) >= 2, undefined, {
      timeout: 30_000,
    });
    const size = await tab.evaluate(() => {
      const v = document.querySelector('video')!;
      return { width: v.videoWidth, height: v.videoHeight, duration: v.duration };
    });
    assert.deepEqual(
      { width: size.width, height: size.height },
      { width: WIDTH, height: HEIGHT },
      "the clip's picture size",
    );
    assert.ok(size.duration >= SECONDS - 1, `Chromium reads the clip's duration (${size.duration} s)`);
    // Chromium's media page autoplays; a muted play() covers a headless autoplay refusal
    const autoplayed = await tab.evaluate(async () => {
      const v = document.querySelector('video')!;
      if (!v.paused) return true;
      v.muted = true;
      await v.play();
      return false;
    });
    await tab.waitForFunction(() => (document.querySelector('video')?.currentTime ?? 0) > 0.5, undefined, {
      timeout: 30_000,
    });
    const played = await tab.evaluate(() => {
      const v = document.querySelector('video')!;
      return {
        currentTime: v.currentTime,
        error: v.error?.message ?? null,
        decoded: (v as HTMLVideoElement & { webkitDecodedFrameCount?: number }).webkitDecodedFrameCount ?? -1,
      };
    });
    assert.equal(played.error, null);
    console.log(
      '[ops-evidence] played',
      JSON.stringify({ clip: statement.clips![0]!.id, ...size, ...played, autoplayed }),
    );
    assert.deepEqual(errors, []);
    await context.close();
  });
});
