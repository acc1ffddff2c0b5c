// Reads the server's Prometheus text exposition (/metrics) into the handful of figures the report
// needs. Metric names are matched by pattern, not by exact name, so the tool keeps working while the
// server's metric set grows; the names that matched are recorded in the result.

import type { CumulativeHistogram } from './stats.ts';

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parsePrometheus(text: string): PromSample[] {
  const out: PromSample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    if (m[3]) {
      for (const lm of m[3].matchAll(LABEL))
        labels[lm[1]!] = lm[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    const v = m[4]!;
    const value = v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : Number(v);
    out.push({ name: m[1]!, labels, value });
  }
  return out;
}

/** Sum of every series of the first metric name matching `pattern` (all label sets), or undefined. */
export function sumMetric(samples: PromSample[], pattern: RegExp): { name: string; value: number } | undefined {
  const name = samples.find((s) => pattern.test(s.name))?.name;
  if (!name) return undefined;
  let value = 0;
  for (const s of samples) if (s.name === name && Number.isFinite(s.value)) value += s.value;
  return { name, value };
}

/** The histogram whose base name matches `pattern`, merged over every label set except `le`. */
export function findHistogram(
  samples: PromSample[],
  pattern: RegExp,
  filter?: (labels: Record<string, string>) => boolean,
): { name: string; histogram: CumulativeHistogram } | undefined {
  const bucketSample = samples.find(
    (s) => s.name.endsWith('_bucket') && pattern.test(s.name.slice(0, -7)) && (!filter || filter(s.labels)),
  );
  if (!bucketSample) return undefined;
  const base = bucketSample.name.slice(0, -7);
  const byLe = new Map<number, number>();
  let count = 0;
  let sum = 0;
  for (const s of samples) {
    if (filter && !filter(s.labels)) continue;
    if (s.name === `${base}_bucket`) {
      const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
      byLe.set(le, (byLe.get(le) ?? 0) + s.value);
    } else if (s.name === `${base}_count`) count += s.value;
    else if (s.name === `${base}_sum`) sum += s.value;
  }
  const buckets = [...byLe.entries()].sort((a, b) => a[0] - b[0]).map(([le, c]) => ({ le, count: c }));
  return { name: base, histogram: { buckets, count, sum } };
}

/** One scrape reduced to the figures the load test tracks over time. */
export interface ServerPoint {
  /** Client clock (ms) when the scrape returned. */
  at: number;
  cpuSeconds?: number;
  rssBytes?: number;
  /**
   * Event-loop delay p99 (ms) beyond the monitor's sampling interval (this server reports it so; for a
   * server that reports perf_hooks' raw timer period, pass its interval as eventLoopResolutionMs).
   * The server resets its monitor on each scrape.
   */
  eventLoopP99Ms?: number;
  /** The same, as reported (ms). */
  eventLoopP99RawMs?: number;
  eventLoopMaxMs?: number;
  samplerDrops?: number;
  deadlineMisses?: number;
  decisionHistogram?: CumulativeHistogram;
  /** Every stage of the per-stage latency histogram (msfu_stage_latency_ms{stage}), by stage: where the decision time goes. */
  stageHistograms?: Record<string, CumulativeHistogram>;
  killHistogram?: CumulativeHistogram;
  /** The main isolate's major (mark-compact) collections so far: count and seconds paused (prom-client's nodejs_gc_duration_seconds). */
  majorGc?: { count: number; seconds: number };
  /** Unit of the latency histograms' bounds: prom-client convention is seconds. */
  histogramUnitMs?: number;
  names: Record<string, string>;
}

export const METRIC_PATTERNS = {
  cpu: /(^|_)process_cpu_seconds_total$/,
  rss: /(^|_)process_resident_memory_bytes$/,
  /** prom-client's default lag metric (seconds); the server's own ms gauge is preferred when present. */
  eventLoopP99: /(^|_)nodejs_eventloop_(lag|delay)_p99_seconds$/,
  eventLoopMax: /(^|_)nodejs_eventloop_(lag|delay)_max_seconds$/,
  samplerDrops: /moderation_drops|sampl.*drop|drop.*sampl|tap.*drop/i,
  deadlineMisses: /deadline_miss|budget_miss/i,
  decisionLatency: /stage_latency|decision.*(latency|duration|seconds|ms)|(latency|duration).*decision/i,
  killLatency: /kill.*(latency|duration|seconds|ms)/i,
} as const;

/** Event-loop delay gauge in ms with a `quantile` label (reset on each scrape), e.g. msfu_event_loop_delay_ms. */
const EVENT_LOOP_MS = /event_loop_delay_ms$/;
/** Stages of a per-stage latency histogram that stand for "frame complete at the server -> decision applied", best first. */
const DECISION_STAGES = ['total', 'decision'];

export interface ReduceOptions {
  /** Subtracted from the server's event-loop readings (ms). Default 0: server/metrics.ts reports delay beyond its sampling timer. */
  eventLoopResolutionMs?: number;
}

export function reducePoint(at: number, samples: PromSample[], options: ReduceOptions = {}): ServerPoint {
  const resolution = options.eventLoopResolutionMs ?? 0;
  const names: Record<string, string> = {};
  const pick = (key: keyof typeof METRIC_PATTERNS): number | undefined => {
    const m = sumMetric(samples, METRIC_PATTERNS[key]);
    if (m) names[key] = m.name;
    return m?.value;
  };
  const hist = (key: 'decisionLatency' | 'killLatency'): CumulativeHistogram | undefined => {
    let h = findHistogram(samples, METRIC_PATTERNS[key]);
    if (
      h &&
      key === 'decisionLatency' &&
      samples.some((s) => s.name === `${h!.name}_bucket` && s.labels.stage !== undefined)
    ) {
      const stage =
        DECISION_STAGES.find((st) =>
          samples.some((s) => s.name === `${h!.name}_bucket` && s.labels.stage === st && s.value > 0),
        ) ?? DECISION_STAGES[0]!;
      h = findHistogram(samples, METRIC_PATTERNS[key], (l) => l.stage === stage);
      if (h) names[key] = `${h.name}{stage="${stage}"}`;
    } else if (h) names[key] = h.name;
    return h?.histogram;
  };
  let eventLoopP99Ms: number | undefined;
  let eventLoopMaxMs: number | undefined;
  const eld = samples.filter((s) => EVENT_LOOP_MS.test(s.name));
  if (eld.length) {
    eventLoopP99Ms = eld.find((s) => s.labels.quantile === '0.99')?.value;
    eventLoopMaxMs = eld.find((s) => s.labels.quantile === 'max')?.value;
    names.eventLoopP99 = `${eld[0]!.name}{quantile="0.99"}`;
  } else {
    const lag = pick('eventLoopP99');
    const lagMax = pick('eventLoopMax');
    eventLoopP99Ms = lag === undefined ? undefined : lag * 1000;
    eventLoopMaxMs = lagMax === undefined ? undefined : lagMax * 1000;
  }
  const decision = hist('decisionLatency');
  let stageHistograms: Record<string, CumulativeHistogram> | undefined;
  const staged = names.decisionLatency?.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)\{stage=/)?.[1];
  if (staged) {
    stageHistograms = {};
    const stages = new Set(samples.filter((s) => s.name === `${staged}_bucket`).map((s) => s.labels.stage ?? ''));
    for (const stage of stages) {
      const h = findHistogram(samples, new RegExp(`^${staged}$`), (l) => l.stage === stage);
      if (stage && h) stageHistograms[stage] = h.histogram;
    }
  }
  const unit = names.decisionLatency && /_ms(\{|$)|_milliseconds(\{|$)/.test(names.decisionLatency) ? 1 : 1000;
  return {
    at,
    cpuSeconds: pick('cpu'),
    rssBytes: pick('rss'),
    eventLoopP99Ms: eventLoopP99Ms === undefined ? undefined : Math.max(0, eventLoopP99Ms - resolution),
    eventLoopP99RawMs: eventLoopP99Ms,
    eventLoopMaxMs,
    samplerDrops: pick('samplerDrops'),
    deadlineMisses: deadlineMisses(samples, names),
    decisionHistogram: decision,
    stageHistograms,
    killHistogram: hist('killLatency'),
    majorGc: majorGc(samples),
    histogramUnitMs: unit,
    names,
  };
}

function majorGc(samples: PromSample[]): { count: number; seconds: number } | undefined {
  const gc = samples.filter((s) => /(^|_)nodejs_gc_duration_seconds_(sum|count)$/.test(s.name));
  // a kind's series appears with its first collection: before the first major GC the family has minor ones only
  if (!gc.length) return undefined;
  const major = (suffix: string) => gc.find((s) => s.name.endsWith(suffix) && s.labels.kind === 'major')?.value ?? 0;
  return { count: major('_count'), seconds: major('_sum') };
}

/** Budget misses plus inference requests answered `deadline` (msfu_inference_requests_total{outcome="deadline"}). */
function deadlineMisses(samples: PromSample[], names: Record<string, string>): number | undefined {
  const misses = sumMetric(samples, METRIC_PATTERNS.deadlineMisses);
  const inference = samples.filter((s) => /inference_requests_total$/.test(s.name) && s.labels.outcome === 'deadline');
  if (!misses && !inference.length) return undefined;
  const parts: string[] = [];
  if (misses) parts.push(misses.name);
  if (inference.length) parts.push(`${inference[0]!.name}{outcome="deadline"}`);
  names.deadlineMisses = parts.join(' + ');
  return (misses?.value ?? 0) + inference.reduce((n, s) => n + s.value, 0);
}
