// The /ops console in real Chromium (playwright-core): live streams with score plots fed by real
// enforcer verdicts, the review queue with thumbnails and claim/resolve, decisions with their
// statements, and the kill button. The screenshot is decoded and checked for what it shows.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { buildServer, type Server } from '../../server/app.ts';
import { loadConfig } from '../../server/config.ts';
import type { SignalLike } from '../../policies/types.ts';
import { FakeSfu } from '../sfu/fake.ts';
import { countColor, decodePng, solidPng } from './png.ts';
import { launchChromium } from './helpers.ts';

const SDP = 'v=0\r\ns=-\r\n';
const THUMB_RGB: [number, number, number] = [0, 200, 60];
const KILL_RGB: [number, number, number] = [229, 72, 77];

describe('ops console in Chromium', () => {
  let server: Server;
  let sfu: FakeSfu;
  let browser: Browser;
  let page: Page;
  let admin: string;

  before(async () => {
    sfu = new FakeSfu();
    server = await buildServer(
      loadConfig({
        env: {},
        overrides: { port: 0, host: '127.0.0.1', logLevel: 'silent', heartbeatMs: 200, moderation: false },
      }),
      { sfu },
    );
    await server.listen();
    admin = await server.auth.sign({ role: 'admin', sub: 'ops-admin' });
    for (const id of ['cam1', 'cam2']) {
      const t = await server.auth.sign({ role: 'publisher', streamId: id });
      const r = await server.app.inject({
        method: 'POST',
        url: `/whip/${id}`,
        headers: { 'content-type': 'application/sdp', authorization: `Bearer ${t}` },
        payload: SDP,
      });
      assert.equal(r.statusCode, 201);
    }
    // Real verdicts: signals through the enforcer (what the pipeline does).
    const now = performance.timeOrigin + performance.now();
    for (let i = 0; i < 6; i++) {
      const s: SignalLike = {
        streamId: 'cam1',
        kind: 'video',
        sampleSeq: i,
        rtpTimestamp: i * 45000,
        arrivedAt: now + i,
        completedAt: now + i + 5,
        status: 'ok',
        scores: { 'nsfw.sexy': 0.3 + i * 0.05, 'nsfw.porn': 0.1 },
        matches: [],
        text: [],
        uncertain: false,
        models: [{ name: 'test', version: '1' }],
      };
      server.enforcer.onSignal(s);
    }
    await server.control.enqueueReview(
      {
        id: 'rev_ops_1',
        streamId: 'cam1',
        type: 'amber',
        priority: 1,
        createdAt: Date.now(),
        policyVersion: server.policies.current.version,
        jurisdictions: ['DE'],
        categories: [{ category: 'sexual_suggestive', score: 0.55, bucket: 'amber' }],
        evidence: {
          sampleSeqs: [1],
          timeRange: { from: 1, to: 2 },
          scores: [{ category: 'sexual_suggestive', score: 0.55 }],
          matches: [],
          text: [],
          textContext: [],
          thumbnailRefs: [],
        },
        proposedAction: 'blank_video',
      },
      { thumbnail: `data:image/png;base64,${solidPng(64, 48, THUMB_RGB).toString('base64')}` },
    );
    const k = await server.app.inject({
      method: 'POST',
      url: '/v1/streams/cam2/kill',
      headers: { authorization: `Bearer ${admin}` },
      payload: { reason: 'seeded kill', clause: 'ToS 9.9' },
    });
    assert.equal(k.statusCode, 202);

    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test('shows streams with score plots, the review queue with thumbnails, decisions with statements', async () => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${server.url}/ops?token=${admin}`);
    // A flat line has a zero-height box, which playwright calls hidden: wait for it to exist.
    await page.waitForSelector('.stream[data-stream="cam1"] svg.plot polyline.series', {
      state: 'attached',
      timeout: 30_000,
    });
    await page.waitForSelector('.item[data-item="rev_ops_1"] img.thumb', { timeout: 30_000 });
    await page.waitForSelector('#decisions tr[data-decision] details.statement', { timeout: 30_000 });
    await page.waitForFunction(() => document.getElementById('ws')?.textContent === 'events: live', undefined, {
      timeout: 30_000,
    });
    // Thumbnail actually decoded by the browser.
    assert.ok(
      await page.$eval(
        '.item[data-item="rev_ops_1"] img.thumb',
        (img) => (img as HTMLImageElement).naturalWidth === 64,
      ),
    );
    const cats = await page.$$eval('.stream[data-stream="cam1"] polyline.series', (els) =>
      els.map((e) => e.getAttribute('data-category')),
    );
    assert.ok(cats.includes('sexual_suggestive'), `plotted categories: ${cats.join(',')}`);
    assert.match((await page.textContent('.stream[data-stream="cam1"] .bucket')) ?? '', /GREEN|AMBER|RED/);
    // The killed stream's decision links its statement with the clause.
    await page.click('#decisions details.statement summary');
    assert.match((await page.textContent('#decisions details.statement')) ?? '', /ToS 9\.9/);
    assert.match((await page.textContent('#depth')) ?? '', /review queue: [1-9]/);

    // A few seconds of history, so the plotted line has some length.
    await page.waitForFunction(
      () =>
        (document.querySelector('.stream[data-stream="cam1"] polyline.series')?.getAttribute('points') ?? '').split(' ')
          .length >= 4,
      undefined,
      { timeout: 30_000 },
    );
    const shot = await page.screenshot({ fullPage: true });
    const file = join(tmpdir(), `msfu-ops-${process.pid}.png`);
    writeFileSync(file, shot);
    const img = decodePng(shot);
    assert.ok(img.width >= 1400 && img.height >= 600, `${img.width}x${img.height}`);
    // Key elements are really painted: the green test thumbnail, the red kill button, plot lines.
    const region = async (selector: string) => {
      const box = await page.locator(selector).first().boundingBox();
      assert.ok(box, selector);
      return decodePng(await page.screenshot({ clip: box }));
    };
    assert.ok(
      countColor(await region('.item[data-item="rev_ops_1"] img.thumb'), THUMB_RGB, 30) > 1000,
      'thumbnail pixels',
    );
    assert.ok(countColor(await region('.kill-btn[data-stream="cam1"]'), KILL_RGB, 30) > 200, 'kill button pixels');
    const plotImg = await region('.stream[data-stream="cam1"] svg.plot');
    const colors = await page.$$eval('.stream[data-stream="cam1"] polyline.series', (els) =>
      els.map((e) => e.getAttribute('stroke') ?? ''),
    );
    const rgb = (hex: string): [number, number, number] => [
      parseInt(hex.slice(1, 3), 16),
      parseInt(hex.slice(3, 5), 16),
      parseInt(hex.slice(5, 7), 16),
    ];
    assert.ok(
      colors.some((c) => countColor(plotImg, rgb(c), 40) > 60),
      `plot lines painted (${colors.join(',')})`,
    );
    assert.deepEqual(errors, []);
  });

  test('claim and resolve from the console; kill button kills through the API', async () => {
    await page.click('.item[data-item="rev_ops_1"] .claim-btn');
    await page.waitForFunction(async () => true);
    for (let i = 0; i < 50 && (await server.store.getReview('rev_ops_1'))?.status !== 'claimed'; i++)
      await new Promise((r) => setTimeout(r, 100));
    assert.equal((await server.store.getReview('rev_ops_1'))?.claim?.reviewer, 'ops-admin');
    await page.click('.item[data-item="rev_ops_1"] .resolve-btn[data-outcome="uphold"]');
    for (let i = 0; i < 50 && (await server.store.getReview('rev_ops_1'))?.status !== 'resolved'; i++)
      await new Promise((r) => setTimeout(r, 100));
    assert.equal((await server.store.getReview('rev_ops_1'))?.resolution?.outcome, 'uphold');
    await page.waitForSelector('.item[data-item="rev_ops_1"]', { state: 'detached', timeout: 30_000 });

    page.once('dialog', (d) => void d.accept('killed from the console'));
    await page.click('.kill-btn[data-stream="cam1"]');
    for (let i = 0; i < 50 && sfu.getStream('cam1'); i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(sfu.getStream('cam1'), undefined, 'stream closed');
    const decisions = await server.store.listDecisions({ streamId: 'cam1' });
    assert.ok(
      decisions.some(
        (d) => d.action === 'kill_stream' && d.note === 'killed from the console' && d.actor === 'ops-admin',
      ),
    );
    await page.waitForSelector('.resume-btn[data-stream="cam1"]', { timeout: 30_000 });
  });
});
