// npm run fuzz — throws malformed input at a running server and counts what comes back.
//
//   npm run fuzz -- --count 100000 --seed 1 --duration 1200 --engine werift|mediasoup [--families rtp,sdp] [--out PATH]
//
// The server is the real one (server/app.ts buildServer, moderation on) in a child process of its own
// (this file with --serve), so a crash is an exit the fuzzer sees, and its RSS is the server's alone.
// Families (share of --count):
//   http    every route of /openapi.json plus the hidden ones: schema-shaped JSON bodies then mutated,
//           broken JSON, odd content types, query strings, path parameters, tokens, methods, raw
//           malformed HTTP/1.1, WebSocket upgrades of /v1/events
//   policy  broken policy YAML (line, scalar and byte mutations of policies/, alias bombs) to
//           /v1/policies/validate and /activate
//   bank    hash-list imports (text format) and audio uploads (truncated WAV/Ogg, absurd headers)
//   sdp     mutated real offers (test/fixtures/offers/fuzz-*.sdp: FFmpeg, Chromium, OBS, werift) to
//           WHIP and WHEP
//   udp     garbage STUN / DTLS / RTP datagrams at the media ports, from fresh sockets and on a live
//           session's ICE path
//   rtp     malformed RTP inside valid SRTP from connected publishers (truncated VP8 / H.264 / Opus
//           payloads, absurd sizes, reordered and duplicated fragments, junk header extensions, RTX
//           without its OSN, unknown SSRCs), so it reaches the depacketizers and decoders
//   rtcp    malformed RTCP inside valid SRTCP from publishers and a viewer (bad lengths, NACK floods,
//           PLI/FIR/REMB, transport-cc, unknown types)
// Every input is drawn from a PRNG seeded by (seed, family, index): the same seed sends the same
// inputs whatever the scheduling. What counts as a failure: the server process exits (crash), a
// sampler worker crashes, a mediasoup worker dies, an HTTP answer is 5xx, an error answer has no
// `code` string, a request is not answered within --request-timeout (hung), or a session is still
// listed after every fuzz peer is gone and the reap time (the engines' 15 s connect timeout) has
// passed. RSS is read after warm-up and again after the run, both after a full GC.
// Writes bench/results/fuzz.json (or --out).

import { fork, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createRequire } from 'node:module';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { RtpHeader, RtpPacket } from 'werift';
import type { RTCDtlsTransport, RTCPeerConnection, RTCRtpSender } from 'werift';
import { clientPeer, deleteSession, gatheredOffer, postOffer, waitConnected } from '../loadtest/clients/peer.ts';
import { WhipPublisher, syntheticClip } from '../loadtest/clients/whip-publisher.ts';
import { WhepViewer } from '../loadtest/clients/whep-viewer.ts';
import type { EncodedFrame } from '../media/encode.ts';
import { packetizeH264, packetizeOpus, packetizeVp8, splitAnnexB } from '../media/packetize.ts';
import { Auth } from '../server/auth.ts';
import { readPolicyDir } from '../server/policy-store.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const OFFER_DIR = join(ROOT, 'test', 'fixtures', 'offers');
const SECRET = 'fuzz-secret-0123456789-0123456789-0123456789';
/** Both engines close a session that has not connected within this long (ms); the reap bound adds a margin. */
const ENGINE_CONNECT_TIMEOUT_MS = 15_000;

export const FAMILIES = ['http', 'policy', 'bank', 'sdp', 'udp', 'rtp', 'rtcp'] as const;
export type Family = (typeof FAMILIES)[number];
/** Share of --count per family. */
const SHARE: Record<Family, number> = {
  http: 0.4,
  policy: 0.05,
  bank: 0.05,
  sdp: 0.04,
  udp: 0.16,
  rtp: 0.22,
  rtcp: 0.08,
};

export interface FuzzOptions {
  /** Inputs to send in all (HTTP requests, offers, datagrams, RTP/RTCP packets). Default 100000. */
  count: number;
  /** PRNG seed; the same seed sends the same inputs. Default 1. */
  seed: number;
  /** Stop sending after this long even if --count is not reached (s). Default 1200. */
  durationS: number;
  /** Forwarding engine of the server under test. Default 'werift'. */
  engine: 'werift' | 'mediasoup';
  /** Samplers and models on (the fuzzed RTP reaches the depacketizers and decoders). Default true. */
  moderation: boolean;
  /** OCR in the server's moderation stack (CPU-heavy, beside the point here). Default false. */
  ocr: boolean;
  /** HTTP requests in flight at once. Default 6. */
  concurrency: number;
  /** A request not answered within this long counts as hung (ms). Default 15000. */
  requestTimeoutMs: number;
  /** Families to run (the others send nothing). Default all. */
  families: readonly Family[];
  /** Share of accepted fuzzed offers left for the server to reap instead of DELETEd (0..1). Default 0.1. */
  abandonShare: number;
  /** JSON report path; '' writes none. Default bench/results/fuzz.json. */
  out: string;
  /** Progress lines. Default: stdout. */
  log: (line: string) => void;
}

export const FUZZ_DEFAULTS: Readonly<FuzzOptions> = Object.freeze({
  count: 100_000,
  seed: 1,
  durationS: 1200,
  engine: 'werift',
  moderation: true,
  ocr: false,
  concurrency: 6,
  requestTimeoutMs: 15_000,
  abandonShare: 0.1,
  families: FAMILIES,
  out: join(ROOT, 'bench', 'results', 'fuzz.json'),
  log: (line: string) => process.stdout.write(line + '\n'),
});

export interface Finding {
  family: Family;
  /** 'socket_error' is no failure: examples of requests the server answered by closing the connection. */
  kind: '5xx' | 'uncoded' | 'uncoded_client_error' | 'hung' | 'crash' | 'hung_session' | 'socket_error';
  /** What was sent (abridged). */
  input: string;
  status?: number;
  /** What came back (abridged). */
  answer?: string;
}

export interface FamilyFigures {
  /** Inputs sent. */
  sent: number;
  /** HTTP status -> answers (HTTP families); 'ws-open' for accepted WebSocket upgrades. */
  statuses: Record<string, number>;
  /** Error answers (>= 400) of the routes without a `code` string in a JSON body. */
  uncoded: number;
  /** The same from below the routes: fastify's default answer to what Node's HTTP parser refuses (bad method, header overflow, chunked GET), Node's empty 417 to a bad `Expect`. */
  uncodedClientError: number;
  server5xx: number;
  /** Requests not answered within the bound. */
  hung: number;
  /** Requests that failed at the socket (reset, refused) while the server was alive. */
  socketErrors: number;
  /** Offers answered 201 (sdp), sessions (re)connected (rtp/rtcp/udp). */
  accepted: number;
}

export interface FuzzReport {
  options: Omit<FuzzOptions, 'log'>;
  startedAt: string;
  seconds: number;
  inputs: number;
  families: Record<Family, FamilyFigures>;
  totals: {
    crashes: number;
    server5xx: number;
    uncoded: number;
    uncodedClientError: number;
    hungRequests: number;
    hungSessions: number;
    samplerCrashes: number;
    workerDeaths: number;
  };
  /** Server figures: RSS and heap after a full GC at baseline (after warm-up) and after the run. */
  memory: {
    baselineRssMiB: number;
    finalRssMiB: number;
    peakRssMiB: number;
    baselineHeapMiB: number;
    finalHeapMiB: number;
    rssGrowthMiB: number;
    backToBaseline: boolean;
  };
  /** A real publish and view after the fuzzing: video packets the viewer received within the bound. */
  afterwards: { published: boolean; viewerVideoPackets: number; error?: string };
  sessionsLeft: { id: string; viewers: number; ageMs: number }[];
  /** Samplers over the run (warm-up excluded): the fuzzed RTP reached the depacketizers and decoders. */
  samplers: { frames: number; drops: number; warnings: number };
  serverExit: { code: number | null; signal: string | null; tail: string } | undefined;
  findings: Finding[];
}

// ---------------------------------------------------------------- PRNG

/** mulberry32 over a 32-bit state; `Rng.of(seed, family, i)` gives one input its own stream. */
export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  static of(...parts: (number | string)[]): Rng {
    let h = 2166136261;
    for (const p of parts) for (const ch of String(p) + '\u0000') h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
    return new Rng(h);
  }
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }
}

// ---------------------------------------------------------------- interesting values

const STRINGS = [
  '',
  ' ',
  'a',
  '0',
  '-1',
  'null',
  'undefined',
  'true',
  'NaN',
  '__proto__',
  'constructor',
  'prototype',
  '..',
  '../..',
  '%00',
  '\u0000',
  '\t',
  '\r\n',
  'SE',
  'DE',
  'SA',
  'default',
  '*',
  'se',
  'XX',
  'ZZZ',
  'uphold',
  'overturn',
  'amber',
  'appeal',
  'admin',
  'viewer',
  'publisher',
  'reviewer',
  'ops',
  'streamer',
  'msgpack',
  'json',
  'forward',
  'blank',
  'mute',
  'protected_music',
  'fz_bank',
  'Ünïcødé',
  '😀',
  '\u202e',
  '\ud800',
  '<script>',
  "'; DROP TABLE x;--",
  '${x}',
  '{{x}}',
  'f'.repeat(64),
  '0'.repeat(63),
  'g'.repeat(64),
  'x'.repeat(201),
  'x'.repeat(5000),
  '1e309',
  '-0',
  '0x10',
  '1.5',
  '9007199254740993',
  '  SE  ',
];
const NUMBERS = [
  0,
  -0,
  1,
  -1,
  2,
  7,
  100,
  999,
  1000,
  1001,
  65535,
  65536,
  2 ** 31,
  2 ** 32,
  2 ** 53,
  -(2 ** 53),
  1.5,
  1e308,
  -1e308,
  5e-324,
  30 * 86400,
  30 * 86400 + 1,
];

function interestingString(r: Rng): string {
  if (r.chance(0.15)) return r.bytes(r.range(1, 40)).toString('latin1');
  if (r.chance(0.1)) return r.bytes(r.range(1, 24)).toString('hex');
  return r.pick(STRINGS);
}

function interestingValue(r: Rng, depth = 0): unknown {
  switch (r.int(depth > 2 ? 5 : 8)) {
    case 0:
      return interestingString(r);
    case 1:
      return r.pick(NUMBERS);
    case 2:
      return r.chance(0.5);
    case 3:
      return null;
    case 4:
      return r.pick(STRINGS);
    case 5:
      return Array.from({ length: r.int(4) }, () => interestingValue(r, depth + 1));
    case 6:
      return Object.fromEntries(
        Array.from({ length: r.int(4) }, () => [interestingString(r), interestingValue(r, depth + 1)]),
      );
    default:
      return { __proto__x: 1, constructor: { prototype: { polluted: true } } };
  }
}

// ---------------------------------------------------------------- JSON-schema-shaped values

type JsonSchema = {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  additionalProperties?: boolean | JsonSchema;
};

/** A value that mostly fits the schema (so validation passes and the handler runs), sometimes not. */
function fromSchema(s: JsonSchema | undefined, r: Rng, ids: string[], depth = 0): unknown {
  if (!s || depth > 6) return interestingValue(r, 3);
  if (r.chance(0.04)) return interestingValue(r, depth);
  const alts = s.anyOf ?? s.oneOf;
  if (alts?.length) return fromSchema(r.pick(alts), r, ids, depth + 1);
  if (s.allOf?.length) return fromSchema(s.allOf[0], r, ids, depth + 1);
  if (s.enum?.length) return r.chance(0.9) ? r.pick(s.enum) : interestingString(r);
  if ('const' in s) return s.const;
  const type = Array.isArray(s.type) ? r.pick(s.type) : s.type;
  switch (type) {
    case 'object': {
      const o: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(s.properties ?? {})) {
        if ((s.required ?? []).includes(k) ? r.chance(0.96) : r.chance(0.6)) o[k] = fromSchema(v, r, ids, depth + 1);
      }
      if (r.chance(0.05)) o[interestingString(r)] = interestingValue(r, depth + 1);
      return o;
    }
    case 'array': {
      const n = r.chance(0.05) ? r.range(100, 400) : r.int(4);
      return Array.from({ length: n }, () => fromSchema(s.items, r, ids, depth + 1));
    }
    case 'integer':
    case 'number': {
      if (r.chance(0.6) && s.minimum !== undefined && s.maximum !== undefined)
        return s.minimum + r.int(Math.min(1000, s.maximum - s.minimum + 1));
      if (r.chance(0.2) && s.minimum !== undefined) return s.minimum - r.int(2);
      return r.pick(NUMBERS);
    }
    case 'boolean':
      return r.chance(0.5);
    case 'null':
      return null;
    case 'string': {
      if (s.pattern === '^[0-9a-fA-F]{64}$')
        return r.chance(0.8) ? r.bytes(32).toString('hex') : r.bytes(31).toString('hex') + 'zz';
      if (s.pattern?.includes('A-Z]{2}')) return r.pick(['SE', 'DE', 'SA', 'US', 'default', '*', 'se', 'XYZ']);
      if (s.pattern?.includes('a-z][a-z0-9_]')) return r.pick(['fz_bank', 'fz_other', 'Bad-Name', '', '_x']);
      if (ids.length && r.chance(0.3)) return r.pick(ids);
      if (r.chance(0.5)) {
        const min = s.minLength ?? 1;
        const max = Math.min(s.maxLength ?? 40, 60);
        const n = r.chance(0.1) ? (s.maxLength ?? 40) + 1 : min + r.int(Math.max(1, max - min + 1));
        return Array.from({ length: n }, () => String.fromCharCode(97 + r.int(26))).join('');
      }
      return interestingString(r);
    }
    default:
      return interestingValue(r, depth);
  }
}

