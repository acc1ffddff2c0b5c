// Decisions and statements of reasons (DSA Art. 17): reviewers read them all; the streamer concerned
// reads its own statements with its publish token.
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { forbidden, notFound } from '../errors.ts';
import type { Store } from '../store/types.ts';
import type { Guard } from './access.ts';
import { AnyObject, IdParam, ListQuery, bearer, doc, errorReplies, useZod, zs } from './schema.ts';

export interface DecisionRoutesOptions {
  guard: Guard;
  store: Store;
}

export const decisionRoutes: FastifyPluginAsync<DecisionRoutesOptions> = async (app, opts) => {
  useZod(app);
  const { store } = opts;
  const reviewer = opts.guard(['reviewer']);

  app.get(
    '/v1/decisions',
    {
      onRequest: reviewer,
      schema: {
        tags: ['decisions'],
        summary: 'Decisions, newest first',
        security: bearer,
        querystring: zs(ListQuery),
        response: { 200: doc(z.object({ decisions: z.array(AnyObject) })), ...errorReplies },
      },
    },
    async (req) => ({
      decisions: await store.listDecisions(req.query as z.output<typeof ListQuery>),
    }),
  );

  app.get(
    '/v1/decisions/:id',
    {
      onRequest: reviewer,
      schema: {
        tags: ['decisions'],
        summary: 'One decision',
        security: bearer,
        params: zs(IdParam),
        response: { 200: doc(AnyObject), ...errorReplies },
      },
    },
    async (req) => {
      const { id } = req.params as z.output<typeof IdParam>;
      const d = await store.getDecision(id);
      if (!d) throw notFound(`decision ${id} not found`);
      return d;
    },
  );

  app.get(
    '/v1/statements',
    {
      onRequest: reviewer,
      schema: {
        tags: ['decisions'],
        summary: 'Statements of reasons, newest first',
        security: bearer,
        querystring: zs(ListQuery),
        response: { 200: doc(z.object({ statements: z.array(AnyObject) })), ...errorReplies },
      },
    },
    async (req) => ({
      statements: await store.listStatements(req.query as z.output<typeof ListQuery>),
    }),
  );

  app.get(
    '/v1/statements/:id',
    {
      // The streamer concerned may read its own statements (publish token for that stream).
      onRequest: opts.guard(['reviewer', 'publisher']),
      schema: {
        tags: ['decisions'],
        summary: 'One statement of reasons (DSA Art. 17(3))',
        security: bearer,
        params: zs(IdParam),
        response: { 200: doc(AnyObject), ...errorReplies },
      },
    },
    async (req) => {
      const { id } = req.params as z.output<typeof IdParam>;
      const s = await store.getStatement(id);
      if (!s) throw notFound(`statement ${id} not found`);
      if (req.principal?.role === 'publisher' && req.principal.streamId !== s.streamId)
        throw forbidden(`statement ${id} concerns another stream`);
      return s;
    },
  );
};
