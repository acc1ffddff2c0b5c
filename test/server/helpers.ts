// Test helpers for the server suite: a real redis-server on a free loopback port, free ports,
// a minimal WebSocket client type, and the fake SFU (test/sfu/fake.ts) for API tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import type { PolicyReviewItem } from '../../server/store/types.ts';
import type { StatementOfReasons } from '../../policies/types.ts';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface RedisProcess {
  url: string;
  port: number;
  child: ChildProcess;
  /** Kills the server (SIGKILL by pid) and removes its directory. */
  stop(): Promise<void>;
}

/**
 * Spawns `redis-server` on a free loopback port (or `port`); resolves when it accepts connections.
 * Persistence off unless `aof` (appendonly, appendfsync everysec, as compose runs it) in `dir`
 * (default a fresh temp directory, removed by stop() unless it was given).
 */
export async function startRedis(port?: number, options: { aof?: boolean; dir?: string } = {}): Promise<RedisProcess> {
  const p = port ?? (await freePort());
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'msfu-redis-'));
  const persistence = options.aof ? ['--appendonly', 'yes', '--appendfsync', 'everysec'] : ['--appendonly', 'no'];
  const child = spawn(
    'redis-server',
    ['--port', String(p), '--bind', '127.0.0.1', '--save', '', ...persistence, '--dir', dir],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${out}`)), 20_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited ${code}: ${out}`));
    });
  });
  child.stdout?.resume();
  child.stderr?.resume();
  let stopped = false;
  return {
    url: `redis://127.0.0.1:${p}`,
    port: p,
    child,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child.exitCode === null && child.pid !== undefined) {
        const exited = new Promise((r) => child.once('exit', r));
        process.kill(child.pid, 'SIGKILL');
        await exited;
      }
      if (!options.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The few members of a `ws` client the tests use (ws ships no types here). */
export interface WsClient {
  readonly readyState: number;
  on(event: 'message', l: (data: Buffer, isBinary: boolean) => void): this;
  on(event: 'open', l: () => void): this;
  on(event: 'close', l: (code: number, reason: Buffer) => void): this;
  on(event: 'error', l: (err: Error) => void): this;
  on(event: 'unexpected-response', l: (req: unknown, res: { statusCode: number }) => void): this;
  close(): void;
  terminate(): void;
}
const require = createRequire(import.meta.url);
const WsCtor = require('ws') as new (url: string) => WsClient;

/** Opens a WebSocket and collects JSON messages. Rejects with the HTTP status when the upgrade is refused. */
export async function openEvents(url: string): Promise<{
  ws: WsClient;
  messages: Record<string, unknown>[];
  next(pred: (m: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
}> {
  const ws = new WsCtor(url);
  const messages: Record<string, unknown>[] = [];
  const waiters: { pred: (m: Record<string, unknown>) => boolean; resolve: (m: Record<string, unknown>) => void }[] =
    [];
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    const m = JSON.parse(data.toString()) as Record<string, unknown>;
    messages.push(m);
    for (const w of [...waiters])
      if (w.pred(m)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
  });
  await new Promise<void>((resolve, reject) => {
    ws.on('open', () => resolve());
    ws.on('unexpected-response', (_req, res) =>
      reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { statusCode: res.statusCode })),
    );
    ws.on('error', reject);
  });
  return {
    ws,
    messages,
    next(pred, timeoutMs = 15_000) {
      const found = messages.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no matching message within ${timeoutMs} ms; got ${JSON.stringify(messages)}`)),
          timeoutMs,
        );
        waiters.push({ pred, resolve: (m) => (clearTimeout(timer), resolve(m)) });
      });
    },
  };
}

export const WebSocketClient = WsCtor;

// ---- server processes (`server/main.ts`, what `npm start` runs)

export interface NodeProcess {
  url: string;
  child: ChildProcess;
  output(): string;
  /** Pid of the server process itself (under `npm start` it is a grandchild of `child`). */
  serverPid: number | undefined;
  /** SIGTERM to the server's pid; resolves with the spawned process's exit code (SIGKILL after `graceMs`). */
  stop(graceMs?: number): Promise<number | null>;
}

/** Spawns a server process and resolves once it prints "listening on URL". */
export async function startNode(
  env: Record<string, string>,
  args: string[] = [],
  command: string[] = [process.execPath, '--import', 'tsx', 'server/main.ts'],
): Promise<NodeProcess> {
  const child = spawn(command[0], [...command.slice(1), ...args], {
    cwd: join(import.meta.dirname, '..', '..'),
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start within 90 s:\n${out}`)), 90_000);
    const onData = (): void => {
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited ${code} before listening:\n${out}`));
    });
  });
  let exit: Promise<number | null> | undefined;
  const serverPid = Number(/listening on \S+ \(pid (\d+)\)/.exec(out)?.[1]) || child.pid;
  return {
    url,
    child,
    serverPid,
    output: () => out,
    stop(graceMs = 20_000) {
      exit ??= new Promise<number | null>((resolve) => {
        if (child.exitCode !== null || child.pid === undefined) return resolve(child.exitCode);
        const kill = setTimeout(() => {
          for (const pid of new Set([serverPid, child.pid])) {
            try {
              if (pid !== undefined) process.kill(pid, 'SIGKILL');
            } catch {
              // already gone
            }
          }
        }, graceMs);
        child.once('exit', (code) => {
          clearTimeout(kill);
          resolve(code);
        });
        process.kill(serverPid ?? child.pid, 'SIGTERM');
      });
      return exit;
    },
  };
}

// ---- store fixtures

let seq = 0;
/** A review item for store tests (unique id per call). */
/** A statement of reasons for the store tests. */
export function statement(id: string, streamId = 's1'): StatementOfReasons {
  return {
    id,
    streamId,
    issuedAt: Date.now(),
    restriction: { action: 'kill_stream', scope: 'stream', jurisdictions: [], duration: 'until appeal' },
    facts: {
      categories: [{ category: 'sexual_explicit', score: 0.97 }],
      matches: [],
      text: [],
      sampleSeqs: [1, 2],
      timeRange: { from: 1, to: 2 },
    },
    basis: { kind: 'own_initiative' },
    automated: { detection: true, decision: true },
    ground: { type: 'terms_of_service', clause: 'ToS 4.2', policyVersion: 'v1', explanation: 'test' },
    redress: { appealUrl: 'http://x/appeal/' + id, options: ['appeal'] },
  };
}

export function reviewItem(over: Partial<PolicyReviewItem> = {}): PolicyReviewItem {
  seq++;
  return {
    id: `rev_${seq}_${Math.random().toString(36).slice(2)}`,
    streamId: 's1',
    type: 'amber',
    priority: 1,
    createdAt: Date.now() + seq,
    policyVersion: 'v1',
    jurisdictions: ['DE'],
    categories: [{ category: 'sexual_suggestive', score: 0.55, bucket: 'amber' }],
    evidence: {
      sampleSeqs: [],
      timeRange: { from: 1, to: 2 },
      scores: [],
      matches: [],
      text: [],
      textContext: [],
      thumbnailRefs: [],
    },
    proposedAction: 'blank_video',
    ...over,
  };
}

/**
 * Debian's Chromium, headless, for the ops console tests: no network beyond the page's own (no QUIC,
 * background fetches, updates or sync). Playwright gives every launch a fresh temporary profile.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
