// Turns what the clients recorded into the run's figures and checks them against the scripted ground
// truth. Pure: no I/O, no clocks; everything arrives as recorded data, so it is unit-testable.

import { parseExpect, type Expectation, type RunPlan, type ScriptedViolation } from './script.ts';
import type { HostCpuWindow } from './host-cpu.ts';
import type { ServerPoint } from './prometheus.ts';
import type { KindTimeline, ViewerRecord } from './observe.ts';
import { diffHistogram, histogramQuantile, quantileSorted, summarize, type Summary } from './stats.ts';

/** A restrictive decision as seen over the ops WebSocket (or inferred from enforcement), client clock. */
export interface DecisionRecord {
  at: number;
  action: 'kill' | 'blank' | 'mute' | 'other';
  jurisdictions: string[];
  /** Latency the server itself reports for this decision (frame complete at the server -> applied), ms. */
  serverLatencyMs?: number;
  source: 'ops_ws' | 'viewer_ws' | 'streamer_ws' | 'api';
  /** Statements of reasons behind it, when the event named them. */
  statementIds?: string[];
}

export interface StreamRecord {
  streamId: string;
  /** Client clock when the first packet was sent. */
  startedAt?: number;
  /** Client clock when the first packet of each scripted violation's content was sent (index = violation index). */
  onsets: (number | undefined)[];
  /** Earliest observation of a kill: stream.killed event, publisher session closed by the server, ... */
  killedAt?: number;
  killVia?: string;
  decisions: DecisionRecord[];
  error?: string;
  /** What the server said it relied on for restrictive decisions (statement facts), for false-positive analysis. */
  evidence?: string[];
}

export interface RunRecord {
  plan: RunPlan;
  moderation: 'on' | 'off';
  /** Client clock when media started and when the clients stopped listening. */
  startedAt: number;
  endedAt: number;
  /** Window in which every client was connected: server figures are taken from it. */
  steadyFrom: number;
  steadyTo: number;
  streams: StreamRecord[];
  viewers: ViewerRecord[];
  forwardingLatencyMs: ArrayLike<number>;
  foreignPackets: number;
  server: ServerPoint[];
  /** CPU of the load generator's own process (publishers, viewers, analysis) over the steady window. */
  generator?: { cpuSeconds: number; wallSeconds: number };
  /** The whole machine over the same window: every process's CPU and the hypervisor's steal. */
  host?: HostCpuWindow;
}

export type ViewerExpect = 'cut' | 'blank' | 'mute' | 'forward';
export type ViewerObserved = 'cut' | 'blank' | 'video_stopped' | 'mute' | 'forward' | 'no_media';

export interface ViewerOutcome {
  viewerId: string;
  jurisdiction: string;
  expected: ViewerExpect;
  observed: ViewerObserved;
  /** Onset -> when the viewer's feed changed (ms), when it did. */
  afterMs?: number;
  ok: boolean;
}

export interface ViolationOutcome {
  streamId: string;
  kind: ScriptedViolation['kind'];
  expect: string;
  atSec: number;
  onsetAt?: number;
  /** The expected reaction happened (kill observed; or every restricted viewer filtered). */
  detected: boolean;
  decisionLatencyMs?: number;
  serverDecisionLatencyMs?: number;
  killLatencyMs?: number;
  exposureMs?: number;
  viewers: ViewerOutcome[];
  /** Unrestricted viewers that were filtered anyway. */
  overblocked: number;
}

export interface CleanStreamOutcome {
  streamId: string;
  killed: boolean;
  blankedViewers: string[];
  mutedViewers: string[];
  restrictiveDecisions: number;
  evidence: string[];
}

