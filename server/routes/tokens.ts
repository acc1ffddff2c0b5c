// Token issuance for admins (audited): publish, view, review and admin tokens signed by Auth.
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import type { Auth } from '../auth.ts';
import type { Store } from '../store/types.ts';
import { who, type Guard } from './access.ts';
import { bearer, doc, errorReplies, useZod, zs } from './schema.ts';

export interface TokenRoutesOptions {
  guard: Guard;
  auth: Auth;
  store: Store;
}

const TokenBody = z
  .object({
    role: z.enum(['publisher', 'viewer', 'reviewer', 'admin']),
    sub: z.string().min(1).max(200).optional(),
    streamId: z.string().min(1).max(200).optional(),
    jurisdiction: z
      .string()
      .regex(/^[A-Z]{2}$/)
      .optional(),
    viewerId: z.string().min(1).max(200).optional(),
    /** Reviewer tokens: the jurisdictions whose cases the reviewer may judge (issue 17); absent = all. */
    jurisdictions: z
      .array(z.string().regex(/^[A-Z]{2}$/))
      .min(1)
      .max(300)
      .optional(),
    /** Reviewer tokens: the languages the reviewer may judge; absent = all. */
    languages: z
      .array(z.string().regex(/^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/))
      .min(1)
      .max(300)
      .optional(),
    ttlSeconds: z
      .number()
      .int()
      .min(1)
      .max(30 * 86400)
      .optional(),
  })
  .strict();

export const tokenRoutes: FastifyPluginAsync<TokenRoutesOptions> = async (app, opts) => {
  useZod(app);
  const { auth, store } = opts;

  app.post(
    '/v1/tokens',
    {
      onRequest: opts.guard(['admin']),
      schema: {
        tags: ['auth'],
        summary: 'Issue a token',
        security: bearer,
        body: zs(TokenBody),
        response: { 201: doc(z.object({ token: z.string() })), ...errorReplies },
      },
    },
    async (req, reply) => {
      const b = req.body as z.output<typeof TokenBody>;
      const token = await auth.sign(
        {
          role: b.role,
          sub: b.sub,
          streamId: b.streamId,
          jurisdiction: b.jurisdiction,
          viewerId: b.viewerId,
          jurisdictions: b.jurisdictions,
          languages: b.languages,
        },
        b.ttlSeconds ?? '12h',
      );
      await store.appendAudit({
        type: 'token.issued',
        role: b.role,
        streamId: b.streamId ?? null,
        jurisdictions: b.jurisdictions ?? null,
        languages: b.languages ?? null,
        by: who(req),
        at: Date.now(),
      });
      return reply.code(201).send({ token });
    },
  );
};
