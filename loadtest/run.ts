// npm run loadtest -- --streams N --viewers M --duration S --violating P --jurisdictions SE,SA,DE
//   [--server URL --auth-secret S | (starts one)] [--config file.yaml] [--budget decision_p99=100,...]
//   [--out dir] [--compare-off] [--moderation on|off] [--seed N] [--quiet]
//
// Synthetic WHIP publishers play scripted scenes (clean, then a violation at a known second), WHEP
// viewers spread over jurisdictions receive them, and the run measures forwarding latency, decision
// and kill latency, exposure, per-viewer filtering and the server's own figures, then checks them
// against the script. Loopback only, bounded in count and time; it stops by itself.

import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { analyze, type RunRecord, type RunResult, type StreamRecord } from './analyze.ts';
import { parseBudget, runChecks, type Budget } from './budget.ts';
import { applyEvent, summarizeStatement } from './events.ts';
import { hostCpuWindow, sampleHostCpu, type HostCpuSample } from './host-cpu.ts';
import { loadScene, SCENE_DEFAULTS, type EncodedScene, type SceneKind, type SceneOptions } from './media/scenes.ts';
import { ForwardingRecorder, newViewerRecord, SendLedger, type ViewerRecord } from './observe.ts';
import { now, WhepReceiver, WhipSender } from './peers.ts';
import { htmlReport, terminalSummary, type LoadTestReport } from './report.ts';
import { planRun, VIOLATION_KINDS, type ExpectSpec, type ScriptedViolation, type ViolationKind } from './script.ts';
import { listenEvents, scrapeMetrics, startServer, TokenMinter, type ServerHandle } from './server.ts';
import { registerKnownContent } from './register.ts';
import { Pacer, ScriptedStream } from './streamer.ts';
import type { ServerPoint } from './prometheus.ts';

export interface LoadTestOptions {
  streams: number;
  viewers: number;
  durationSec: number;
  /** Fraction (0.25), percentage (25%) or count (3) of violating streams. */
  violating: string;
  jurisdictions: string[];
  /** A running server; absent = start `tsx server/main.ts`. */
  server?: string;
  /** HS256 secret of a running server (to mint tokens). */
  authSecret?: string;
  /** Config file passed to a server this tool starts. */
  serverConfig?: string;
  /** Extra environment for a server this tool starts. */
  serverEnv?: Record<string, string>;
  budget: Budget;
  out?: string;
  /** Also run the same load with moderation off and report the forwarding-latency ratio. */
  compareOff: boolean;
  moderation: 'on' | 'off';
  seed: number;
  kinds?: ViolationKind[];
  expect?: Partial<Record<ViolationKind, ExpectSpec>>;
  scene: Partial<SceneOptions>;
  /** Sampling interval of the server's event-loop monitor, subtracted from its p99 (ms). Default 10. */
  eventLoopResolutionMs: number;
  /** Connections set up in parallel. Default 4. */
  connectConcurrency: number;
  /** Seconds of setup allowed before the run gives up on missing clients. Default 60. */
  setupTimeoutSec: number;
  quiet: boolean;
  command: string;
  /** Programmatic hooks (tests): called when a scripted violation goes on air. */
  hooks?: { onOnset?(streamId: string, violation: ScriptedViolation, at: number): void };
}

export const DEFAULTS: Omit<LoadTestOptions, 'command'> = {
  streams: 4,
  viewers: 8,
  durationSec: 20,
  violating: '0.5',
  jurisdictions: ['SE', 'SA', 'DE'],
  budget: {},
  compareOff: false,
  moderation: 'on',
  seed: 1,
  scene: {},
  eventLoopResolutionMs: 0,
  connectConcurrency: 4,
  setupTimeoutSec: 60,
  quiet: false,
};

