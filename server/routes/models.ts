// Model and inference backend status for reviewers and ops (what ModerationStack reports).
import type { FastifyPluginAsync } from 'fastify';
import type { Guard } from './access.ts';
import { AnyObject, bearer, doc, errorReplies, useZod } from './schema.ts';

export interface ModelRoutesOptions {
  guard: Guard;
  /** Model and backend status (issue 4 fills it). */
  modelStatus: () => unknown;
}

export const modelRoutes: FastifyPluginAsync<ModelRoutesOptions> = async (app, opts) => {
  useZod(app);
  app.get(
    '/v1/models',
    {
      onRequest: opts.guard(['reviewer']),
      schema: {
        tags: ['models'],
        summary: 'Model and inference backend status',
        security: bearer,
        response: { 200: doc(AnyObject), ...errorReplies },
      },
    },
    async () => await opts.modelStatus(),
  );
};
