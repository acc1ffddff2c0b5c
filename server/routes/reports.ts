// Reports built from the audit trail (issue 17 item 4): the transparency report per jurisdiction and
// category (policies/ transparencyReport). It reads the audit entries only, page by page, so it says
// what the audit trail says and nothing else.
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { transparencyReport, type AuditLike } from '../../policies/index.ts';
import { badRequest } from '../errors.ts';
import type { Store } from '../store/types.ts';
import type { Guard } from './access.ts';
import { AnyObject, bearer, doc, errorReplies, useZod, zs } from './schema.ts';

export interface ReportRoutesOptions {
  guard: Guard;
  store: Store;
}

const epochMs = z.coerce.number().int().min(0);
const TransparencyQuery = z.object({ from: epochMs.optional(), to: epochMs.optional() }).strict();
const PAGE = 1000;

export const reportRoutes: FastifyPluginAsync<ReportRoutesOptions> = async (app, opts) => {
  useZod(app);
  const { store } = opts;

  app.get(
    '/v1/reports/transparency',
    {
      onRequest: opts.guard(['reviewer']),
      schema: {
        tags: ['reports'],
        summary:
          'Transparency report over ?from=&to= (ms since the epoch; default the last 30 days): per jurisdiction and category, restrictions by type, automated vs human, median and p95 time to action, escalation rates against their targets, appeals and the share overturned, review deadlines met; from the audit trail only',
        security: bearer,
        querystring: zs(TransparencyQuery),
        response: { 200: doc(AnyObject), ...errorReplies },
      },
    },
    async (req) => {
      const q = req.query as z.output<typeof TransparencyQuery>;
      const to = q.to ?? Date.now() + 1;
      const from = q.from ?? to - 30 * 86_400_000;
      if (from >= to) throw badRequest(`from (${from}) must be before to (${to})`);
      // every entry held: an item created before the range still gives its decision's time to action
      const entries: AuditLike[] = [];
      for (let after = 0; ;) {
        const page = await store.readAudit({ afterSeq: after, limit: PAGE });
        for (const e of page) if (e.at < to) entries.push(e);
        const last = page.at(-1);
        if (page.length < PAGE || !last || last.at >= to) break;
        after = last.seq;
      }
      return transparencyReport(entries, from, to);
    },
  );
};
