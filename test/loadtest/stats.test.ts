import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  diffHistogram,
  histogram,
  histogramQuantile,
  JitterEstimator,
  quantileSorted,
  Reservoir,
  summarize,
} from '../../loadtest/stats.ts';
import { findHistogram, parsePrometheus, reducePoint, sumMetric } from '../../loadtest/prometheus.ts';
import { checkBudget, parseBudget } from '../../loadtest/budget.ts';

test('quantiles interpolate between closest ranks', () => {
  const xs = Float64Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.equal(quantileSorted(xs, 0.5), 5.5);
  assert.equal(quantileSorted(xs, 0), 1);
  assert.equal(quantileSorted(xs, 1), 10);
  assert.ok(Math.abs(quantileSorted(xs, 0.99) - 9.91) < 1e-9);
  const s = summarize([10, 1, 5]);
  assert.deepEqual([s.n, s.min, s.p50, s.max, s.mean], [3, 1, 5, 10, 16 / 3]);
  assert.ok(Number.isNaN(summarize([]).p99));
});

test('reservoir keeps a bounded, uniform sample', () => {
  const r = new Reservoir(1000, 3);
  for (let i = 0; i < 100_000; i++) r.add(i);
  const v = r.values();
  assert.equal(v.length, 1000);
  assert.equal(r.seen, 100_000);
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  assert.ok(Math.abs(mean - 50_000) < 5000, `mean ${mean}`);
});

test('jitter follows RFC 3550: constant delay gives zero, alternating delay converges to the swing', () => {
  const flat = new JitterEstimator();
  for (let i = 0; i < 100; i++) flat.add(i * 20, i * 20 + 5);
  assert.equal(flat.jitter, 0);
  const swing = new JitterEstimator();
  for (let i = 0; i < 500; i++) swing.add(i * 20, i * 20 + (i % 2 ? 8 : 2));
  assert.ok(Math.abs(swing.jitter - 6) < 0.01, `jitter ${swing.jitter}`);
});

