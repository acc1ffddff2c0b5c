// The load test end to end against the real server (tsx server/main.ts, started by the tool): a short
// run whose report must match the scripted ground truth: every scripted kill detected, no clean
// stream killed. The server runs hash matching only (no classifier, OCR or VAD) so the run stays
// meaningful on a shared 2-core machine; the full pipeline is what `npm run loadtest` measures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Socket as UdpSocket } from 'node:dgram';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, runLoadTest, writeReport } from '../../loadtest/run.ts';
import { terminalSummary } from '../../loadtest/report.ts';

test(
  'a short run against the real server: every scripted kill detected, no clean stream killed',
  { timeout: 240_000 },
  async () => {
    const out = await mkdtemp(join(tmpdir(), 'loadtest-e2e-'));
    try {
      const o = await parseArgs([
        '--streams',
        '3',
        '--viewers',
        '6',
        '--duration',
        '14',
        '--violating',
        '1',
        '--kinds',
        'banked_picture',
        '--width',
        '320',
        '--height',
        '180',
        '--server-env',
        'OCR=false,VAD=false,INFERENCE_BACKEND=none',
        '--budget',
        'missed=0,false_kills=0',
        '--quiet',
      ]);
      const report = await runLoadTest(o, () => undefined);
      const files = await writeReport(report, out);
      const r = report.result;
      const summary = terminalSummary(report);
      assert.equal(r.counts.streamErrors, 0, summary);
      assert.equal(r.plan.violating, 1);
      // every scripted kill detected, with a kill latency and an exposure window measured
      const kills = r.violations.filter((v) => v.expect === 'kill');
      assert.equal(kills.length, 1);
      for (const k of kills) {
        assert.ok(k.detected, summary);
        assert.ok(k.killLatencyMs !== undefined && k.killLatencyMs >= 0 && k.killLatencyMs < 10_000, summary);
        assert.ok(k.exposureMs !== undefined && k.exposureMs < 10_000, summary);
        assert.ok(k.viewers.length === 2 && k.viewers.every((v) => v.observed === 'cut'), summary);
      }
      assert.equal(r.killLatencyMs.n, kills.length);
      // no clean stream killed, and their viewers kept receiving
      assert.equal(r.clean.length, 2);
      assert.equal(r.counts.falseKills, 0, summary);
      assert.ok(r.forwarding.latencyMs.n > 500, summary);
      assert.ok(r.server.points > 0, 'metrics were scraped');
      assert.ok(report.passed, summary);
      // the files say the same
      const json = JSON.parse(await readFile(files.json, 'utf8')) as typeof report;
      assert.equal(json.result.counts.detected, r.counts.detected);
      const html = await readFile(files.html, 'utf8');
      for (const s of r.timeline) assert.ok(html.includes(s.streamId));
    } finally {
      await rm(out, { recursive: true, force: true });
      // werift 0.25.2 can leave a closed peer's ICE socket bound (see sfu-fixture.ts); the clients are
      // closed, so let the test process end instead of waiting on them
      for (const h of (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles())
        if (h instanceof UdpSocket) h.unref();
    }
  },
);
