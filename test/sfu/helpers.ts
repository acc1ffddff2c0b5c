// A tiny fastify app around a werift SFU for the SFU tests (the real server wires more).

import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import { createWeriftSfu } from '../../sfu/werift/index.ts';
import type { WeriftSfu, WeriftSfuOptions } from '../../sfu/werift/index.ts';
import { pageRoutes, webrtcRoutes } from '../../server/routes/webrtc.ts';
import type { WebrtcRoutesOptions } from '../../server/routes/webrtc.ts';

export interface TestServer {
  app: FastifyInstance;
  sfu: WeriftSfu;
  base: string;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export async function startServer(options: { sfu?: WeriftSfuOptions; routes?: Omit<WebrtcRoutesOptions, 'sfu'> } = {}): Promise<TestServer> {
  const sfu = createWeriftSfu({ connectTimeoutMs: 8000, ...options.sfu });
  const app = Fastify({ logger: false });
  await app.register(webrtcRoutes, { sfu, ...options.routes });
  await app.register(pageRoutes);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await sfu.close();
    await app.close();
  };
  return { app, sfu, base: `http://127.0.0.1:${port}`, close, [Symbol.asyncDispose]: close };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}
