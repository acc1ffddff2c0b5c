// The audit log with its hash-chain verification (policies/ verifyAuditChain), for admins.
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { verifyAuditChain } from '../../policies/index.ts';
import type { Store } from '../store/types.ts';
import type { Guard } from './access.ts';
import { AnyObject, Limit, bearer, doc, errorReplies, useZod, zs } from './schema.ts';

export interface AuditRoutesOptions {
  guard: Guard;
  store: Store;
}

const AuditQuery = z.object({ afterSeq: z.coerce.number().int().min(0).optional(), limit: Limit }).strict();

export const auditRoutes: FastifyPluginAsync<AuditRoutesOptions> = async (app, opts) => {
  useZod(app);
  const { store } = opts;

  app.get('/v1/audit', { onRequest: opts.guard(['admin']), schema: { tags: ['audit'], summary: 'Audit log entries with chain verification', security: bearer, querystring: zs(AuditQuery), response: { 200: doc(AnyObject), ...errorReplies } } }, async (req) => {
    const q = req.query as z.output<typeof AuditQuery>;
    const entries = await store.readAudit({ afterSeq: q.afterSeq, limit: q.limit });
    let anchor = q.afterSeq ? (await store.readAudit({ afterSeq: q.afterSeq - 1, limit: 1 }))[0] : undefined;
    // Retention trimmed the log's start (docs/RETENTION.md): the chain is verified from the first kept
    // entry on, which names its predecessor's hash.
    const first = entries[0];
    const trimmed = first !== undefined && first.seq > 1 && (!anchor || anchor.seq !== first.seq - 1);
    if (trimmed) anchor = { ...first, seq: first.seq - 1, hash: first.prevHash };
    return { entries, verification: verifyAuditChain(entries, anchor), ...(trimmed ? { verifiedFromSeq: first.seq } : {}) };
  });
};