export interface RunResult {
  moderation: 'on' | 'off';
  plan: { streams: number; viewers: number; durationSec: number; jurisdictions: string[]; violating: number };
  violations: ViolationOutcome[];
  clean: CleanStreamOutcome[];
  forwarding: { latencyMs: Summary; jitterMs: Summary; foreignPackets: number };
  decisionLatencyMs: Summary;
  serverDecisionLatencyMs: Summary;
  killLatencyMs: Summary;
  exposureMs: Summary;
  /** The load generator's own process (not the server's): CPU as % of one core over the steady window. */
  generator: { cpuPercent?: number };
  /** The whole machine over the steady window (% of all cores): busy, and taken by the hypervisor. */
  host: Partial<HostCpuWindow>;
  server: {
    cpuPercent?: number;
    /** cpuPercent divided by the streams that published: what one stream costs the server process alone. */
    cpuPercentPerStream?: number;
    rssMaxMb?: number;
    eventLoopP99Ms?: number;
    eventLoopP99MaxMs?: number;
    /** As the server reports it (including its monitor's sampling interval), median over scrape intervals. */
    eventLoopP99RawMs?: number;
    samplerDrops?: number;
    deadlineMisses?: number;
    /** The main isolate's major GCs over the steady window: how many, and the pause they cost in all (ms). */
    majorGcCount?: number;
    majorGcPauseMs?: number;
    /** Decision latency p99 from the server's own histogram over the steady window (ms). */
    histogramDecisionP99Ms?: number;
    histogramDecisionP50Ms?: number;
    histogramDecisionP95Ms?: number;
    histogramDecisionCount?: number;
    /** The same per stage of the server's latency histogram (sample, queue, inference, decision, total, ocr, audio; ms). */
    stageLatencyMs?: Record<string, { n: number; p50?: number; p95?: number; p99?: number }>;
    metricNames: Record<string, string>;
    points: number;
  };
  counts: {
    violations: number;
    detected: number;
    missed: number;
    falseKills: number;
    falseBlanks: number;
    falseMutes: number;
    /** Clean streams the server restricted at all (a kill, blank or mute decision), seen by a viewer or not. */
    falseRestrictions: number;
    overblocked: number;
    viewerErrors: number;
    streamErrors: number;
  };
  /** Flat name -> value map that budgets are checked against (lower is better for every entry). */
  figures: Record<string, number | null>;
  /** Per-stream timeline for the report's plot: seconds from the run's start. */
  timeline: StreamTimeline[];
  /** Forwarding latencies (a bounded sample, ms) for the distribution plot. */
  forwardingSample: number[];
}

export interface StreamTimeline {
  streamId: string;
  onsets: { atSec: number; kind: string; expect: string }[];
  decisions: { atSec: number; action: string; jurisdictions: string[] }[];
  killAtSec?: number;
  viewers: {
    viewerId: string;
    jurisdiction: string;
    video: [number, number, 'source' | 'foreign'][];
    audio: [number, number, 'source' | 'foreign'][];
  }[];
}

export interface AnalyzeOptions {
  /** A feed still counts as running when its last packet came this close to the end of observation (ms). Default 2000. */
  tailToleranceMs?: number;
  /** Decisions this long before the recorded onset still count (clock slack between frames and decisions), ms. Default 50. */
  earlyDecisionMs?: number;
}

/** The first segment of that origin still running at or after `after` (a slate that began earlier counts). */
function firstSegmentAfter(t: KindTimeline, origin: 'source' | 'foreign', after: number) {
  return t.segments.find((s) => s.origin === origin && s.to >= after);
}

/** Where a viewer's source feed of one kind ended after `after` (the end of the last source segment), if it ended before `end - tol`. */
function sourceStoppedAt(t: KindTimeline, after: number, end: number, tol: number): number | undefined {
  const last = t.lastAt('source');
  if (last === undefined) return undefined;
  if (last < after) return undefined; // never flowed after onset: the feed died earlier (no_media)
  return last < end - tol ? last : undefined;
}

