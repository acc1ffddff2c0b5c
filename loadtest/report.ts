// The three faces of a run's result: a JSON document (the record), a self-contained HTML page with
// inline SVG plots (no scripts, no external assets: it opens from a mail attachment) and a terminal
// summary.

import type { RunResult, StreamTimeline } from './analyze.ts';
import type { BudgetCheck } from './budget.ts';
import { histogram, type Summary } from './stats.ts';

export interface LoadTestReport {
  tool: 'loadtest';
  version: 1;
  generatedAt: string;
  command: string;
  server: string;
  host: { cpus: number; node: string; loadavg: number[] };
  result: RunResult;
  /** The same load with moderation off, when measured. */
  baseline?: RunResult;
  /** Forwarding latency p50 with moderation on / off. */
  forwardingRatio?: { p50: number | null; p99: number | null; mean: number | null };
  budgets: BudgetCheck[];
  passed: boolean;
  notes: string[];
}

const f = (x: number | null | undefined, digits = 1): string =>
  x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(digits);

function summaryRow(name: string, s: Summary, unit = 'ms'): string[] {
  return [name, String(s.n), f(s.p50), f(s.p95), f(s.p99), f(s.max), unit];
}

export function terminalSummary(r: LoadTestReport): string {
  const res = r.result;
  const lines: string[] = [];
  lines.push(
    `load test: ${res.plan.streams} streams (${res.plan.violating} violating), ${res.plan.viewers} viewers, ${res.plan.durationSec}s, jurisdictions ${res.plan.jurisdictions.join(',')}, moderation ${res.moderation}`,
  );
  const rows = [
    ['figure', 'n', 'p50', 'p95', 'p99', 'max', 'unit'],
    summaryRow('forwarding latency', res.forwarding.latencyMs),
    summaryRow('jitter (per viewer)', res.forwarding.jitterMs),
    summaryRow('decision (server)', res.serverDecisionLatencyMs),
    summaryRow('decision (onset->seen)', res.decisionLatencyMs),
    summaryRow('kill latency', res.killLatencyMs),
    summaryRow('exposure window', res.exposureMs),
  ];
  if (r.baseline) rows.push(summaryRow('forwarding (mod off)', r.baseline.forwarding.latencyMs));
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  for (const row of rows)
    lines.push('  ' + row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '));
  const s = res.server;
  lines.push(
    `  server: cpu ${f(s.cpuPercent)}%  rss ${f(s.rssMaxMb)} MB  event-loop p99 ${f(s.eventLoopP99Ms, 2)} ms beyond the monitor interval (worst interval ${f(s.eventLoopP99MaxMs, 2)}, raw ${f(s.eventLoopP99RawMs, 2)})  decision (frames' fast path, /metrics) p50/p95/p99 ${f(s.histogramDecisionP50Ms)}/${f(s.histogramDecisionP95Ms)}/${f(s.histogramDecisionP99Ms)} ms (n=${s.histogramDecisionCount ?? '-'})  moderation drops ${s.samplerDrops ?? '-'}  deadline misses ${s.deadlineMisses ?? '-'}  major GCs ${s.majorGcCount ?? '-'} (${f(s.majorGcPauseMs)} ms paused)`,
  );
  if (s.stageLatencyMs && Object.keys(s.stageLatencyMs).length) {
    const order = ['sample', 'queue', 'inference', 'run', 'decision', 'enforcement', 'total', 'ocr', 'audio'];
    const stages = Object.keys(s.stageLatencyMs).sort((a, b) => order.indexOf(a) - order.indexOf(b));
    lines.push(
      `  server stages p50/p95/p99 ms: ${stages.map((st) => `${st} ${f(s.stageLatencyMs![st]!.p50)}/${f(s.stageLatencyMs![st]!.p95)}/${f(s.stageLatencyMs![st]!.p99)}`).join('  ')}`,
    );
  }
  lines.push(`  ${capacityLine(r)}`);
  if (r.forwardingRatio)
    lines.push(
      `  forwarding latency ratio moderation on/off: p50 ${f(r.forwardingRatio.p50, 3)}  p99 ${f(r.forwardingRatio.p99, 3)}  mean ${f(r.forwardingRatio.mean, 3)}`,
    );
  const c = res.counts;
  lines.push(
    `  ground truth: ${c.detected}/${c.violations} scripted violations handled as expected, missed ${c.missed}; false kills ${c.falseKills}, false blanks ${c.falseBlanks}, false mutes ${c.falseMutes}, clean streams restricted ${c.falseRestrictions}, over-blocked viewers ${c.overblocked}; viewer errors ${c.viewerErrors}, stream errors ${c.streamErrors}`,
  );
  for (const v of res.violations.filter((x) => !x.detected)) {
    lines.push(
      `    missed: ${v.streamId} ${v.kind} at ${v.atSec}s expect ${v.expect}; viewers ${v.viewers.map((w) => `${w.viewerId}[${w.jurisdiction}] ${w.expected}->${w.observed}`).join(', ') || 'none'}`,
    );
  }
  for (const c of res.clean.filter((x) => x.restrictiveDecisions > 0 || x.killed)) {
    lines.push(
      `    clean stream ${c.streamId} restricted: ${(c.evidence ?? []).join(' | ') || 'no statement available'}`,
    );
  }
  for (const b of r.budgets) lines.push(`  budget ${b.name} <= ${b.limit}: ${f(b.value, 2)} ${b.ok ? 'ok' : 'MISSED'}`);
  for (const n of r.notes) lines.push(`  note: ${n}`);
  lines.push(r.passed ? 'PASS' : 'FAIL');
  return lines.join('\n');
}

/**
 * What the server process alone would carry: the load generator runs on the same cores here, so the
 * measured capacity understates the server's. Streams = the host's cores / the server's CPU per stream.
 */
export function serverOnlyStreams(r: LoadTestReport): number | undefined {
  const per = r.result.server.cpuPercentPerStream;
  return per !== undefined && per > 0 ? (r.host.cpus * 100) / per : undefined;
}

function capacityLine(r: LoadTestReport): string {
  const s = r.result.server;
  const alone = serverOnlyStreams(r);
  return `CPU apart: server ${f(s.cpuPercent)}% (${f(s.cpuPercentPerStream)}% of a core per stream), load generator ${f(r.result.generator.cpuPercent)}% (its own process)${alone !== undefined ? `; the server alone would carry ~${alone.toFixed(1)} streams on ${r.host.cpus} cores at this CPU per stream` : ''}${r.result.host.stealPercent !== undefined ? `; the machine ${f(r.result.host.busyPercent)}% busy, ${f(r.result.host.stealPercent)}% stolen by the hypervisor` : ''}`;
}

const esc = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** Bar chart of a latency distribution, with p50/p99 markers. */
export function histogramSvg(values: number[], title: string, unit = 'ms', width = 560, height = 200): string {
  const pad = { l: 44, r: 10, t: 22, b: 30 };
  const bins = histogram(values, 40);
  const head = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" role="img" aria-label="${esc(title)}"><text x="${pad.l}" y="15" font-size="13" font-weight="bold">${esc(title)}</text>`;
  if (!bins.length) return `${head}<text x="${pad.l}" y="${height / 2}" font-size="12">no data</text></svg>`;
  const max = Math.max(...bins.map((b) => b.count));
  const x0 = bins[0]!.from;
  const x1 = bins[bins.length - 1]!.to;
  const sx = (x: number) => pad.l + ((x - x0) / (x1 - x0)) * (width - pad.l - pad.r);
  const sy = (y: number) => height - pad.b - (y / max) * (height - pad.t - pad.b);
  const bars = bins
    .map(
      (b) =>
        `<rect x="${sx(b.from).toFixed(1)}" y="${sy(b.count).toFixed(1)}" width="${Math.max(0.5, sx(b.to) - sx(b.from) - 1).toFixed(1)}" height="${(height - pad.b - sy(b.count)).toFixed(1)}" fill="#4a7bd0"/>`,
    )
    .join('');
  const sorted = [...values].sort((a, b) => a - b);
  const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * (sorted.length - 1)))]!;
  const marks = (
    [
      ['p50', q(0.5)],
      ['p99', q(0.99)],
    ] as const
  )
    .filter(([, v]) => v <= x1)
    .map(
      ([n, v]) =>
        `<line x1="${sx(v).toFixed(1)}" x2="${sx(v).toFixed(1)}" y1="${pad.t}" y2="${height - pad.b}" stroke="#c33" stroke-dasharray="3,2"/><text x="${(sx(v) + 3).toFixed(1)}" y="${pad.t + 10}" font-size="10" fill="#c33">${n} ${v.toFixed(1)}</text>`,
    )
    .join('');
  const ticks = [0, 0.25, 0.5, 0.75, 1]
    .map((t) => {
      const v = x0 + t * (x1 - x0);
      return `<text x="${sx(v).toFixed(1)}" y="${height - pad.b + 14}" font-size="10" text-anchor="middle">${v.toFixed(v < 10 ? 1 : 0)}</text>`;
    })
    .join('');
  return `${head}<line x1="${pad.l}" x2="${width - pad.r}" y1="${height - pad.b}" y2="${height - pad.b}" stroke="#333"/>${bars}${marks}${ticks}<text x="${width - pad.r}" y="${height - 4}" font-size="10" text-anchor="end">${esc(unit)} (n=${values.length})</text><text x="4" y="${pad.t + 8}" font-size="10">${max}</text></svg>`;
}

