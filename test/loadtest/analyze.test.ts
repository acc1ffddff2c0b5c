import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyze, type RunRecord, type StreamRecord } from '../../loadtest/analyze.ts';
import { newViewerRecord, SendLedger, ForwardingRecorder, type ViewerRecord } from '../../loadtest/observe.ts';
import { planRun, parseExpect, violatingCount } from '../../loadtest/script.ts';
import { htmlReport, serverOnlyStreams, terminalSummary, type LoadTestReport } from '../../loadtest/report.ts';
import { checkBudget, runChecks } from '../../loadtest/budget.ts';

test('plans are deterministic and give regional streams viewers on both sides of the border', () => {
  const a = planRun({ streams: 8, viewers: 16, durationSec: 20, violating: 0.5, jurisdictions: ['SE', 'SA', 'DE'] });
  const b = planRun({ streams: 8, viewers: 16, durationSec: 20, violating: 0.5, jurisdictions: ['SE', 'SA', 'DE'] });
  assert.deepEqual(a, b);
  assert.equal(a.streams.filter((s) => s.violations.length).length, 4);
  assert.deepEqual(
    a.streams.slice(0, 4).map((s) => s.violations[0]!.kind),
    ['banked_picture', 'banned_text', 'protected_audio', 'regional'],
  );
  for (const s of a.streams) for (const v of s.violations) assert.ok(v.atSec >= 7 && v.atSec <= 11, `onset ${v.atSec}`);
  const regional = a.viewers.filter((v) => v.streamId === a.streams[3]!.streamId).map((v) => v.jurisdiction);
  assert.deepEqual(regional, ['SA', 'SE']);
  const audio = a.viewers.filter((v) => v.streamId === a.streams[2]!.streamId).map((v) => v.jurisdiction);
  assert.deepEqual(audio, ['DE', 'SE']);
  assert.equal(violatingCount('25%', 8), 2);
  assert.equal(violatingCount('3', 8), 3);
  assert.equal(violatingCount('1.0', 8), 8);
  assert.deepEqual(parseExpect('blank:sa,th'), { action: 'blank', jurisdictions: ['SA', 'TH'] });
  assert.throws(() => parseExpect('blank'), /bad expectation/);
});

/** Feeds a viewer's timelines: source packets every `stepMs` in [from, to), optional foreign ones after. */
function feed(
  v: ViewerRecord,
  kind: 'audio' | 'video',
  from: number,
  to: number,
  origin: 'source' | 'foreign' = 'source',
  stepMs = 20,
): void {
  for (let t = from; t < to; t += stepMs) v[kind].add(origin, t);
}

function scenario(opts: { killClean?: boolean; missBlank?: boolean } = {}): RunRecord {
  const plan = planRun({
    streams: 5,
    viewers: 10,
    durationSec: 20,
    violating: 4,
    jurisdictions: ['SE', 'SA', 'DE'],
    expect: { banned_text: 'kill' },
  });
  const t0 = 1_000_000;
  const end = t0 + 20_000;
  const onsetAt = (i: number) => t0 + plan.streams[i]!.violations[0]!.atSec * 1000;
  const viewers = plan.viewers.map((p) => newViewerRecord(p.viewerId, p.streamId, p.jurisdiction));
  const of = (i: number) => viewers.filter((v) => v.streamId === plan.streams[i]!.streamId);
  const streams: StreamRecord[] = plan.streams.map((s, i) => ({
    streamId: s.streamId,
    startedAt: t0,
    onsets: s.violations.length ? [onsetAt(i)] : [],
    decisions: [],
  }));
  // 0, 1: killed 120 ms after onset, viewers' media stops at +100 ms
  for (const i of [0, 1]) {
    streams[i]!.killedAt = onsetAt(i) + 120;
    streams[i]!.decisions.push({
      at: onsetAt(i) + 90,
      action: 'kill',
      jurisdictions: [],
      source: 'ops_ws',
      serverLatencyMs: 40,
    });
    for (const v of of(i)) {
      feed(v, 'video', t0, onsetAt(i) + 100, 'source', 33);
      feed(v, 'audio', t0, onsetAt(i) + 100);
      v.closedAt = onsetAt(i) + 150;
    }
  }
  // 2: protected audio, DE viewer muted at +300 ms, SE viewer keeps everything
  for (const v of of(2)) {
    feed(v, 'video', t0, end, 'source', 33);
    feed(v, 'audio', t0, v.jurisdiction === 'DE' ? onsetAt(2) + 300 : end);
  }
  streams[2]!.decisions.push({ at: onsetAt(2) + 250, action: 'mute', jurisdictions: ['DE'], source: 'ops_ws' });
  // 3: regional, SA viewer gets the slate at +200 ms (unless the test wants it missed)
  for (const v of of(3)) {
    feed(v, 'audio', t0, end);
    if (v.jurisdiction === 'SA' && !opts.missBlank) {
      feed(v, 'video', t0, onsetAt(3) + 200, 'source', 33);
      feed(v, 'video', onsetAt(3) + 200, end, 'foreign', 500);
    } else feed(v, 'video', t0, end, 'source', 33);
  }
  // 4: clean
  for (const v of of(4)) {
    feed(v, 'video', t0, end, 'source', 33);
    feed(v, 'audio', t0, end);
  }
  if (opts.killClean) streams[4]!.killedAt = t0 + 5000;
  return {
    plan,
    moderation: 'on',
    startedAt: t0,
    endedAt: end,
    steadyFrom: t0 + 1000,
    steadyTo: end,
    streams,
    viewers,
    forwardingLatencyMs: [1, 2, 3, 4, 5],
    foreignPackets: 0,
    server: [
      { at: t0 + 1000, cpuSeconds: 10, rssBytes: 100 * 2 ** 20, eventLoopP99Ms: 50, names: {} },
      { at: t0 + 2000, cpuSeconds: 10.5, rssBytes: 120 * 2 ** 20, eventLoopP99Ms: 4, names: {} },
      { at: t0 + 3000, cpuSeconds: 11, rssBytes: 110 * 2 ** 20, eventLoopP99Ms: 6, names: {} },
      { at: t0 + 4000, cpuSeconds: 11.5, eventLoopP99Ms: 5, names: {} },
    ],
  };
}

