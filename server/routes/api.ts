// Admin and review API under /v1 (Bearer tokens; reviewer reads, admin acts), plus health,
// readiness and metrics. Every failure is a coded SRV_ERR_* (or POL_ERR_* from policies/).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type {} from '@fastify/swagger';
import { z } from 'zod';
import { createAppeal, diffPolicies, loadPolicyBundle, PolicyError, resolveReview, verifyAuditChain } from '../../policies/index.ts';
import { timingSafeEqual } from 'node:crypto';
import { bearerOf, type Auth, type Principal, type Role } from '../auth.ts';
import type { StreamControl } from '../control.ts';
import type { PolicyStore } from '../enforcer.ts';
import { readPolicyDir } from '../enforcer.ts';
import { SrvError, forbidden, notFound, unauthorized } from '../errors.ts';
import type { EventHub } from '../events.ts';
import type { ServerMetrics } from '../metrics.ts';
import type { Store } from '../store/types.ts';
import { ErrorReply, IdParam, Jurisdiction, Limit, StreamIdParam, doc, useZod, zs } from './schema.ts';

export interface ApiContext {
  store: Store;
  auth: Auth;
  control: StreamControl;
  policies: PolicyStore;
  events: EventHub;
  metrics: ServerMetrics;
  nodeId: string;
  policyDir: string;
  reviewClaimMs: number;
  startedAt: number;
  /** Model and backend status (issue 4 fills it). */
  modelStatus: () => unknown;
  /** Readiness of the media engine. */
  sfuReady: () => boolean;
  /** When set, /metrics requires `Authorization: Bearer <metricsToken>`. */
  metricsToken?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

const errors = { 400: doc(ErrorReply), 401: doc(ErrorReply), 403: doc(ErrorReply), 404: doc(ErrorReply), 503: doc(ErrorReply) };
const bearer = [{ bearerAuth: [] }];

const Any = z.record(z.string(), z.unknown());
const KillBody = z.object({ reason: z.string().min(1).max(1000), clause: z.string().min(1).max(200).optional() }).strict();
const ResumeBody = z.object({ note: z.string().max(1000).optional() }).strict();
const GateBody = z
  .object({ jurisdiction: Jurisdiction, video: z.enum(['forward', 'blank']).optional(), audio: z.enum(['forward', 'mute']).optional(), reason: z.string().min(1).max(500) })
  .strict()
  .refine((b) => b.video !== undefined || b.audio !== undefined, 'give video and/or audio');
const ListQuery = z.object({ streamId: z.string().optional(), limit: Limit }).strict();
const ReviewQuery = z
  .object({ includeResolved: z.enum(['true', 'false']).optional(), type: z.enum(['amber', 'appeal']).optional(), streamId: z.string().optional(), limit: Limit })
  .strict();
const ClaimBody = z.object({ itemId: z.string().min(1).optional() }).strict();
const ResolveBody = z.object({ outcome: z.enum(['uphold', 'overturn']), note: z.string().max(2000).optional() }).strict();
const AppealBody = z.object({ grounds: z.string().min(1).max(5000) }).strict();
const PolicyFiles = z.object({ files: z.array(z.object({ filename: z.string().min(1).max(300), text: z.string().max(1_000_000) }).strict()).min(1).max(200) }).strict();
const ActivateBody = z.object({ files: PolicyFiles.shape.files.optional() }).strict();
const AuditQuery = z.object({ afterSeq: z.coerce.number().int().min(0).optional(), limit: Limit }).strict();
const TokenBody = z
  .object({
    role: z.enum(['publisher', 'viewer', 'reviewer', 'admin']),
    sub: z.string().min(1).max(200).optional(),
    streamId: z.string().min(1).max(200).optional(),
    jurisdiction: z.string().regex(/^[A-Z]{2}$/).optional(),
    viewerId: z.string().min(1).max(200).optional(),
    ttlSeconds: z.number().int().min(1).max(30 * 86400).optional(),
  })
  .strict();

export async function apiRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  useZod(app);
  const { store, auth, control } = ctx;

