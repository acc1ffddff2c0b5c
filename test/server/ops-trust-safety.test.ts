// The /ops console's trust-and-safety parts in real Chromium (issue 17 item 5): the review queue per
// jurisdiction (depth, age, overdue), the shadow report of a running candidate, and the transparency
// report with its plots, all fed by the real API; the plotted bars are checked in the screenshot.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { buildServer, type Server } from '../../server/app.ts';
import { loadConfig } from '../../server/config.ts';
import { withDueAt } from '../../policies/index.ts';
import { FakeSfu } from '../sfu/fake.ts';
import { signal } from '../policies/helpers.ts';
import { launchChromium, reviewItem } from './helpers.ts';
import { countColor, decodePng } from './png.ts';

const KILL_RGB: [number, number, number] = [229, 72, 77];

describe('ops console: queues per jurisdiction, shadow report, transparency report (Chromium)', () => {
  let server: Server;
  let browser: Browser;
  let admin: string;

  before(async () => {
    const sfu = new FakeSfu();
    server = await buildServer(
      loadConfig({
        env: {},
        overrides: { port: 0, host: '127.0.0.1', logLevel: 'silent', heartbeatMs: 200, moderation: false },
      }),
      { sfu },
    );
    await server.listen();
    admin = await server.auth.sign({ role: 'admin', sub: 'ops-admin' });
    const inject = (method: 'POST', url: string, payload: object) =>
      server.app.inject({ method, url, headers: { authorization: `Bearer ${admin}` }, payload });
    // a shadow candidate with a lower global red threshold: it would kill what the active policy blanks
    assert.equal(
      (
        await inject('POST', '/v1/policies/shadow', {
          thresholds: [{ jurisdiction: 'global', category: 'sexual_explicit', red: 0.6 }],
        })
      ).statusCode,
      200,
    );
    sfu.add('ts-cam');
    for (let i = 1; i <= 8; i++)
      server.enforcer.onSignal(
        signal(
          i,
          { sexual_explicit: 0.75 },
          { streamId: 'ts-cam', arrivedAt: Date.now() - 20, completedAt: Date.now() },
        ),
      );
    // queues: an overdue DE item and a fresh SE one
    await server.control.enqueueReview(
      withDueAt(
        reviewItem({
          id: 'rev_ts_de',
          streamId: 'ts-de',
          jurisdictions: ['DE'],
          createdAt: Date.now() - 2 * 3_600_000,
        }),
        server.policies.current,
      ),
    );
    await server.control.enqueueReview(
      withDueAt(reviewItem({ id: 'rev_ts_se', streamId: 'ts-se', jurisdictions: ['SE'] }), server.policies.current),
    );
    // an operator's kill, for the transparency report's human column
    sfu.add('ts-kill');
    assert.equal((await inject('POST', '/v1/streams/ts-kill/kill', { reason: 'seeded kill' })).statusCode, 202);
    await server.store.flush();
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test('queue per jurisdiction with the overdue item, the shadow kill, the transparency plots', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1400 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${server.url}/ops?token=${admin}`);

    await page.waitForSelector('#queues tr[data-queue="DE"]', { timeout: 30_000 });
    assert.equal((await page.textContent('#queues tr[data-queue="DE"] .depth'))?.trim(), '1');
    assert.equal((await page.textContent('#queues tr[data-queue="DE"] .overdue'))?.trim(), '1');
    assert.equal((await page.textContent('#queues tr[data-queue="SE"] .overdue'))?.trim(), '0');
    await page.waitForSelector('.item[data-item="rev_ts_de"] .tag.overdue', { timeout: 30_000 });
    const order = await page.$$eval('#review .item', (els) => els.map((e) => e.getAttribute('data-item')));
    assert.equal(order[0], 'rev_ts_de', `the overdue item first: ${order.join(',')}`);

    await page.waitForSelector('#shadow tr[data-shadow="global/sexual_explicit"]', { timeout: 30_000 });
    assert.match(
      (await page.textContent('#shadow tr[data-shadow="global/sexual_explicit"] .shadow-only')) ?? '',
      /kill 1/,
    );
    assert.match((await page.textContent('#shadow tr[data-shadow="global/sexual_explicit"]')) ?? '', /ts-cam/);
    assert.match(
      (await page.textContent('#shadow tr[data-shadow="default/sexual_explicit"] .active-only')) ?? '',
      /blank 1/,
    );
    assert.match((await page.textContent('#shadow-state')) ?? '', /running · report fresh/);

    await page.waitForSelector('#transparency svg.bars.restrictions rect[data-key="kill_stream"]', {
      state: 'attached',
      timeout: 30_000,
    });
    const kills = await page.$$eval('#transparency svg.bars.restrictions rect[data-key="kill_stream"]', (els) =>
      els.map((e) => [e.getAttribute('data-row'), e.getAttribute('data-value')]),
    );
    assert.deepEqual(kills, [['global', '1']], 'one kill, stream-wide');
    assert.ok((await page.$$('#transparency svg.bars.restrictions rect[data-key="blank_video"]')).length >= 1);
    assert.ok(
      (await page.$$('#transparency svg.bars.automation rect[data-key="human"]')).length === 1,
      'the operator kill is human',
    );
    assert.match((await page.textContent('.rate[data-rate="to human review"]')) ?? '', /target ≤ 3\.0 %/);
    assert.match((await page.textContent('.rate[data-rate="reviewer disagreement"]')) ?? '', /target ≤ 1\.0 %/);

    // the kill bar is painted
    const box = await page
      .locator('#transparency svg.bars.restrictions rect[data-key="kill_stream"]')
      .first()
      .boundingBox();
    assert.ok(box && box.width > 5, JSON.stringify(box));
    const shot = decodePng(await page.screenshot({ clip: box }));
    assert.ok(countColor(shot, KILL_RGB, 30) > 50, 'kill bar pixels');
    assert.deepEqual(errors, []);
    await page.close();
  });
});
