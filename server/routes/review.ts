// The review queue: reviewers list, claim (the claim expires) and resolve items; resolving applies
// the effect (policies/ resolveReview) and issues the outcome's statement.
// Issue 17: the queue is per jurisdiction (a reviewer token's `jurisdictions` and `languages` say what
// it may judge: policies/ mayJudge), an item may need N agreeing reviewers (taxonomy `reviewers`):
// each reviewer's decision is a vote, kept and audited; N alike settle the item, a difference
// escalates it to a senior (admin); GET /v1/review/export gives the agreed labels for calibration.
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import {
  agreedLabel,
  castVote,
  compareByUrgency,
  isOverdue,
  mayJudge,
  mayVote,
  requiredReviewers,
  resolveReview,
  reviewQueueStats,
  type ReviewerScope,
} from '../../policies/index.ts';
import type { StreamControl } from '../control.ts';
import type { PolicyStore } from '../policy-store.ts';
import { SrvError, forbidden, notFound } from '../errors.ts';
import type { Store, StoredReviewItem } from '../store/types.ts';
import type { FastifyRequest } from 'fastify';
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
  .object({
    includeResolved: z.enum(['true', 'false']).optional(),
    type: z.enum(['amber', 'appeal']).optional(),
    streamId: z.string().optional(),
    /** One jurisdiction's queue. */
    jurisdiction: z
      .string()
      .regex(/^([A-Z]{2}|default)$/)
      .optional(),
    limit: Limit,
  })
  .strict();
const ExportQuery = z
  .object({
    minReviewers: z.coerce.number().int().min(1).max(9).optional(),
    jurisdiction: z
      .string()
      .regex(/^([A-Z]{2}|default)$/)
      .optional(),
    limit: Limit,
  })
  .strict();
/** Open items read to filter a scoped reviewer's queue (the store's open-item bound is 5000 by default). */
const SCAN = 5000;

/** What the caller may judge: a reviewer token's claims; admins and unscoped tokens judge everything. */
function scopeOf(req: FastifyRequest): ReviewerScope {
  const p = req.principal;
  if (!p || p.role === 'admin') return {};
  return {
    ...(p.jurisdictions ? { jurisdictions: p.jurisdictions } : {}),
    ...(p.languages ? { languages: p.languages } : {}),
  };
}
const ClaimBody = z.object({ itemId: z.string().min(1).optional() }).strict();
const ResolveBody = z
  .object({ outcome: z.enum(['uphold', 'overturn']), note: z.string().max(2000).optional() })
  .strict();