  const guard = (roles: readonly Role[]) => async (req: FastifyRequest) => {
    req.principal = await auth.require(req, roles);
  };
  const reviewer = guard(['reviewer']);
  const admin = guard(['admin']);
  const who = (req: FastifyRequest): string => req.principal?.subject ?? 'unknown';

  // ---- health

  app.get('/healthz', { schema: { tags: ['health'], summary: 'Liveness: the process answers', response: { 200: doc(z.object({ status: z.literal('ok'), nodeId: z.string(), uptimeS: z.number() })) } } }, async () => ({
    status: 'ok' as const,
    nodeId: ctx.nodeId,
    uptimeS: Math.round((Date.now() - ctx.startedAt) / 1000),
  }));

  app.get(
    '/readyz',
    { schema: { tags: ['health'], summary: 'Readiness: store reachable, policy loaded, media engine up', response: { 200: doc(Any), 503: doc(Any) } } },
    async (_req, reply) => {
      const checks = { store: await store.ping(), policy: ctx.policies.loaded, sfu: ctx.sfuReady() };
      const ready = checks.store && checks.policy && checks.sfu;
      return reply.code(ready ? 200 : 503).send({ ready, checks, storeKind: store.kind, nodeId: ctx.nodeId });
    },
  );

  app.get('/metrics', { schema: { tags: ['health'], summary: 'Prometheus metrics' } }, async (req, reply) => {
    if (ctx.metricsToken && !safeEqual(bearerOf(req) ?? '', ctx.metricsToken)) throw unauthorized('GET /metrics needs the metrics bearer token (METRICS_TOKEN)');
    const m = await ctx.metrics.render();
    return reply.type(m.contentType).send(m.body);
  });

  // ---- streams

  app.get('/v1/streams', { onRequest: reviewer, schema: { tags: ['streams'], summary: 'Live streams (cluster-wide) with current verdicts and scores', security: bearer, response: { 200: doc(z.object({ streams: z.array(Any) })), ...errors } } }, async () => ({
    streams: await control.listStreams(),
  }));

  app.get(
    '/v1/streams/:streamId',
    { onRequest: reviewer, schema: { tags: ['streams'], summary: 'One stream', security: bearer, params: zs(StreamIdParam), response: { 200: doc(Any), ...errors } } },
    async (req) => control.getStream((req.params as z.output<typeof StreamIdParam>).streamId),
  );

  app.post(
    '/v1/streams/:streamId/kill',
    {
      onRequest: admin,
      schema: { tags: ['streams'], summary: 'Kill a stream on whichever node holds it; blocks re-publishing until resumed (audited)', security: bearer, params: zs(StreamIdParam), body: zs(KillBody), response: { 202: doc(Any), ...errors } },
    },
    async (req, reply) => {
      const { streamId } = req.params as z.output<typeof StreamIdParam>;
      const body = req.body as z.output<typeof KillBody>;
      const r = await control.kill(streamId, { reason: body.reason, clause: body.clause, actor: who(req) });
      return reply.code(202).send({ killed: true, local: r.local, decision: r.decision, statement: r.statement });
    },
  );

  app.post(
    '/v1/streams/:streamId/resume',
    { onRequest: admin, schema: { tags: ['streams'], summary: 'Lift a kill block and manual gates (audited)', security: bearer, params: zs(StreamIdParam), body: zs(ResumeBody), response: { 200: doc(Any), ...errors } } },
    async (req) => {
      const { streamId } = req.params as z.output<typeof StreamIdParam>;
      const body = (req.body ?? {}) as z.output<typeof ResumeBody>;
      return control.resume(streamId, { actor: who(req), note: body.note });
    },
  );

