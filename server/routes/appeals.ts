// Appeals (DSA Art. 20): the streamer appeals a statement of reasons with its publish token (the
// statement's redress.appealUrl is /v1/appeals/:statementId); the appeal is a priority review item.
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { createAppeal, withDueAt } from '../../policies/index.ts';
import type { PolicyStore } from '../policy-store.ts';
import type { StreamControl } from '../control.ts';
import { forbidden, notFound } from '../errors.ts';
import type { Store } from '../store/types.ts';
import { who, type Guard } from './access.ts';
import { AnyObject, IdParam, ListQuery, bearer, doc, errorReplies, useZod, zs } from './schema.ts';

export interface AppealRoutesOptions {
  guard: Guard;
  store: Store;
  control: StreamControl;
  /** For the appeal's due time (the policy's review deadlines; 4 hours without a policy). */
  policies?: PolicyStore;
}

const AppealBody = z.object({ grounds: z.string().min(1).max(5000) }).strict();

export const appealRoutes: FastifyPluginAsync<AppealRoutesOptions> = async (app, opts) => {
  useZod(app);
  const { store, control } = opts;

  app.post(
    '/v1/appeals/:id',
    {
      onRequest: opts.guard(['publisher']),
      schema: {
        tags: ['appeals'],
        summary: 'The streamer appeals a statement of reasons: a priority review item',
        security: bearer,
        params: zs(IdParam),
        body: zs(AppealBody),
        response: { 201: doc(AnyObject), ...errorReplies },
      },
    },
    async (req, reply) => {
      const { id } = req.params as z.output<typeof IdParam>;
      const body = req.body as z.output<typeof AppealBody>;
      const statement = await store.getStatement(id);
      if (!statement) throw notFound(`statement ${id} not found`);
      if (req.principal?.role === 'publisher' && req.principal.streamId !== statement.streamId)
        throw forbidden(`statement ${id} concerns another stream`);
      const at = Date.now();
      const item = withDueAt(
        createAppeal(statement, { appellant: who(req), grounds: body.grounds, at }),
        opts.policies?.loaded ? opts.policies.current : {},
      );
      const stored = await control.enqueueReview(item);
      await store.appendAudit({
        type: 'appeal.filed',
        statementId: id,
        streamId: statement.streamId,
        itemId: item.id,
        by: who(req),
        dueAt: item.dueAt,
        at,
      });
      return reply.code(201).send(stored);
    },
  );

  app.get(
    '/v1/appeals/:id',
    {
      onRequest: opts.guard(['reviewer', 'publisher']),
      schema: {
        tags: ['appeals'],
        summary: 'A statement of reasons, its appeals and their outcomes',
        security: bearer,
        params: zs(IdParam),
        response: { 200: doc(AnyObject), ...errorReplies },
      },
    },
    async (req) => {
      const { id } = req.params as z.output<typeof IdParam>;
      const statement = await store.getStatement(id);
      if (!statement) throw notFound(`statement ${id} not found`);
      if (req.principal?.role === 'publisher' && req.principal.streamId !== statement.streamId)
        throw forbidden(`statement ${id} concerns another stream`);
      const items = (
        await store.listReview({ includeResolved: true, type: 'appeal', streamId: statement.streamId, limit: 1000 })
      ).filter((i) => i.statementId === id);
      // the statement itself answers at its appeal URL too, whoever issued it (enforcer, operator, reviewer)
      return { statementId: id, statement, appeals: items };
    },
  );

  app.get(
    '/v1/appeals',
    {
      onRequest: opts.guard(['reviewer']),
      schema: {
        tags: ['appeals'],
        summary: 'All appeals',
        security: bearer,
        querystring: zs(ListQuery),
        response: { 200: doc(AnyObject), ...errorReplies },
      },
    },
    async (req) => {
      const q = req.query as z.output<typeof ListQuery>;
      return {
        appeals: await store.listReview({
          includeResolved: true,
          type: 'appeal',
          streamId: q.streamId,
          limit: q.limit,
        }),
      };
    },
  );
};