const USAGE = `usage: npm run loadtest -- [options]
  --streams N            synthetic publishers (default ${DEFAULTS.streams})
  --viewers M            synthetic viewers, dealt round robin over streams (default ${DEFAULTS.viewers})
  --duration S           seconds of media per stream (default ${DEFAULTS.durationSec})
  --violating P          fraction (0.5), percentage (50%) or count (2) of violating streams (default ${DEFAULTS.violating})
  --jurisdictions LIST   viewer jurisdictions, e.g. SE,SA,DE (default SE,SA,DE)
  --kinds LIST           violation kinds in rotation: ${VIOLATION_KINDS.join(',')}
  --expect K=E,...       expected reaction per kind, e.g. banned_text=blank:DE,regional=blank:SA
  --server URL           use a running server (with --auth-secret S, or AUTH_SECRET in the environment)
  --server-config FILE   config file for the server this tool starts
  --server-env K=V,...   environment for the server this tool starts (e.g. OCR=false,INFERENCE_BACKEND=none)
  --config FILE          load-test options from YAML/JSON (same names as the flags, camelCase or kebab-case)
  --budget LIST          e.g. decision_p99=100,kill_p99=150,eventloop_p99=10,fwd_ratio=1.1,false_kills=0,missed=0
  --compare-off          also run with moderation off; reports the forwarding-latency ratio (needs a started server)
  --moderation on|off    moderation for the main run (default on)
  --out DIR              where result.json and report.html go (default loadtest/reports/<time>)
  --eventloop-resolution-ms N  subtracted from the server's event-loop p99 (default 0: it reports delay beyond its timer)
  --seed N  --width W --height H --fps F --quiet`;

function parseList(s: string): string[] {
  return s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
}

function parseExpectMap(s: string): Partial<Record<ViolationKind, ExpectSpec>> {
  const out: Partial<Record<ViolationKind, ExpectSpec>> = {};
  for (const part of s.split(/,(?=[a-z_]+=)/)) {
    const [k, v] = part.split('=');
    if (!k || !v || !VIOLATION_KINDS.includes(k as ViolationKind)) throw new RangeError(`bad --expect '${part}'`);
    out[k as ViolationKind] = v;
  }
  return out;
}

/** Applies one option (flag name in kebab- or camelCase) to `o`. */
function setOption(o: LoadTestOptions, name: string, value: unknown): void {
  const key = name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
  const str = String(value);
  const int = (min: number): number => {
    const n = Number(str);
    if (!Number.isInteger(n) || n < min) throw new RangeError(`--${name} must be an integer >= ${min}`);
    return n;
  };
  switch (key) {
    case 'streams':
      o.streams = int(1);
      break;
    case 'viewers':
      o.viewers = int(0);
      break;
    case 'duration':
    case 'durationSec':
      o.durationSec = Number(str);
      if (!(o.durationSec > 0 && o.durationSec <= 3600)) throw new RangeError('--duration must be in (0, 3600]');
      break;
    case 'violating':
      o.violating = str;
      break;
    case 'jurisdictions':
      o.jurisdictions = Array.isArray(value) ? value.map(String) : parseList(str);
      break;
    case 'kinds':
      o.kinds = (Array.isArray(value) ? value.map(String) : parseList(str)) as ViolationKind[];
      break;
    case 'expect':
      o.expect =
        typeof value === 'object' && value !== null
          ? (value as Partial<Record<ViolationKind, ExpectSpec>>)
          : parseExpectMap(str);
      break;
    case 'server':
      o.server = str.replace(/\/$/, '');
      break;
    case 'authSecret':
      o.authSecret = str;
      break;
    case 'serverConfig':
      o.serverConfig = str;
      break;
    case 'serverEnv':
      o.serverEnv = {
        ...o.serverEnv,
        ...(typeof value === 'object' && value !== null
          ? (value as Record<string, string>)
          : Object.fromEntries(
              parseList(str).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
            )),
      };
      break;
    case 'budget':
      o.budget = {
        ...o.budget,
        ...(typeof value === 'object' && value !== null ? (value as Budget) : parseBudget(str)),
      };
      break;
    case 'out':
      o.out = str;
      break;
    case 'compareOff':
      o.compareOff = value === true || str === 'true';
      break;
    case 'moderation':
      if (str !== 'on' && str !== 'off') throw new RangeError('--moderation on|off');
      o.moderation = str;
      break;
    case 'seed':
      o.seed = int(0);
      break;
    case 'width':
    case 'height':
    case 'fps':
      o.scene = { ...o.scene, [key]: int(2) };
      break;
    case 'scene':
      o.scene = { ...o.scene, ...(value as Partial<SceneOptions>) };
      break;
    case 'connectConcurrency':
      o.connectConcurrency = int(1);
      break;
    case 'eventloopResolutionMs':
    case 'eventLoopResolutionMs':
      o.eventLoopResolutionMs = int(0);
      break;
    case 'setupTimeout':
    case 'setupTimeoutSec':
      o.setupTimeoutSec = int(5);
      break;
    case 'quiet':
      o.quiet = value === true || str === 'true';
      break;
    default:
      throw new RangeError(`unknown option --${name}\n${USAGE}`);
  }
}