test('analysis matches a well-behaved run to its ground truth', () => {
  const r = analyze(scenario());
  assert.equal(r.counts.violations, 4);
  assert.equal(
    r.counts.detected,
    4,
    JSON.stringify(
      r.violations.filter((v) => !v.detected),
      null,
      1,
    ),
  );
  assert.equal(r.counts.falseKills, 0);
  assert.equal(r.counts.falseBlanks, 0);
  assert.equal(r.counts.overblocked, 0);
  const [k0, , mute, blank] = r.violations;
  assert.equal(k0!.killLatencyMs, 120);
  assert.equal(k0!.decisionLatencyMs, 90);
  assert.equal(k0!.serverDecisionLatencyMs, 40);
  assert.ok(Math.abs(k0!.exposureMs! - 100) <= 20);
  assert.deepEqual(
    mute!.viewers.map((v) => [v.jurisdiction, v.expected, v.observed]),
    [
      ['DE', 'mute', 'mute'],
      ['SE', 'forward', 'forward'],
    ],
  );
  assert.ok(Math.abs(mute!.viewers[0]!.afterMs! - 300) <= 20);
  assert.deepEqual(
    blank!.viewers.map((v) => [v.jurisdiction, v.observed]),
    [
      ['SA', 'blank'],
      ['SE', 'forward'],
    ],
  );
  assert.equal(r.killLatencyMs.n, 2);
  assert.equal(r.server.cpuPercent, 50);
  assert.equal(r.server.rssMaxMb, 120);
  assert.equal(r.server.eventLoopP99Ms, 5); // the first interval (startup) is not a steady-state figure
  assert.equal(r.figures.false_kills, 0);
  assert.equal(r.figures.kill_p99! <= 120, true);
  assert.equal(r.timeline.length, 5);
});

test('analysis catches a false kill and a missed blank', () => {
  const r = analyze(scenario({ killClean: true, missBlank: true }));
  assert.equal(r.counts.falseKills, 1);
  assert.equal(r.counts.missed, 1);
  const missed = r.violations.find((v) => !v.detected)!;
  assert.equal(missed.kind, 'regional');
  assert.deepEqual(
    missed.viewers.map((v) => v.observed),
    ['forward', 'forward'],
  );
  assert.deepEqual(
    checkBudget({ false_kills: 0, missed: 0 }, r.figures).map((c) => c.ok),
    [false, false],
  );
});

test('without --budget a moderated run still fails on a missed violation, a false kill or a blanked clean viewer', () => {
  const passes = (run: RunRecord, budget = {}, moderation: 'on' | 'off' = 'on') =>
    runChecks(budget, analyze(run).figures, moderation).every((c) => c.ok);
  assert.equal(passes(scenario()), true, 'a run that matches its ground truth passes');
  assert.equal(passes(scenario({ missBlank: true })), false, 'a missed scripted violation fails the run');
  assert.equal(passes(scenario({ killClean: true })), false, 'a killed clean stream fails the run');
  const blanked = scenario();
  const clean = blanked.viewers.find((v) => v.streamId === blanked.plan.streams[4]!.streamId)!;
  for (let t = blanked.startedAt + 500; t < blanked.endedAt; t += 500) clean.video.add('foreign', t);
  assert.equal(passes(blanked), false, 'a clean viewer on the slate fails the run');
  const decided = scenario();
  decided.streams[4]!.decisions.push({
    at: decided.startedAt + 5000,
    action: 'blank',
    jurisdictions: ['SA'],
    source: 'ops_ws',
    serverLatencyMs: 40,
  });
  assert.equal(analyze(decided).counts.falseRestrictions, 1);
  assert.equal(
    passes(decided),
    false,
    'a clean stream the server blanked fails the run, though no viewer of it saw the slate',
  );
  // a given limit cannot relax the ground truth; with moderation off nothing is expected to be caught
  assert.equal(passes(scenario({ missBlank: true }), { missed: 5 }), false);
  assert.equal(passes(scenario({ missBlank: true }), {}, 'off'), true);
  const checks = runChecks({ decision_p99: 100 }, analyze(scenario({ missBlank: true })).figures, 'on');
  assert.deepEqual(
    checks.filter((c) => !c.ok).map((c) => c.name),
    ['missed'],
  );
});