/** Mutates a JSON value in place-ish: one node replaced, removed or given a sibling. */
function mutateJson(v: unknown, r: Rng, depth = 0): unknown {
  if (v === null || typeof v !== 'object' || depth > 5 || r.chance(0.25))
    return r.chance(0.5) ? interestingValue(r, depth) : v;
  if (Array.isArray(v)) {
    const items: unknown[] = v;
    if (items.length === 0 || r.chance(0.2)) return [...items, interestingValue(r, depth)];
    const i = r.int(items.length);
    const out = [...items];
    out[i] = mutateJson(out[i], r, depth + 1);
    return out;
  }
  const o = { ...(v as Record<string, unknown>) };
  const keys = Object.keys(o);
  const op = r.int(4);
  if (op === 0 && keys.length) delete o[r.pick(keys)];
  else if (op === 1 || !keys.length) o[interestingString(r)] = interestingValue(r, depth);
  else {
    const k = r.pick(keys);
    o[k] = mutateJson(o[k], r, depth + 1);
  }
  return o;
}

// ---------------------------------------------------------------- the server child (--serve)

interface ChildStats {
  rssBytes: number;
  heapUsedBytes: number;
  streams: { id: string; viewers: number; ageMs: number }[];
  workerDeaths: number;
  samplerCrashes: number;
  samplerWarnings: number;
  lastSamplerWarning: string | undefined;
  /** Over every stream's samplers since start: frames decoded and packets/frames dropped (loss, lag, undecodable). */
  samplerFrames: number;
  samplerDrops: number;
}

type ToChild = { id: number; type: 'stats' | 'gc' | 'stop' };

async function serve(): Promise<void> {
  const { buildServer } = await import('../server/app.ts');
  const { loadConfig } = await import('../server/config.ts');
  const config = loadConfig({ argv: [], env: process.env });
  const server = await buildServer(config);
  await server.listen();
  let samplerCrashes = 0;
  let samplerWarnings = 0;
  let lastSamplerWarning: string | undefined;
  // The server does not surface sampler warnings; a crashed sampler worker is replaced silently.
  server.moderation?.samplers.on('warning', (message) => {
    samplerWarnings++;
    if (/crashed|could not be replaced/.test(message)) {
      samplerCrashes++;
      lastSamplerWarning = message;
    }
  });
  // per-stream sampler figures vanish with the stream: keep the largest seen of each (bounded)
  const sampled = new Map<string, { frames: number; drops: number }>();
  const sample = (): void => {
    for (const x of server.moderation?.samplers.stats() ?? []) {
      const had = sampled.get(x.streamId);
      if (!had && sampled.size >= 10_000) continue;
      sampled.set(x.streamId, {
        frames: Math.max(had?.frames ?? 0, x.frames),
        drops: Math.max(had?.drops ?? 0, x.drops),
      });
    }
  };
  setInterval(sample, 500).unref();
  const send = (m: Record<string, unknown>): void => {
    process.send?.(m);
  };
  process.on('message', (m: ToChild) => {
    void (async () => {
      if (m.type === 'stats') {
        const engine = await server.sfu.engineStats().catch(() => undefined);
        const now = Date.now();
        const streams = [...server.sfu.streams()]
          .filter((s) => !s.closed)
          .map((s) => ({ id: s.id, viewers: s.viewers.size, ageMs: now - s.createdAt }));
        const mem = process.memoryUsage();
        sample();
        let samplerFrames = 0;
        let samplerDrops = 0;
        for (const x of sampled.values()) {
          samplerFrames += x.frames;
          samplerDrops += x.drops;
        }
        const stats: ChildStats = {
          rssBytes: mem.rss,
          heapUsedBytes: mem.heapUsed,
          streams,
          workerDeaths: engine?.workerDeaths ?? 0,
          samplerCrashes,
          samplerWarnings,
          lastSamplerWarning,
          samplerFrames,
          samplerDrops,
        };
        send({ id: m.id, ...stats });
      } else if (m.type === 'gc') {
        const gc = (globalThis as { gc?: () => void }).gc;
        for (let i = 0; i < 3; i++) {
          gc?.();
          await new Promise((r) => setTimeout(r, 100));
        }
        send({ id: m.id, gc: gc !== undefined });
      } else if (m.type === 'stop') {
        await server.close();
        send({ id: m.id, stopped: true });
        process.exit(0);
      }
    })();
  });
  send({ type: 'ready', url: server.url, summary: server.sfuSummary });
}

class ServerChild {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, (m: Record<string, unknown>) => void>();
  #n = 0;
  #tail = '';
  url = '';
  peakRss = 0;
  exit: { code: number | null; signal: string | null } | undefined;
  readonly exited: Promise<void>;
  stopping = false;

  private constructor(env: Record<string, string>) {
    this.#child = fork(fileURLToPath(import.meta.url), ['--serve'], {
      cwd: ROOT,
      execArgv: ['--import', 'tsx', '--expose-gc'],
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const keep = (d: Buffer): void => {
      this.#tail = (this.#tail + d.toString()).slice(-8000);
    };
    this.#child.stdout?.on('data', keep);
    this.#child.stderr?.on('data', keep);
    this.#child.on('message', (m: Record<string, unknown>) => {
      const id = typeof m.id === 'number' ? m.id : -1;
      const w = this.#pending.get(id);
      this.#pending.delete(id);
      w?.(m);
    });
    this.exited = new Promise((resolve) =>
      this.#child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        for (const w of this.#pending.values()) w({ exited: true });
        this.#pending.clear();
        resolve();
      }),
    );
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }
  get alive(): boolean {
    return this.exit === undefined;
  }
  tail(): string {
    return this.#tail;
  }

  static async start(env: Record<string, string>, timeoutMs = 240_000): Promise<ServerChild> {
    const c = new ServerChild(env);
    const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`the server did not start within ${timeoutMs} ms:\n${c.tail()}`)),
        timeoutMs,
      );
      c.#child.on('message', (m: Record<string, unknown>) => {
        if (m.type === 'ready') {
          clearTimeout(t);
          resolve(m);
        }
      });
      void c.exited.then(() => {
        clearTimeout(t);
        reject(new Error(`the server exited (${c.exit?.code ?? c.exit?.signal}) before it was ready:\n${c.tail()}`));
      });
    });
    c.url = String(ready.url);
    return c;
  }

  ask(type: ToChild['type'], timeoutMs = 20_000): Promise<Record<string, unknown>> {
    if (!this.alive) return Promise.reject(new Error('the server process is gone'));
    const id = ++this.#n;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`the server process answered no '${type}' within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, (m) => {
        clearTimeout(t);
        if (m.exited) reject(new Error('the server process exited'));
        else resolve(m);
      });
      this.#child.send({ id, type } satisfies ToChild);
    });
  }

  async stats(): Promise<ChildStats> {
    const s = (await this.ask('stats')) as unknown as ChildStats;
    this.peakRss = Math.max(this.peakRss, s.rssBytes);
    return s;
  }

  /** Graceful stop (IPC), SIGKILL by pid after `graceMs`. */
  async stop(graceMs = 20_000): Promise<void> {
    if (!this.alive) return;
    this.stopping = true;
    await this.ask('stop', graceMs).catch(() => undefined);
    if (this.alive && this.#child.pid !== undefined) {
      const kill = setTimeout(
        () => this.alive && this.#child.pid !== undefined && process.kill(this.#child.pid, 'SIGKILL'),
        3000,
      );
      await this.exited;
      clearTimeout(kill);
    }
  }
}

// ---------------------------------------------------------------- figures

function newFigures(): FamilyFigures {
  return {
    sent: 0,
    statuses: {},
    uncoded: 0,
    uncodedClientError: 0,
    server5xx: 0,
    hung: 0,
    socketErrors: 0,
    accepted: 0,
  };
}

class Tally {
  readonly families = Object.fromEntries(FAMILIES.map((f) => [f, newFigures()])) as Record<Family, FamilyFigures>;
  readonly findings: Finding[] = [];
  readonly #perKind = new Map<string, number>();

  finding(f: Finding): void {
    // keep a few examples of each (family, kind): the counts are in the figures
    const key = `${f.family}:${f.kind}`;
    const n = this.#perKind.get(key) ?? 0;
    this.#perKind.set(key, n + 1);
    if (n < 8)
      this.findings.push({
        ...f,
        input: f.input.slice(0, f.family === 'sdp' ? 8000 : 600),
        answer: f.answer?.slice(0, 400),
      }); // offers whole: they are the repro
  }

  /** Records one HTTP answer: status histogram, 5xx, uncoded error bodies. */
  answer(family: Family, input: string, status: number, body: string, opts: { head?: boolean } = {}): void {
    const fig = this.families[family];
    fig.statuses[status] = (fig.statuses[status] ?? 0) + 1;
    if (status >= 500) {
      fig.server5xx++;
      this.finding({ family, kind: '5xx', input, status, answer: body });
    }
    if (status >= 400 && !opts.head && !isCoded(body)) {
      const parser = isClientErrorAnswer(status, body);
      if (parser) fig.uncodedClientError++;
      else fig.uncoded++;
      this.finding({ family, kind: parser ? 'uncoded_client_error' : 'uncoded', input, status, answer: body });
    }
  }
}

/**
 * Answers from below the routes: fastify's built-in clientError reply (no `code`) to what Node's
 * parser refused, and Node's own empty 417 to an `Expect` other than 100-continue.
 */
function isClientErrorAnswer(status: number, body: string): boolean {
  if (status === 417 && body === '') return true;
  try {
    const j = JSON.parse(body) as { code?: unknown; message?: unknown };
    return (
      j.code === undefined &&
      (j.message === 'Client Error' || j.message === 'Exceeded maximum allowed HTTP header size')
    );
  } catch {
    return false;
  }
}

function isCoded(body: string): boolean {
  try {
    const j = JSON.parse(body) as { code?: unknown };
    return typeof j === 'object' && j !== null && typeof j.code === 'string' && j.code.length > 0;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- HTTP

interface RawRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer | string;
}

interface RawAnswer {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

/** One connection per request: a connection the server closes after refusing one input takes no other input down with it. */
class Http {
  constructor(
    readonly base: URL,
    readonly timeoutMs: number,
  ) {}

  /**
   * One request with a raw path (node:http does not normalise it); rejects 'hung' past the bound. Keeps
   * the first `maxBody` bytes of the answer's body (about: whole chunks are kept until it is reached).
   */
  send(req: RawRequest, maxBody = 65_536): Promise<RawAnswer> {
    return new Promise((resolve, reject) => {
      let done = false;
      const r = httpRequest(
        {
          host: this.base.hostname,
          port: this.base.port,
          method: req.method,
          path: req.path,
          headers: req.headers,
          agent: false,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (d: Buffer) => {
            if (size < maxBody) chunks.push(d);
            size += d.length;
          });
          res.on('end', () => {
            done = true;
            clearTimeout(timer);
            resolve({
              status: res.statusCode ?? 0,
              body: Buffer.concat(chunks).toString('utf8'),
              headers: res.headers,
            });
          });
          res.on('error', (err) => {
            done = true;
            clearTimeout(timer);
            reject(err);
          });
        },
      );
      const timer = setTimeout(() => {
        if (done) return;
        done = true;
        r.destroy();
        reject(Object.assign(new Error('hung'), { hung: true }));
      }, this.timeoutMs);
      r.on('error', (err) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        reject(err);
      });
      if (req.body !== undefined) r.end(req.body);
      else r.end();
    });
  }
}

/** encodeURIComponent that takes lone surrogates too (as U+FFFD). */
function enc(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    return encodeURIComponent(s.replace(/[\ud800-\udfff]/g, '\ufffd'));
  }
}

/** Percent-escapes what node:http refuses in a path, leaving `..`, `%zz`, `//` and the like as they are. */
function rawPath(p: string): string {
  return p.replace(/[^\x21-\x7e]/g, (c) => enc(c).replace(/%25/g, '%'));
}

interface Route {
  method: string;
  /** Path template with {param}s. */
  path: string;
  params: string[];
  query: Record<string, JsonSchema>;
  body: JsonSchema | undefined;
}

