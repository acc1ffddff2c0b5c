// bench:soak — does the server hold steady over time? A leak that costs 1 MiB per viewer session or an
// unbounded store shows up in none of the short benchmarks, only after tens of minutes of churn.
// The whole server (default configuration, moderation on) runs in a child process (this file, forked
// with SOAK_ROLE=server), so the synthetic clients' memory and sockets never land in its figures; the
// parent churns synthetic publishers and viewers through WHIP/WHEP on loopback only:
//   SOAK_PUBLISHERS slots (3), each publisher living SOAK_PUB_LIFE_S (60-180 s), a new stream id per
//   life; every 3rd life plays the banned-text scene (restricted in DE: statements, decisions, audit);
//   SOAK_VIEWERS (10-20) viewers, each living SOAK_VIEWER_LIFE_S (15-90 s) on a random live stream with
//   a viewer token of SE, DE or SA; SOAK_VANISH (0.3) of them leave without DELETE.
// Every SOAK_SAMPLE_S (60) s it samples the server: RSS and heap, open files (/proc/<pid>/fd; its
// mediasoup workers apart), the event-loop p99 of the last interval and store sizes (both from its
// /metrics), live streams and viewers. It prints a table and the verdict against the targets (RSS
// growth after minute SOAK_WARMUP_MIN (5) < 5 %, open files flat) and writes SOAK_OUT
// (bench/results/soak.json). Duration SOAK_MINUTES (30). Stops by itself; a watchdog ends the child.

import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TokenClaims } from '../server/auth.ts';
import type { WhipPublisher as WhipPublisherT } from '../loadtest/clients/whip-publisher.ts';
import type { WhepViewer as WhepViewerT } from '../loadtest/clients/whep-viewer.ts';

const AUTH_SECRET = 'soak-secret-0123456789-0123456789-0123456789';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- server role (the forked child)

async function serve(): Promise<void> {
  const { buildServer } = await import('../server/app.ts');
  const { loadConfig, ENV_KEYS } = await import('../server/config.ts');
  // the operator's server settings pass through (e.g. SFU_ENGINE); the soak pins only where it listens
  const env: Record<string, string> = {};
  for (const k of Object.keys(ENV_KEYS)) if (process.env[k]) env[k] = process.env[k]!;
  Object.assign(env, {
    PORT: '0',
    HOST: '127.0.0.1',
    ANNOUNCED_ADDRESS: '127.0.0.1',
    AUTH_SECRET,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    DEMO: '0',
  });
  delete env.PUBLIC_URL;
  delete env.MEDIA_LISTEN_ADDRESS;
  const server = await buildServer(loadConfig({ argv: [], env }));
  const { url } = await server.listen();
  await server.sfu.slateReady;
  const send = (m: unknown): void => void process.send?.(m);
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    const t = setTimeout(() => process.exit(3), 30_000);
    t.unref();
    await server.close().catch(() => undefined);
    process.exit(0);
  };
  process.on('disconnect', () => void stop());
  process.on('message', (m: { type: string; id?: number; claims?: TokenClaims }) => {
    void (async () => {
      if (m.type === 'token' && m.claims) {
        const token = await server.auth.sign(m.claims, '2h');
        send({ type: 'token', id: m.id, token });
      } else if (m.type === 'memory') {
        const mu = process.memoryUsage();
        send({
          type: 'memory',
          id: m.id,
          heapUsed: mu.heapUsed,
          heapTotal: mu.heapTotal,
          external: mu.external,
          arrayBuffers: mu.arrayBuffers,
          rss: mu.rss,
        });
      } else if (m.type === 'stop') await stop();
    })();
  });
  send({ type: 'ready', url, engine: server.sfuSummary, pid: process.pid });
}

// ---------------------------------------------------------------- bench role

interface Range {
  min: number;
  max: number;
}
function range(name: string, dflt: string): Range {
  const [a, b] = (process.env[name] ?? dflt).split('-').map(Number);
  return { min: a!, max: b ?? a! };
}
const pick = (r: Range): number => r.min + Math.random() * (r.max - r.min);