test("server CPU is reported apart from the load generator's, per stream, with what the server alone would carry", () => {
  const run = scenario();
  run.generator = { cpuSeconds: 6, wallSeconds: 20 };
  const result = analyze(run);
  assert.equal(result.server.cpuPercent, 50);
  assert.equal(result.server.cpuPercentPerStream, 10, '50% over 5 published streams');
  assert.equal(result.generator.cpuPercent, 30);
  assert.equal(result.figures.server_cpu_per_stream, 10);
  assert.equal(result.figures.generator_cpu_percent, 30);
  const report: LoadTestReport = {
    tool: 'loadtest',
    version: 1,
    generatedAt: '2026-01-01T00:00:00Z',
    command: 'x',
    server: 'http://127.0.0.1:1',
    host: { cpus: 2, node: 'v24', loadavg: [0, 0, 0] },
    result,
    budgets: [],
    passed: true,
    notes: [],
  };
  assert.equal(serverOnlyStreams(report), 20, '2 cores / 10% of a core per stream');
  assert.match(
    terminalSummary(report),
    /server 50\.0% \(10\.0% of a core per stream\), load generator 30\.0% .*alone would carry ~20\.0 streams on 2 cores/,
  );
  assert.match(htmlReport(report), /load generator CPU, its own process/);
  // a stream that never published does not dilute the per-stream figure
  const failed = scenario();
  failed.streams[4]!.error = 'setup timeout';
  assert.equal(analyze(failed).server.cpuPercentPerStream, 12.5);
  assert.equal(analyze(failed).generator.cpuPercent, undefined, 'not measured: absent');
});

test('ledger recognises our packets, tells the slate apart and times them', () => {
  const ledger = new SendLedger(1000);
  const rec = new ForwardingRecorder(ledger);
  const v = newViewerRecord('v', 's', 'SE');
  const p = new Uint8Array([0x90, 0x80, 1, 2, 3, 4, 5]);
  ledger.sent('s', 'video', p, 100);
  assert.equal(rec.received(v, 'video', p, 103), 'source');
  assert.equal(rec.received(v, 'video', new Uint8Array([9, 9, 9]), 104), 'foreign');
  assert.equal(rec.received(v, 'audio', p, 105), 'foreign'); // kind matters
  assert.deepEqual(Array.from(rec.latency.values()), [3]);
  ledger.sent('s', 'video', new Uint8Array([1]), 5000); // prunes entries older than the horizon
  assert.equal(ledger.lookup('s', 'video', p), undefined);
});

test('report renders HTML with plots and a terminal summary that says PASS or FAIL', () => {
  const result = analyze(scenario({ killClean: true }));
  const report: LoadTestReport = {
    tool: 'loadtest',
    version: 1,
    generatedAt: '2026-01-01T00:00:00Z',
    command: 'npm run loadtest -- --streams 5',
    server: 'http://127.0.0.1:1',
    host: { cpus: 2, node: 'v20', loadavg: [0, 0, 0] },
    result,
    budgets: checkBudget({ false_kills: 0 }, result.figures),
    passed: false,
    notes: ['<script>'],
  };
  const html = htmlReport(report);
  assert.match(html, /<svg[^>]*aria-label="timeline"/);
  assert.ok((html.match(/<svg/g) ?? []).length >= 4);
  assert.ok(!html.includes('<script>'), 'notes are escaped');
  assert.ok(!/src=|href=/.test(html), 'self-contained');
  const text = terminalSummary(report);
  assert.match(text, /false kills 1/);
  assert.match(text, /budget false_kills <= 0: 1.00 MISSED/);
  assert.match(text, /FAIL$/);
});

test('a viewer already on the slate when a kill comes is cut, not muted; a slate that began before the onset still counts as blank', () => {
  const run = scenario();
  const plan = run.plan;
  const kill = plan.streams[0]!;
  const onset = run.streams[0]!.onsets[0]!;
  const sa = run.viewers.find((v) => v.streamId === kill.streamId && v.jurisdiction === 'SA')!;
  sa.video.segments.length = 0;
  sa.video.add('source', run.startedAt);
  for (let t = onset - 3000; t < onset + 100; t += 500) sa.video.add('foreign', t); // fail-closed slate before the onset
  const r = analyze(run);
  const v = r.violations[0]!.viewers.find((x) => x.jurisdiction === 'SA')!;
  assert.equal(v.observed, 'cut');
  assert.ok(r.violations[0]!.detected);
  // the same slate on a clean stream is a false blank
  const clean = run.viewers.find((x) => x.streamId === plan.streams[4]!.streamId)!;
  for (let t = run.startedAt + 500; t < run.endedAt; t += 500) clean.video.add('foreign', t);
  assert.equal(analyze(run).counts.falseBlanks, 1);
});