test('histogram bins count every value in range', () => {
  const bins = histogram([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 5, 0, 10);
  assert.deepEqual(
    bins.map((b) => b.count),
    [2, 2, 2, 2, 2],
  );
});

const METRICS = `# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
process_resident_memory_bytes 104857600
nodejs_eventloop_lag_p99_seconds 0.0123
nodejs_eventloop_lag_max_seconds 0.05
sfu_sampler_dropped_packets_total{stream="a"} 3
sfu_sampler_dropped_packets_total{stream="b"} 4
moderation_deadline_missed_total 2
moderation_decision_latency_seconds_bucket{le="0.05",stage="x"} 50
moderation_decision_latency_seconds_bucket{le="0.1",stage="x"} 90
moderation_decision_latency_seconds_bucket{le="0.2",stage="x"} 100
moderation_decision_latency_seconds_bucket{le="+Inf",stage="x"} 100
moderation_decision_latency_seconds_sum{stage="x"} 6
moderation_decision_latency_seconds_count{stage="x"} 100
weird_label{a="x\\"y",b="z"} 1
msfu_process_nodejs_gc_duration_seconds_bucket{le="0.01",kind="major"} 3
msfu_process_nodejs_gc_duration_seconds_sum{kind="minor"} 0.9
msfu_process_nodejs_gc_duration_seconds_count{kind="minor"} 90
msfu_process_nodejs_gc_duration_seconds_sum{kind="major"} 0.125
msfu_process_nodejs_gc_duration_seconds_count{kind="major"} 5
`;

test('prometheus text is parsed, summed and reduced by pattern', () => {
  const s = parsePrometheus(METRICS);
  assert.equal(s.find((x) => x.name === 'weird_label')!.labels.a, 'x"y');
  assert.equal(sumMetric(s, /sampl.*drop/)!.value, 7);
  const h = findHistogram(s, /decision.*latency/)!;
  assert.equal(h.name, 'moderation_decision_latency_seconds');
  assert.equal(h.histogram.count, 100);
  // rank 99 of 100 falls in (0.1, 0.2]: 9 of 10 values in, linear -> 0.19
  assert.ok(Math.abs(histogramQuantile(h.histogram, 0.99) - 0.19) < 1e-9);
  assert.ok(Math.abs(histogramQuantile(h.histogram, 0.5) - 0.05) < 1e-9);
  const p = reducePoint(1000, s, { eventLoopResolutionMs: 0 });
  assert.equal(p.cpuSeconds, 12.5);
  assert.equal(p.rssBytes, 104857600);
  assert.ok(Math.abs(p.eventLoopP99Ms! - 12.3) < 1e-9);
  assert.equal(p.samplerDrops, 7);
  assert.equal(p.deadlineMisses, 2);
  assert.equal(p.histogramUnitMs, 1000);
  assert.deepEqual(p.majorGc, { count: 5, seconds: 0.125 }, 'major collections only');
  const early = parsePrometheus('msfu_process_nodejs_gc_duration_seconds_count{kind="minor"} 3\n');
  assert.deepEqual(reducePoint(0, early).majorGc, { count: 0, seconds: 0 }, 'no major collection yet');
  assert.equal(reducePoint(0, []).majorGc, undefined, 'no GC metrics at all');
});

test('histogram differences isolate the interval between two scrapes', () => {
  const before = {
    buckets: [
      { le: 0.1, count: 10 },
      { le: Infinity, count: 10 },
    ],
    count: 10,
    sum: 0.5,
  };
  const after = {
    buckets: [
      { le: 0.1, count: 10 },
      { le: Infinity, count: 20 },
    ],
    count: 20,
    sum: 3,
  };
  const d = diffHistogram(after, before);
  assert.equal(d.count, 10);
  assert.equal(histogramQuantile(d, 0.5), 0.1); // all new values in +Inf: the last finite bound
});

test('budgets parse, and a figure that could not be measured misses', () => {
  const b = parseBudget('decision_p99=100, kill_p99<=150,false_kills=0');
  assert.deepEqual(b, { decision_p99: 100, kill_p99: 150, false_kills: 0 });
  const checks = checkBudget(b, { decision_p99: 80, kill_p99: 151, false_kills: null });
  assert.deepEqual(
    checks.map((c) => c.ok),
    [true, false, false],
  );
  assert.throws(() => parseBudget('decision_p99'), /bad budget/);
});

test("the server's own metric names are understood (msfu_*: ms histograms by stage, event-loop gauge by quantile)", () => {
  const text = `msfu_process_process_cpu_seconds_total 3
msfu_process_process_resident_memory_bytes 2000000
msfu_process_nodejs_eventloop_lag_p99_seconds 0.5
msfu_event_loop_delay_ms{quantile="0.5"} 1.5
msfu_event_loop_delay_ms{quantile="0.99"} 7.25
msfu_event_loop_delay_ms{quantile="max"} 20
msfu_budget_misses_total{stage="total"} 2
msfu_inference_requests_total{backend="onnx",outcome="deadline"} 3
msfu_inference_requests_total{backend="onnx",outcome="ok"} 30
msfu_stage_latency_ms_bucket{stage="inference",le="10"} 5
msfu_stage_latency_ms_bucket{stage="inference",le="+Inf"} 5
msfu_stage_latency_ms_bucket{stage="total",le="50"} 8
msfu_stage_latency_ms_bucket{stage="total",le="100"} 10
msfu_stage_latency_ms_bucket{stage="total",le="+Inf"} 10
msfu_stage_latency_ms_count{stage="total"} 10
msfu_stage_latency_ms_sum{stage="total"} 400
msfu_moderation_drops{stage="tap"} 1
msfu_moderation_drops{stage="sampler"} 4
msfu_moderation_drops{stage="inflight"} 2
`;
  const p = reducePoint(0, parsePrometheus(text), { eventLoopResolutionMs: 5 });
  assert.equal(p.cpuSeconds, 3);
  assert.equal(p.rssBytes, 2000000);
  assert.equal(p.eventLoopP99RawMs, 7.25);
  assert.equal(p.eventLoopP99Ms, 2.25, 'the sampling interval is not delay');
  assert.equal(p.eventLoopMaxMs, 20);
  assert.equal(p.deadlineMisses, 5);
  assert.equal(p.samplerDrops, 7, 'moderation drops over every stage');
  assert.equal(p.histogramUnitMs, 1);
  assert.equal(p.decisionHistogram!.count, 10, 'only the total stage');
  assert.equal(p.names.decisionLatency, 'msfu_stage_latency_ms{stage="total"}');
  assert.ok(Math.abs(histogramQuantile(p.decisionHistogram!, 0.99) - 97.5) < 1e-9);
  assert.deepEqual(Object.keys(p.stageHistograms!).sort(), ['inference', 'total'], 'every stage, for the breakdown');
  assert.equal(p.stageHistograms!.total!.count, 10);
  assert.equal(p.stageHistograms!.inference!.buckets.at(-1)!.count, 5);
});