export async function parseArgs(argv: string[]): Promise<LoadTestOptions> {
  const o: LoadTestOptions = {
    ...DEFAULTS,
    budget: {},
    scene: {},
    command: `npm run loadtest -- ${argv.join(' ')}`.trim(),
  };
  const flags = new Set(['compare-off', 'quiet']);
  const pairs: [string, unknown][] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') throw new RangeError(USAGE);
    if (!a.startsWith('--')) throw new RangeError(`unexpected argument '${a}'\n${USAGE}`);
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    if (eq > 0) pairs.push([name, a.slice(eq + 1)]);
    else if (flags.has(name)) pairs.push([name, true]);
    else {
      const v = argv[++i];
      if (v === undefined) throw new RangeError(`--${name} needs a value`);
      pairs.push([name, v]);
    }
  }
  // the config file first, flags on top
  const cfg = pairs.find(([n]) => n === 'config');
  if (cfg) {
    const text = await readFile(String(cfg[1]), 'utf8');
    const parsed: unknown = String(cfg[1]).endsWith('.json') ? JSON.parse(text) : parseYaml(text);
    if (parsed === null || typeof parsed !== 'object')
      throw new RangeError(`config ${String(cfg[1])} must hold an object`);
    for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) setOption(o, k, v);
  }
  for (const [n, v] of pairs) if (n !== 'config') setOption(o, n, v);
  return o;
}

// ---------------------------------------------------------------- one run

interface Progress {
  phase: string;
  publishers: number;
  viewers: number;
  kills: number;
  decisions: number;
}

async function inBatches<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

export interface RunOutput {
  result: RunResult;
  notes: string[];
  serverUrl: string;
  serverLog: string[];
}