export const reviewRoutes: FastifyPluginAsync<ReviewRoutesOptions> = async (app, opts) => {
  useZod(app);
  const { store, control } = opts;
  const reviewer = opts.guard(['reviewer']);

  const visible = (req: FastifyRequest, item: StoredReviewItem): boolean => mayJudge(item, scopeOf(req));

  app.get(
    '/v1/review',
    {
      onRequest: reviewer,
      schema: {
        tags: ['review'],
        summary:
          "Review queue (overdue first, then escalated, appeals, oldest) as far as the caller may judge it (token jurisdictions/languages), with each jurisdiction's depth, oldest age and overdue items",
        security: bearer,
        querystring: zs(ReviewQuery),
        response: {
          200: doc(z.object({ items: z.array(AnyObject), depth: z.number(), queues: z.array(AnyObject) })),
          ...errorReplies,
        },
      },
    },
    async (req) => {
      const q = req.query as z.output<typeof ReviewQuery>;
      const scope = scopeOf(req);
      const filtered =
        scope.jurisdictions !== undefined || scope.languages !== undefined || q.jurisdiction !== undefined;
      const [listed, open] = await Promise.all([
        store.listReview({
          includeResolved: q.includeResolved === 'true',
          type: q.type,
          streamId: q.streamId,
          limit: filtered ? SCAN : q.limit,
        }),
        store.listReview({ limit: SCAN }),
      ]);
      const mine = (i: StoredReviewItem) =>
        visible(req, i) && (q.jurisdiction === undefined || i.jurisdictions.includes(q.jurisdiction));
      // overdue items rise (issue 17 item 3): the queue is served by urgency, not the stored priority alone
      const now = Date.now();
      const items = (filtered ? listed.filter(mine) : listed)
        .sort(compareByUrgency(now))
        .slice(0, q.limit ?? 200)
        .map((i) => ({ ...i, overdue: isOverdue(i, now) }));
      const queue = open.filter(mine);
      return { items, depth: queue.length, queues: reviewQueueStats(queue, now) };
    },
  );

  app.get(
    '/v1/review/export',
    {
      onRequest: opts.guard(['admin']),
      schema: {
        tags: ['review'],
        summary:
          'Agreed labels for model calibration: resolved items whose reviewers (at least minReviewers, default 2) all agreed, with their sample references; never unagreed ones',
        security: bearer,
        querystring: zs(ExportQuery),
        response: { 200: doc(AnyObject), ...errorReplies },
      },
    },
    async (req) => {
      const q = req.query as z.output<typeof ExportQuery>;
      const min = q.minReviewers ?? 2;
      const resolved = (await store.listReview({ includeResolved: true, limit: SCAN })).filter(
        (i) => i.status === 'resolved' && (q.jurisdiction === undefined || i.jurisdictions.includes(q.jurisdiction)),
      );
      const labels = resolved.flatMap((i) => agreedLabel(i, min) ?? []).slice(0, q.limit ?? 1000);
      await store.appendAudit({
        type: 'review.exported',
        by: who(req),
        minReviewers: min,
        jurisdiction: q.jurisdiction ?? null,
        labels: labels.length,
        at: Date.now(),
      });
      return { minReviewers: min, count: labels.length, labels };
    },
  );

  app.get(
    '/v1/review/:id',
    {
      onRequest: reviewer,
      schema: {
        tags: ['review'],
        summary: 'One review item',
        security: bearer,
        params: zs(IdParam),
        response: { 200: doc(AnyObject), ...errorReplies },
      },
    },
    async (req) => {
      const { id } = req.params as z.output<typeof IdParam>;
      const item = await store.getReview(id);
      if (!item) throw notFound(`review item ${id} not found`);
      if (!visible(req, item))
        throw forbidden(
          `review item ${id} concerns ${item.jurisdictions.join(', ')}: not among the jurisdictions this reviewer may judge`,
        );
      return item;
    },
  );

  app.post(
    '/v1/review/claim',
    {
      onRequest: reviewer,
      schema: {
        tags: ['review'],
        summary: 'Claim an item (or the next one); the claim expires',
        security: bearer,
        body: zs(ClaimBody),
        response: { 200: doc(AnyObject), 204: { type: 'null' }, ...errorReplies },
      },
    },
    async (req, reply) => {
      const body = (req.body ?? {}) as z.output<typeof ClaimBody>;
      const me = who(req);
      const senior = req.principal?.role === 'admin';
      let item: StoredReviewItem | undefined;
      if (body.itemId !== undefined) {
        const target = await store.getReview(body.itemId);
        if (!target) throw notFound(`review item ${body.itemId} not found`);
        if (!visible(req, target))
          throw forbidden(
            `review item ${body.itemId} concerns ${target.jurisdictions.join(', ')}: not among the jurisdictions this reviewer may judge`,
          );
        if (!mayVote(target.votes, me, senior))
          throw new SrvError(
            'SRV_ERR_CONFLICT',
            `review item ${body.itemId}: ${me} has voted on it already, or it is escalated to a senior reviewer`,
          );
        item = await store.claimReview(me, opts.reviewClaimMs, body.itemId);
      } else {
        // the next item this reviewer may judge and vote on, in queue order; one taken meanwhile by another is skipped
        const now = Date.now();
        for (const candidate of (await store.listReview({ limit: SCAN })).sort(compareByUrgency(now))) {
          if (!visible(req, candidate) || !mayVote(candidate.votes, me, senior)) continue;
          if (candidate.claim && candidate.claim.expiresAt > now && candidate.claim.reviewer !== me) continue;
          try {
            item = await store.claimReview(me, opts.reviewClaimMs, candidate.id);
            break;
          } catch (err) {
            if (!(err instanceof SrvError) || err.code !== 'SRV_ERR_CONFLICT') throw err;
          }
        }
      }
      if (!item) return reply.code(204).send();
      await store.appendAudit({
        type: 'review.claimed',
        itemId: item.id,
        streamId: item.streamId,
        by: who(req),
        until: item.claim?.expiresAt ?? null,
        at: Date.now(),
      });
      return item;
    },
  );

  app.post(
    '/v1/review/:id/resolve',
    {
      onRequest: reviewer,
      schema: {
        tags: ['review'],
        summary: 'Resolve a claimed item: uphold or overturn; applies the effect and issues a statement',
        security: bearer,
        params: zs(IdParam),
        body: zs(ResolveBody),
        response: { 200: doc(AnyObject), 409: doc(ErrorReply), ...errorReplies },
      },
    },
    async (req) => {
      const { id } = req.params as z.output<typeof IdParam>;
      const body = req.body as z.output<typeof ResolveBody>;
      const reviewerId = who(req);
      const item = await store.getReview(id);
      if (!item) throw notFound(`review item ${id} not found`);
      if (item.status === 'resolved') throw new SrvError('SRV_ERR_CONFLICT', `review item ${id} is already resolved`);
      if (item.status !== 'claimed' || item.claim?.reviewer !== reviewerId)
        throw new SrvError(
          'SRV_ERR_CLAIM_EXPIRED',
          `review item ${id} is not claimed by ${reviewerId} (claim missing, lapsed or held by another)`,
        );
      if (!visible(req, item))
        throw forbidden(
          `review item ${id} concerns ${item.jurisdictions.join(', ')}: not among the jurisdictions this reviewer may judge`,
        );
      // every reviewer's decision is a vote; the item settles when the policy's number of reviewers agree
      const at = Date.now();
      const required = requiredReviewers(item, opts.policies.current);
      const senior = req.principal?.role === 'admin' && item.escalated === true;
      const { votes, tally } = castVote(
        item.votes ?? [],
        { reviewer: reviewerId, outcome: body.outcome, at, ...(body.note ? { note: body.note } : {}) },
        required,
        senior,
      );
      await store.appendAudit({
        type: 'review.vote',
        itemId: id,
        streamId: item.streamId,
        by: reviewerId,
        outcome: body.outcome,
        note: body.note ?? null,
        senior,
        votes: votes.length,
        required,
        tally: tally.state,
        at,
      });
      if (tally.state !== 'agreed') {
        const escalate = tally.state === 'escalated' && item.escalated !== true;
        const stored = await store.voteReview(id, reviewerId, votes, { release: true, escalate });
        if (escalate)
          await store.appendAudit({
            type: 'review.escalated',
            itemId: id,
            streamId: item.streamId,
            votes: votes.map((v) => ({ reviewer: v.reviewer, outcome: v.outcome })),
            required,
            at,
          });
        void control.publishQueueDepth();
        return { item: stored, tally };
      }
      await store.voteReview(id, reviewerId, votes, { release: false, escalate: false });
      const agreedBy =
        votes.length > 1
          ? ` (agreed by ${votes.map((v) => v.reviewer).join(', ')}${senior ? `; ${reviewerId} decided after disagreement` : ''})`
          : '';
      const note = body.note || agreedBy ? `${body.note ?? ''}${agreedBy}`.trim() : undefined;
      const resolution = { outcome: tally.outcome, reviewer: reviewerId, at, ...(note ? { note } : {}) };
      const decision = resolveReview(item, resolution, opts.policies.current);
      // The store re-checks the claim atomically: a claim that lapsed meanwhile fails here, before any effect.
      const resolved = await store.resolveReview(id, reviewerId, resolution, {
        decisionId: decision.id,
        outcomeStatementId: decision.statement?.id,
      });
      if (decision.statement) await store.putStatement(decision.statement);
      await control.applyReviewDecision(decision);
      void control.publishQueueDepth();
      return { item: resolved, decision, tally };
    },
  );
};