/** One lane per viewer (video above audio) with source/foreign segments, plus onsets, decisions and kills. */
export function timelineSvg(streams: StreamTimeline[], durationSec: number, width = 900): string {
  const laneH = 14;
  const pad = { l: 150, r: 10, t: 24 };
  let rows = 0;
  for (const s of streams) rows += 1 + s.viewers.length;
  const height = pad.t + rows * laneH + 30;
  const span =
    Math.max(
      durationSec,
      ...streams.flatMap((s) => s.viewers.flatMap((v) => [...v.video, ...v.audio].map((g) => g[1]))),
    ) || 1;
  const sx = (t: number) => pad.l + (Math.max(0, t) / span) * (width - pad.l - pad.r);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" role="img" aria-label="timeline"><text x="4" y="15" font-size="13" font-weight="bold">Timeline: source (green/blue), slate or foreign media (grey), onsets (red), decisions (orange), kills (black)</text>`,
  ];
  let y = pad.t;
  for (const s of streams) {
    parts.push(
      `<text x="4" y="${y + 10}" font-size="11" font-weight="bold">${esc(s.streamId)}${s.onsets.length ? '' : ' (clean)'}</text>`,
    );
    const top = y;
    y += laneH;
    for (const v of s.viewers) {
      parts.push(`<text x="12" y="${y + 10}" font-size="10">${esc(v.viewerId)} [${esc(v.jurisdiction)}]</text>`);
      for (const [a, b, o] of v.video)
        parts.push(
          `<rect x="${sx(a).toFixed(1)}" y="${y + 1}" width="${Math.max(1, sx(b) - sx(a)).toFixed(1)}" height="6" fill="${o === 'source' ? '#3a9a4a' : '#999'}"><title>video ${o} ${a}-${b}s</title></rect>`,
        );
      for (const [a, b, o] of v.audio)
        parts.push(
          `<rect x="${sx(a).toFixed(1)}" y="${y + 8}" width="${Math.max(1, sx(b) - sx(a)).toFixed(1)}" height="4" fill="${o === 'source' ? '#3a6ad0' : '#bbb'}"><title>audio ${o} ${a}-${b}s</title></rect>`,
        );
      y += laneH;
    }
    for (const o of s.onsets)
      parts.push(
        `<line x1="${sx(o.atSec).toFixed(1)}" x2="${sx(o.atSec).toFixed(1)}" y1="${top}" y2="${y}" stroke="#d22" stroke-width="2"><title>${esc(o.kind)} expect ${esc(o.expect)} at ${o.atSec}s</title></line>`,
      );
    for (const d of s.decisions)
      parts.push(
        `<path d="M${sx(d.atSec).toFixed(1)},${top + 2} l4,5 l-4,5 l-4,-5 z" fill="#e80"><title>decision ${esc(d.action)} ${esc(d.jurisdictions.join(','))} at ${d.atSec}s</title></path>`,
      );
    if (s.killAtSec !== undefined)
      parts.push(
        `<line x1="${sx(s.killAtSec).toFixed(1)}" x2="${sx(s.killAtSec).toFixed(1)}" y1="${top}" y2="${y}" stroke="#000" stroke-width="2" stroke-dasharray="4,2"><title>killed at ${s.killAtSec}s</title></line>`,
      );
  }
  for (let t = 0; t <= span; t += Math.max(1, Math.ceil(span / 10)))
    parts.push(`<text x="${sx(t).toFixed(1)}" y="${y + 14}" font-size="10" text-anchor="middle">${t}s</text>`);
  parts.push('</svg>');
  return parts.join('');
}