/** One run against one server (started here unless `o.server`), moderation on or off. */
export async function runOnce(
  o: LoadTestOptions,
  moderation: 'on' | 'off',
  log: (line: string) => void,
): Promise<RunOutput> {
  const notes: string[] = [];
  const plan = planRun({
    streams: o.streams,
    viewers: o.viewers,
    durationSec: o.durationSec,
    violating: o.violating,
    jurisdictions: o.jurisdictions,
    kinds: o.kinds,
    expect: o.expect,
    seed: o.seed,
    prefix: `lt${Date.now().toString(36).slice(-5)}`,
  });
  const sceneOpts: SceneOptions = { ...SCENE_DEFAULTS, ...o.scene };

  // scenes: encoded once, cached
  const neededKinds = new Set<SceneKind>(['clean', ...plan.streams.flatMap((s) => s.violations.map((v) => v.kind))]);
  const scenes = new Map<SceneKind, EncodedScene>();
  for (const k of neededKinds) {
    const s = await loadScene(k, sceneOpts);
    if (!s.cached)
      log(`encoded scene ${k} (${s.video.length} frames, ${s.audio.length} audio packets), cached for next time`);
    scenes.set(k, s);
  }

  let server: ServerHandle | undefined;
  let baseUrl = o.server;
  let secret = o.authSecret ?? process.env.AUTH_SECRET;
  const wantsPicture = plan.streams.some((s) => s.violations.some((v) => v.kind === 'banked_picture'));
  if (!baseUrl) {
    const env: Record<string, string> = { MODERATION: moderation === 'off' ? 'false' : 'true', ...o.serverEnv };
    log(`starting server (moderation ${moderation}) ...`);
    server = await startServer({ env, configFile: o.serverConfig });
    baseUrl = server.baseUrl;
    secret = server.secret;
  } else if (moderation === 'off') {
    notes.push(
      'moderation off was requested against a running server: the tool cannot switch it; the figures are for the server as configured',
    );
  }
  const minter = secret ? new TokenMinter(secret) : undefined;
  if (!minter)
    notes.push(
      'no auth secret: publishers and viewers connect without tokens (anonymous), viewer jurisdiction sent as X-Viewer-Jurisdiction',
    );
  const adminToken = minter ? await minter.sign({ role: 'admin' }) : undefined;

  const ledger = new SendLedger(5000);
  const forwarding = new ForwardingRecorder(ledger);
  const records = new Map<string, StreamRecord>(
    plan.streams.map((s) => [
      s.streamId,
      { streamId: s.streamId, onsets: s.violations.map(() => undefined), decisions: [] },
    ]),
  );
  const viewerRecords: ViewerRecord[] = plan.viewers.map((v) =>
    newViewerRecord(v.viewerId, v.streamId, v.jurisdiction),
  );
  const serverPoints: ServerPoint[] = [];
  const progress: Progress = { phase: 'setup', publishers: 0, viewers: 0, kills: 0, decisions: 0 };
  let stopping = false;
  let record: RunRecord | undefined;
  let generatorFrom: { cpu: NodeJS.CpuUsage; at: number; host: HostCpuSample | undefined } | undefined;

  const pacer = new Pacer(5);
  const senders: WhipSender[] = [];
  const receivers: WhepReceiver[] = [];
  const events = await listenEvents(
    baseUrl,
    { role: 'ops', ...(adminToken ? { access_token: adminToken } : {}) },
    (e) => {
      const streamId = e.streamId ?? (e.decision as { streamId?: string } | undefined)?.streamId;
      if (process.env.LOADTEST_DEBUG) log(`event ${JSON.stringify(e).slice(0, 600)}`);
      const rec = streamId ? records.get(streamId) : undefined;
      if (!rec) return;
      const before = rec.decisions.length;
      const wasKilled = rec.killedAt !== undefined;
      applyEvent(rec, e);
      progress.decisions += rec.decisions.length - before;
      if (!wasKilled && rec.killedAt !== undefined) progress.kills++;
    },
  );
  if (!events.connected)
    notes.push(
      'ops event stream (/v1/events?role=ops) not available: decisions are inferred from what viewers received',
    );

  const registered = await registerKnownContent(
    baseUrl,
    adminToken,
    sceneOpts,
    wantsPicture,
    plan.streams.some((s) => s.violations.some((v) => v.kind === 'protected_audio')),
  );
  notes.push(...registered.notes);

  const scrape = async () => {
    const p = await scrapeMetrics(baseUrl!, adminToken, o.eventLoopResolutionMs);
    if (p) serverPoints.push(p);
  };
  await scrape();
  const metricsTimer = setInterval(() => void scrape(), 1000);

  const t0 = now();
  const setupDeadline = t0 + o.setupTimeoutSec * 1000;
  let steadyFrom = t0;
  const startedStreams: ScriptedStream[] = [];
  try {
    // publishers: each stream's script clock starts when its own media starts
    await inBatches(plan.streams, o.connectConcurrency, async (script) => {
      const rec = records.get(script.streamId)!;
      if (now() > setupDeadline) {
        rec.error = 'setup timeout';
        return;
      }
      try {
        const token = minter ? await minter.sign({ role: 'publisher', streamId: script.streamId }) : undefined;
        const sender = await WhipSender.connect({ baseUrl: baseUrl!, streamId: script.streamId, token });
        senders.push(sender);
        sender.onClose(() => {
          if (!stopping && rec.killedAt === undefined) {
            rec.killedAt = sender.closedAt;
            rec.killVia = 'publisher session ended by server';
            progress.kills++;
          }
        });
        const s = new ScriptedStream(script, sender, scenes.get('clean')!, (k) => scenes.get(k)!, ledger, rec);
        if (o.hooks?.onOnset) s.onOnset = (v, at) => o.hooks!.onOnset!(script.streamId, v, at);
        s.start();
        pacer.add(s);
        startedStreams.push(s);
        progress.publishers++;
      } catch (err) {
        rec.error = (err as Error).message;
        log(`publisher ${script.streamId}: ${rec.error}`);
      }
    });
    progress.phase = 'viewers';
    await inBatches(viewerRecords, o.connectConcurrency, async (v) => {
      if (now() > setupDeadline) {
        v.error = 'setup timeout';
        return;
      }
      if (records.get(v.streamId)?.error) {
        v.error = 'stream not published';
        return;
      }
      try {
        const token = minter
          ? await minter.sign({
              role: 'viewer',
              streamId: v.streamId,
              jurisdiction: v.jurisdiction,
              viewerId: v.viewerId,
            })
          : undefined;
        const r = await WhepReceiver.connect(
          { baseUrl: baseUrl!, streamId: v.streamId, token, headers: { 'x-viewer-jurisdiction': v.jurisdiction } },
          (kind, payload, at) => forwarding.received(v, kind, payload, at),
        );
        v.connectedAt = now();
        r.onClose(() => {
          v.closedAt = r.closedAt;
        });
        receivers.push(r);
        progress.viewers++;
      } catch (err) {
        v.error = (err as Error).message;
        if (viewerRecords.filter((x) => x.error).length <= 3) log(`viewer ${v.viewerId}: ${v.error}`);
      }
    });
    steadyFrom = now() + 1000;
    forwarding.recordFrom = steadyFrom;
    // the generator's own CPU over (about) the same window as the server's figures
    setTimeout(() => {
      void sampleHostCpu().then((host) => {
        generatorFrom = { cpu: process.cpuUsage(), at: now(), host };
      });
    }, 1000).unref();
    progress.phase = 'running';

    // run until the last stream has played its duration (bounded by the setup deadline + duration)
    const lastStart = Math.max(t0, ...startedStreams.map((s) => s.record.startedAt ?? t0));
    const endAt = Math.min(lastStart, setupDeadline) + o.durationSec * 1000;
    const tick = () => {
      const el = serverPoints[serverPoints.length - 1]?.eventLoopP99Ms;
      const fw = forwarding.latency.values();
      let p50 = NaN;
      if (fw.length) {
        const last = fw.slice(-2000).sort();
        p50 = last[Math.floor(last.length / 2)]!;
      }
      const line = `[${((now() - t0) / 1000).toFixed(0).padStart(3)}s/${((endAt - t0) / 1000).toFixed(0)}s] publishers ${progress.publishers}/${plan.streams.length}  viewers ${progress.viewers}/${plan.viewers.length}  rx ${forwarding.matched} (+${forwarding.foreign} foreign)  fwd p50 ${Number.isFinite(p50) ? p50.toFixed(1) : '-'} ms  decisions ${progress.decisions}  kills ${progress.kills}  el p99 ${el === undefined ? '-' : el.toFixed(1)} ms`;
      if (!o.quiet) {
        if (process.stdout.isTTY) process.stdout.write(`\r${line}\x1b[K`);
        else log(line);
      }
    };
    while (now() < endAt) {
      tick();
      await new Promise((r) =>
        setTimeout(r, Math.min(process.stdout.isTTY ? 1000 : 5000, Math.max(10, endAt - now()))),
      );
    }
    tick();
    if (process.stdout.isTTY && !o.quiet) process.stdout.write('\n');
  } finally {
    stopping = true;
    const endedAt = now();
    const generatorCpu = generatorFrom ? process.cpuUsage(generatorFrom.cpu) : undefined;
    const host = hostCpuWindow(generatorFrom?.host, await sampleHostCpu());
    pacer.stop();
    clearInterval(metricsTimer);
    await scrape();
    events.close();
    await Promise.all([...receivers, ...senders].map((s) => s.close()));
    await collectEvidence(
      baseUrl,
      adminToken,
      plan.streams.filter((s) => s.violations.length === 0).map((s) => records.get(s.streamId)!),
    );
    await server?.stop();
    record = {
      plan,
      moderation,
      startedAt: t0,
      endedAt,
      steadyFrom,
      steadyTo: endedAt,
      streams: [...records.values()],
      viewers: viewerRecords,
      forwardingLatencyMs: forwarding.latency.values(),
      foreignPackets: forwarding.foreign,
      server: serverPoints,
      ...(generatorFrom && generatorCpu
        ? {
            generator: {
              cpuSeconds: (generatorCpu.user + generatorCpu.system) / 1e6,
              wallSeconds: (endedAt - generatorFrom.at) / 1000,
            },
          }
        : {}),
      ...(host ? { host } : {}),
    };
  }
  const result = analyze(record!);
  if (serverPoints.length === 0) notes.push('/metrics not available: no server CPU, RSS or event-loop figures');
  const skipped = startedStreams.reduce((n, s) => n + s.skipped, 0);
  if (skipped)
    notes.push(
      `the pacing loop fell behind and skipped ${skipped} frames/packets (the load generator itself is saturated: treat the figures with care)`,
    );
  return { result, notes, serverUrl: baseUrl, serverLog: server?.log ?? [] };
}