function routesOf(openapi: {
  paths?: Record<
    string,
    Record<
      string,
      {
        parameters?: { in: string; name: string; schema?: JsonSchema }[];
        requestBody?: { content?: Record<string, { schema?: JsonSchema }> };
      }
    >
  >;
}): Route[] {
  const out: Route[] = [];
  for (const [path, methods] of Object.entries(openapi.paths ?? {})) {
    for (const [method, op] of Object.entries(methods)) {
      const params = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
      const query: Record<string, JsonSchema> = {};
      for (const p of op.parameters ?? []) if (p.in === 'query') query[p.name] = p.schema ?? {};
      const body = op.requestBody?.content?.['application/json']?.schema;
      out.push({ method: method.toUpperCase(), path, params, query, body });
    }
  }
  // the routes the OpenAPI document hides or cannot describe
  const extra: [string, string][] = [
    ['GET', '/openapi.json'],
    ['GET', '/ops'],
    ['GET', '/publish'],
    ['GET', '/watch'],
    ['GET', '/v1/events'],
    ['DELETE', '/whip/{streamId}/{sessionId}'],
    ['PATCH', '/whip/{streamId}/{sessionId}'],
    ['OPTIONS', '/whip/{streamId}'],
    ['OPTIONS', '/whip/{streamId}/{sessionId}'],
    ['DELETE', '/whep/{streamId}/{sessionId}'],
    ['PATCH', '/whep/{streamId}/{sessionId}'],
    ['OPTIONS', '/whep/{streamId}'],
    ['POST', '/whip/{streamId}'],
    ['POST', '/whep/{streamId}'],
    ['GET', '/nope/{x}'],
    ['PUT', '/v1/streams/{streamId}'],
  ];
  for (const [method, path] of extra) {
    if (!out.some((r) => r.method === method && r.path === path))
      out.push({
        method,
        path,
        params: [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!),
        query: {},
        body: undefined,
      });
  }
  return out;
}

interface Tokens {
  admin: string;
  reviewer: string;
  viewer: string;
  expired: string;
  foreign: string;
  publisher(streamId: string): Promise<string>;
}

async function authHeader(r: Rng, tokens: Tokens, streamIds: string[]): Promise<string | undefined> {
  const x = r.next();
  if (x < 0.4) return `Bearer ${tokens.admin}`;
  if (x < 0.55) return `Bearer ${tokens.reviewer}`;
  if (x < 0.63) return `Bearer ${await tokens.publisher(r.pick(streamIds))}`;
  if (x < 0.68) return `Bearer ${tokens.viewer}`;
  if (x < 0.8) return undefined;
  return r.pick([
    'Bearer',
    'Bearer ',
    'Basic YWRtaW46YWRtaW4=',
    `Bearer ${tokens.expired}`,
    `Bearer ${tokens.foreign}`,
    'Bearer a.b.c',
    `bearer ${tokens.admin}`,
    `Bearer ${tokens.admin.slice(0, -3)}abc`,
    `Bearer ${tokens.admin} extra`,
    'Bearer eyJhbGciOiJub25lIn0.eyJyb2xlIjoiYWRtaW4ifQ.',
    `Bearer ${'x'.repeat(9000)}`,
  ]);
}

function queryString(r: Rng, schema: Record<string, JsonSchema>, ids: string[]): string {
  const parts: string[] = [];
  for (const [k, s] of Object.entries(schema)) {
    if (r.chance(0.5)) parts.push(`${enc(k)}=${enc(String(fromSchema(s, r, ids)))}`);
  }
  const n = r.chance(0.3) ? r.range(1, 4) : 0;
  for (let i = 0; i < n; i++) {
    const k = r.chance(0.5) && Object.keys(schema).length ? r.pick(Object.keys(schema)) : interestingString(r);
    const v = r.pick([interestingString(r), '%', '%zz', '%E0%A4%A', '[]', 'a&b', '', '=', String(r.pick(NUMBERS))]);
    parts.push(
      r.chance(0.7) ? `${enc(k)}=${v.startsWith('%') ? v : enc(v)}` : r.pick([k, `${k}[]=${enc(v)}`, `${k}[a]=1`]),
    );
  }
  if (r.chance(0.03)) parts.push('x='.padEnd(20_000, 'y'));
  return parts.length ? `?${parts.join('&')}` : r.chance(0.05) ? r.pick(['?', '??', '?&&', '?=']) : '';
}

function paramValue(r: Rng, name: string, ids: string[], streamIds: string[]): string {
  const x = r.next();
  if (x < 0.35 && (name === 'streamId' ? streamIds : ids).length)
    return enc(r.pick(name === 'streamId' ? streamIds : ids));
  if (x < 0.5 && name === 'bank') return r.pick(['fz_bank', 'protected_music', 'Bad', '']);
  if (x < 0.6) return enc(`fz-${r.int(1000)}`);
  return r.pick([
    enc(interestingString(r)),
    '%2F',
    '..',
    '%2e%2e',
    '%',
    '%zz',
    '.',
    '~',
    'a'.repeat(300),
    '%00',
    '%E2%80%AE',
    '',
  ]);
}

/** One input of the http family. */
async function httpInput(
  r: Rng,
  routes: Route[],
  tokens: Tokens,
  ids: string[],
  streamIds: string[],
): Promise<{ req: RawRequest } | { raw: string } | { ws: string }> {
  const kind = r.next();
  if (kind < 0.03) return { raw: rawHttp(r) };
  const route = r.pick(routes);
  if (route.path === '/v1/events' && kind < 0.5) {
    const q = queryString(
      r,
      {
        role: { enum: ['ops', 'streamer', 'viewer', 'x'] },
        streamId: { type: 'string' },
        access_token: { enum: [tokens.admin, tokens.reviewer, tokens.viewer, 'junk'] },
        format: { enum: ['json', 'msgpack', 'xml'] },
        viewerId: { type: 'string' },
      },
      ids,
    );
    return { ws: `/v1/events${q}` };
  }
  let path = route.path.replace(/\{(\w+)\}/g, (_m, name: string) => paramValue(r, name, ids, streamIds));
  if (r.chance(0.04))
    path = r.pick([
      path + '/',
      path.toUpperCase(),
      '/' + path,
      path + '/extra',
      path.replace('/v1/', '/v1//'),
      path + '%20',
      path + '#frag',
      path + ';x=1',
    ]);
  path += queryString(r, route.query, ids);
  let method = route.method;
  if (r.chance(0.05)) method = r.pick(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD', 'PROPFIND', 'FOO']);
  const headers: Record<string, string> = {};
  const auth = await authHeader(r, tokens, streamIds);
  if (auth) headers.authorization = auth;
  let body: string | Buffer | undefined;
  if (route.body || method === 'POST' || r.chance(0.1)) {
    const b = r.next();
    let ct = 'application/json';
    if (b < 0.7)
      body = JSON.stringify(
        r.chance(0.6) ? mutateJson(fromSchema(route.body, r, ids), r) : fromSchema(route.body, r, ids),
      );
    else if (b < 0.78) {
      const good = JSON.stringify(fromSchema(route.body, r, ids));
      body = r.pick([
        good.slice(0, r.int(good.length + 1)),
        good + '}',
        good.replace(/,/, ',,'),
        '{"a":',
        '{"__proto__":{"x":1}}',
        '{"constructor":{"prototype":{"x":1}}}',
        "{'a':1}",
        'NaN',
        '\ufeff' + good,
        good + '\u0000',
      ]);
    } else if (b < 0.83) body = r.pick(['null', '[]', '"s"', '1', 'true', '{}', '']);
    else if (b < 0.87) body = '['.repeat(r.range(1000, 20_000)) + ']'.repeat(r.int(20_000));
    else if (b < 0.9)
      body = JSON.stringify({ a: 'x'.repeat(r.chance(0.3) ? 3 * 1024 * 1024 : r.range(10_000, 200_000)) });
    else if (b < 0.93)
      body = '{' + Array.from({ length: r.range(100, 3000) }, (_, i) => `"k${i}":${i}`).join(',') + '}';
    else {
      body = r.chance(0.5) ? JSON.stringify(fromSchema(route.body, r, ids)) : r.bytes(r.int(300));
      ct = r.pick([
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/sdp',
        'application/json; charset=utf-16',
        'application/octet-stream',
        'audio/wav',
        '',
        'application/json; charset=bogus',
        'application/vnd.api+json',
        '*/*',
      ]);
    }
    if (ct) headers['content-type'] = ct;
    // most clients say how long the body is; some stream it chunked
    if (r.chance(0.95)) headers['content-length'] = String(Buffer.byteLength(body));
    if (r.chance(0.02)) headers['content-encoding'] = r.pick(['gzip', 'br', 'deflate', 'x-bogus']);
  }
  if (r.chance(0.05))
    headers[r.pick(['x-viewer-jurisdiction', 'accept', 'if-match', 'origin', 'x-forwarded-for', 'range', 'expect'])] =
      r.pick(['SE', '*/*', 'garbage', '100-continue', 'bytes=0-1', 'http://evil.example', '\u00ff']);
  return { req: { method, path: rawPath(path), headers, body } };
}

/** Malformed HTTP/1.1 on a raw socket (what a fetch client cannot send). */
function rawHttp(r: Rng): string {
  return r.pick([
    'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello',
    'POST /v1/tokens HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n',
    'GET /healthz HTTP/9.9\r\n\r\n',
    `GET /${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
    `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`,
    'GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n',
    '\u0000\u0001\u0002 garbage\r\n\r\n',
    'POST /v1/policies/validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"files":',
    'GET /healthz\r\n\r\n',
    'GET /v1/events HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n',
    'GET /v1/events?role=ops HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 99\r\n\r\n',
  ]);
}

/** Sends raw bytes and reads the answer's status line and body (or none: the server may just close). */
function sendRaw(base: URL, text: string, timeoutMs: number): Promise<RawAnswer | undefined> {
  return new Promise((resolve, reject) => {
    const sock = netConnect({ host: base.hostname, port: Number(base.port) });
    let data = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(Object.assign(new Error('hung'), { hung: true }));
    }, timeoutMs);
    const finish = (): void => {
      clearTimeout(timer);
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(data);
      if (!m) return resolve(undefined);
      const split = data.indexOf('\r\n\r\n');
      let body = split >= 0 ? data.slice(split + 4) : '';
      if (/transfer-encoding: chunked/i.test(data.slice(0, split)))
        body = body.replace(/^[0-9a-f]+\r\n/i, '').replace(/\r\n0\r\n\r\n$/, '');
      resolve({ status: Number(m[1]), body, headers: {} });
    };
    sock.on('data', (d: Buffer) => {
      data += d.toString('latin1');
      // one answer is enough: a keep-alive socket would otherwise wait for the bound
      const split = data.indexOf('\r\n\r\n');
      const len = /content-length: (\d+)/i.exec(data.slice(0, split));
      if (split >= 0 && ((len && data.length - split - 4 >= Number(len[1])) || /\r\n0\r\n\r\n$/.test(data)))
        sock.destroy();
    });
    sock.on('close', finish);
    sock.on('error', () => undefined);
    sock.write(text, 'latin1');
  });
}

type WsLike = {
  on(event: 'open', l: () => void): void;
  on(
    event: 'unexpected-response',
    l: (
      req: unknown,
      res: { statusCode?: number; on(e: 'data', l: (d: Buffer) => void): void; on(e: 'end', l: () => void): void },
    ) => void,
  ): void;
  on(event: 'error', l: (err: Error) => void): void;
  on(event: 'close', l: () => void): void;
  send(data: string | Buffer): void;
  terminate(): void;
};
const WsCtor = createRequire(import.meta.url)('ws') as new (url: string, opts?: Record<string, unknown>) => WsLike;

/** A WebSocket upgrade of /v1/events with a fuzzed query: a refusal must be a coded HTTP error. */
function wsInput(base: URL, path: string, r: Rng, timeoutMs: number): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const ws = new WsCtor(`ws://${base.host}${path}`, { handshakeTimeout: timeoutMs });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(Object.assign(new Error('hung'), { hung: true }));
    }, timeoutMs + 2000);
    let settled = false;
    const settle = (a: RawAnswer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(a);
    };
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d) => (body += d.toString()));
      res.on('end', () => settle({ status: res.statusCode ?? 0, body, headers: {} }));
    });
    ws.on('open', () => {
      // clients only listen; send junk anyway, then leave
      for (let i = 0; i < r.int(4); i++)
        ws.send(r.chance(0.5) ? r.bytes(r.int(2000)) : JSON.stringify(interestingValue(r)));
      setTimeout(() => ws.terminate(), r.int(200));
      settle({ status: 101, body: '', headers: {} });
    });
    ws.on('error', (err) => {
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        reject(err);
      }
    });
  });
}

// ---------------------------------------------------------------- policy YAML, bank imports, audio