function classifyViewer(
  v: ViewerRecord,
  e: Expectation,
  onset: number,
  end: number,
  tol: number,
): { expected: ViewerExpect; observed: ViewerObserved; afterMs?: number } {
  const restricted = e.action === 'kill' || e.jurisdictions.includes(v.jurisdiction);
  const expected: ViewerExpect = !restricted ? 'forward' : e.action === 'kill' ? 'cut' : e.action;
  const lastV = v.video.lastAt('source');
  const lastA = v.audio.lastAt('source');
  if (Math.max(lastV ?? -Infinity, lastA ?? -Infinity) < onset) return { expected, observed: 'no_media' };
  const foreignVideo = firstSegmentAfter(v.video, 'foreign', onset);
  const foreignAudio = firstSegmentAfter(v.audio, 'foreign', onset);
  const videoStop = sourceStoppedAt(v.video, onset, end, tol);
  const audioStop = sourceStoppedAt(v.audio, onset, end, tol);
  // cut: nothing at all (source or slate) reached the viewer for the tail of the run
  const lastAny = Math.max(v.video.lastAt() ?? -Infinity, v.audio.lastAt() ?? -Infinity);
  if (lastAny < end - tol) return { expected, observed: 'cut', afterMs: lastAny - onset };
  if (foreignVideo) return { expected, observed: 'blank', afterMs: Math.max(0, foreignVideo.from - onset) };
  if (audioStop !== undefined || foreignAudio) {
    return { expected, observed: 'mute', afterMs: Math.max(0, (audioStop ?? foreignAudio!.from) - onset) };
  }
  if (videoStop !== undefined) return { expected, observed: 'video_stopped', afterMs: videoStop - onset };
  return { expected, observed: 'forward' };
}

function okFor(expected: ViewerExpect, observed: ViewerObserved): boolean {
  switch (expected) {
    case 'cut':
      return observed === 'cut';
    case 'blank':
      return observed === 'blank' || observed === 'video_stopped';
    case 'mute':
      return observed === 'mute';
    case 'forward':
      return observed === 'forward';
  }
}

function decisionMatches(d: DecisionRecord, e: Expectation): boolean {
  if (e.action === 'kill') return d.action === 'kill';
  if (d.action !== e.action) return false;
  return d.jurisdictions.length === 0 || e.jurisdictions.some((j) => d.jurisdictions.includes(j));
}

const finite = (xs: (number | undefined)[]): number[] =>
  xs.filter((x): x is number => x !== undefined && Number.isFinite(x));