  app.post(
    '/v1/streams/:streamId/gate',
    { onRequest: admin, schema: { tags: ['streams'], summary: "Manual gate for one jurisdiction's viewers ('*' all, 'default' unknown) (audited)", security: bearer, params: zs(StreamIdParam), body: zs(GateBody), response: { 200: doc(Any), ...errors } } },
    async (req) => {
      const { streamId } = req.params as z.output<typeof StreamIdParam>;
      const b = req.body as z.output<typeof GateBody>;
      await control.setGate(streamId, b.jurisdiction, { video: b.video, audio: b.audio, reason: b.reason });
      await store.appendAudit({ type: 'gate.manual', streamId, by: who(req), jurisdiction: b.jurisdiction, video: b.video ?? null, audio: b.audio ?? null, reason: b.reason, at: Date.now() });
      return { ok: true };
    },
  );

  // ---- decisions and statements

  app.get('/v1/decisions', { onRequest: reviewer, schema: { tags: ['decisions'], summary: 'Decisions, newest first', security: bearer, querystring: zs(ListQuery), response: { 200: doc(z.object({ decisions: z.array(Any) })), ...errors } } }, async (req) => ({
    decisions: await store.listDecisions(req.query as z.output<typeof ListQuery>),
  }));

  app.get('/v1/decisions/:id', { onRequest: reviewer, schema: { tags: ['decisions'], summary: 'One decision', security: bearer, params: zs(IdParam), response: { 200: doc(Any), ...errors } } }, async (req) => {
    const { id } = req.params as z.output<typeof IdParam>;
    const d = await store.getDecision(id);
    if (!d) throw notFound(`decision ${id} not found`);
    return d;
  });

  app.get('/v1/statements', { onRequest: reviewer, schema: { tags: ['decisions'], summary: 'Statements of reasons, newest first', security: bearer, querystring: zs(ListQuery), response: { 200: doc(z.object({ statements: z.array(Any) })), ...errors } } }, async (req) => ({
    statements: await store.listStatements(req.query as z.output<typeof ListQuery>),
  }));

  app.get(
    '/v1/statements/:id',
    {
      // The streamer concerned may read its own statements (publish token for that stream).
      onRequest: guard(['reviewer', 'publisher']),
      schema: { tags: ['decisions'], summary: 'One statement of reasons (DSA Art. 17(3))', security: bearer, params: zs(IdParam), response: { 200: doc(Any), ...errors } },
    },
    async (req) => {
      const { id } = req.params as z.output<typeof IdParam>;
      const s = await store.getStatement(id);
      if (!s) throw notFound(`statement ${id} not found`);
      if (req.principal?.role === 'publisher' && req.principal.streamId !== s.streamId) throw forbidden(`statement ${id} concerns another stream`);
      return s;
    },
  );

  // ---- review queue

  app.get('/v1/review', { onRequest: reviewer, schema: { tags: ['review'], summary: 'Review queue (appeals first, then oldest)', security: bearer, querystring: zs(ReviewQuery), response: { 200: doc(z.object({ items: z.array(Any), depth: z.number() })), ...errors } } }, async (req) => {
    const q = req.query as z.output<typeof ReviewQuery>;
    const [items, depth] = await Promise.all([store.listReview({ includeResolved: q.includeResolved === 'true', type: q.type, streamId: q.streamId, limit: q.limit }), store.reviewDepth()]);
    return { items, depth };
  });

  app.get('/v1/review/:id', { onRequest: reviewer, schema: { tags: ['review'], summary: 'One review item', security: bearer, params: zs(IdParam), response: { 200: doc(Any), ...errors } } }, async (req) => {
    const { id } = req.params as z.output<typeof IdParam>;
    const item = await store.getReview(id);
    if (!item) throw notFound(`review item ${id} not found`);
    return item;
  });