const YAML_SCALARS = [
  '~',
  'null',
  '.nan',
  '.inf',
  '-.inf',
  '0x1F',
  '0o17',
  '1e999',
  '-1',
  '2.0',
  '"',
  "'unterminated",
  '{',
  '[',
  '}',
  ']',
  '!!binary AAAA',
  '!!js/function "x"',
  '*nope',
  '&a x',
  '? complex',
  '|',
  '>',
  '- item',
  'yes',
  'NO',
  '@',
  '`',
  '%TAG',
  '---',
  '...',
  '"\\u0000"',
  '!!str',
  '!!map',
  '2026-13-45',
  '1:2:3',
  'x'.repeat(3000),
];

function mutatePolicy(files: { filename: string; text: string }[], r: Rng): { filename: string; text: string }[] {
  const out = files.map((f) => ({ ...f }));
  const rounds = r.range(1, 4);
  for (let k = 0; k < rounds; k++) {
    const f = r.pick(out);
    const lines = f.text.split('\n');
    const i = r.int(lines.length);
    switch (r.int(12)) {
      case 0:
        lines.splice(i, 1);
        break;
      case 1:
        lines.splice(i, 0, lines[i] ?? '');
        break;
      case 2: {
        const j = r.int(lines.length);
        [lines[i], lines[j]] = [lines[j] ?? '', lines[i] ?? ''];
        break;
      }
      case 3:
        lines[i] = r.pick(['  ', '\t', '    ', '']) + (lines[i] ?? '').trimStart();
        break;
      case 4:
        lines[i] = (lines[i] ?? '').replace(/:\s*(\S.*)?$/, `: ${r.pick(YAML_SCALARS)}`);
        break;
      case 5:
        lines[i] = (lines[i] ?? '').replace(/\d+(\.\d+)?/, String(r.pick(NUMBERS)));
        break;
      case 6:
        f.text = f.text.slice(0, r.int(f.text.length));
        continue;
      case 7: {
        const b = Buffer.from(f.text);
        for (let n = 0; n < r.range(1, 8); n++) b[r.int(b.length)] = r.int(256);
        f.text = b.toString('latin1');
        continue;
      }
      case 8:
        lines.splice(
          i,
          0,
          `${(lines[i] ?? '').match(/^\s*/)?.[0] ?? ''}${r.pick(['name', 'version', 'thresholds', 'action', 'jurisdictions', 'categories', 'x'])}: ${r.pick(YAML_SCALARS)}`,
        );
        break;
      case 9:
        f.text =
          'a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n';
        continue;
      case 10:
        f.filename = r.pick([
          '',
          '../../etc/passwd',
          'x.json',
          'policies/../../x.yaml',
          'a'.repeat(300),
          'policies/jurisdictions/ZZ.yaml',
          'C:\\x.yaml',
          'policies/default.yaml',
        ]);
        continue;
      default:
        if (out.length > 1) out.splice(r.int(out.length), 1);
        continue;
    }
    f.text = lines.join('\n');
  }
  if (r.chance(0.05))
    out.push({
      filename: `policies/jurisdictions/${r.pick(['ZZ', 'SE', 'xx', '__proto__'])}.yaml`,
      text: r.pick([
        'jurisdiction: ZZ\n',
        '',
        '- a\n- b\n',
        'extends: nowhere\n',
        `jurisdiction: SE\ncategories:\n  sexual_explicit: { threshold: ${r.pick(NUMBERS)}, action: ${r.pick(['kill_stream', 'blank', 'nuke'])} }\n`,
      ]),
    });
  return out;
}

function bankText(r: Rng): string {
  const n = r.chance(0.05) ? r.range(500, 3000) : r.range(1, 30);
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    let hex = r.bytes(32).toString('hex');
    const meta = [
      `id=fz${r.int(100)}`,
      r.chance(0.5) ? `category=${r.pick(['csam_known', 'terror', 'x', ''])}` : '',
      r.chance(0.3) ? `source=${interestingString(r).replace(/[\t\n]/g, '')}` : '',
    ];
    switch (r.int(12)) {
      case 0:
        hex = hex.slice(0, 63);
        break;
      case 1:
        hex += 'a';
        break;
      case 2:
        hex = hex.replace(/[0-9]/, 'g');
        break;
      case 3:
        hex = '';
        break;
      case 4:
        meta.push(
          r.pick([
            '=x',
            'a=',
            '\\',
            '\\t\\n\\\\',
            '\\u0000',
            'k=' + 'v'.repeat(5000),
            '1bad=x',
            'id=',
            'id=' + 'i'.repeat(300),
          ]),
        );
        break;
      case 5:
        hex = '\ufeff' + hex;
        break;
      case 6:
        hex = hex.toUpperCase();
        break;
      case 7:
        hex = ` ${hex} `;
        break;
      default:
        break;
    }
    lines.push([hex, ...meta.filter(Boolean)].join(r.chance(0.95) ? '\t' : ' '));
    if (r.chance(0.05)) lines.push(r.pick(['#comment', '', '\r', '\u0000', '\t\t\t']));
  }
  return lines.join(r.chance(0.9) ? '\n' : '\r\n');
}

function wav(r: Rng): Buffer {
  const seconds = r.chance(0.5) ? 0.5 : 1;
  const rate = r.pick([8000, 16000, 48000]);
  const n = Math.floor(seconds * rate);
  const data = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) data.writeInt16LE(r.int(20_000) - 10_000, i * 2); // noise: it matches no stream
  const h = Buffer.alloc(44);
  h.write('RIFF', 0);
  h.writeUInt32LE(36 + data.length, 4);
  h.write('WAVEfmt ', 8);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(1, 22);
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * 2, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36);
  h.writeUInt32LE(data.length, 40);
  return Buffer.concat([h, data]);
}

function audioBody(r: Rng): Buffer {
  const base = wav(r);
  switch (r.int(10)) {
    case 0:
      return base.subarray(0, r.int(60)); // truncated header
    case 1:
      base.writeUInt32LE(0xffffffff, 4);
      base.writeUInt32LE(0xffffffff, 40);
      return base; // absurd sizes
    case 2:
      base.writeUInt16LE(r.pick([0, 7, 65535]), 22);
      base.writeUInt32LE(r.pick([0, 1, 0xffffffff]), 24);
      return base; // channels/rate
    case 3:
      base.writeUInt16LE(r.pick([0, 3, 13, 64]), 34);
      return base; // bits per sample
    case 4:
      return Buffer.concat([Buffer.from('OggS\u0000\u0002'), r.bytes(r.int(4000))]);
    case 5:
      return Buffer.concat([Buffer.from('ID3\u0004\u0000\u0000\u007f\u007f\u007f\u007f'), r.bytes(r.int(2000))]);
    case 6:
      return Buffer.concat([Buffer.from([0xff, 0xfb, 0x90, 0x00]), r.bytes(r.int(4000))]); // MP3 frame sync
    case 7:
      return r.bytes(r.int(8000));
    case 8: {
      const b = Buffer.from(base);
      for (let i = 0; i < 20; i++) b[r.int(60)] = r.int(256);
      return b;
    }
    default:
      return r.chance(0.3) ? base : Buffer.concat([Buffer.from('fLaC'), r.bytes(r.int(3000))]);
  }
}

// ---------------------------------------------------------------- SDP

interface Offer {
  name: string;
  sdp: string;
  kind: 'publish' | 'view';
}

function loadOffers(): Offer[] {
  return readdirSync(OFFER_DIR)
    .filter((f) => f.endsWith('.sdp'))
    .sort()
    .map((name) => {
      let sdp = readFileSync(join(OFFER_DIR, name), 'utf8');
      // loopback only: drop the candidates of other interfaces the recording machine had
      sdp = sdp
        .split(/\r?\n/)
        .filter((l) => !l.startsWith('a=candidate:') || / (127\.0\.0\.1|::1) \d+ typ /.test(l))
        .join('\r\n');
      return { name, sdp, kind: /recvonly/.test(sdp) && !/sendonly/.test(sdp) ? 'view' : 'publish' };
    });
}

const SDP_VALUES = [
  '0',
  '-1',
  '127',
  '128',
  '255',
  '65536',
  '4294967296',
  '',
  ' ',
  'x',
  '9'.repeat(40),
  'VP8',
  'H264/90000/2',
  'opus/0/2',
  'rtx/90000',
  '*',
  'sha-256',
  'sha-1 00',
  'actpass',
  'holdconn',
  'active',
  'passive',
];

function mutateSdp(sdp: string, r: Rng): string {
  let lines = sdp.split(/\r?\n/).filter((l) => l !== '');
  const rounds = r.range(1, 5);
  for (let k = 0; k < rounds; k++) {
    const i = r.int(lines.length);
    const line = lines[i] ?? '';
    switch (r.int(16)) {
      case 0:
        lines.splice(i, 1);
        break;
      case 1:
        lines.splice(i, 0, line);
        break;
      case 2: {
        const j = r.int(lines.length);
        [lines[i], lines[j]] = [lines[j] ?? '', line];
        break;
      }
      case 3:
        lines = lines.slice(0, i);
        break;
      case 4:
        lines[i] = line.replace(/\d+/, r.pick(SDP_VALUES));
        break;
      case 5:
        lines[i] = line.replace(/(:|\s)\S+$/, `$1${r.pick(SDP_VALUES)}`);
        break;
      case 6:
        lines.splice(
          i,
          0,
          r.pick([
            'a=rtpmap:96 VP8',
            'a=rtpmap:abc H264/90000',
            'a=fmtp:96 ' + 'x=y;'.repeat(2000),
            'a=fmtp:102 profile-level-id=zzzzzz;packetization-mode=7',
            'a=rtcp-fb:* nack',
            'a=extmap:0 urn:ietf:params:rtp-hdrext:sdes:mid',
            'a=extmap:15 urn:ietf:params:rtp-hdrext:sdes:mid',
            'a=extmap:256 x',
            'a=ssrc:0 cname:x',
            'a=ssrc:4294967296 cname:x',
            'a=ssrc-group:FID 1',
            'a=ssrc-group:SIM 1 2 3 4 5 6 7 8',
            'a=rid:h send',
            'a=rid:' + 'r'.repeat(300) + ' send',
            'a=simulcast:send h;m;l',
            'a=simulcast:recv ~',
            'a=mid:',
            'a=mid:0',
            'a=group:BUNDLE 7 8 9',
            'a=group:BUNDLE',
            'a=setup:holdconn',
            'a=fingerprint:md5 00:11',
            'a=fingerprint:sha-256 ZZ',
            'a=ice-ufrag:',
            'a=ice-pwd:short',
            'a=candidate:1 1 udp 1 127.0.0.1 1 typ host',
            'a=candidate:1 1 udp 99999999999 not_an_address 70000 typ relay',
            'a=candidate:x',
            'a=candidate:1 2 tcp 1 ::1 0 typ host tcptype passive',
            'a=rtcp:0 IN IP4 127.0.0.1',
            'a=bundle-only',
            'a=inactive',
            'a=sendrecv',
            'a=msid:' + 'm'.repeat(1000),
            'a=extmap-allow-mixed',
            'a=max-message-size:-5',
            'b=AS:-1',
            'c=IN IP6 ::1',
            'a=',
          ]),
        );
        break;
      case 7:
        lines[i] = line.replace(/^m=(\w+) \d+/, `m=$1 ${r.pick(['0', '9', '65536', '-1'])}`);
        break;
      case 8:
        lines[i] = line
          .replace(/^m=\w+/, `m=${r.pick(['application', 'text', 'video', 'audio', 'image', 'x'])}`)
          .replace(
            /UDP\/TLS\/RTP\/SAVPF/,
            r.pick(['RTP/AVP', 'UDP/DTLS/SCTP', 'TCP/TLS/RTP/SAVPF', 'UDP/TLS/RTP/SAVPF']),
          );
        break;
      case 9: {
        // duplicate a whole m-section (many m-lines)
        const starts = lines.map((l, n) => (l.startsWith('m=') ? n : -1)).filter((n) => n >= 0);
        if (!starts.length) break;
        const s = r.pick(starts);
        const e = starts.find((n) => n > s) ?? lines.length;
        const section = lines.slice(s, e);
        for (let c = 0; c < (r.chance(0.1) ? 30 : 1); c++) lines.push(...section);
        break;
      }
      case 10:
        lines[i] = line.replace(
          /(sendonly|recvonly|sendrecv|inactive)/,
          r.pick(['sendonly', 'recvonly', 'sendrecv', 'inactive']),
        );
        break;
      case 11:
        lines[i] = line.slice(0, r.int(line.length + 1));
        break;
      case 12:
        lines[i] = line.replace(
          /a=rtpmap:\d+ \w+/,
          `a=rtpmap:${r.pick(['96', '97', '102', '111', '0', '35'])} ${r.pick(['VP8', 'VP9', 'H264', 'AV1', 'opus', 'rtx', 'red', 'ulpfec', 'PCMU'])}`,
        );
        break;
      case 13:
        lines[i] = Buffer.from(Buffer.from(line).map((b) => (r.chance(0.05) ? r.int(256) : b))).toString('latin1');
        break;
      case 14:
        lines.splice(
          i,
          0,
          `a=${r
            .bytes(r.int(60))
            .toString('latin1')
            .replace(/[\r\n]/g, '')}`,
        );
        break;
      default:
        if (i === 0) lines[0] = r.pick(['v=1', 'v=', 'x=0', 'v=0 ']);
        else lines[i] = line.replace(/\r?$/, r.pick(['\n', ' ', '\u0000']));
    }
  }
  return lines.join(r.chance(0.9) ? '\r\n' : '\n') + '\r\n';
}

