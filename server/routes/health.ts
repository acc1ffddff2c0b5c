// Liveness, readiness and Prometheus metrics: what probes and scrapers read.
import { timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { bearerOf } from '../auth.ts';
import { unauthorized } from '../errors.ts';
import type { ServerMetrics } from '../metrics.ts';
import type { Store } from '../store/types.ts';
import { AnyObject, doc, useZod } from './schema.ts';

export interface HealthRoutesOptions {
  store: Store;
  metrics: ServerMetrics;
  nodeId: string;
  /** When the process started (ms since the epoch). */
  startedAt: number;
  /** Whether a policy is loaded. */
  policyLoaded: () => boolean;
  /** Readiness of the media engine. */
  sfuReady: () => boolean;
  /** When set, /metrics requires `Authorization: Bearer <metricsToken>`. */
  metricsToken?: string;
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export const healthRoutes: FastifyPluginAsync<HealthRoutesOptions> = async (app, opts) => {
  useZod(app);
  const { store } = opts;

  app.get(
    '/healthz',
    {
      schema: {
        tags: ['health'],
        summary: 'Liveness: the process answers',
        response: { 200: doc(z.object({ status: z.literal('ok'), nodeId: z.string(), uptimeS: z.number() })) },
      },
    },
    async () => ({
      status: 'ok' as const,
      nodeId: opts.nodeId,
      uptimeS: Math.round((Date.now() - opts.startedAt) / 1000),
    }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['health'],
        summary: 'Readiness: store reachable, policy loaded, media engine up',
        response: { 200: doc(AnyObject), 503: doc(AnyObject) },
      },
    },
    async (_req, reply) => {
      const checks = { store: await store.ping(), policy: opts.policyLoaded(), sfu: opts.sfuReady() };
      const ready = checks.store && checks.policy && checks.sfu;
      return reply.code(ready ? 200 : 503).send({ ready, checks, storeKind: store.kind, nodeId: opts.nodeId });
    },
  );

  app.get('/metrics', { schema: { tags: ['health'], summary: 'Prometheus metrics' } }, async (req, reply) => {
    if (opts.metricsToken && !safeEqual(bearerOf(req) ?? '', opts.metricsToken))
      throw unauthorized('GET /metrics needs the metrics bearer token (METRICS_TOKEN)');
    const m = await opts.metrics.render();
    return reply.type(m.contentType).send(m.body);
  });
};