export function analyze(run: RunRecord, options: AnalyzeOptions = {}): RunResult {
  const tol = options.tailToleranceMs ?? 2000;
  const early = options.earlyDecisionMs ?? 50;
  const byStream = new Map(run.streams.map((s) => [s.streamId, s]));
  const viewersOf = (id: string) => run.viewers.filter((v) => v.streamId === id);
  const violations: ViolationOutcome[] = [];
  const clean: CleanStreamOutcome[] = [];

  for (const script of run.plan.streams) {
    const rec = byStream.get(script.streamId);
    const viewers = viewersOf(script.streamId);
    if (script.violations.length === 0) {
      const blanked: string[] = [];
      const muted: string[] = [];
      for (const v of viewers) {
        const c = classifyViewer(v, { action: 'blank', jurisdictions: [] }, run.steadyFrom, run.endedAt, tol);
        if (c.observed === 'blank' || c.observed === 'video_stopped' || c.observed === 'cut') blanked.push(v.viewerId);
        if (c.observed === 'mute' || c.observed === 'cut') muted.push(v.viewerId);
      }
      clean.push({
        streamId: script.streamId,
        killed: rec?.killedAt !== undefined,
        blankedViewers: blanked,
        mutedViewers: muted,
        restrictiveDecisions: rec?.decisions.filter((d) => d.action !== 'other').length ?? 0,
        evidence: rec?.evidence ?? [],
      });
      continue;
    }
    script.violations.forEach((violation, i) => {
      const e = parseExpect(violation.expect);
      const onset = rec?.onsets[i];
      const out: ViolationOutcome = {
        streamId: script.streamId,
        kind: violation.kind,
        expect: violation.expect,
        atSec: violation.atSec,
        onsetAt: onset,
        detected: false,
        viewers: [],
        overblocked: 0,
      };
      violations.push(out);
      if (onset === undefined || !rec) return;
      const decision = rec.decisions.find((d) => d.at >= onset - early && decisionMatches(d, e));
      if (decision) {
        out.decisionLatencyMs = Math.max(0, decision.at - onset);
        out.serverDecisionLatencyMs = decision.serverLatencyMs;
      }
      if (e.action === 'kill' && rec.killedAt !== undefined && rec.killedAt >= onset - early) {
        out.killLatencyMs = Math.max(0, rec.killedAt - onset);
        if (out.decisionLatencyMs === undefined) out.decisionLatencyMs = out.killLatencyMs;
      }
      for (const v of viewers) {
        const c = classifyViewer(v, e, onset, run.endedAt, tol);
        const ok = okFor(c.expected, c.observed);
        out.viewers.push({ viewerId: v.viewerId, jurisdiction: v.jurisdiction, ...c, ok });
        if (c.expected === 'forward' && !ok) out.overblocked++;
      }
      // exposure: the last of our packets any viewer received after the onset (kills only: a blank
      // leaves unrestricted viewers legitimately watching)
      if (e.action === 'kill') {
        const lasts = finite(
          viewers.map((v) => Math.max(v.video.lastAt('source') ?? -Infinity, v.audio.lastAt('source') ?? -Infinity)),
        );
        if (lasts.length) out.exposureMs = Math.max(0, Math.max(...lasts) - onset);
        out.detected =
          out.killLatencyMs !== undefined &&
          out.viewers.every((v) => v.observed === 'cut' || v.observed === 'no_media');
      } else {
        const restricted = out.viewers.filter((v) => v.expected !== 'forward');
        const filteredTimes = finite(restricted.map((v) => (v.ok ? v.afterMs : undefined)));
        if (restricted.length) {
          out.detected = restricted.every((v) => v.ok);
          if (out.detected) out.exposureMs = Math.max(0, ...filteredTimes);
        } else {
          out.detected = decision !== undefined;
        }
        if (out.decisionLatencyMs === undefined && out.detected && filteredTimes.length)
          out.decisionLatencyMs = Math.min(...filteredTimes);
      }
    });
  }

  // server figures over the steady window
  const pts = run.server.filter((p) => p.at >= run.steadyFrom && p.at <= run.steadyTo);
  const first = pts[0];
  const last = pts[pts.length - 1];
  const server: RunResult['server'] = { metricNames: {}, points: pts.length };
  for (const p of pts) Object.assign(server.metricNames, p.names);
  if (first && last && last !== first) {
    if (first.cpuSeconds !== undefined && last.cpuSeconds !== undefined) {
      server.cpuPercent = (100 * (last.cpuSeconds - first.cpuSeconds)) / ((last.at - first.at) / 1000);
    }
    const published = run.streams.filter((s) => !s.error).length;
    if (server.cpuPercent !== undefined && published > 0) server.cpuPercentPerStream = server.cpuPercent / published;
    if (first.samplerDrops !== undefined && last.samplerDrops !== undefined)
      server.samplerDrops = last.samplerDrops - first.samplerDrops;
    if (first.deadlineMisses !== undefined && last.deadlineMisses !== undefined)
      server.deadlineMisses = last.deadlineMisses - first.deadlineMisses;
    if (first.majorGc && last.majorGc) {
      server.majorGcCount = last.majorGc.count - first.majorGc.count;
      server.majorGcPauseMs = 1000 * (last.majorGc.seconds - first.majorGc.seconds);
    }
    if (last.decisionHistogram) {
      const h = diffHistogram(last.decisionHistogram, first.decisionHistogram);
      server.histogramDecisionCount = h.count;
      const unit = last.histogramUnitMs ?? 1000;
      const q = (p: number): number | undefined => {
        const v = histogramQuantile(h, p);
        return Number.isFinite(v) ? v * unit : undefined;
      };
      server.histogramDecisionP50Ms = q(0.5);
      server.histogramDecisionP95Ms = q(0.95);
      server.histogramDecisionP99Ms = q(0.99);
    }
    if (last.stageHistograms) {
      const unit = last.histogramUnitMs ?? 1000;
      server.stageLatencyMs = {};
      for (const [stage, cumulative] of Object.entries(last.stageHistograms)) {
        const h = diffHistogram(cumulative, first.stageHistograms?.[stage]);
        const q = (p: number): number | undefined => {
          const v = histogramQuantile(h, p);
          return Number.isFinite(v) ? v * unit : undefined;
        };
        server.stageLatencyMs[stage] = { n: h.count, p50: q(0.5), p95: q(0.95), p99: q(0.99) };
      }
    }
  }
  const rss = finite(pts.map((p) => p.rssBytes));
  if (rss.length) server.rssMaxMb = Math.max(...rss) / 2 ** 20;
  // each scrape's p99 covers the interval since the previous one (prom-client resets its monitor)
  const lag = finite(pts.slice(1).map((p) => p.eventLoopP99Ms)).sort((a, b) => a - b);
  if (lag.length) {
    server.eventLoopP99Ms = quantileSorted(lag, 0.5);
    server.eventLoopP99MaxMs = lag[lag.length - 1];
  }
  const raw = finite(pts.slice(1).map((p) => p.eventLoopP99RawMs)).sort((a, b) => a - b);
  if (raw.length) server.eventLoopP99RawMs = quantileSorted(raw, 0.5);

  const jitters: number[] = [];
  for (const v of run.viewers)
    for (const k of ['audio', 'video'] as const) if (v.jitter[k].packets > 1) jitters.push(v.jitter[k].jitter);

  const detected = violations.filter((v) => v.detected).length;
  const falseKills = clean.filter((c) => c.killed).length;
  const falseBlanks = clean.reduce((n, c) => n + c.blankedViewers.length, 0);
  const falseMutes = clean.reduce((n, c) => n + c.mutedViewers.length, 0);
  const falseRestrictions = clean.filter((c) => c.killed || c.restrictiveDecisions > 0).length;
  const overblocked = violations.reduce((n, v) => n + v.overblocked, 0);
  const result: RunResult = {
    moderation: run.moderation,
    plan: {
      streams: run.plan.streams.length,
      viewers: run.plan.viewers.length,
      durationSec: run.plan.durationSec,
      jurisdictions: run.plan.jurisdictions,
      violating: run.plan.streams.filter((s) => s.violations.length > 0).length,
    },
    violations,
    clean,
    forwarding: {
      latencyMs: summarize(run.forwardingLatencyMs),
      jitterMs: summarize(jitters),
      foreignPackets: run.foreignPackets,
    },
    decisionLatencyMs: summarize(finite(violations.map((v) => v.decisionLatencyMs))),
    serverDecisionLatencyMs: summarize(finite(violations.map((v) => v.serverDecisionLatencyMs))),
    killLatencyMs: summarize(finite(violations.map((v) => v.killLatencyMs))),
    exposureMs: summarize(finite(violations.map((v) => v.exposureMs))),
    generator:
      run.generator && run.generator.wallSeconds > 0
        ? { cpuPercent: (100 * run.generator.cpuSeconds) / run.generator.wallSeconds }
        : {},
    host: run.host ?? {},
    server,
    counts: {
      violations: violations.length,
      detected,
      missed: violations.length - detected,
      falseKills,
      falseBlanks,
      falseRestrictions,
      falseMutes,
      overblocked,
      viewerErrors: run.viewers.filter((v) => v.error).length,
      streamErrors: run.streams.filter((s) => s.error).length,
    },
    figures: {},
    timeline: timelineOf(run),
    forwardingSample: thin(Array.from(run.forwardingLatencyMs), 5000),
  };
  result.figures = figuresOf(result);
  return result;
}