// ---------------------------------------------------------------- media: fuzz peers

/** A connected werift publisher whose packets the fuzzer writes itself (valid SRTP, any payload). */
class FuzzPublisher {
  closed = false;
  private constructor(
    readonly pc: RTCPeerConnection,
    readonly location: string,
    readonly streamId: string,
    readonly codec: 'VP8' | 'H264',
    readonly video: RTCRtpSender,
    readonly audio: RTCRtpSender,
    readonly answer: string,
    readonly token: string,
  ) {
    pc.connectionStateChange.subscribe((s) => {
      if (s === 'closed' || s === 'failed' || s === 'disconnected') this.closed = true;
    });
    for (const d of pc.dtlsTransports)
      d.onStateChange.subscribe((s) => {
        if (s === 'closed' || s === 'failed') this.closed = true;
      });
  }

  static async connect(base: string, streamId: string, token: string, codec: 'VP8' | 'H264'): Promise<FuzzPublisher> {
    const pc = clientPeer([codec]);
    const video = pc.addTransceiver('video', { direction: 'sendonly' }).sender;
    const audio = pc.addTransceiver('audio', { direction: 'sendonly' }).sender;
    try {
      const offer = await gatheredOffer(pc);
      const { answer, location } = await postOffer(`${base}/whip/${streamId}`, offer, token, { timeoutMs: 15_000 });
      await pc.setRemoteDescription({ type: 'answer', sdp: answer });
      await waitConnected(pc, 15_000);
      return new FuzzPublisher(pc, location, streamId, codec, video, audio, answer, token);
    } catch (err) {
      await pc.close().catch(() => undefined);
      throw err;
    }
  }

  get dtls(): RTCDtlsTransport {
    return this.video.dtlsTransport;
  }

  /** Through the sender: its SSRC, payload type and mid extension, our seq/timestamp/marker and extra extensions. */
  send(
    kind: 'audio' | 'video',
    payload: Buffer,
    seq: number,
    timestamp: number,
    marker: boolean,
    extensions: { id: number; payload: Buffer }[] = [],
  ): void {
    if (this.closed) return;
    const header = new RtpHeader({
      sequenceNumber: seq & 0xffff,
      timestamp: timestamp >>> 0,
      marker,
      payloadType: 0,
      ssrc: 0,
      extensions,
    });
    (kind === 'video' ? this.video : this.audio).sendRtp(new RtpPacket(header, payload)).catch(() => undefined);
  }

  /** Straight into SRTP with a header of our own (unknown SSRC, RTX, wrong payload type). */
  sendRaw(header: RtpHeader, payload: Buffer): void {
    if (this.closed) return;
    this.dtls.sendRtp(payload, header).catch(() => undefined);
  }

  sendRtcpRaw(raw: Buffer): void {
    sendSrtcp(this.dtls, raw);
  }

  /** Bytes as they are on the session's ICE path (no SRTP): DTLS records, STUN, RTP in the clear. */
  sendPath(raw: Buffer): void {
    if (this.closed) return;
    this.dtls.iceTransport.connection.send(raw).catch(() => undefined);
  }

  mediaPorts(): number[] {
    return [...this.answer.matchAll(/a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 (\d+) typ host/g)].map((m) => Number(m[1]));
  }

  async stop(deleteIt = true): Promise<void> {
    this.closed = true;
    if (deleteIt) await deleteSession(this.location, this.token);
    await this.pc.close().catch(() => undefined);
  }
}

function sendSrtcp(dtls: RTCDtlsTransport, raw: Buffer): void {
  if (raw.length < 8 || dtls.state !== 'connected') return;
  try {
    const enc = dtls.srtcp.encrypt(raw);
    dtls.iceTransport.connection.send(enc).catch(() => undefined);
  } catch {
    // werift could not protect it (too short a header): nothing was sent
  }
}

interface Clips {
  vp8: EncodedFrame[];
  h264: EncodedFrame[];
  opus: EncodedFrame[];
}

/** One RTP input: a strategy over a real frame or crafted bytes. Returns the packets sent (inputs). */
function rtpBurst(
  p: FuzzPublisher,
  r: Rng,
  clips: Clips,
  state: { seq: number; aseq: number; ts: number; ats: number; picture: number },
): number {
  const video = p.codec === 'VP8' ? clips.vp8 : clips.h264;
  const frame = r.pick(video);
  state.ts = (state.ts + 3000) >>> 0;
  const pkts =
    p.codec === 'VP8'
      ? packetizeVp8(frame.data, r.pick([1200, 300, 60]), (state.picture = (state.picture + 1) & 0x7fff))
      : packetizeH264(frame.data, r.pick([1200, 300, 60]));
  const sendAll = (
    list: Uint8Array[],
    opts: { marker?: (i: number) => boolean; seq?: (i: number) => number } = {},
  ): number => {
    const base = state.seq;
    list.forEach((pl, i) =>
      p.send(
        'video',
        Buffer.from(pl),
        opts.seq ? opts.seq(i) : base + i,
        state.ts,
        opts.marker ? opts.marker(i) : i === list.length - 1,
      ),
    );
    state.seq = (base + list.length) & 0xffff;
    return list.length;
  };
  switch (r.int(14)) {
    case 0:
      return sendAll(pkts); // clean frame: keeps the decoder in a real state
    case 1: {
      // bit flips inside a real frame
      const bad = pkts.map((x) => Buffer.from(x));
      for (let k = 0; k < r.range(1, 12); k++) {
        const b = r.pick(bad);
        if (b.length) b[r.int(b.length)] ^= 1 << r.int(8);
      }
      return sendAll(bad);
    }
    case 2:
      return sendAll(pkts.map((x) => Buffer.from(x).subarray(0, r.int(x.length + 1)))); // truncated fragments
    case 3: {
      const order = r.shuffle(pkts.map((_, i) => i));
      const base = state.seq;
      order.forEach((i) => p.send('video', Buffer.from(pkts[i]!), base + i, state.ts, i === pkts.length - 1));
      state.seq = (base + pkts.length) & 0xffff;
      return pkts.length;
    } // reordered
    case 4:
      return sendAll([...pkts, ...pkts.slice(0, r.int(pkts.length + 1))], {
        seq: (i) => state.seq + (i % pkts.length),
      }); // duplicated
    case 5:
      return sendAll(pkts.filter(() => r.chance(0.6))); // lost fragments
    case 6:
      return sendAll(pkts, { marker: () => r.chance(0.3) }); // markers anywhere (or none)
    case 7: {
      const n = r.chance(0.1) ? r.range(200, 800) : r.range(1, 40);
      return sendAll(
        Array.from({ length: n }, () => (p.codec === 'VP8' ? vp8Crafted(r) : h264Crafted(r))),
        { marker: () => r.chance(0.1) },
      );
    } // crafted payloads, long frames without a marker
    case 8: {
      const jump = r.pick([-1, 1, 32768, 65535, 100, -100]);
      state.seq = (state.seq + jump) & 0xffff;
      state.ts = (state.ts + r.pick([0, -3000, 2 ** 31, 1])) >>> 0;
      return sendAll(pkts);
    } // seq/timestamp jumps
    case 9:
      return sendAll([Buffer.alloc(0), Buffer.alloc(1), r.bytes(r.range(1, 1400))]);
    case 10: {
      // junk header extensions (mid overwritten, unknown ids, big ones)
      const ext = [{ id: r.range(1, 14), payload: r.bytes(r.range(0, r.chance(0.2) ? 255 : 16)) }];
      const base = state.seq;
      pkts.forEach((pl, i) => p.send('video', Buffer.from(pl), base + i, state.ts, i === pkts.length - 1, ext));
      state.seq = (base + pkts.length) & 0xffff;
      return pkts.length;
    }
    case 11: {
      // raw header: unknown SSRC, RTX without OSN, wrong payload type, CSRCs
      const n = r.range(1, 10);
      for (let i = 0; i < n; i++) {
        const header = new RtpHeader({
          sequenceNumber: r.int(65536),
          timestamp: r.int(2 ** 32),
          marker: r.chance(0.3),
          payloadType: r.pick([96, 97, 102, 103, 111, 0, 127, r.int(128)]),
          ssrc: r.chance(0.5) ? r.int(2 ** 32) : p.video.ssrc,
          csrc: r.chance(0.2) ? Array.from({ length: r.range(1, 15) }, () => r.int(2 ** 32)) : [],
          extensions: r.chance(0.3) ? [{ id: r.range(1, 14), payload: r.bytes(r.range(1, 16)) }] : [],
        });
        if (r.chance(0.3)) header.ssrc = p.video.rtxSsrc;
        p.sendRaw(header, r.bytes(r.pick([0, 1, 2, 3, r.int(1300)])));
      }
      return n;
    }
    case 12: {
      // audio: Opus TOCs, code-3 frame counts and paddings, sizes
      const n = r.range(1, 20);
      for (let i = 0; i < n; i++) {
        const real = Buffer.from(packetizeOpus(r.pick(clips.opus).data)[0]!);
        const pl = r.pick([
          real,
          opusCrafted(r),
          real.subarray(0, r.int(real.length + 1)),
          Buffer.alloc(0),
          r.bytes(r.pick([1, 2, 1275, 1400])),
        ]);
        state.ats = (state.ats + r.pick([960, 960, 0, 480, 2 ** 31])) >>> 0;
        p.send(
          'audio',
          pl,
          (state.aseq = (state.aseq + (r.chance(0.05) ? r.int(65536) : 1)) & 0xffff),
          state.ats,
          r.chance(0.05),
        );
      }
      return n;
    }
    default: {
      // a keyframe whose header claims an absurd size
      const f = Buffer.from(p.codec === 'VP8' ? vp8AbsurdKeyframe(r, frame.data) : frame.data);
      const list = p.codec === 'VP8' ? packetizeVp8(f, 1200, state.picture) : packetizeH264(h264AbsurdSps(r, f), 1200);
      return sendAll(list);
    }
  }
}

/** RFC 7741 descriptors with every bit combination, truncated extensions, then junk. */
function vp8Crafted(r: Rng): Buffer {
  const b0 = r.int(256);
  const parts = [b0];
  if (b0 & 0x80 && r.chance(0.8)) {
    const x = r.int(256);
    parts.push(x);
    if (x & 0x80 && r.chance(0.8)) parts.push(r.int(256), ...(r.chance(0.5) ? [r.int(256)] : []));
    if (x & 0x40 && r.chance(0.8)) parts.push(r.int(256));
    if (x & 0x30 && r.chance(0.8)) parts.push(r.int(256));
  }
  const body = r.chance(0.3)
    ? Buffer.concat([Buffer.from([r.int(256) & 0xfe, r.int(256), r.int(256), 0x9d, 0x01, 0x2a]), r.bytes(r.int(8))])
    : r.bytes(r.int(r.chance(0.1) ? 1300 : 40));
  return Buffer.concat([Buffer.from(parts), body]);
}

/** A VP8 keyframe whose frame header claims 16383 x 16383 (or 0 x 0), or a first partition longer than the frame. */
function vp8AbsurdKeyframe(r: Rng, data: Uint8Array): Buffer {
  const f = Buffer.from(data);
  if (f.length < 10 || (f[0]! & 1) !== 0) return f;
  if (r.chance(0.5)) {
    f.writeUInt16LE(r.pick([0x3fff, 0, 1, 0xffff]), 6);
    f.writeUInt16LE(r.pick([0x3fff, 0, 1, 0xffff]), 8);
  } else {
    const size = 0x7ffff; // 19-bit first partition size
    f[0] = (f[0]! & 0x1f) | ((size & 0x7) << 5);
    f[1] = (size >> 3) & 0xff;
    f[2] = (size >> 11) & 0xff;
  }
  return f;
}

/** An access unit whose SPS has been bit-flipped (sizes, levels) and whose slices follow anyway. */
function h264AbsurdSps(r: Rng, au: Buffer): Buffer {
  const nals = splitAnnexB(au).map((n) => Buffer.from(n));
  for (const n of nals)
    if ((n[0]! & 0x1f) === 7 && n.length > 4)
      for (let k = 0; k < r.range(1, 6); k++) n[r.range(1, n.length - 1)] ^= 1 << r.int(8);
  return Buffer.concat(nals.flatMap((n) => [Buffer.from([0, 0, 0, 1]), n]));
}