/** For restrictive decisions on clean streams: what the server relied on (statement facts), so a false blank can be explained. */
async function collectEvidence(baseUrl: string, token: string | undefined, recs: StreamRecord[]): Promise<void> {
  for (const rec of recs) {
    const ids = [...new Set(rec.decisions.flatMap((d) => d.statementIds ?? []))].slice(0, 5);
    for (const id of ids) {
      try {
        const r = await fetch(`${baseUrl}/v1/statements/${encodeURIComponent(id)}`, {
          headers: token ? { authorization: `Bearer ${token}` } : {},
          signal: AbortSignal.timeout(3000),
        });
        (rec.evidence ??= []).push(r.ok ? summarizeStatement(await r.json()) : `${id}: ${r.status}`);
      } catch (err) {
        (rec.evidence ??= []).push(`${id}: ${(err as Error).message}`);
      }
    }
  }
}

// ---------------------------------------------------------------- whole test

export async function runLoadTest(
  o: LoadTestOptions,
  log: (line: string) => void = (l) => console.log(l),
): Promise<LoadTestReport> {
  const main = await runOnce(o, o.moderation, log);
  const notes = [...main.notes];
  let baseline: RunResult | undefined;
  if (o.compareOff) {
    if (o.server)
      notes.push('--compare-off needs a server this tool starts (it restarts it with MODERATION=off); skipped');
    else {
      log('baseline run with moderation off ...');
      const off = await runOnce(o, 'off', log);
      baseline = off.result;
    }
  }
  const ratio = (a: number, b: number): number | null =>
    Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : null;
  const forwardingRatio = baseline
    ? {
        p50: ratio(main.result.forwarding.latencyMs.p50, baseline.forwarding.latencyMs.p50),
        p99: ratio(main.result.forwarding.latencyMs.p99, baseline.forwarding.latencyMs.p99),
        mean: ratio(main.result.forwarding.latencyMs.mean, baseline.forwarding.latencyMs.mean),
      }
    : undefined;
  main.result.figures.fwd_ratio = forwardingRatio?.p50 ?? null;
  const budgets = runChecks(o.budget, main.result.figures, o.moderation);
  const report: LoadTestReport = {
    tool: 'loadtest',
    version: 1,
    generatedAt: new Date().toISOString(),
    command: o.command,
    server: o.server ?? `${main.serverUrl} (started by the tool)`,
    host: { cpus: cpus().length, node: process.version, loadavg: loadavg() },
    result: main.result,
    baseline,
    forwardingRatio,
    budgets,
    passed: budgets.every((b) => b.ok),
    notes,
  };
  if (main.result.counts.streamErrors && main.serverLog.length)
    report.notes.push(`server log tail: ${main.serverLog.slice(-5).join(' | ')}`);
  return report;
}