class ServerProcess {
  readonly child: ChildProcess;
  readonly #waiting = new Map<number, (m: Record<string, unknown>) => void>();
  #next = 0;
  readonly ready: Promise<{ url: string; engine: string; pid: number }>;
  readonly exited: Promise<number | null>;
  constructor() {
    this.child = fork(fileURLToPath(import.meta.url), [], {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, SOAK_ROLE: 'server' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.exited = new Promise((r) => this.child.once('exit', (code) => r(code)));
    this.ready = new Promise((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error('the server process was not ready within 180 s (models loading?)')),
        180_000,
      );
      this.child.on('message', (m: Record<string, unknown>) => {
        if (m.type === 'ready') {
          clearTimeout(t);
          resolve(m as unknown as { url: string; engine: string; pid: number });
        } else if (typeof m.id === 'number') {
          this.#waiting.get(m.id)?.(m);
          this.#waiting.delete(m.id);
        }
      });
      void this.exited.then((code) => reject(new Error(`the server process exited (${code}) before it was ready`)));
    });
  }
  ask(message: Record<string, unknown>, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    const id = ++this.#next;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.#waiting.delete(id);
        reject(new Error(`the server process did not answer '${String(message.type)}' within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiting.set(id, (m) => {
        clearTimeout(t);
        resolve(m);
      });
      this.child.send({ ...message, id });
    });
  }
  async token(claims: TokenClaims): Promise<string> {
    return String((await this.ask({ type: 'token', claims })).token);
  }
  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    this.child.send({ type: 'stop' });
    await Promise.race([this.exited, sleep(40_000)]);
    if (this.child.exitCode === null) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }
}

/** Processes the server started (mediasoup workers), read from /proc. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    }
  } catch {
    // the process is gone
  }
  return out;
}
function rssKiB(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
  } catch {
    return NaN;
  }
}
function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}

/** Prometheus text -> name{labels} -> value (the lines the soak reads). */
function parseMetrics(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

interface Sample {
  minute: number;
  at: string;
  rssMiB: number;
  heapUsedMiB: number;
  externalMiB: number;
  openFiles: number;
  workers: number;
  workersRssMiB: number;
  workersOpenFiles: number;
  eventLoopP99Ms: number;
  eventLoopMaxMs: number;
  streams: number;
  viewers: number;
  store: Record<string, number>;
  storeDropped: Record<string, number>;
  clients: { publishersLive: number; viewersLive: number };
}

const round = (x: number, d = 1): number => Number(x.toFixed(d));
const MiB = 2 ** 20;

async function soak(): Promise<void> {
  const MINUTES = Number(process.env.SOAK_MINUTES ?? 30);
  const SAMPLE_S = Number(process.env.SOAK_SAMPLE_S ?? 60);
  const WARMUP_MIN = Number(process.env.SOAK_WARMUP_MIN ?? 5);
  const PUBLISHERS = Number(process.env.SOAK_PUBLISHERS ?? 3);
  const PUB_LIFE = range('SOAK_PUB_LIFE_S', '60-180');
  const VIEWERS = range('SOAK_VIEWERS', '10-20');
  const VIEWER_LIFE = range('SOAK_VIEWER_LIFE_S', '15-90');
  const VANISH = Number(process.env.SOAK_VANISH ?? 0.3);
  const OUT = process.env.SOAK_OUT ?? 'bench/results/soak.json';
  const durationMs = MINUTES * 60_000;

  const { WhipPublisher } = await import('../loadtest/clients/whip-publisher.ts');
  const { WhepViewer } = await import('../loadtest/clients/whep-viewer.ts');
  const { loadScene } = await import('../loadtest/media/scenes.ts');
  const scenes = { clean: await loadScene('clean'), banned_text: await loadScene('banned_text') };

  const server = new ServerProcess();
  // the soak ends itself: whatever hangs, the child is killed and this process exits
  const watchdog = setTimeout(
    () => {
      console.error('soak: watchdog fired (run overran by 5 min); killing the server process');
      server.child.kill('SIGKILL');
      process.exit(2);
    },
    durationMs + 5 * 60_000,
  );
  watchdog.unref();
  const ready = await server.ready;
  const pid = ready.pid;
  console.log(
    `soak: server pid ${pid} at ${ready.url}, engine ${ready.engine}; ${MINUTES} min, sample every ${SAMPLE_S} s`,
  );

  const counts = {
    publishersStarted: 0,
    publisherFailures: 0,
    viewersJoined: 0,
    viewerFailures: 0,
    viewersDeleted: 0,
    viewersVanished: 0,
    viewersEndedByServer: 0,
  };
  const live = new Map<string, WhipPublisherT>();
  const viewers = new Set<WhepViewerT>();
  const t0 = Date.now();
  const until = t0 + durationMs;
  let ending = false;
  let lifeNo = 0;

  async function publisherSlot(slot: number): Promise<void> {
    while (!ending) {
      const n = lifeNo++;
      const streamId = `soak-${slot}-${n}`;
      const scene = n % 3 === 2 ? scenes.banned_text : scenes.clean;
      let pub: WhipPublisherT | undefined;
      try {
        const token = await server.token({ role: 'publisher', sub: `soak-${streamId}`, streamId });
        pub = await WhipPublisher.connect({
          url: `${ready.url}/whip/${streamId}`,
          token,
          video: { codec: 'VP8', frames: scene.video, fps: scene.fps },
          audio: { frames: scene.audio },
          connectTimeoutMs: 30_000,
        });
        pub.start();
        counts.publishersStarted++;
        live.set(streamId, pub);
        const life = Math.min(pick(PUB_LIFE) * 1000, until - Date.now());
        const stop = Date.now() + Math.max(0, life);
        while (!ending && Date.now() < stop) await sleep(500);
      } catch (err) {
        counts.publisherFailures++;
        console.error(`soak: publisher ${streamId}: ${(err as Error).message}`);
        await sleep(5000);
      } finally {
        live.delete(streamId);
        await pub?.stop().catch(() => undefined);
      }
    }
  }

  async function viewerLife(): Promise<void> {
    const ids = [...live.keys()];
    if (ids.length === 0) return;
    const streamId = ids[Math.floor(Math.random() * ids.length)]!;
    const jurisdiction = ['SE', 'DE', 'SA'][Math.floor(Math.random() * 3)]!;
    let v: WhepViewerT | undefined;
    try {
      const token = await server.token({
        role: 'viewer',
        sub: `soak-viewer-${counts.viewersJoined}`,
        jurisdiction,
        viewerId: `v${counts.viewersJoined}`,
      });
      v = await WhepViewer.connect({
        url: `${ready.url}/whep/${streamId}`,
        token,
        maxRecords: 0,
        connectTimeoutMs: 30_000,
      });
      counts.viewersJoined++;
      viewers.add(v);
      let endedByServer = false;
      void v.ended.then(() => (endedByServer = true));
      const stop = Date.now() + pick(VIEWER_LIFE) * 1000;
      while (!ending && !endedByServer && Date.now() < stop) await sleep(500);
      if (endedByServer) counts.viewersEndedByServer++;
      else if (Math.random() < VANISH) {
        counts.viewersVanished++;
        await v.close({ deleteSession: false });
      } else {
        counts.viewersDeleted++;
        await v.close();
      }
    } catch (err) {
      counts.viewerFailures++;
      if (counts.viewerFailures <= 20) console.error(`soak: viewer of ${streamId}: ${(err as Error).message}`);
    } finally {
      if (v) {
        viewers.delete(v);
        await v.close({ deleteSession: false }).catch(() => undefined);
      }
    }
  }

  async function viewerChurn(): Promise<void> {
    const running = new Set<Promise<void>>();
    let target = Math.round(pick(VIEWERS));
    let retarget = Date.now() + 30_000;
    while (!ending) {
      if (Date.now() > retarget) {
        target = Math.round(pick(VIEWERS));
        retarget = Date.now() + 30_000;
      }
      // one join per tick: joins spread out as real viewers' do
      if (running.size < target && live.size > 0) {
        const p = viewerLife().finally(() => running.delete(p));
        running.add(p);
      }
      await sleep(1000);
    }
    await Promise.allSettled([...running]);
  }

  async function sample(): Promise<Sample> {
    const [mem, text] = await Promise.all([
      server.ask({ type: 'memory' }),
      fetch(`${ready.url}/metrics`, { signal: AbortSignal.timeout(10_000) }).then((r) => r.text()),
    ]);
    const m = parseMetrics(text);
    const workers = childrenOf(pid);
    const store: Record<string, number> = {};
    const storeDropped: Record<string, number> = {};
    for (const [k, v] of m) {
      const e = /^msfu_store_entries\{collection="(\w+)"\}$/.exec(k);
      if (e) store[e[1]!] = v;
      const d = /^msfu_store_dropped\{collection="(\w+)",reason="(\w+)"\}$/.exec(k);
      if (d) storeDropped[`${d[1]}:${d[2]}`] = v;
    }
    const gauge = (prefix: string): number => {
      let s = 0;
      for (const [k, v] of m) if (k.startsWith(prefix)) s += v;
      return s;
    };
    return {
      minute: round((Date.now() - t0) / 60_000, 2),
      at: new Date().toISOString(),
      rssMiB: round(rssKiB(pid) / 1024),
      heapUsedMiB: round(Number(mem.heapUsed) / MiB),
      externalMiB: round(Number(mem.external) / MiB),
      openFiles: fdCount(pid),
      workers: workers.length,
      workersRssMiB: round(workers.reduce((s, w) => s + rssKiB(w), 0) / 1024),
      workersOpenFiles: workers.reduce((s, w) => s + fdCount(w), 0),
      eventLoopP99Ms: round(m.get('msfu_event_loop_delay_ms{quantile="0.99"}') ?? NaN, 2),
      eventLoopMaxMs: round(m.get('msfu_event_loop_delay_ms{quantile="max"}') ?? NaN, 2),
      streams: gauge('msfu_streams{'),
      viewers: gauge('msfu_viewers{'),
      store,
      storeDropped,
      clients: { publishersLive: live.size, viewersLive: viewers.size },
    };
  }

  const HEAD =
    'min    rss   heap   fds  wrkRSS wrkFd  eld99  streams viewers  audit decis  stmts  rvOpen rvDone thumbs';
  const row = (s: Sample): string =>
    [
      s.minute.toFixed(1).padStart(5),
      s.rssMiB.toFixed(0).padStart(6),
      s.heapUsedMiB.toFixed(0).padStart(6),
      String(s.openFiles).padStart(5),
      s.workersRssMiB.toFixed(0).padStart(7),
      String(s.workersOpenFiles).padStart(5),
      s.eventLoopP99Ms.toFixed(1).padStart(6),
      String(s.streams).padStart(8),
      String(s.viewers).padStart(7),
      String(s.store.audit ?? '-').padStart(6),
      String(s.store.decisions ?? '-').padStart(5),
      String(s.store.statements ?? '-').padStart(6),
      String(s.store.review_open ?? '-').padStart(7),
      String(s.store.review_resolved ?? '-').padStart(6),
      String(s.store.thumbnails ?? '-').padStart(6),
    ].join(' ');

  const samples: Sample[] = [];
  const baseline = await sample();
  console.log('soak: before any client');
  console.log(HEAD);
  console.log(row(baseline));

  const churn = [...Array.from({ length: PUBLISHERS }, (_, i) => publisherSlot(i)), viewerChurn()];
  let next = t0 + SAMPLE_S * 1000;
  while (Date.now() < until) {
    await sleep(Math.max(0, Math.min(next, until) - Date.now()));
    if (Date.now() >= next) {
      try {
        const s = await sample();
        samples.push(s);
        console.log(row(s));
      } catch (err) {
        console.error(`soak: sample failed: ${(err as Error).message}`);
      }
      next += SAMPLE_S * 1000;
    }
  }
  ending = true;
  await Promise.race([Promise.allSettled(churn), sleep(60_000)]);
  // the server times out what vanished (ICE consent) and ends what was deleted: let it settle, then
  // read it with no client left: sockets and memory that remain belong to nothing
  await sleep(Number(process.env.SOAK_DRAIN_S ?? 45) * 1000);
  let drained: Sample | undefined;
  try {
    drained = await sample();
    console.log('soak: drained (every client gone)');
    console.log(row(drained));
  } catch (err) {
    console.error(`soak: drained sample failed: ${(err as Error).message}`);
  }
  await server.stop();

  // verdict: RSS growth from the first sample at/after the warm-up to the last; open files flat = no
  // trend over the same span (least-squares slope x span within max(5, 5 % of the mean))
  const post = samples.filter((s) => s.minute >= WARMUP_MIN - 0.01);
  const first = post[0];
  const last = post.at(-1);
  const slope = (ys: number[], xs: number[]): number => {
    const n = ys.length;
    if (n < 2) return 0;
    const mx = xs.reduce((a, b) => a + b, 0) / n;
    const my = ys.reduce((a, b) => a + b, 0) / n;
    let num = 0;
    let den = 0;
    for (let i = 0; i < n; i++) {
      num += (xs[i]! - mx) * (ys[i]! - my);
      den += (xs[i]! - mx) ** 2;
    }
    return den === 0 ? 0 : num / den;
  };
  const xs = post.map((s) => s.minute);
  const span = first && last ? last.minute - first.minute : 0;
  const rssGrowthPct = first && last ? round(((last.rssMiB - first.rssMiB) / first.rssMiB) * 100, 2) : NaN;
  const rssSlope = round(
    slope(
      post.map((s) => s.rssMiB),
      xs,
    ),
    3,
  );
  const heapSlope = round(
    slope(
      post.map((s) => s.heapUsedMiB),
      xs,
    ),
    3,
  );
  const fdMean = post.reduce((a, s) => a + s.openFiles, 0) / Math.max(1, post.length);
  const fdSlope = round(
    slope(
      post.map((s) => s.openFiles),
      xs,
    ),
    3,
  );
  const fdTrend = round(fdSlope * span, 1);
  const fdFlat = post.length >= 2 && Math.abs(fdTrend) <= Math.max(5, 0.05 * fdMean);
  const verdict = {
    warmupMinutes: WARMUP_MIN,
    rssAtWarmupMiB: first?.rssMiB ?? null,
    rssLastMiB: last?.rssMiB ?? null,
    rssGrowthPct,
    rssSlopeMiBPerMin: rssSlope,
    heapSlopeMiBPerMin: heapSlope,
    rssTargetMet: Number.isFinite(rssGrowthPct) && rssGrowthPct < 5,
    openFilesAtWarmup: first?.openFiles ?? null,
    openFilesLast: last?.openFiles ?? null,
    openFilesSlopePerMin: fdSlope,
    openFilesTrendOverSpan: fdTrend,
    openFilesFlat: fdFlat,
    openFilesBaseline: baseline.openFiles,
    openFilesDrained: drained?.openFiles ?? null,
    eventLoopP99MaxMs: post.length ? Math.max(...post.map((s) => s.eventLoopP99Ms)) : null,
    eventLoopP99MedianMs: post.length
      ? [...post.map((s) => s.eventLoopP99Ms)].sort((a, b) => a - b)[Math.floor(post.length / 2)]
      : null,
  };
  console.log(`clients: ${JSON.stringify(counts)}`);
  console.log(
    `verdict: RSS ${verdict.rssAtWarmupMiB} -> ${verdict.rssLastMiB} MiB after minute ${WARMUP_MIN} = ${rssGrowthPct} % (target < 5 %): ${verdict.rssTargetMet ? 'MET' : 'NOT MET'}; ` +
      `slope ${rssSlope} MiB/min (heap ${heapSlope} MiB/min)`,
  );
  console.log(
    `verdict: open files ${verdict.openFilesAtWarmup} -> ${verdict.openFilesLast} (trend ${fdTrend} over ${round(span)} min, baseline ${baseline.openFiles}, drained ${verdict.openFilesDrained}): ${fdFlat ? 'FLAT' : 'NOT FLAT'}`,
  );
  console.log(
    `event loop p99 per minute: median ${verdict.eventLoopP99MedianMs} ms, max ${verdict.eventLoopP99MaxMs} ms (budget 10 ms)`,
  );
  const out = {
    bench: 'soak',
    node: process.version,
    engine: ready.engine,
    minutes: MINUTES,
    sampleSeconds: SAMPLE_S,
    churn: {
      publishers: PUBLISHERS,
      publisherLifeS: PUB_LIFE,
      viewers: VIEWERS,
      viewerLifeS: VIEWER_LIFE,
      vanishShare: VANISH,
      bannedTextEvery: 3,
    },
    note: 'server (moderation on, default config) in its own process; rss/heap/fds are the server Node process, workers = its mediasoup worker processes; eld = event-loop delay p99 of each interval (server /metrics)',
    counts,
    baseline,
    samples,
    drained,
    verdict,
  };
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, JSON.stringify(out, null, 2));
  console.log(`wrote ${OUT}`);
  clearTimeout(watchdog);
  process.exit(verdict.rssTargetMet && fdFlat ? 0 : 1);
}

if (process.env.SOAK_ROLE === 'server') await serve();
else await soak();