/** RFC 6184 payloads: any NAL type, STAP-A/B and MTAP with lengths past the end, FU-A/B with any S/E. */
function h264Crafted(r: Rng): Buffer {
  const type = r.pick([1, 5, 6, 7, 8, 9, 24, 24, 25, 26, 27, 28, 28, 28, 29, 0, 30, 31, r.int(32)]);
  const head = (r.chance(0.1) ? 0x80 : 0) | (r.int(4) << 5) | type;
  if (type === 24 || type === 25) {
    const parts: Buffer[] = [Buffer.from([head])];
    if (type === 25) parts.push(r.bytes(2));
    for (let k = 0; k < r.range(0, 5); k++) {
      const len = r.pick([0, 1, 2, 5, 65535, r.int(300)]);
      const len16 = Buffer.alloc(2);
      len16.writeUInt16BE(len & 0xffff);
      parts.push(len16, r.bytes(Math.min(len, r.int(60))));
    }
    return Buffer.concat(parts);
  }
  if (type === 28 || type === 29) {
    const fu =
      (r.chance(0.5) ? 0x80 : 0) |
      (r.chance(0.5) ? 0x40 : 0) |
      (r.chance(0.1) ? 0x20 : 0) |
      r.pick([1, 5, 7, 8, 0, 24, 28]);
    return Buffer.concat(
      [
        Buffer.from([head, fu]),
        type === 29 ? r.bytes(2) : Buffer.alloc(0),
        r.bytes(r.int(r.chance(0.1) ? 1300 : 60)),
      ].slice(0, r.chance(0.1) ? 1 : 3),
    );
  }
  return Buffer.concat([Buffer.from([head]), r.bytes(r.int(r.chance(0.1) ? 1300 : 40))]);
}

/** RFC 6716 packets: TOC of any config, code 3 with 0..63 frames, VBR lengths and padding past the end. */
function opusCrafted(r: Rng): Buffer {
  const toc = (r.int(32) << 3) | (r.chance(0.5) ? 4 : 0) | r.int(4);
  if ((toc & 3) !== 3) return Buffer.concat([Buffer.from([toc]), r.bytes(r.pick([0, 1, 2, 251, 252, r.int(200)]))]);
  const count = (r.chance(0.5) ? 0x80 : 0) | (r.chance(0.5) ? 0x40 : 0) | r.pick([0, 1, 2, 48, 49, 63]);
  const padding =
    count & 0x40
      ? Buffer.from(Array.from({ length: r.range(1, 4) }, () => r.pick([255, 254, 0, 10])))
      : Buffer.alloc(0);
  return Buffer.concat([Buffer.from([toc, count]), padding, r.bytes(r.int(80))]);
}

