// Live streams: the cluster-wide list, one stream, and the admin's kill, resume and manual gate
// (each audited; StreamControl acts on whichever node holds the stream).
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import type { StreamControl } from '../control.ts';
import type { Store } from '../store/types.ts';
import { who, type Guard } from './access.ts';
import { AnyObject, Jurisdiction, StreamIdParam, bearer, doc, errorReplies, useZod, zs } from './schema.ts';

export interface StreamRoutesOptions {
  guard: Guard;
  store: Store;
  control: StreamControl;
}

/** What an operator's action follows (DSA Art. 17(3)(b)): a notice, cited by its id, or (omitted) own initiative. */
const Basis = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('notice'),
      noticeId: z.string().min(1).max(200),
      notifier: z.string().min(1).max(200).optional(),
      trustedFlagger: z.boolean().optional(),
      receivedAt: z.number().int().nonnegative().optional(),
    })
    .strict(),
  z.object({ kind: z.literal('own_initiative') }).strict(),
]);
/** Who-why fields of a manual kill or gate; the category is checked against the policy in force (400 if absent). */
const OperatorFields = {
  clause: z.string().min(1).max(200).optional(),
  category: z.string().min(1).max(100).optional(),
  basis: Basis.optional(),
};
const KillBody = z.object({ reason: z.string().min(1).max(1000), ...OperatorFields }).strict();
const ResumeBody = z.object({ note: z.string().max(1000).optional() }).strict();
const GateBody = z
  .object({
    jurisdiction: Jurisdiction,
    video: z.enum(['forward', 'blank']).optional(),
    audio: z.enum(['forward', 'mute']).optional(),
    reason: z.string().min(1).max(500),
    ...OperatorFields,
  })
  .strict()
  .refine((b) => b.video !== undefined || b.audio !== undefined, 'give video and/or audio');

export const streamRoutes: FastifyPluginAsync<StreamRoutesOptions> = async (app, opts) => {
  useZod(app);
  const { store, control } = opts;
  const reviewer = opts.guard(['reviewer']);
  const admin = opts.guard(['admin']);

  app.get(
    '/v1/streams',
    {
      onRequest: reviewer,
      schema: {
        tags: ['streams'],
        summary: 'Live streams (cluster-wide) with current verdicts and scores',
        security: bearer,
        response: { 200: doc(z.object({ streams: z.array(AnyObject) })), ...errorReplies },
      },
    },
    async () => ({
      streams: await control.listStreams(),
    }),
  );

  app.get(
    '/v1/streams/:streamId',
    {
      onRequest: reviewer,
      schema: {
        tags: ['streams'],
        summary: 'One stream',
        security: bearer,
        params: zs(StreamIdParam),
        response: { 200: doc(AnyObject), ...errorReplies },
      },
    },
    async (req) => control.getStream((req.params as z.output<typeof StreamIdParam>).streamId),
  );

  app.post(
    '/v1/streams/:streamId/kill',
    {
      onRequest: admin,
      schema: {
        tags: ['streams'],
        summary: 'Kill a stream on whichever node holds it; blocks re-publishing until resumed (audited)',
        security: bearer,
        params: zs(StreamIdParam),
        body: zs(KillBody),
        response: { 202: doc(AnyObject), ...errorReplies },
      },
    },
    async (req, reply) => {
      const { streamId } = req.params as z.output<typeof StreamIdParam>;
      const body = req.body as z.output<typeof KillBody>;
      const r = await control.kill(streamId, {
        reason: body.reason,
        clause: body.clause,
        category: body.category,
        basis: body.basis,
        actor: who(req),
      });
      return reply.code(202).send({ killed: true, local: r.local, decision: r.decision, statement: r.statement });
    },
  );

  app.post(
    '/v1/streams/:streamId/resume',
    {
      onRequest: admin,
      schema: {
        tags: ['streams'],
        summary: 'Lift a kill block and manual gates (audited)',
        security: bearer,
        params: zs(StreamIdParam),
        body: zs(ResumeBody),
        response: { 200: doc(AnyObject), ...errorReplies },
      },
    },
    async (req) => {
      const { streamId } = req.params as z.output<typeof StreamIdParam>;
      const body = (req.body ?? {}) as z.output<typeof ResumeBody>;
      return control.resume(streamId, { actor: who(req), note: body.note });
    },
  );

  app.post(
    '/v1/streams/:streamId/gate',
    {
      onRequest: admin,
      schema: {
        tags: ['streams'],
        summary: "Manual gate for one jurisdiction's viewers ('*' all, 'default' unknown) (audited)",
        security: bearer,
        params: zs(StreamIdParam),
        body: zs(GateBody),
        response: { 200: doc(AnyObject), ...errorReplies },
      },
    },
    async (req) => {
      const { streamId } = req.params as z.output<typeof StreamIdParam>;
      const b = req.body as z.output<typeof GateBody>;
      const { statements } = await control.setGate(streamId, b.jurisdiction, {
        video: b.video,
        audio: b.audio,
        reason: b.reason,
        clause: b.clause,
        category: b.category,
        basis: b.basis,
        actor: who(req),
      });
      await store.appendAudit({
        type: 'gate.manual',
        streamId,
        by: who(req),
        jurisdiction: b.jurisdiction,
        video: b.video ?? null,
        audio: b.audio ?? null,
        reason: b.reason,
        statementIds: statements.map((st) => st.id),
        at: Date.now(),
      });
      return { ok: true, statements };
    },
  );
};
