// Webhook endpoints under /v1/webhooks (admin): list them with their last attempts and failures,
// add, change, rotate secrets, remove. Every change is audited by the dispatcher (server/webhooks.ts).
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { WEBHOOK_EVENTS, type WebhookDispatcher } from '../webhooks.ts';
import { who, type Guard } from './access.ts';
import { AnyObject as Any, ErrorReply, IdParam, bearer, doc, errorReplies, useZod, zs } from './schema.ts';

export interface WebhookRoutesOptions {
  guard: Guard;
  webhooks: WebhookDispatcher;
}

const errors = { ...errorReplies, 409: doc(ErrorReply) };
const Events = z.array(z.enum(WEBHOOK_EVENTS)).min(1).max(WEBHOOK_EVENTS.length);
const Url = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//.test(u), 'http(s) URL');
const Secret = z.string().min(16).max(500);
const CreateBody = z
  .object({
    id: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,100}$/)
      .optional(),
    url: Url,
    secret: Secret.optional(),
    events: Events.optional(),
  })
  .strict();
const PatchBody = z
  .object({ url: Url.optional(), events: Events.optional(), enabled: z.boolean().optional() })
  .strict()
  .refine((b) => Object.keys(b).length > 0, 'give url, events and/or enabled');
const RotateBody = z
  .object({ secret: Secret.optional(), retire: z.boolean().optional() })
  .strict()
  .refine((b) => !(b.retire && b.secret), 'either a new secret or retire, not both');

export const webhookRoutes: FastifyPluginAsync<WebhookRoutesOptions> = async (app, o) => {
  useZod(app);
  const admin = o.guard(['admin']);
  const schema = (summary: string, extra: Record<string, unknown> = {}) => ({
    tags: ['webhooks'],
    summary,
    security: bearer,
    ...extra,
  });

  app.get(
    '/v1/webhooks',
    {
      onRequest: admin,
      schema: schema('Webhook endpoints: pending events, deliveries, failures, last attempts', {
        response: { 200: doc(z.object({ endpoints: z.array(Any), events: z.array(z.string()) })), ...errors },
      }),
    },
    async () => ({
      endpoints: o.webhooks.list(),
      events: [...WEBHOOK_EVENTS],
    }),
  );

  app.get(
    '/v1/webhooks/:id',
    {
      onRequest: admin,
      schema: schema('One webhook endpoint with its last attempts', {
        params: zs(IdParam),
        response: { 200: doc(Any), ...errors },
      }),
    },
    async (req) => o.webhooks.get((req.params as z.output<typeof IdParam>).id),
  );

  app.post(
    '/v1/webhooks',
    {
      onRequest: admin,
      schema: schema('Add an endpoint; the reply shows its secret once (audited)', {
        body: zs(CreateBody),
        response: { 201: doc(Any), ...errors },
      }),
    },
    async (req, reply) => {
      const body = req.body as z.output<typeof CreateBody>;
      return reply.code(201).send(o.webhooks.create(body, who(req)));
    },
  );

  app.patch(
    '/v1/webhooks/:id',
    {
      onRequest: admin,
      schema: schema('Change an endpoint (url, events, enabled; audited)', {
        params: zs(IdParam),
        body: zs(PatchBody),
        response: { 200: doc(Any), ...errors },
      }),
    },
    async (req) =>
      o.webhooks.update((req.params as z.output<typeof IdParam>).id, req.body as z.output<typeof PatchBody>, who(req)),
  );

  app.post(
    '/v1/webhooks/:id/rotate',
    {
      onRequest: admin,
      schema: schema('Rotate the signing secret: the new one and the previous both sign until `retire` (audited)', {
        params: zs(IdParam),
        body: zs(RotateBody),
        response: { 200: doc(Any), ...errors },
      }),
    },
    async (req) =>
      o.webhooks.rotate(
        (req.params as z.output<typeof IdParam>).id,
        (req.body ?? {}) as z.output<typeof RotateBody>,
        who(req),
      ),
  );

  app.delete(
    '/v1/webhooks/:id',
    {
      onRequest: admin,
      schema: schema('Remove an endpoint; its pending events are dropped (audited)', {
        params: zs(IdParam),
        response: { 204: { type: 'null' }, ...errors },
      }),
    },
    async (req, reply) => {
      o.webhooks.remove((req.params as z.output<typeof IdParam>).id, who(req));
      return reply.code(204).send();
    },
  );
};
