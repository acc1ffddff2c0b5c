// The audit log with its keyed hash-chain verification (policies/ verifyAuditChain with the node's
// HMAC key), for admins: a page of entries (GET /v1/audit), and the whole chain walked page by page
// with bounded memory and checked against this node's checkpoints (GET /v1/audit/verify).
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { verifyAuditChain } from '../../policies/index.ts';
import { walkAuditChain, type AuditCheckpoint } from '../store/audit-chain.ts';
import type { Store } from '../store/types.ts';
import type { Guard } from './access.ts';
import { AnyObject, Limit, bearer, doc, errorReplies, useZod, zs } from './schema.ts';

export interface AuditRoutesOptions {
  guard: Guard;
  store: Store;
  /** HMAC key of the chain (config.ts auditKeyOf); undefined = plain sha256 (a store given without a key). */
  auditKey: string | undefined;
  /** This node's checkpoints (seq, hash) of the chain, kept outside the store; none without an outbox. */
  checkpoints?: () => AuditCheckpoint[];
}

const AuditQuery = z.object({ afterSeq: z.coerce.number().int().min(0).optional(), limit: Limit }).strict();
const VerifyQuery = z.object({ pageSize: z.coerce.number().int().min(10).max(10_000).optional() }).strict();

export const auditRoutes: FastifyPluginAsync<AuditRoutesOptions> = async (app, opts) => {
  useZod(app);
  const { store, auditKey } = opts;

  app.get(
    '/v1/audit',
    {
      onRequest: opts.guard(['admin']),
      schema: {
        tags: ['audit'],
        summary: 'Audit log entries with chain verification',
        security: bearer,
        querystring: zs(AuditQuery),
        response: { 200: doc(AnyObject), ...errorReplies },
      },
    },
    async (req) => {
      const q = req.query as z.output<typeof AuditQuery>;
      const entries = await store.readAudit({ afterSeq: q.afterSeq, limit: q.limit });
      let anchor = q.afterSeq ? (await store.readAudit({ afterSeq: q.afterSeq - 1, limit: 1 }))[0] : undefined;
      // Retention trimmed the log's start (docs/RETENTION.md): the chain is verified from the first kept
      // entry on, which names its predecessor's hash.
      const first = entries[0];
      const trimmed = first !== undefined && first.seq > 1 && (!anchor || anchor.seq !== first.seq - 1);
      if (trimmed) anchor = { ...first, seq: first.seq - 1, hash: first.prevHash };
      return {
        entries,
        verification: verifyAuditChain(entries, anchor, auditKey),
        ...(trimmed ? { verifiedFromSeq: first.seq } : {}),
      };
    },
  );

  app.get(
    '/v1/audit/verify',
    {
      onRequest: opts.guard(['admin']),
      schema: {
        tags: ['audit'],
        summary:
          "Walks the whole audit chain (a page at a time) and checks every entry's HMAC and this node's checkpoints; names the first bad entry",
        security: bearer,
        querystring: zs(VerifyQuery),
        response: { 200: doc(AnyObject), ...errorReplies },
      },
    },
    async (req) => {
      const q = req.query as z.output<typeof VerifyQuery>;
      const t0 = performance.now();
      const result = await walkAuditChain(store, auditKey, { pageSize: q.pageSize, checkpoints: opts.checkpoints?.() });
      const firstBad =
        result.brokenAt !== undefined
          ? ((await store.readAudit({ afterSeq: result.brokenAt - 1, limit: 1 }))[0] ?? null)
          : undefined;
      return {
        ...result,
        ...(firstBad !== undefined ? { firstBadEntry: firstBad } : {}),
        tookMs: Math.round(performance.now() - t0),
      };
    },
  );
};