const nul = (x: number | undefined): number | null => (x === undefined || !Number.isFinite(x) ? null : x);

/** The flat figure map budgets refer to. Names: `<what>_<stat>`; every figure is "lower is better". */
export function figuresOf(r: RunResult): Record<string, number | null> {
  const serverDecisionP99 =
    r.server.histogramDecisionP99Ms ?? (r.serverDecisionLatencyMs.n ? r.serverDecisionLatencyMs.p99 : undefined);
  return {
    decision_p50: nul(
      r.server.histogramDecisionP50Ms ?? (r.serverDecisionLatencyMs.n ? r.serverDecisionLatencyMs.p50 : undefined),
    ),
    decision_p95: nul(
      r.server.histogramDecisionP95Ms ?? (r.serverDecisionLatencyMs.n ? r.serverDecisionLatencyMs.p95 : undefined),
    ),
    decision_p99: nul(serverDecisionP99),
    decision_e2e_p50: nul(r.decisionLatencyMs.p50),
    decision_e2e_p99: nul(r.decisionLatencyMs.p99),
    kill_p50: nul(r.killLatencyMs.p50),
    kill_p99: nul(r.killLatencyMs.p99),
    exposure_p99: nul(r.exposureMs.p99),
    exposure_max: nul(r.exposureMs.max),
    fwd_p50: nul(r.forwarding.latencyMs.p50),
    fwd_p99: nul(r.forwarding.latencyMs.p99),
    jitter_p99: nul(r.forwarding.jitterMs.p99),
    eventloop_p99: nul(r.server.eventLoopP99Ms),
    eventloop_p99_max: nul(r.server.eventLoopP99MaxMs),
    cpu_percent: nul(r.server.cpuPercent),
    server_cpu_per_stream: nul(r.server.cpuPercentPerStream),
    generator_cpu_percent: nul(r.generator.cpuPercent),
    host_busy_percent: nul(r.host.busyPercent),
    host_steal_percent: nul(r.host.stealPercent),
    rss_mb: nul(r.server.rssMaxMb),
    sampler_drops: nul(r.server.samplerDrops),
    major_gc_count: nul(r.server.majorGcCount),
    major_gc_pause_ms: nul(r.server.majorGcPauseMs),
    deadline_misses: nul(r.server.deadlineMisses),
    missed: r.counts.missed,
    false_kills: r.counts.falseKills,
    false_blanks: r.counts.falseBlanks,
    false_mutes: r.counts.falseMutes,
    false_restrictions: r.counts.falseRestrictions,
    overblocked: r.counts.overblocked,
    viewer_errors: r.counts.viewerErrors,
  };
}