function table(rows: string[][]): string {
  const [head, ...body] = rows;
  return `<table><thead><tr>${head!.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${body.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

export function htmlReport(r: LoadTestReport): string {
  const res = r.result;
  const lat = [
    ['figure', 'n', 'p50', 'p95', 'p99', 'max', 'unit'],
    summaryRow('forwarding latency (moderation ' + res.moderation + ')', res.forwarding.latencyMs),
    ...(r.baseline ? [summaryRow('forwarding latency (moderation off)', r.baseline.forwarding.latencyMs)] : []),
    summaryRow('jitter per viewer track (RFC 3550)', res.forwarding.jitterMs),
    summaryRow('decision latency (server-reported)', res.serverDecisionLatencyMs),
    summaryRow('decision latency (onset -> observed)', res.decisionLatencyMs),
    summaryRow('kill latency', res.killLatencyMs),
    summaryRow('exposure window', res.exposureMs),
  ];
  const viol = [
    [
      'stream',
      'kind',
      'at (s)',
      'expect',
      'detected',
      'decision ms',
      'kill ms',
      'exposure ms',
      'viewers (expected -> observed, ms after onset)',
    ],
  ].concat(
    res.violations.map((v) => [
      v.streamId,
      v.kind,
      String(v.atSec),
      v.expect,
      v.detected ? 'yes' : 'NO',
      f(v.decisionLatencyMs),
      f(v.killLatencyMs),
      f(v.exposureMs),
      v.viewers
        .map(
          (w) =>
            `${w.viewerId}[${w.jurisdiction}] ${w.expected}->${w.observed}${w.afterMs !== undefined ? ' @' + w.afterMs.toFixed(0) : ''}${w.ok ? '' : ' !'}`,
        )
        .join('; '),
    ]),
  );
  const clean = [
    ['clean stream', 'killed', 'blanked viewers', 'muted viewers', 'restrictive decisions', 'server evidence'],
  ].concat(
    res.clean.map((c) => [
      c.streamId,
      c.killed ? 'YES' : 'no',
      c.blankedViewers.join(', ') || '-',
      c.mutedViewers.join(', ') || '-',
      String(c.restrictiveDecisions),
      (c.evidence ?? []).join(' | ') || '-',
    ]),
  );
  const budgets = [['budget', 'limit', 'value', 'result']].concat(
    r.budgets.map((b) => [b.name, String(b.limit), f(b.value, 2), b.ok ? 'ok' : 'MISSED']),
  );
  const s = res.server;
  const serverRows = [
    ['server figure', 'value'],
    ['CPU (% of one core)', f(s.cpuPercent)],
    ['CPU per published stream (% of one core)', f(s.cpuPercentPerStream)],
    ['load generator CPU, its own process (% of one core)', f(res.generator.cpuPercent)],
    ['main isolate major GCs (count / pause ms, steady window)', `${f(s.majorGcCount)} / ${f(s.majorGcPauseMs)}`],
    [
      'the whole machine busy / stolen by the hypervisor (% of all cores)',
      `${f(res.host.busyPercent)} / ${f(res.host.stealPercent)}`,
    ],
    [
      'streams the server alone would carry at this CPU per stream (host cores / CPU per stream)',
      f(serverOnlyStreams(r)),
    ],
    ['RSS max (MB)', f(s.rssMaxMb)],
    ['event-loop delay p99 beyond the monitor interval, median scrape interval (ms)', f(s.eventLoopP99Ms, 2)],
    ['event-loop delay p99, worst interval (ms)', f(s.eventLoopP99MaxMs, 2)],
    ['event-loop delay p99 as reported, median interval (ms)', f(s.eventLoopP99RawMs, 2)],
    [
      'decision latency, every sample, from /metrics: p50 / p95 / p99 (ms)',
      `${f(s.histogramDecisionP50Ms)} / ${f(s.histogramDecisionP95Ms)} / ${f(s.histogramDecisionP99Ms)}`,
    ],
    ['decisions in histogram', String(s.histogramDecisionCount ?? '-')],
    ['sampler drops', String(s.samplerDrops ?? '-')],
    ['inference deadline misses', String(s.deadlineMisses ?? '-')],
    [
      'metric names used',
      Object.entries(s.metricNames)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ') || '-',
    ],
  ];
  const killAndDecision = res.violations.flatMap((v) =>
    v.decisionLatencyMs !== undefined ? [v.decisionLatencyMs] : [],
  );
  const kills = res.violations.flatMap((v) => (v.killLatencyMs !== undefined ? [v.killLatencyMs] : []));
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Load test ${esc(r.generatedAt)}</title>
<style>body{font:14px system-ui,sans-serif;margin:24px;max-width:1000px;color:#222}table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;padding:3px 7px;font-size:12px;text-align:left;vertical-align:top}th{background:#f2f2f2}.pass{color:#070;font-weight:bold}.fail{color:#b00;font-weight:bold}code{background:#f4f4f4;padding:1px 4px}svg{display:block;margin:6px 0 18px}</style></head><body>
<h1>Load test report <span class="${r.passed ? 'pass' : 'fail'}">${r.passed ? 'PASS' : 'FAIL'}</span></h1>
<p>${esc(r.generatedAt)} &middot; <code>${esc(r.command)}</code><br>server ${esc(r.server)} &middot; host ${r.host.cpus} CPUs, node ${esc(r.host.node)}, load ${r.host.loadavg.map((x) => x.toFixed(2)).join(' ')}<br>
${res.plan.streams} streams (${res.plan.violating} violating), ${res.plan.viewers} viewers, ${res.plan.durationSec} s, jurisdictions ${esc(res.plan.jurisdictions.join(', '))}, moderation ${res.moderation}</p>
${r.budgets.length ? `<h2>Budgets</h2>${table(budgets)}` : ''}
<h2>Latencies</h2>${table(lat)}
${r.forwardingRatio ? `<p>Forwarding latency ratio, moderation on / off: p50 <b>${f(r.forwardingRatio.p50, 3)}</b>, p99 ${f(r.forwardingRatio.p99, 3)}, mean ${f(r.forwardingRatio.mean, 3)}</p>` : ''}
${histogramSvg(res.forwardingSample, 'Forwarding latency per packet (publisher send -> viewer receive)')}
${r.baseline ? histogramSvg(r.baseline.forwardingSample, 'Forwarding latency, moderation off') : ''}
${histogramSvg(killAndDecision, 'Decision latency per scripted violation (onset -> decision seen)')}
${histogramSvg(kills, 'Kill latency per scripted kill')}
<h2>Ground truth</h2><p>${res.counts.detected}/${res.counts.violations} scripted violations handled as expected; false kills ${res.counts.falseKills}, false blanks ${res.counts.falseBlanks}, false mutes ${res.counts.falseMutes}, clean streams restricted ${res.counts.falseRestrictions}, over-blocked viewers ${res.counts.overblocked}.</p>
${table(viol)}${table(clean)}
${timelineSvg(res.timeline, res.plan.durationSec)}
<h2>Server</h2>${table(serverRows)}
${r.notes.length ? `<h2>Notes</h2><ul>${r.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : ''}
</body></html>
`;
}