export async function writeReport(report: LoadTestReport, outDir: string): Promise<{ json: string; html: string }> {
  await mkdir(outDir, { recursive: true });
  const json = join(outDir, 'result.json');
  const html = join(outDir, 'report.html');
  await writeFile(
    json,
    JSON.stringify(report, (_, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2),
  );
  await writeFile(html, htmlReport(report));
  return { json, html };
}

async function main(): Promise<void> {
  let o: LoadTestOptions;
  try {
    o = await parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error((err as Error).message);
    process.exit(2);
  }
  // a hard stop, whatever happens: setup + duration (x2 with --compare-off) + scene encoding
  const limitMs = ((o.setupTimeoutSec + o.durationSec + 30) * (o.compareOff ? 2 : 1) + 240) * 1000;
  const guard = setTimeout(() => {
    console.error(`loadtest: gave up after ${limitMs / 1000} s`);
    process.exit(3);
  }, limitMs);
  guard.unref();
  try {
    const report = await runLoadTest(o);
    const outDir = resolve(o.out ?? join('loadtest', 'reports', report.generatedAt.replace(/[:.]/g, '-')));
    const files = await writeReport(report, outDir);
    console.log(terminalSummary(report));
    console.log(`report: ${files.html}\nresult: ${files.json}`);
    process.exitCode = report.passed ? 0 : 1;
  } catch (err) {
    console.error(`loadtest failed: ${(err as Error).stack ?? String(err)}`);
    process.exitCode = 2;
  }
  // werift leaves sockets and timers behind; the run is over, so leave deliberately
  setTimeout(() => process.exit(process.exitCode ?? 0), 200).unref();
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('loadtest/run.ts')) void main();
