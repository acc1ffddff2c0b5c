// The load test's view of the server: start one (tsx server/main.ts) or use a running one, sign
// tokens the way server/auth.ts verifies them, register the scripted known content through the
// admin API, listen to the ops event stream and scrape /metrics. Public protocols only.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { SignJWT } from 'jose';
import { parsePrometheus, reducePoint, type ServerPoint } from './prometheus.ts';
import { now } from './peers.ts';

export interface ServerHandle {
  baseUrl: string;
  secret?: string;
  /** Present when this tool started the server. */
  child?: ChildProcess;
  log: string[];
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * The server's per-client limits (issue 12: rate limits, unconnected-session and socket caps per client
 * address) lifted: a load test plays hundreds of clients from one loopback address. Only for servers
 * that only load generators can reach.
 */
export const LOAD_TEST_ENV: Readonly<Record<string, string>> = {
  RATE_LIMIT_SESSIONS: '0',
  RATE_LIMIT_API: '0',
  MAX_PENDING_SESSIONS: '100000',
  MAX_PENDING_SESSIONS_PER_CLIENT: '100000',
  MAX_WS_PER_CLIENT: '100000',
  MAX_VIEWERS: '1000000',
  MAX_STREAMS: '100000',
};

export interface StartOptions {
  /** Extra environment for the server (e.g. MODERATION=off). */
  env?: Record<string, string>;
  /** Config file handed to the server (--config). */
  configFile?: string;
  /** How long to wait for /readyz (ms). Default 90000 (model conversion on first start). */
  readyTimeoutMs?: number;
  entry?: string;
}

/** Starts `tsx server/main.ts` on a free loopback port with a fresh auth secret and waits until ready. */
export async function startServer(o: StartOptions = {}): Promise<ServerHandle> {
  const port = await freePort();
  const secret = randomBytes(24).toString('hex');
  const args = ['--import', 'tsx', o.entry ?? 'server/main.ts'];
  if (o.configFile) args.push('--config', o.configFile);
  const child = spawn(process.execPath, args, {
    env: {
      ...process.env,
      MODE: 'dev',
      HOST: '127.0.0.1',
      PORT: String(port),
      ANNOUNCED_ADDRESS: '127.0.0.1',
      AUTH_SECRET: secret,
      TRUST_JURISDICTION_HEADER: 'true',
      LOG_LEVEL: 'warn',
      ...LOAD_TEST_ENV,
      ...o.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log: string[] = [];
  const keep = (b: Buffer) => {
    for (const line of b.toString().split('\n')) if (line.trim()) log.push(line);
    if (log.length > 400) log.splice(0, log.length - 400);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const baseUrl = `http://127.0.0.1:${port}`;
  const handle: ServerHandle = {
    baseUrl,
    secret,
    child,
    log,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 8000);
      await exited;
      clearTimeout(t);
    },
  };
  const deadline = Date.now() + (o.readyTimeoutMs ?? 90_000);
  let last = '';
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}:\n${log.slice(-30).join('\n')}`);
    try {
      const r = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(2000) });
      last = `${r.status}`;
      await r.body?.cancel();
      if (r.ok) return handle;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  await handle.stop();
  throw new Error(
    `server not ready after ${o.readyTimeoutMs ?? 90_000} ms (last: ${last}):\n${log.slice(-30).join('\n')}`,
  );
}

/** Tokens in the shape server/auth.ts verifies (HS256, issuer and audience 'moderating-sfu'). */
export class TokenMinter {
  readonly #key: Uint8Array;
  constructor(secret: string) {
    this.#key = new TextEncoder().encode(secret);
  }

  sign(
    claims: {
      role: 'publisher' | 'viewer' | 'reviewer' | 'admin';
      streamId?: string;
      jurisdiction?: string;
      viewerId?: string;
    },
    sub = `loadtest-${claims.role}`,
  ): Promise<string> {
    const body: Record<string, string> = { role: claims.role };
    if (claims.streamId) body.streamId = claims.streamId;
    if (claims.jurisdiction) body.jurisdiction = claims.jurisdiction;
    if (claims.viewerId) body.viewerId = claims.viewerId;
    return new SignJWT(body)
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer('moderating-sfu')
      .setAudience('moderating-sfu')
      .setSubject(sub)
      .setIssuedAt()
      .setExpirationTime('2h')
      .sign(this.#key);
  }
}

export async function scrapeMetrics(
  baseUrl: string,
  token?: string,
  eventLoopResolutionMs?: number,
): Promise<ServerPoint | undefined> {
  try {
    const r = await fetch(`${baseUrl}/metrics`, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
      signal: AbortSignal.timeout(3000),
    });
    if (!r.ok) {
      await r.body?.cancel();
      return undefined;
    }
    return reducePoint(now(), parsePrometheus(await r.text()), { eventLoopResolutionMs });
  } catch {
    return undefined;
  }
}

export interface ServerEvent {
  type: string;
  streamId?: string;
  receivedAt: number;
  [key: string]: unknown;
}

type WsLike = {
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  close(): void;
};

async function wsConstructor(): Promise<new (url: string) => WsLike> {
  const g = (globalThis as { WebSocket?: new (url: string) => WsLike }).WebSocket;
  if (g) return g;
  // Node 20 has no global WebSocket without --experimental-websocket; fastify's ws is installed
  const mod = (await import('ws' as string)) as { default: new (url: string) => WsLike };
  return mod.default;
}

/** Subscribes to `/v1/events` and hands every JSON event to `onEvent` with its client receive time. */
export async function listenEvents(
  baseUrl: string,
  query: Record<string, string>,
  onEvent: (e: ServerEvent) => void,
): Promise<{ close(): void; connected: boolean }> {
  const Ws = await wsConstructor();
  const url = `${baseUrl.replace(/^http/, 'ws')}/v1/events?${new URLSearchParams(query)}`;
  const state = {
    connected: false,
    closed: false,
    close: () => {
      state.closed = true;
      ws.close();
    },
  };
  const ws = new Ws(url);
  await new Promise<void>((resolve) => {
    const t = setTimeout(resolve, 5000);
    ws.onopen = () => {
      state.connected = true;
      clearTimeout(t);
      resolve();
    };
    ws.onerror = () => {
      clearTimeout(t);
      resolve();
    };
    ws.onclose = () => {
      clearTimeout(t);
      resolve();
    };
  });
  ws.onmessage = (ev) => {
    const at = now();
    try {
      const data = typeof ev.data === 'string' ? ev.data : Buffer.from(ev.data as ArrayBuffer).toString();
      const parsed = JSON.parse(data) as Record<string, unknown>;
      onEvent({ ...parsed, type: String(parsed.type), receivedAt: at });
    } catch {
      // not JSON (msgpack was not asked for): ignore
    }
  };
  return state;
}
