// Live chat beside a stream: POST /v1/streams/:streamId/chat. Every message goes through the text
// moderator and the current policy before anyone sees it; viewers get it only in jurisdictions whose
// rules allow it, the streamer gets what some jurisdiction may see, ops get everything with the
// reasons. A message withheld anywhere is audited. Without a text moderator chat is refused (503):
// unmoderated chat is never delivered.
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { chatVisibility, type ChatHit } from '../../policies/chat.ts';
import type { Policy } from '../../policies/types.ts';
import type { Auth } from '../auth.ts';
import { SrvError, forbidden, notFound, unauthorized } from '../errors.ts';
import type { ChatEvent, EventAudience, EventHub } from '../events.ts';
import type { ModerationStack } from '../moderation.ts';
import type { Store } from '../store/types.ts';
import { ErrorReply, StreamIdParam, bearer, doc, errorReplies, useZod, zs } from './schema.ts';

export interface ChatRoutesOptions {
  auth: Auth;
  store: Store;
  events: EventHub;
  /** Source of the policy in force (the PolicyStore). */
  policies: { readonly current: Policy };
  /** Undefined when moderation is off: every message is refused (503). */
  moderation: ModerationStack | undefined;
  /** Messages one sender (token subject) may send per window. Default 5 per 10 000 ms. */
  rateLimit?: { messages: number; windowMs: number };
  /** Clock (ms). Default Date.now. */
  now?: () => number;
}

const ChatBody = z.object({ text: z.string().trim().min(1).max(500) }).strict();
const ChatReply = z.object({
  id: z.string(),
  deliveredTo: z.array(z.string()),
  withheldIn: z.array(z.string()),
  hits: z.array(z.object({ category: z.string(), term: z.string() })),
});
const errors = { ...errorReplies, 429: doc(ErrorReply) };

/** Sliding window per sender: at most `messages` in any `windowMs`. */
export class SenderRateLimit {
  readonly #sent = new Map<string, number[]>();
  #sweptAt = 0;
  constructor(
    readonly messages: number,
    readonly windowMs: number,
  ) {}

  /** Counts a message at `now` and returns 0, or returns the ms until the sender may send again (nothing counted). */
  take(sender: string, now: number): number {
    // Senders quiet for a whole window are forgotten, so the map holds only the last window's senders.
    if (now - this.#sweptAt >= this.windowMs) {
      this.#sweptAt = now;
      for (const [s, times] of this.#sent) if (now - times[times.length - 1]! >= this.windowMs) this.#sent.delete(s);
    }
    const times = (this.#sent.get(sender) ?? []).filter((t) => now - t < this.windowMs);
    if (times.length >= this.messages) {
      this.#sent.set(sender, times);
      return times[0]! + this.windowMs - now;
    }
    times.push(now);
    this.#sent.set(sender, times);
    return 0;
  }
}

export async function chatRoutes(app: FastifyInstance, opts: ChatRoutesOptions): Promise<void> {
  useZod(app);
  const { auth, store, events } = opts;
  const now = opts.now ?? Date.now;
  const limit = new SenderRateLimit(opts.rateLimit?.messages ?? 5, opts.rateLimit?.windowMs ?? 10_000);

  // A viewer (bound to this stream, if bound at all), this stream's publisher, or an admin.
  const sender = async (req: FastifyRequest): Promise<void> => {
    const streamId = (req.params as { streamId?: string }).streamId;
    const p = await auth.principalOf(req);
    if (!p) throw unauthorized('a Bearer token is required to chat');
    if (p.role === 'viewer' && p.streamId !== undefined && p.streamId !== streamId)
      throw forbidden(`viewer token is for stream ${p.streamId}, not ${streamId}`);
    if (p.role === 'publisher' && p.streamId !== streamId)
      throw forbidden(`publish token is for stream ${p.streamId}, not ${streamId}`);
    if (p.role === 'reviewer')
      throw forbidden("role reviewer may not chat (needs viewer, the stream's publisher or admin)");
    req.principal = p;
  };

  app.post<{ Params: z.output<typeof StreamIdParam>; Body: z.output<typeof ChatBody> }>(
    '/v1/streams/:streamId/chat',
    {
      onRequest: sender,
      schema: {
        tags: ['streams'],
        summary: 'Send a chat message to a live stream (moderated per viewer jurisdiction; 5 per 10 s per sender)',
        params: zs(StreamIdParam),
        body: zs(ChatBody),
        security: bearer,
        response: { 201: doc(ChatReply), ...errors },
      },
    },
    async (req, reply) => {
      const { streamId } = req.params;
      const from = req.principal!;
      const text = req.body.text;
      if (!opts.moderation)
        throw new SrvError(
          'SRV_ERR_UNAVAILABLE',
          'moderation is off on this node (MODERATION=false): chat is not delivered unmoderated',
        );
      const wait = limit.take(from.subject, now());
      if (wait > 0) {
        reply.header('retry-after', String(Math.ceil(wait / 1000)));
        throw new SrvError(
          'SRV_ERR_RATE_LIMITED',
          `${from.subject} sent ${limit.messages} messages in the last ${limit.windowMs / 1000} s; retry in ${Math.ceil(wait / 1000)} s`,
        );
      }
      const record = await store.getStream(streamId);
      if (!record || record.state !== 'live') throw notFound(`stream ${streamId} is not live`);

      const policy = opts.policies.current;
      const hits: ChatHit[] = [];
      for (const h of opts.moderation.text.moderate(text, { source: 'chat' })) {
        const term = h.term.toLowerCase();
        if (!hits.some((x) => x.category === h.category && x.term === term)) hits.push({ category: h.category, term });
      }
      const { allowed, withheld, restrictions } = chatVisibility(policy, hits);
      const id = randomUUID();
      const at = now();
      if (withheld.length > 0) {
        // On record before anyone is told: a withheld message that could not be audited is not sent.
        await store.appendAudit({
          type: 'chat.withheld',
          at,
          id,
          streamId,
          sender: from.subject,
          senderRole: from.role,
          senderJurisdiction: from.jurisdiction ?? null,
          jurisdictions: withheld,
          categories: [...new Set(restrictions.map((r) => r.category))],
          terms: [...new Set(restrictions.map((r) => r.term))],
          policyVersion: policy.version,
        });
      }
      const message: ChatEvent = { type: 'chat', streamId, id, from: from.subject, text, at };
      if (allowed.length > 0) {
        // Viewers from jurisdictions the policy does not list follow 'default'.
        const viewers: EventAudience = allowed.includes('default')
          ? { exceptJurisdictions: withheld }
          : { jurisdictions: allowed };
        await events.broadcast({ roles: ['streamer', 'viewer'], streamId, ...viewers }, message);
      }
      await events.broadcast({ roles: ['ops'], streamId }, { ...message, withheldIn: withheld, hits });
      return reply.code(201).send({ id, deliveredTo: allowed, withheldIn: withheld, hits });
    },
  );
}