const rel = (t: number, t0: number): number => Math.round((t - t0) / 10) / 100;

function thin(xs: number[], max: number): number[] {
  if (xs.length <= max) return xs.map((x) => Math.round(x * 1000) / 1000);
  const step = xs.length / max;
  return Array.from({ length: max }, (_, i) => Math.round(xs[Math.floor(i * step)]! * 1000) / 1000);
}

function timelineOf(run: RunRecord): StreamTimeline[] {
  const t0 = run.startedAt;
  return run.plan.streams.map((script) => {
    const rec = run.streams.find((s) => s.streamId === script.streamId);
    return {
      streamId: script.streamId,
      onsets: script.violations.map((v, i) => ({
        atSec: rec?.onsets[i] !== undefined ? rel(rec.onsets[i]!, t0) : v.atSec,
        kind: v.kind,
        expect: v.expect,
      })),
      decisions: (rec?.decisions ?? []).map((d) => ({
        atSec: rel(d.at, t0),
        action: d.action,
        jurisdictions: d.jurisdictions,
      })),
      killAtSec: rec?.killedAt !== undefined ? rel(rec.killedAt, t0) : undefined,
      viewers: run.viewers
        .filter((v) => v.streamId === script.streamId)
        .map((v) => ({
          viewerId: v.viewerId,
          jurisdiction: v.jurisdiction,
          video: v.video.segments.map(
            (g) => [rel(g.from, t0), rel(g.to, t0), g.origin] as [number, number, 'source' | 'foreign'],
          ),
          audio: v.audio.segments.map(
            (g) => [rel(g.from, t0), rel(g.to, t0), g.origin] as [number, number, 'source' | 'foreign'],
          ),
        })),
    };
  });
}