  app.post(
    '/v1/review/claim',
    { onRequest: reviewer, schema: { tags: ['review'], summary: 'Claim an item (or the next one); the claim expires', security: bearer, body: zs(ClaimBody), response: { 200: doc(Any), 204: { type: 'null' }, ...errors } } },
    async (req, reply) => {
      const body = (req.body ?? {}) as z.output<typeof ClaimBody>;
      const item = await store.claimReview(who(req), ctx.reviewClaimMs, body.itemId);
      if (!item) return reply.code(204).send();
      await store.appendAudit({ type: 'review.claimed', itemId: item.id, streamId: item.streamId, by: who(req), until: item.claim?.expiresAt ?? null, at: Date.now() });
      return item;
    },
  );

  app.post(
    '/v1/review/:id/resolve',
    { onRequest: reviewer, schema: { tags: ['review'], summary: 'Resolve a claimed item: uphold or overturn; applies the effect and issues a statement', security: bearer, params: zs(IdParam), body: zs(ResolveBody), response: { 200: doc(Any), 409: doc(ErrorReply), ...errors } } },
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
      const decision = resolveReview(item, resolution, ctx.policies.current);
      // The store re-checks the claim atomically: a claim that lapsed meanwhile fails here, before any effect.
      const resolved = await store.resolveReview(id, reviewerId, resolution, { decisionId: decision.id, outcomeStatementId: decision.statement?.id });
      if (decision.statement) await store.putStatement(decision.statement);
      await control.applyReviewDecision(decision);
      void control.publishQueueDepth();
      return { item: resolved, decision };
    },
  );

  // ---- appeals (the statement's redress.appealUrl is /v1/appeals/:statementId)

  app.post(
    '/v1/appeals/:id',
    {
      onRequest: guard(['publisher']),
      schema: { tags: ['appeals'], summary: 'The streamer appeals a statement of reasons: a priority review item', security: bearer, params: zs(IdParam), body: zs(AppealBody), response: { 201: doc(Any), ...errors } },
    },
    async (req, reply) => {
      const { id } = req.params as z.output<typeof IdParam>;
      const body = req.body as z.output<typeof AppealBody>;
      const statement = await store.getStatement(id);
      if (!statement) throw notFound(`statement ${id} not found`);
      if (req.principal?.role === 'publisher' && req.principal.streamId !== statement.streamId) throw forbidden(`statement ${id} concerns another stream`);
      const at = Date.now();
      const item = createAppeal(statement, { appellant: who(req), grounds: body.grounds, at });
      const stored = await control.enqueueReview(item);
      await store.appendAudit({ type: 'appeal.filed', statementId: id, streamId: statement.streamId, itemId: item.id, by: who(req), at });
      return reply.code(201).send(stored);
    },
  );

  app.get(
    '/v1/appeals/:id',
    { onRequest: guard(['reviewer', 'publisher']), schema: { tags: ['appeals'], summary: 'Appeals of a statement and their outcomes', security: bearer, params: zs(IdParam), response: { 200: doc(Any), ...errors } } },
    async (req) => {
      const { id } = req.params as z.output<typeof IdParam>;
      const statement = await store.getStatement(id);
      if (!statement) throw notFound(`statement ${id} not found`);
      if (req.principal?.role === 'publisher' && req.principal.streamId !== statement.streamId) throw forbidden(`statement ${id} concerns another stream`);
      const items = (await store.listReview({ includeResolved: true, type: 'appeal', streamId: statement.streamId, limit: 1000 })).filter((i) => i.statementId === id);
      return { statementId: id, appeals: items };
    },
  );

  app.get('/v1/appeals', { onRequest: reviewer, schema: { tags: ['appeals'], summary: 'All appeals', security: bearer, querystring: zs(ListQuery), response: { 200: doc(Any), ...errors } } }, async (req) => {
    const q = req.query as z.output<typeof ListQuery>;
    return { appeals: await store.listReview({ includeResolved: true, type: 'appeal', streamId: q.streamId, limit: q.limit }) };
  });

  // ---- policies

  app.get('/v1/policies', { onRequest: reviewer, schema: { tags: ['policies'], summary: 'The active policy', security: bearer, response: { 200: doc(Any), ...errors } } }, async () => {
    if (!ctx.policies.loaded) return { loaded: false };
    const p = ctx.policies.current;
    return { loaded: true, version: p.version, name: p.name, files: p.files, appealUrl: p.appealUrl, categories: Object.keys(p.taxonomy), jurisdictions: Object.keys(p.jurisdictions), policy: p };
  });

  const validate = (files: { filename: string; text: string }[]) => {
    try {
      const policy = loadPolicyBundle(files);
      return { ok: true as const, version: policy.version, changes: diffPolicies(ctx.policies.loaded ? ctx.policies.current : undefined, policy) };
    } catch (err) {
      if (err instanceof PolicyError) return { ok: false as const, code: err.code, message: err.message, issues: err.issues };
      throw err;
    }
  };

  app.post(
    '/v1/policies/validate',
    { onRequest: admin, schema: { tags: ['policies'], summary: 'Check policy files without activating them (file:line issues, or the diff)', security: bearer, body: zs(PolicyFiles), response: { 200: doc(Any), ...errors } } },
    async (req) => validate((req.body as z.output<typeof PolicyFiles>).files),
  );

  app.post(
    '/v1/policies/activate',
    { onRequest: admin, schema: { tags: ['policies'], summary: 'Activate policy files (or reload the policy directory) on every node (audited)', security: bearer, body: zs(ActivateBody), response: { 200: doc(Any), ...errors } } },
    async (req) => {
      const body = (req.body ?? {}) as z.output<typeof ActivateBody>;
      const files = body.files ?? (await readPolicyDir(ctx.policyDir));
      const r = ctx.policies.load(files, who(req));
      if (!r.ok) throw r.error;
      await store.publishControl({ type: 'policy', files, by: who(req), origin: ctx.nodeId, at: Date.now() });
      return { version: r.policy.version, previousVersion: r.previousVersion ?? null, changes: r.changes };
    },
  );

  // ---- models, audit, tokens

  app.get('/v1/models', { onRequest: reviewer, schema: { tags: ['models'], summary: 'Model and inference backend status', security: bearer, response: { 200: doc(Any), ...errors } } }, async () => await ctx.modelStatus());

  app.get('/v1/audit', { onRequest: admin, schema: { tags: ['audit'], summary: 'Audit log entries with chain verification', security: bearer, querystring: zs(AuditQuery), response: { 200: doc(Any), ...errors } } }, async (req) => {
    const q = req.query as z.output<typeof AuditQuery>;
    const entries = await store.readAudit({ afterSeq: q.afterSeq, limit: q.limit });
    let anchor = q.afterSeq ? (await store.readAudit({ afterSeq: q.afterSeq - 1, limit: 1 }))[0] : undefined;
    // Retention trimmed the log's start (docs/RETENTION.md): the chain is verified from the first kept
    // entry on, which names its predecessor's hash.
    const first = entries[0];
    const trimmed = first !== undefined && first.seq > 1 && (!anchor || anchor.seq !== first.seq - 1);
    if (trimmed) anchor = { ...first, seq: first.seq - 1, hash: first.prevHash };
    return { entries, verification: verifyAuditChain(entries, anchor), ...(trimmed ? { verifiedFromSeq: first.seq } : {}) };
  });

  app.post('/v1/tokens', { onRequest: admin, schema: { tags: ['auth'], summary: 'Issue a token', security: bearer, body: zs(TokenBody), response: { 201: doc(z.object({ token: z.string() })), ...errors } } }, async (req, reply) => {
    const b = req.body as z.output<typeof TokenBody>;
    const token = await auth.sign({ role: b.role, sub: b.sub, streamId: b.streamId, jurisdiction: b.jurisdiction, viewerId: b.viewerId }, b.ttlSeconds ?? '12h');
    await store.appendAudit({ type: 'token.issued', role: b.role, streamId: b.streamId ?? null, by: who(req), at: Date.now() });
    return reply.code(201).send({ token });
  });
}
