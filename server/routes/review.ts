// The review queue: reviewers list, claim (the claim expires) and resolve items; resolving applies
// the effect (policies/ resolveReview) and issues the outcome's statement.
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { resolveReview } from '../../policies/index.ts';
import type { StreamControl } from '../control.ts';
import type { PolicyStore } from '../policy-store.ts';
import { SrvError, notFound } from '../errors.ts';
import type { Store } from '../store/types.ts';
import { who, type Guard } from './access.ts';
import { AnyObject, ErrorReply, IdParam, Limit, bearer, doc, errorReplies, useZod, zs } from './schema.ts';

export interface ReviewRoutesOptions {
  guard: Guard;
  store: Store;
  control: StreamControl;
  policies: PolicyStore;
  /** How long a claim holds (ms). */
  reviewClaimMs: number;
}

const ReviewQuery = z
  .object({ includeResolved: z.enum(['true', 'false']).optional(), type: z.enum(['amber', 'appeal']).optional(), streamId: z.string().optional(), limit: Limit })
  .strict();
const ClaimBody = z.object({ itemId: z.string().min(1).optional() }).strict();
const ResolveBody = z.object({ outcome: z.enum(['uphold', 'overturn']), note: z.string().max(2000).optional() }).strict();

export const reviewRoutes: FastifyPluginAsync<ReviewRoutesOptions> = async (app, opts) => {
  useZod(app);
  const { store, control } = opts;
  const reviewer = opts.guard(['reviewer']);

  app.get('/v1/review', { onRequest: reviewer, schema: { tags: ['review'], summary: 'Review queue (appeals first, then oldest)', security: bearer, querystring: zs(ReviewQuery), response: { 200: doc(z.object({ items: z.array(AnyObject), depth: z.number() })), ...errorReplies } } }, async (req) => {
    const q = req.query as z.output<typeof ReviewQuery>;
    const [items, depth] = await Promise.all([store.listReview({ includeResolved: q.includeResolved === 'true', type: q.type, streamId: q.streamId, limit: q.limit }), store.reviewDepth()]);
    return { items, depth };
  });

  app.get('/v1/review/:id', { onRequest: reviewer, schema: { tags: ['review'], summary: 'One review item', security: bearer, params: zs(IdParam), response: { 200: doc(AnyObject), ...errorReplies } } }, async (req) => {
    const { id } = req.params as z.output<typeof IdParam>;
    const item = await store.getReview(id);
    if (!item) throw notFound(`review item ${id} not found`);
    return item;
  });

  app.post(
    '/v1/review/claim',
    { onRequest: reviewer, schema: { tags: ['review'], summary: 'Claim an item (or the next one); the claim expires', security: bearer, body: zs(ClaimBody), response: { 200: doc(AnyObject), 204: { type: 'null' }, ...errorReplies } } },
    async (req, reply) => {
      const body = (req.body ?? {}) as z.output<typeof ClaimBody>;
      const item = await store.claimReview(who(req), opts.reviewClaimMs, body.itemId);
      if (!item) return reply.code(204).send();
      await store.appendAudit({ type: 'review.claimed', itemId: item.id, streamId: item.streamId, by: who(req), until: item.claim?.expiresAt ?? null, at: Date.now() });
      return item;
    },
  );

  app.post(
    '/v1/review/:id/resolve',
    { onRequest: reviewer, schema: { tags: ['review'], summary: 'Resolve a claimed item: uphold or overturn; applies the effect and issues a statement', security: bearer, params: zs(IdParam), body: zs(ResolveBody), response: { 200: doc(AnyObject), 409: doc(ErrorReply), ...errorReplies } } },
    async (req) => {
      const { id } = req.params as z.output<typeof IdParam>;
      const body = req.body as z.output<typeof ResolveBody>;
      const reviewerId = who(req);
      const item = await store.getReview(id);
      if (!item) throw notFound(`review item ${id} not found`);
      if (item.status === 'resolved') throw new SrvError('SRV_ERR_CONFLICT', `review item ${id} is already resolved`);
      if (item.status !== 'claimed' || item.claim?.reviewer !== reviewerId)
        throw new SrvError('SRV_ERR_CLAIM_EXPIRED', `review item ${id} is not claimed by ${reviewerId} (claim missing, lapsed or held by another)`);
      const resolution = { outcome: body.outcome, reviewer: reviewerId, at: Date.now(), note: body.note };
      const decision = resolveReview(item, resolution, opts.policies.current);
      // The store re-checks the claim atomically: a claim that lapsed meanwhile fails here, before any effect.
      const resolved = await store.resolveReview(id, reviewerId, resolution, { decisionId: decision.id, outcomeStatementId: decision.statement?.id });
      if (decision.statement) await store.putStatement(decision.statement);
      await control.applyReviewDecision(decision);
      void control.publishQueueDepth();
      return { item: resolved, decision };
    },
  );
};
