// Real browser end to end: Chromium publishes its fake camera and microphone through /publish, a second
// Chromium page plays through /watch; then the stream is closed and the watch page must say so.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { BrowserContext } from 'playwright-core';
import { ENGINES, startServer } from './helpers.ts';
import type { TestServer } from './helpers.ts';

const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--allow-loopback-in-peer-connection',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--autoplay-policy=no-user-gesture-required',
];

for (const engine of ENGINES) {
  describe(`Chromium [${engine}]`, () => {
    let srv: TestServer;
    let ctx: BrowserContext;
    let profile: string;

    before(async () => {
      srv = await startServer({ engine });
      profile = mkdtempSync(join(tmpdir(), 'sfu-chromium-'));
      ctx = await chromium.launchPersistentContext(profile, {
        executablePath: '/usr/bin/chromium',
        headless: true,
        args: FLAGS,
      });
    });

    after(async () => {
      await ctx?.close();
      await srv?.close();
      if (profile) rmSync(profile, { recursive: true, force: true });
    });

    test('Chromium publishes through /publish, another Chromium plays through /watch, and sees the end within 1 s', async () => {
      const pubPage = await ctx.newPage();
      const t0 = performance.now();
      await pubPage.goto(`${srv.base}/publish?stream=e2e&token=t`);
      await pubPage.waitForFunction(() => document.getElementById('status')?.textContent === 'live', undefined, {
        timeout: 30_000,
      });
      const stream = srv.sfu.getStream('e2e');
      assert.ok(stream, 'the stream is live on the SFU');
      const watchPage = await ctx.newPage();
      await watchPage.goto(`${srv.base}/watch?stream=e2e&token=t`);
      await watchPage.waitForFunction(() => document.getElementById('status')?.textContent === 'playing', undefined, {
        timeout: 30_000,
      });
      const inbound = () =>
        watchPage.evaluate(async () => {
          const pc = (window as unknown as { pc: RTCPeerConnection }).pc;
          const stats = await pc.getStats();
          let framesDecoded = 0;
          let audioPackets = 0;
          stats.forEach((s: { type: string; kind?: string; framesDecoded?: number; packetsReceived?: number }) => {
            if (s.type === 'inbound-rtp' && s.kind === 'video') framesDecoded = s.framesDecoded ?? 0;
            if (s.type === 'inbound-rtp' && s.kind === 'audio') audioPackets = s.packetsReceived ?? 0;
          });
          return { framesDecoded, audioPackets };
        });
      let first = await inbound();
      const deadline = performance.now() + 20_000;
      while (first.framesDecoded === 0 && performance.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        first = await inbound();
      }
      const firstFrameMs = performance.now() - t0;
      assert.ok(first.framesDecoded > 0, 'the viewer decodes frames');
      await new Promise((r) => setTimeout(r, 2000));
      const later = await inbound();
      assert.ok(
        later.framesDecoded > first.framesDecoded + 10,
        `framesDecoded keeps growing (${first.framesDecoded} -> ${later.framesDecoded})`,
      );
      assert.ok(later.audioPackets > 20, `audio packets arrive (${later.audioPackets})`);
      console.log(
        `# e2e: first decoded frame ${firstFrameMs.toFixed(0)} ms after opening /publish; framesDecoded ${later.framesDecoded}, audio packets ${later.audioPackets}`,
      );

      const closedAt = performance.now();
      stream!.close({ code: 'killed', message: 'test kill' });
      await watchPage.waitForFunction(() => document.getElementById('status')?.textContent === 'ended', undefined, {
        timeout: 10_000,
      });
      const endedMs = performance.now() - closedAt;
      console.log(`# e2e: watch page showed "ended" ${endedMs.toFixed(0)} ms after close`);
      assert.ok(endedMs < 1000, `watch page showed the end in ${endedMs.toFixed(0)} ms`);
      await pubPage.waitForFunction(() => document.getElementById('status')?.textContent === 'ended', undefined, {
        timeout: 10_000,
      });
    });
  });
}