/** One RTCP input inside SRTCP: a packet or compound with wrong lengths, counts, types. */
function rtcpCrafted(r: Rng, ssrcs: number[]): Buffer {
  const ssrc = (): number => (r.chance(0.7) && ssrcs.length ? r.pick(ssrcs) : r.int(2 ** 32));
  const packet = (): Buffer => {
    const pt = r.pick([200, 201, 202, 203, 204, 205, 205, 206, 206, 207, r.range(192, 223)]);
    let fmt = r.int(32);
    let body: Buffer;
    switch (pt) {
      case 205: {
        // NACK (fmt 1) with many entries, or transport-cc (fmt 15) garbage
        fmt = r.pick([1, 1, 15, 3, r.int(32)]);
        const n = r.chance(0.1) ? r.range(100, 300) : r.range(0, 8);
        const fci = Buffer.alloc(n * 4);
        for (let i = 0; i < n; i++) {
          fci.writeUInt16BE(r.int(65536), i * 4);
          fci.writeUInt16BE(r.int(65536), i * 4 + 2);
        }
        body = Buffer.concat([u32(ssrc()), u32(ssrc()), fmt === 15 ? r.bytes(r.int(60)) : fci]);
        break;
      }
      case 206: {
        // PLI 1, FIR 4, REMB 15 (AFB)
        fmt = r.pick([1, 4, 15, r.int(32)]);
        const remb = Buffer.concat([
          Buffer.from('REMB'),
          Buffer.from([r.int(256), r.int(256), r.int(256), r.int(256)]),
          u32(ssrc()),
        ]);
        body = Buffer.concat([
          u32(ssrc()),
          u32(fmt === 15 ? 0 : ssrc()),
          fmt === 15 ? remb : fmt === 4 ? Buffer.concat([u32(ssrc()), r.bytes(4)]) : r.bytes(r.pick([0, 0, 4, 13])),
        ]);
        break;
      }
      case 200:
        body = Buffer.concat([u32(ssrc()), r.bytes(20), r.bytes(24 * r.int(3))]);
        fmt = r.int(32);
        break;
      case 201:
        body = Buffer.concat([u32(ssrc()), r.bytes(24 * r.int(3))]);
        fmt = r.int(32);
        break;
      case 202:
        body = Buffer.concat([u32(ssrc()), Buffer.from([1, r.int(256)]), r.bytes(r.int(40))]);
        break; // SDES items past the end
      case 203:
        body = Buffer.concat(
          Array.from({ length: r.int(4) }, () => u32(ssrc())).concat([Buffer.from([r.int(256)]), r.bytes(r.int(20))]),
        );
        break;
      default:
        body = r.bytes(r.int(60));
    }
    const words = r.chance(0.8) ? Math.ceil(body.length / 4) : r.pick([0, 1, 0xffff, r.int(100)]);
    const padded = Buffer.concat([body, Buffer.alloc((4 - (body.length % 4)) % 4)]);
    const head = Buffer.from([
      (r.chance(0.95) ? 0x80 : r.int(4) << 6) | (r.chance(0.05) ? 0x20 : 0) | fmt,
      pt,
      (words >> 8) & 0xff,
      words & 0xff,
    ]);
    return Buffer.concat([head, padded]);
  };
  const out = Buffer.concat(Array.from({ length: r.chance(0.3) ? r.range(2, 6) : 1 }, packet));
  return r.chance(0.05) ? out.subarray(0, r.range(8, Math.max(8, out.length))) : out;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** One garbage datagram: STUN, DTLS, RTP/RTCP in the clear, TURN channel data, or noise. */
function datagram(r: Rng, ufrag: string | undefined): Buffer {
  switch (r.int(7)) {
    case 0: {
      // STUN: any type, right or wrong cookie, attribute lengths past the end
      const attrs: Buffer[] = [];
      for (let k = 0; k < r.range(0, 6); k++) {
        const type = r.pick([0x0006, 0x0008, 0x8028, 0x0025, 0x8029, 0x802a, 0x0024, 0x0001, 0x0020, r.int(65536)]);
        const value =
          type === 0x0006 && ufrag
            ? Buffer.from(`${ufrag}:${r.pick(['x', 'fuzz', ''])}`)
            : r.bytes(r.pick([0, 4, 8, 20, r.int(100)]));
        const len = r.chance(0.8) ? value.length : r.int(65536);
        attrs.push(
          Buffer.from([type >> 8, type & 0xff, len >> 8, len & 0xff]),
          value,
          Buffer.alloc((4 - (value.length % 4)) % 4),
        );
      }
      const body = Buffer.concat(attrs);
      const type = r.pick([0x0001, 0x0001, 0x0101, 0x0111, 0x0011, 0x0003, r.int(0x4000)]);
      const len = r.chance(0.8) ? body.length : r.int(65536);
      const head = Buffer.concat([
        Buffer.from([type >> 8, type & 0xff, len >> 8, len & 0xff]),
        r.chance(0.9) ? Buffer.from([0x21, 0x12, 0xa4, 0x42]) : r.bytes(4),
        r.bytes(12),
      ]);
      return Buffer.concat([head, body]);
    }
    case 1: {
      // DTLS records: ClientHello-like handshakes with absurd fragment fields, alerts, app data
      const ct = r.pick([20, 21, 22, 22, 23, 24, 25, r.int(256)]);
      const hs = Buffer.concat([
        Buffer.from([r.pick([1, 2, 11, 12, 14, 16, 20, r.int(256)])]),
        r.bytes(3),
        r.bytes(2),
        r.bytes(3),
        r.bytes(3),
        r.bytes(r.int(200)),
      ]);
      const body = ct === 22 ? hs : r.bytes(r.int(100));
      const len = r.chance(0.8) ? body.length : r.int(65536);
      return Buffer.concat([
        Buffer.from([ct, 0xfe, r.pick([0xfd, 0xff, 0x00])]),
        r.bytes(8),
        Buffer.from([len >> 8, len & 0xff]),
        body,
      ]);
    }
    case 2:
      return Buffer.concat([
        Buffer.from([0x80, r.pick([96, 111, 0x60 | 0x80, r.int(256)])]),
        r.bytes(r.range(2, 1300)),
      ]); // RTP, not SRTP
    case 3:
      return Buffer.concat([Buffer.from([0x80 | r.int(32), r.range(192, 223)]), r.bytes(r.range(2, 200))]); // RTCP, not SRTCP
    case 4:
      return Buffer.concat([Buffer.from([0x40 | r.int(64), r.int(256)]), r.bytes(r.range(2, 300))]); // TURN ChannelData
    case 5:
      return Buffer.alloc(r.pick([0, 1, 2, 3]));
    default:
      return r.bytes(r.range(1, 1500));
  }
}

// ---------------------------------------------------------------- the run

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const mib = (bytes: number): number => Math.round((bytes / 1048576) * 10) / 10;

export async function runFuzz(options: Partial<FuzzOptions> = {}): Promise<FuzzReport> {
  const o: FuzzOptions = { ...FUZZ_DEFAULTS, ...options };
  const log = o.log;
  const startedAt = new Date();
  const t0 = performance.now();
  const deadline = t0 + o.durationS * 1000;
  const tally = new Tally();
  const fig = tally.families;
  const shareSum = o.families.reduce((n, f) => n + SHARE[f], 0);
  const quota = Object.fromEntries(
    FAMILIES.map((f) => [f, o.families.includes(f) ? Math.max(1, Math.round((o.count * SHARE[f]) / shareSum)) : 0]),
  ) as Record<Family, number>;
  const scratch = mkdtempSync(join(tmpdir(), 'msfu-fuzz-'));
  const server = await ServerChild.start({
    PORT: '0',
    HOST: '127.0.0.1',
    ANNOUNCED_ADDRESS: '127.0.0.1',
    LOG_LEVEL: 'error',
    MODE: 'dev',
    AUTH_SECRET: SECRET,
    SFU_ENGINE: o.engine,
    MODERATION: String(o.moderation),
    OCR: String(o.ocr),
    BANK_DIR: join(scratch, 'banks'),
    POLICY_DIR: join(ROOT, 'policies'),
    // every input comes from one loopback client: admission limits off, so inputs reach the routes (a 429 tests nothing)
    RATE_LIMIT_API: '0',
    RATE_LIMIT_SESSIONS: '0',
    MAX_PENDING_SESSIONS: '1000',
    MAX_PENDING_SESSIONS_PER_CLIENT: '1000',
    MAX_WS_PER_CLIENT: '1000',
  });
  log(
    `fuzz: server pid ${server.pid} at ${server.url} (${o.engine}, moderation ${o.moderation ? 'on' : 'off'}); ${o.count} inputs, seed ${o.seed}`,
  );
  const base = new URL(server.url);
  const http = new Http(base, o.requestTimeoutMs);
  const auth = new Auth({ secret: SECRET });
  const publisherTokens = new Map<string, Promise<string>>();
  const tokens: Tokens = {
    admin: await auth.sign({ role: 'admin', sub: 'fuzz-admin' }, '2h'),
    reviewer: await auth.sign({ role: 'reviewer', sub: 'fuzz-reviewer' }, '2h'),
    viewer: await auth.sign({ role: 'viewer', sub: 'fuzz-viewer', jurisdiction: 'SE' }, '2h'),
    expired: await auth.sign({ role: 'admin', sub: 'fuzz-expired' }, 1),
    foreign: await new Auth({ secret: 'another-secret-0123456789-0123456789-01' }).sign(
      { role: 'admin', sub: 'x' },
      '2h',
    ),
    publisher(streamId: string) {
      let t = publisherTokens.get(streamId);
      if (!t) {
        t = auth.sign({ role: 'publisher', sub: 'fuzz', streamId }, '2h');
        if (publisherTokens.size < 5000) publisherTokens.set(streamId, t);
      }
      return t;
    },
  };
  let stopAll = false;
  const clients: { stop(): Promise<unknown> }[] = [];
  const report = (): FuzzReport => buildReport(o, startedAt, t0, tally, server);
  const finalStream = `fz-final-${o.seed}`;
  const afterwards: FuzzReport['afterwards'] = { published: false, viewerVideoPackets: 0 };
  let baseline: ChildStats | undefined;
  let final: ChildStats | undefined;
  let sessionsLeft: FuzzReport['sessionsLeft'] = [];
  let samplers: FuzzReport['samplers'] = { frames: 0, drops: 0, warnings: 0 };
  try {
    const clip = await syntheticClip({ codec: 'VP8', seconds: 2, fps: 15, keyframeInterval: 3 }); // keyframes often: the decoders restart after each broken frame
    const h264 = await syntheticClip({ codec: 'H264', seconds: 2, fps: 15, keyframeInterval: 3 });
    const clips: Clips = { vp8: clip.video.frames, h264: h264.video.frames, opus: clip.audio.frames };

    // warm-up: a real publish and view (lazy engine paths, sampler workers), then the baseline
    await realPublishAndView(server.url, 'fz-warmup', tokens, clip, 20_000);
    await waitNoSessions(server, 30_000);
    await server.ask('gc');
    baseline = await server.stats();
    log(
      `fuzz: baseline RSS ${mib(baseline.rssBytes)} MiB, heap ${mib(baseline.heapUsedBytes)} MiB; warm-up stream: samplers decoded ${baseline.samplerFrames} frames, dropped ${baseline.samplerDrops}`,
    );

    // the whole document: it is larger than the body kept of a fuzz answer, and cut at a chunk's end it
    // failed to parse in one CI run ("Unexpected end of JSON input")
    const spec = await http.send({ method: 'GET', path: '/openapi.json', headers: {} }, Infinity);
    if (spec.status !== 200) throw new Error(`GET /openapi.json answered ${spec.status}: ${spec.body.slice(0, 200)}`);
    const openapi = JSON.parse(spec.body) as Parameters<typeof routesOf>[0];
    const routes = routesOf(openapi);
    const policyFiles = await readPolicyDir(join(ROOT, 'policies'));
    const offers = loadOffers();
    log(`fuzz: ${routes.length} routes, ${policyFiles.length} policy files, ${offers.length} offers`);

    // the fuzzed streams: two publishers (VP8, H.264), re-connected when a fuzz input ends them, one viewer
    const streamIds = ['fz-rtp-vp8', 'fz-rtp-h264', 'fz-a', 'fz-b'];
    const pubs: (FuzzPublisher | undefined)[] = [undefined, undefined];
    let generation = 0;
    const pubFor = async (k: number): Promise<FuzzPublisher | undefined> => {
      const cur = pubs[k];
      if (cur && !cur.closed) return cur;
      if (cur) void cur.stop().catch(() => undefined);
      const id = `${streamIds[k]}-${generation++}`;
      try {
        const p = await FuzzPublisher.connect(server.url, id, await tokens.publisher(id), k === 0 ? 'VP8' : 'H264');
        pubs[k] = p;
        fig.rtp.accepted++;
        streamIds[k + 2] = id;
        return p;
      } catch (err) {
        if (!server.alive) return undefined;
        log(`fuzz: publisher ${id} did not connect: ${(err as Error).message}`);
        pubs[k] = undefined;
        await sleep(500);
        return undefined;
      }
    };
    await pubFor(0);
    await pubFor(1);
    let viewer: WhepViewer | undefined;
    const viewerFor = async (): Promise<WhepViewer | undefined> => {
      if (viewer) return viewer;
      const id = pubs[0]?.streamId;
      if (!id) return undefined;
      viewer = await WhepViewer.connect({
        url: `${server.url}/whep/${id}`,
        token: tokens.viewer,
        connectTimeoutMs: 15_000,
      }).catch(() => undefined);
      const v = viewer;
      void v?.ended.then(() => {
        if (viewer === v) viewer = undefined;
        void v.close({ deleteSession: false }).catch(() => undefined);
      });
      return viewer;
    };
    clients.push({
      stop: async () => {
        for (const p of pubs) await p?.stop().catch(() => undefined);
        await viewer?.close().catch(() => undefined);
      },
    });

    const ids: string[] = [];
    const harvest = (body: string): void => {
      for (const m of body.matchAll(/"(?:id|statementId|itemId|decisionId)":"([^"]{1,200})"/g)) {
        if (ids.length >= 300) ids.splice(0, 1);
        ids.push(m[1]!);
      }
    };
    const within = (): boolean => !stopAll && server.alive && performance.now() < deadline;

    const onError = (family: Family, input: string, err: unknown): void => {
      if ((err as { hung?: boolean }).hung) {
        fig[family].hung++;
        tally.finding({ family, kind: 'hung', input });
      } else if (server.alive) {
        fig[family].socketErrors++;
        tally.finding({ family, kind: 'socket_error', input, answer: (err as Error).message });
      }
    };

    // one lane per family (HTTP ones with several workers); each input i has its own Rng
    const lane = async (family: Family, workers: number, one: (r: Rng, i: number) => Promise<void>): Promise<void> => {
      let next = 0;
      await Promise.all(
        Array.from({ length: workers }, async () => {
          while (within() && next < quota[family]) {
            const i = next++;
            await one(Rng.of(o.seed, family, i), i);
          }
        }),
      );
    };

    const httpLane = lane('http', o.concurrency - 2, async (r) => {
      const input = await httpInput(r, routes, tokens, ids, streamIds);
      fig.http.sent++;
      const desc =
        'req' in input
          ? `${input.req.method} ${input.req.path} ${JSON.stringify(input.req.headers)} ${String(input.req.body ?? '').slice(0, 300)}`
          : 'raw' in input
            ? `raw ${JSON.stringify(input.raw.slice(0, 300))}`
            : `ws ${input.ws}`;
      try {
        if ('req' in input) {
          const a = await http.send(input.req);
          tally.answer('http', desc, a.status, a.body, { head: input.req.method === 'HEAD' });
          if (a.status < 300) harvest(a.body);
        } else if ('raw' in input) {
          const a = await sendRaw(base, input.raw, o.requestTimeoutMs);
          if (a) tally.answer('http', desc, a.status, a.body);
          else fig.http.statuses.closed = (fig.http.statuses.closed ?? 0) + 1;
        } else {
          const a = await wsInput(base, input.ws, r, o.requestTimeoutMs);
          if (a.status === 101) fig.http.statuses['ws-open'] = (fig.http.statuses['ws-open'] ?? 0) + 1;
          else tally.answer('http', desc, a.status, a.body);
        }
      } catch (err) {
        onError('http', desc, err);
      }
    });

    const policyLane = lane('policy', 1, async (r) => {
      const files = mutatePolicy(policyFiles, r);
      const activate = r.chance(0.1);
      const body = JSON.stringify({ files });
      const desc = `POST /v1/policies/${activate ? 'activate' : 'validate'} ${body.slice(0, 500)}`;
      fig.policy.sent++;
      try {
        const a = await http.send({
          method: 'POST',
          path: `/v1/policies/${activate ? 'activate' : 'validate'}`,
          headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens.admin}` },
          body,
        });
        tally.answer('policy', desc, a.status, a.body);
        if (activate && a.status === 200) fig.policy.accepted++;
      } catch (err) {
        onError('policy', desc, err);
      }
    });

    const bankLane = lane('bank', 1, async (r) => {
      fig.bank.sent++;
      const bank = r.pick(['fz_bank', 'fz_other', 'Bad-Name', 'protected_music']);
      let req: RawRequest;
      if (r.chance(0.75)) {
        req = {
          method: 'POST',
          path: `/v1/banks/${bank}/import`,
          headers: {
            'content-type': r.chance(0.9) ? 'text/plain' : r.pick(['application/json', 'text/plain; charset=latin1']),
            authorization: `Bearer ${r.chance(0.9) ? tokens.admin : tokens.reviewer}`,
          },
          body: bankText(r),
        };
      } else {
        const q = `?name=${enc(r.chance(0.8) ? `fz-rec-${r.int(20)}` : interestingString(r))}${r.chance(0.3) ? `&category=${enc(interestingString(r))}` : ''}`;
        req = {
          method: 'POST',
          path: rawPath(`/v1/audio-banks/${r.chance(0.9) ? 'protected_music' : bank}/recordings${q}`),
          headers: {
            'content-type': r.pick([
              'audio/wav',
              'audio/ogg',
              'application/octet-stream',
              'audio/mpeg',
              'audio/x-bogus',
            ]),
            authorization: `Bearer ${tokens.admin}`,
          },
          body: audioBody(r),
        };
      }
      const desc = `${req.method} ${req.path} ${req.headers['content-type']} ${String(req.body).slice(0, 200)}`;
      try {
        const a = await http.send(req);
        tally.answer('bank', desc, a.status, a.body);
        if (a.status === 201) fig.bank.accepted++;
      } catch (err) {
        onError('bank', desc, err);
      }
    });

    const abandoned: string[] = [];
    const sdpLane = lane('sdp', 2, async (r, i) => {
      fig.sdp.sent++;
      const whep = r.chance(0.4);
      const pool = offers.filter((x) => (r.chance(0.8) ? x.kind === (whep ? 'view' : 'publish') : true));
      const offer = r.pick(pool.length ? pool : offers);
      const sdp = r.chance(0.05) ? offer.sdp : mutateSdp(offer.sdp, r);
      const streamId = whep
        ? r.chance(0.7)
          ? r.pick(streamIds.slice(2))
          : `fz-none-${r.int(10)}`
        : `fz-sdp-${o.seed}-${i}`;
      const headers: Record<string, string> = {
        'content-type': r.chance(0.95)
          ? 'application/sdp'
          : r.pick(['text/plain', 'application/sdp; charset=utf-8', 'Application/SDP', '']),
      };
      if (!whep)
        headers.authorization = `Bearer ${r.chance(0.9) ? await tokens.publisher(streamId) : r.pick([tokens.viewer, tokens.expired, await tokens.publisher('other')])}`;
      else if (r.chance(0.5)) headers.authorization = `Bearer ${r.pick([tokens.viewer, tokens.expired, 'junk'])}`;
      const path = `/${whep ? 'whep' : 'whip'}/${streamId}`;
      const desc = `POST ${path} (${offer.name}) ${JSON.stringify(sdp)}`;
      try {
        const a = await http.send({ method: 'POST', path, headers, body: sdp });
        tally.answer('sdp', desc, a.status, a.body);
        if (a.status === 201) {
          fig.sdp.accepted++;
          const loc = a.headers.location;
          if (typeof loc === 'string') {
            if (r.chance(o.abandonShare)) abandoned.push(loc);
            else {
              const d = await http.send({
                method: 'DELETE',
                path: loc,
                headers: whep ? {} : { authorization: headers.authorization ?? '' },
              });
              if (d.status >= 400) tally.answer('sdp', `DELETE ${loc}`, d.status, d.body);
            }
          }
        }
      } catch (err) {
        onError('sdp', desc, err);
      }
    });

    // media lanes: sequential, paced so the machine's two cores keep up (bursts, then a short yield)
    const rtpLane = (async () => {
      const state = [0, 1].map(() => ({ seq: 1000, aseq: 1000, ts: 90_000, ats: 48_000, picture: 1 }));
      let i = 0;
      while (within() && fig.rtp.sent < quota.rtp) {
        const k = i % 2;
        const p = await pubFor(k);
        if (!p) continue;
        fig.rtp.sent += rtpBurst(p, Rng.of(o.seed, 'rtp', i++), clips, state[k]!);
        await sleep(4);
      }
    })();

    const rtcpLane = (async () => {
      let i = 0;
      while (within() && fig.rtcp.sent < quota.rtcp) {
        const r = Rng.of(o.seed, 'rtcp', i++);
        const p = await pubFor(r.int(2));
        if (!p) continue;
        const v = r.chance(0.5) ? await viewerFor() : undefined;
        const ssrcs = [p.video.ssrc, p.audio.ssrc, p.video.rtxSsrc];
        const n = r.range(1, 8);
        for (let k = 0; k < n; k++) {
          const raw = rtcpCrafted(r, ssrcs);
          if (v && v.pc.dtlsTransports[0]) sendSrtcp(v.pc.dtlsTransports[0], raw);
          else p.sendRtcpRaw(raw);
        }
        fig.rtcp.sent += n;
        await sleep(5);
      }
    })();

    const udpLane = (async () => {
      const socks: Socket[] = Array.from({ length: 4 }, () => createSocket('udp4'));
      await Promise.all(socks.map((s) => new Promise<void>((res) => s.bind(0, '127.0.0.1', () => res()))));
      for (const s of socks) s.on('error', () => undefined);
      let i = 0;
      try {
        while (within() && fig.udp.sent < quota.udp) {
          const r = Rng.of(o.seed, 'udp', i++);
          const p = await pubFor(r.int(2));
          if (!p) continue;
          const ports = p.mediaPorts();
          const ufrag = /a=ice-ufrag:(\S+)/.exec(p.answer)?.[1];
          const n = r.range(5, 30);
          for (let k = 0; k < n; k++) {
            const d = datagram(r, ufrag);
            // on the session's own ICE path now and then: that reaches its DTLS and SRTP layers
            if (r.chance(0.15)) p.sendPath(d.length ? d : Buffer.from([0]));
            else if (ports.length) r.pick(socks).send(d, r.pick(ports), '127.0.0.1');
          }
          fig.udp.sent += n;
          await sleep(5);
        }
      } finally {
        for (const s of socks) s.close();
      }
    })();

    let lastLog = performance.now();
    const progress = (async () => {
      while (within() && FAMILIES.some((f) => fig[f].sent < quota[f])) {
        await Promise.race([sleep(1000), server.exited]);
        if (performance.now() - lastLog > 10_000) {
          lastLog = performance.now();
          const s = await server.stats().catch(() => undefined);
          log(
            `fuzz: ${Math.round((performance.now() - t0) / 1000)} s ${FAMILIES.map((f) => `${f} ${fig[f].sent}/${quota[f]}`).join(' ')}${s ? ` | rss ${mib(s.rssBytes)} MiB, streams ${s.streams.length}` : ''}`,
          );
        }
      }
    })();
    await Promise.race([
      Promise.all([httpLane, policyLane, bankLane, sdpLane, rtpLane, rtcpLane, udpLane]),
      server.exited,
    ]);
    stopAll = true;
    await progress;
    if (!server.alive) {
      tally.finding({
        family: 'rtp',
        kind: 'crash',
        input: 'the server process exited during the run',
        answer: server.tail(),
      });
      return finish();
    }

    const atEnd = await server.stats().catch(() => undefined);
    if (atEnd)
      samplers = {
        frames: atEnd.samplerFrames - (baseline?.samplerFrames ?? 0),
        drops: atEnd.samplerDrops - (baseline?.samplerDrops ?? 0),
        warnings: atEnd.samplerWarnings,
      };

    // peers gone: every session must go away by the reap time (DELETEd ones at once, abandoned ones at the connect timeout)
    for (const c of clients) await c.stop().catch(() => undefined);
    clients.length = 0;
    const reapBound = ENGINE_CONNECT_TIMEOUT_MS + 25_000;
    const left = await waitNoSessions(server, abandoned.length ? reapBound : 20_000).catch(() => undefined);
    sessionsLeft = left ?? [];
    for (const s of sessionsLeft)
      tally.finding({
        family: 'sdp',
        kind: 'hung_session',
        input: `stream ${s.id} (${s.viewers} viewers) still listed ${s.ageMs} ms after it started, every fuzz peer gone`,
      });

    // the server still serves: policy back from its directory, then a real publish and view
    await http
      .send({
        method: 'POST',
        path: '/v1/policies/activate',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens.admin}` },
        body: '{}',
      })
      .catch(() => undefined);
    try {
      afterwards.viewerVideoPackets = await realPublishAndView(server.url, finalStream, tokens, clip, 30_000);
      afterwards.published = true;
    } catch (err) {
      afterwards.error = (err as Error).message;
    }
    await cleanupAudioBank(http, tokens.admin);
    await waitNoSessions(server, 30_000).catch(() => undefined);
    await server.ask('gc').catch(() => undefined);
    await sleep(1000);
    final = await server.stats().catch(() => undefined);
    return finish();
  } finally {
    stopAll = true;
    for (const c of clients) await c.stop().catch(() => undefined);
    await server.stop();
    rmSync(scratch, { recursive: true, force: true });
  }

  function finish(): FuzzReport {
    const rep = report();
    rep.afterwards = afterwards;
    rep.sessionsLeft = sessionsLeft;
    rep.samplers = samplers;
    rep.totals.hungSessions = sessionsLeft.length;
    if (baseline) {
      rep.memory.baselineRssMiB = mib(baseline.rssBytes);
      rep.memory.baselineHeapMiB = mib(baseline.heapUsedBytes);
    }
    if (final) {
      rep.memory.finalRssMiB = mib(final.rssBytes);
      rep.memory.finalHeapMiB = mib(final.heapUsedBytes);
      rep.totals.samplerCrashes = final.samplerCrashes;
      rep.totals.workerDeaths = final.workerDeaths;
      if (final.samplerCrashes)
        tally.finding({
          family: 'rtp',
          kind: 'crash',
          input: `${final.samplerCrashes} sampler worker crash(es)`,
          answer: final.lastSamplerWarning,
        });
    }
    rep.memory.peakRssMiB = mib(server.peakRss);
    rep.memory.rssGrowthMiB = Math.round((rep.memory.finalRssMiB - rep.memory.baselineRssMiB) * 10) / 10;
    // back to baseline: the heap after a full GC within 25 % (+8 MiB), RSS within 25 % (+64 MiB, V8 keeps freed pages)
    rep.memory.backToBaseline =
      final !== undefined &&
      rep.memory.finalHeapMiB <= rep.memory.baselineHeapMiB * 1.25 + 8 &&
      rep.memory.finalRssMiB <= rep.memory.baselineRssMiB * 1.25 + 64;
    rep.findings = tally.findings;
    rep.totals.crashes =
      (server.alive || server.stopping ? 0 : 1) + rep.totals.samplerCrashes + rep.totals.workerDeaths;
    return rep;
  }
}

function buildReport(o: FuzzOptions, startedAt: Date, t0: number, tally: Tally, server: ServerChild): FuzzReport {
  const fams = tally.families;
  const { log: _log, ...options } = o;
  const sum = (pick: (f: FamilyFigures) => number): number => FAMILIES.reduce((s, f) => s + pick(fams[f]), 0);
  return {
    options,
    startedAt: startedAt.toISOString(),
    seconds: Math.round((performance.now() - t0) / 100) / 10,
    inputs: sum((f) => f.sent),
    families: fams,
    totals: {
      crashes: 0,
      server5xx: sum((f) => f.server5xx),
      uncoded: sum((f) => f.uncoded),
      uncodedClientError: sum((f) => f.uncodedClientError),
      hungRequests: sum((f) => f.hung),
      hungSessions: 0,
      samplerCrashes: 0,
      workerDeaths: 0,
    },
    memory: {
      baselineRssMiB: 0,
      finalRssMiB: 0,
      peakRssMiB: 0,
      baselineHeapMiB: 0,
      finalHeapMiB: 0,
      rssGrowthMiB: 0,
      backToBaseline: false,
    },
    afterwards: { published: false, viewerVideoPackets: 0 },
    sessionsLeft: [],
    samplers: { frames: 0, drops: 0, warnings: 0 },
    serverExit:
      server.alive || server.stopping
        ? undefined
        : { code: server.exit?.code ?? null, signal: server.exit?.signal ?? null, tail: server.tail().slice(-4000) },
    findings: tally.findings,
  };
}

/** Polls the server until no stream is listed; resolves with none left, or rejects with what is left. */
async function waitNoSessions(server: ServerChild, timeoutMs: number): Promise<FuzzReport['sessionsLeft']> {
  const end = performance.now() + timeoutMs;
  let s = await server.stats();
  while (s.streams.length > 0 && performance.now() < end) {
    await sleep(500);
    s = await server.stats();
  }
  return s.streams;
}

/** A real WHIP publisher and WHEP viewer; resolves with the video packets the viewer got, rejects if none. */
async function realPublishAndView(
  url: string,
  streamId: string,
  tokens: Tokens,
  clip: Awaited<ReturnType<typeof syntheticClip>>,
  timeoutMs: number,
): Promise<number> {
  const pub = await WhipPublisher.connect({
    url: `${url}/whip/${streamId}`,
    token: await tokens.publisher(streamId),
    ...clip,
    connectTimeoutMs: timeoutMs,
  });
  pub.start();
  try {
    const v = await WhepViewer.connect({
      url: `${url}/whep/${streamId}`,
      token: tokens.viewer,
      connectTimeoutMs: timeoutMs,
    });
    try {
      await v.waitFor(() => v.count('video') > 30, timeoutMs, 'video at a real viewer');
      return v.count('video');
    } finally {
      await v.close();
    }
  } finally {
    await pub.stop();
  }
}

/** Removes the recordings the fuzz registered (so the final RSS is not the bank's growth). */
async function cleanupAudioBank(http: Http, admin: string): Promise<void> {
  const list = await http
    .send({
      method: 'GET',
      path: '/v1/audio-banks/protected_music/recordings',
      headers: { authorization: `Bearer ${admin}` },
    })
    .catch(() => undefined);
  if (!list || list.status !== 200) return;
  const recs = (JSON.parse(list.body) as { recordings?: { id: string }[] }).recordings ?? [];
  for (const rec of recs)
    await http
      .send({
        method: 'DELETE',
        path: `/v1/audio-banks/protected_music/recordings/${enc(rec.id)}`,
        headers: { authorization: `Bearer ${admin}` },
      })
      .catch(() => undefined);
}

/** One screen of figures. */
export function printReport(rep: FuzzReport, log: (line: string) => void): void {
  log(`fuzz: ${rep.inputs} inputs in ${rep.seconds} s (seed ${rep.options.seed}, ${rep.options.engine})`);
  for (const f of FAMILIES) {
    const x = rep.families[f];
    const st = Object.entries(x.statuses)
      .sort()
      .map(([k, v]) => `${k}:${v}`)
      .join(' ');
    log(
      `  ${f.padEnd(7)} sent ${String(x.sent).padStart(6)}  accepted ${x.accepted}  5xx ${x.server5xx}  uncoded ${x.uncoded}+${x.uncodedClientError}  hung ${x.hung}  socket errors ${x.socketErrors}${st ? `  [${st}]` : ''}`,
    );
  }
  const t = rep.totals;
  log(
    `  crashes ${t.crashes} (sampler ${t.samplerCrashes}, engine workers ${t.workerDeaths})  5xx ${t.server5xx}  uncoded ${t.uncoded} (+${t.uncodedClientError} from the HTTP parser layer)  hung requests ${t.hungRequests}  hung sessions ${t.hungSessions}`,
  );
  const m = rep.memory;
  log(
    `  RSS baseline ${m.baselineRssMiB} MiB -> peak ${m.peakRssMiB} -> final ${m.finalRssMiB} (${m.rssGrowthMiB >= 0 ? '+' : ''}${m.rssGrowthMiB}); heap ${m.baselineHeapMiB} -> ${m.finalHeapMiB} MiB; back to baseline: ${m.backToBaseline}`,
  );
  log(
    `  samplers of the fuzzed streams: ${rep.samplers.frames} frames decoded, ${rep.samplers.drops} packets/frames dropped, ${rep.samplers.warnings} warnings`,
  );
  log(
    `  afterwards: real publish+view ${rep.afterwards.published ? `ok (${rep.afterwards.viewerVideoPackets} video packets)` : `FAILED: ${rep.afterwards.error}`}`,
  );
  if (rep.serverExit)
    log(`  server exited: code ${rep.serverExit.code} signal ${rep.serverExit.signal}\n${rep.serverExit.tail}`);
  const failures = rep.findings.filter((f) => f.kind !== 'socket_error');
  const closes = rep.findings.filter((f) => f.kind === 'socket_error').slice(0, 5);
  for (const f of [...failures.slice(0, 30), ...closes])
    log(
      `  ! ${f.family} ${f.kind}${f.status ? ` ${f.status}` : ''}: ${f.input.slice(0, 200)}${f.answer ? ` -> ${f.answer.slice(0, 200)}` : ''}`,
    );
}

// ---------------------------------------------------------------- CLI

function parseArgs(argv: string[]): Partial<FuzzOptions> {
  const out: Partial<FuzzOptions> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = (): string => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${a} needs a value`);
      return x;
    };
    if (a === '--count') out.count = Number(v());
    else if (a === '--seed') out.seed = Number(v());
    else if (a === '--duration') out.durationS = Number(v());
    else if (a === '--engine') out.engine = v() as FuzzOptions['engine'];
    else if (a === '--concurrency') out.concurrency = Number(v());
    else if (a === '--request-timeout') out.requestTimeoutMs = Number(v());
    else if (a === '--out') out.out = v();
    else if (a === '--no-moderation') out.moderation = false;
    else if (a === '--ocr') out.ocr = true;
    else if (a === '--families')
      out.families = v()
        .split(',')
        .map((f) => {
          if (!(FAMILIES as readonly string[]).includes(f))
            throw new Error(`unknown family ${f} (${FAMILIES.join(', ')})`);
          return f as Family;
        });
    else
      throw new Error(
        `unknown option ${a} (--count N --seed N --duration S --engine werift|mediasoup --concurrency N --request-timeout MS --out PATH --no-moderation --ocr --families http,sdp,...)`,
      );
  }
  return out;
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain && process.argv.includes('--serve')) {
  serve().catch((err: unknown) => {
    process.stderr.write(`fuzz server failed to start: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
} else if (isMain) {
  const opts = { ...FUZZ_DEFAULTS, ...parseArgs(process.argv.slice(2)) };
  runFuzz(opts).then(
    (rep) => {
      printReport(rep, opts.log);
      if (opts.out) {
        mkdirSync(dirname(opts.out), { recursive: true });
        writeFileSync(opts.out, JSON.stringify(rep, null, 2) + '\n');
        opts.log(`fuzz: wrote ${opts.out}`);
      }
      const t = rep.totals;
      process.exit(
        t.crashes ||
          t.server5xx ||
          t.uncoded ||
          t.uncodedClientError ||
          t.hungRequests ||
          t.hungSessions ||
          !rep.afterwards.published
          ? 1
          : 0,
      );
    },
    (err: unknown) => {
      process.stderr.write(`fuzz failed: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(2);
    },
  );
}
