// Composition root: buildServer wires the SFU, the store, auth, the enforcer (policies), the event
// hub, metrics and the HTTP surface (WHIP/WHEP from routes/webrtc.ts, the /v1 API, /ops, /metrics).
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import websocket from '@fastify/websocket';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import { createSfu, type CreatedSfu } from '../sfu/engine.ts';
import type { Sfu } from '../sfu/types.ts';
import { reviewQueueStats, worstBucket } from '../policies/index.ts';
import { Auth } from './auth.ts';
import { auditKeyOf, publicUrlOf, type Config } from './config.ts';
import { StreamControl } from './control.ts';
import { Enforcer, type DecisionLog } from './enforcer.ts';
import { PolicyStore } from './policy-store.ts';
import { SrvError, replyError, statusText } from './errors.ts';
import { ModerationStack } from './moderation.ts';
import { ModerationPipeline, type PipelineObserver } from './pipeline.ts';
import { EventHub } from './events.ts';
import { ServerMetrics } from './metrics.ts';
import { guardOf } from './routes/access.ts';
import { appealRoutes } from './routes/appeals.ts';
import { auditRoutes } from './routes/audit.ts';
import { decisionRoutes } from './routes/decisions.ts';
import { healthRoutes } from './routes/health.ts';
import { modelRoutes } from './routes/models.ts';
import { policyRoutes } from './routes/policies.ts';
import { reportRoutes } from './routes/reports.ts';
import { ReviewDeadlineWatch } from './review-deadlines.ts';
import { reviewRoutes } from './routes/review.ts';
import { streamRoutes } from './routes/streams.ts';
import { tokenRoutes } from './routes/tokens.ts';
import { bankRoutes } from './routes/banks.ts';
import { chatRoutes } from './routes/chat.ts';
import { webhookRoutes } from './routes/webhooks.ts';
import { WebhookDispatcher, type WebhookEventType } from './webhooks.ts';
import { EvidenceRecorder } from './evidence.ts';
import { evidenceRoutes } from './routes/evidence.ts';
import { createStore, DurableStore, OutboxQueuedError, type AuditChainAlarm } from './store/index.ts';
import { WebrtcSessions } from './sessions.ts';
import { bearerOf } from './auth.ts';
import type { DecisionRecord, Store } from './store/types.ts';
import { configureRealtime, realtimeSelf } from '../threads/index.ts';

const PAGES = join(dirname(fileURLToPath(import.meta.url)), 'pages');

export interface ServerDeps {
  /** Media engine. Default: the werift engine (sfu/werift) on config.announcedAddress. */
  sfu?: Sfu;
  /** Store. Default from config (memory, or Redis with REDIS_URL, then through this node's outbox). A given store is not closed by close(). */
  store?: Store;
  /** HMAC key the given store chains its audit log with (its auditKey option). Default: none for a given store (plain sha256); config.ts auditKeyOf for the store made here. */
  auditKey?: string;
  auth?: Auth;
  policies?: PolicyStore;
  enforcer?: Enforcer;
  /** WHIP/WHEP and /publish, /watch. Default: routes/webrtc.ts; false = none. */
  webrtc?: boolean;
  /** Model and backend status for /v1/models (issue 4). Default: the moderation stack's. */
  modelStatus?: () => unknown;
  /** Moderation stack (samplers + models). Default: loaded from config when config.moderation; false = none. A given stack is not closed by close(). */
  moderation?: ModerationStack | false;
  /** Logger; default pino at config.logLevel. */
  logger?: FastifyBaseLogger;
}

export interface Server {
  readonly app: FastifyInstance;
  readonly sfu: Sfu;
  /** Which forwarding engine runs and why (the startup summary's line). */
  readonly sfuSummary: string;
  readonly store: Store;
  readonly events: EventHub;
  /** Signed webhook deliveries of the hub's events (server/webhooks.ts). */
  readonly webhooks: WebhookDispatcher;
  /** Evidence clips of restrictive decisions (server/evidence.ts); undefined when config.evidence is off. */
  readonly evidence: EvidenceRecorder | undefined;
  readonly metrics: ServerMetrics;
  readonly auth: Auth;
  readonly control: StreamControl;
  readonly enforcer: Enforcer;
  readonly policies: PolicyStore;
  /** Announces review items past their due time (issue 17). */
  readonly reviewDeadlines: ReviewDeadlineWatch;
  /** Samplers and models, when moderation is on. */
  readonly moderation: ModerationStack | undefined;
  readonly pipeline: ModerationPipeline | undefined;
  readonly config: Config;
  readonly nodeId: string;
  /** Base URL once listening (http://host:port). */
  readonly url: string;
  listen(): Promise<{ url: string; port: number }>;
  /** Graceful shutdown: sockets told, sessions closed, audit and store writes flushed. Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

function decisionRecordOf(d: DecisionLog): DecisionRecord {
  const bucket = worstBucket(Object.values(d.buckets), d.kill ? 'red' : 'green');
  const first = d.restrictions[0] ?? d.lifted[0];
  return {
    id: d.id,
    streamId: d.streamId,
    at: d.at,
    source: d.source,
    bucket,
    action: d.kill
      ? 'kill_stream'
      : d.restrictions.length
        ? d.restrictions.map((r) => r.action).join('+')
        : d.lifted.length
          ? `lift:${d.lifted.map((r) => r.action).join('+')}`
          : 'allow',
    jurisdictions: [...new Set([...d.restrictions, ...d.lifted].flatMap((r) => r.jurisdictions))],
    statementId: first?.statementId || undefined,
    policyVersion: d.policyVersion,
    details: { ...d },
  };
}

export async function buildServer(config: Config, deps: ServerDeps = {}): Promise<Server> {
  const startedAt = Date.now();
  // before any moderation thread starts: the decision class takes its real-time priority at spawn
  const realtime = config.moderationRealtimePriority;
  configureRealtime(realtime);
  const app = Fastify({
    loggerInstance: deps.logger,
    ...(deps.logger
      ? {}
      : {
          logger:
            config.logLevel === 'silent' ? false : { level: config.logLevel, serializers: { req: requestForLog } },
        }),
    // Bodies larger than this are refused before parsing (policy files are the largest we take).
    bodyLimit: 2 * 1024 * 1024,
    // A request must arrive in full within this long (a slow-loris client holds no socket for ever).
    requestTimeout: config.httpRequestTimeoutMs,
    trustProxy: config.trustProxy,
    // What Node's HTTP parser refuses (unknown method, oversized headers, bad header lines, a chunked
    // GET) is answered in the house shape too: a coded SRV_ERR_BAD_REQUEST (431 for header overflow).
    clientErrorHandler: (err: Error & { code?: string }, socket) => {
      if (!socket.writable || (socket as { bytesWritten?: number }).bytesWritten) {
        socket.destroy();
        return;
      }
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      const body = JSON.stringify(
        new SrvError('SRV_ERR_BAD_REQUEST', `the request could not be parsed (${err.code ?? 'malformed'})`, {
          statusCode: status,
        }),
      );
      socket.end(
        `HTTP/1.1 ${status} ${statusText(status)}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    },
  });
  const log = app.log;
  // An Expect other than 100-continue: Node answers an empty 417; say why, coded.
  app.server.on('checkExpectation', (_req, res) => {
    const body = JSON.stringify(
      new SrvError('SRV_ERR_BAD_REQUEST', 'only Expect: 100-continue is supported', { statusCode: 417 }),
    );
    res.writeHead(417, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      connection: 'close',
    });
    res.end(body);
  });
  const ownStore = !deps.store;
  const auditKey = deps.store ? deps.auditKey : auditKeyOf(config).key;
  // Alarms raised while the store opens (the chain head checked at start) wait for the metrics and the event hub.
  let alarmSink: ((alarm: AuditChainAlarm) => void) | undefined;
  const earlyAlarms: AuditChainAlarm[] = [];
  const store =
    deps.store ??
    (await createStore({
      auditKey,
      outbox: config.redisUrl
        ? {
            dir: config.outboxDir,
            nodeId: config.nodeId,
            maxRecords: config.outboxMaxRecords,
            checkpointEvery: config.auditCheckpointEvery,
            onAlarm: (a) => (alarmSink ? alarmSink(a) : earlyAlarms.push(a)),
            onCheckpoint: (c) =>
              log.info({ auditCheckpoint: { seq: c.seq, hash: c.hash, at: c.at } }, 'audit checkpoint'),
            onDrop: (what, why, err) =>
              log.error(
                { what, why, err: err instanceof Error ? err.message : err },
                `outbox: ${what} record ${why === 'full' ? 'refused, the outbox is full' : 'refused by the store for good'}`,
              ),
          }
        : undefined,
      redisUrl: config.redisUrl,
      redisPrefix: config.redisPrefix,
      retention: {
        maxAudit: config.storeMaxAudit,
        maxRecords: config.storeMaxRecords,
        maxResolvedReview: config.storeMaxResolvedReview,
        maxOpenReview: config.storeMaxOpenReview,
        maxThumbnailBytes: config.storeMaxThumbnailBytes,
        thumbnailRetentionMs: config.storeThumbnailRetentionMs,
        retentionMs: config.storeRetentionMs,
      },
      onError: (() => {
        let last = 0;
        return (err: SrvError) => {
          if (Date.now() - last > 5000) {
            last = Date.now();
            log.warn({ err: err.message }, 'redis connection');
          }
        };
      })(),
    }));
  const ownSfu = !deps.sfu;
  let sfuSummary = `${deps.sfu?.engine ?? 'unknown'} (given by the caller)`;
  let created: CreatedSfu | undefined;
  if (!deps.sfu) {
    created = await createSfu({
      engine: config.sfuEngine,
      announcedAddress: config.announcedAddress,
      listenAddress: config.mediaListenAddress,
      udpPortRange: config.udpPortRange,
      mediasoupWorkers: config.mediasoupWorkers,
      mediasoupRealtimePriority: config.mediasoupRealtimePriority,
      mediasoupRealtimeMaxCpu: config.mediasoupRealtimeMaxCpu,
      idleTimeoutMs: config.sessionIdleTimeoutMs,
    });
    sfuSummary = created.summary;
  }
  const theSfu = deps.sfu ?? created!.sfu;
  // Both engines encode their slate pictures at start (node-av). Until then blanking sends no
  // video, so readiness waits for it; shutdown waits for it too (exiting mid-encode crashes node-av).
  const slateReady = theSfu.slateReady;
  let slateDone = false;
  void slateReady.finally(() => (slateDone = true));
  const auth =
    deps.auth ??
    new Auth({
      secret: config.authSecret,
      anonymousViewers: config.anonymousViewers,
      trustJurisdictionHeader: config.trustJurisdictionHeader,
    });
  const sessions = new WebrtcSessions(theSfu, {
    maxStreams: config.maxStreams,
    maxViewers: config.maxViewers,
    maxPending: config.maxPendingSessions,
    maxPendingPerClient: config.maxPendingSessionsPerClient,
  });
  const events = new EventHub({
    auth,
    store,
    nodeId: config.nodeId,
    viewerOfSession: (streamId, id) => sessions.viewerOf(streamId, id),
    maxPerClient: config.maxWsPerClient,
    streamState: async (streamId) => {
      const local = theSfu.getStream(streamId);
      if (local && !local.closed) return 'live';
      return (await store.getStream(streamId))?.state;
    },
  });
  const metrics = new ServerMetrics({ sfu: theSfu });
  const webhooks = new WebhookDispatcher({
    dir: config.webhookDir,
    nodeId: config.nodeId,
    endpoints: config.webhooks.map((w) => ({ ...w, events: w.events as WebhookEventType[] | undefined })),
    backoffMinMs: config.webhookBackoffMinMs,
    backoffMaxMs: config.webhookBackoffMaxMs,
    maxAgeMs: config.webhookMaxAgeMs,
    timeoutMs: config.webhookTimeoutMs,
    maxQueueBytes: config.webhookMaxQueueBytes,
    audit: (b) => store.appendAudit(b),
    onAttempt: (endpoint, outcome, latencyMs) => metrics.recordWebhookAttempt(endpoint, outcome, latencyMs),
    log: (level, msg, fields) => log[level](fields ?? {}, msg),
  });
  webhooks.observe(events);
  metrics.setWebhookStats(() => webhooks.stats());
  const storeStats = store.retentionStats?.bind(store);
  if (storeStats) metrics.setStoreStats(storeStats);
  metrics.setReviewQueueStats(async () => reviewQueueStats(await store.listReview({ limit: 5000 }), Date.now()));
  if (store instanceof DurableStore) metrics.setOutboxStats(() => store.outboxStats());
  const portError = (error: unknown, context: string): void => {
    // kept in the outbox and delivered once the store is back: not a failure of the port
    if (error instanceof OutboxQueuedError) return;
    log.warn({ err: error instanceof Error ? error.message : String(error), context }, 'enforcer port failed');
  };
  const policies =
    deps.policies ?? new PolicyStore({ audit: { append: (b) => store.appendAudit(b) }, onError: portError });
  let control: StreamControl | undefined;
  let pipeline: ModerationPipeline | undefined;
  const evidence = config.evidence
    ? new EvidenceRecorder({
        sfu: theSfu,
        dir: config.evidenceDir,
        dirs: config.evidenceDirs,
        retentionMs: config.evidenceRetentionMs,
        retention: config.evidenceRetention,
        beforeMs: config.evidenceBeforeMs,
        afterMs: config.evidenceAfterMs,
        maxRingBytes: config.evidenceRingBytes,
        sweepMs: config.evidenceSweepMs,
        citedFrames: (streamId, seqs) => pipeline?.citedFrames(streamId, seqs),
        citedAudio: (streamId, seqs) => pipeline?.citedAudio(streamId, seqs),
        audit: (b) => store.appendAudit(b),
        log: (level, msg, fields) => log[level](fields ?? {}, msg),
      })
    : undefined;
  if (evidence) metrics.setEvidenceStats(() => evidence.stats());
  const enforcer =
    deps.enforcer ??
    new Enforcer({
      streams: theSfu,
      policies,
      audit: { append: (b) => store.appendAudit(b) },
      review: {
        enqueue: (item) =>
          control?.enqueueReview(item, {
            thumbnail: pipeline?.thumbnailFor(item.streamId, item.evidence.thumbnailRefs),
            clips: evidence?.captureFor({
              id: item.id,
              streamId: item.streamId,
              action: item.proposedAction ?? 'review',
              jurisdictions: item.jurisdictions,
              sampleSeqs: item.evidence.sampleSeqs,
            }),
          }),
      },
      evidence,
      shadow: {
        record: (differences) => {
          metrics.recordShadowDifferences(differences);
          return store.appendShadowDifferences(differences);
        },
      },
      events: { emit: (audience, message) => events.broadcast(audience, message) },
      records: {
        statement: (s) => store.putStatement(s),
        decision: (d) => store.putDecision(decisionRecordOf(d)),
        block: (streamId, reason, statementId) =>
          store.setBlock({ streamId, reason, statementId, at: Date.now(), by: 'enforcer' }),
        unblock: (streamId) => store.clearBlock(streamId),
      },
      onDecision: (d) => {
        metrics.recordDecision(decisionRecordOf(d).bucket, d.source);
        if (d.kill) metrics.recordKill(d.source === 'automated' ? 'automated' : 'review', d.latency?.fromArrivedMs);
      },
      onError: portError,
    });
  if (!policies.loaded) {
    // the cluster's active policy, when the store keeps one (an activation outlives a restart), else POLICY_DIR
    const active = await store.getActivePolicy().catch((err: unknown) => {
      log.warn(
        { err: err instanceof Error ? err.message : String(err) },
        'store: the cluster policy could not be read; loading POLICY_DIR',
      );
      return undefined;
    });
    const fromStore = active
      ? policies.load(active.files, `${active.by} (restored from the store at startup)`)
      : undefined;
    if (fromStore && !fromStore.ok)
      log.error(
        { err: fromStore.error.message, version: active?.version },
        'the cluster policy in the store does not load here; loading POLICY_DIR',
      );
  }
  if (!policies.loaded) {
    const r = await policies
      .loadDir(config.policyDir, 'startup')
      .catch((err: unknown) => ({ ok: false as const, error: err as Error }));
    if (!r.ok)
      log.error({ err: r.error.message, dir: config.policyDir }, 'policy did not load; /readyz reports not ready');
  }
  if (policies.loaded && !policies.shadow) {
    // the cluster's shadow run (issue 17) goes on on a node that (re)starts during it
    const shadow = await store.getShadowPolicy().catch((err: unknown) => {
      log.warn(
        { err: err instanceof Error ? err.message : String(err) },
        'store: the shadow candidate could not be read',
      );
      return undefined;
    });
    const r = shadow
      ? policies.startShadow(
          shadow.files ? { files: shadow.files } : { thresholds: shadow.thresholds ?? [] },
          `${shadow.by} (restored from the store at startup)`,
        )
      : undefined;
    if (r && !r.ok)
      log.error(
        { err: r.error.message, version: shadow?.version },
        'the shadow candidate in the store does not load here',
      );
  }

  let moderation: ModerationStack | undefined;
  const ownModeration = deps.moderation === undefined;
  if (deps.moderation !== false && (deps.moderation || config.moderation)) {
    const stack =
      deps.moderation ||
      (await ModerationStack.load({
        backend: config.inferenceBackend,
        tritonUrl: config.tritonUrl,
        modelCacheDir: config.modelCacheDir,
        policy: policies.current,
        bankDir: config.bankDir,
        ocr: config.ocr,
        vad: config.vad,
        budgetMs: config.budgetMs,
        log: (level, msg) => log[level](msg),
      }));
    policies.onChange((p) => stack.setPolicy(p));
    moderation = stack;
    // Moderation threads that crash are restarted by their owners; ops hear of each crash (issue 12).
    stack.on('worker', (e) => {
      metrics.recordWorkerEvent(e.worker, e.type);
      if (e.type !== 'crash') return;
      log.warn({ worker: e.worker, err: e.message, restartInMs: e.restartInMs }, 'moderation worker crashed');
      const message = `moderation worker ${e.worker} crashed (${e.message}); restarting in ${e.restartInMs} ms`;
      events.emit({ roles: ['ops'] }, { type: 'warning', message, at: Date.now() });
      events.emit(
        { roles: ['ops'] },
        { type: 'moderation.degraded', cause: 'worker_crash', degraded: true, message, at: Date.now() },
      );
    });
    pipeline = new ModerationPipeline({
      sfu: theSfu,
      samplers: stack.samplers,
      moderator: stack.moderator,
      enforcer,
      stallMs: config.moderationStallMs,
      tapMode: config.moderationTap,
      observer: pipelineMetrics(metrics, stack, config.budgetMs, log, events),
    });
    const thePipeline = pipeline;
    metrics.setModerationDrops(() => {
      const d = { tap: 0, sampler: 0, inflight: 0 };
      for (const p of thePipeline.stats()) {
        d.tap += p.tapDropped;
        d.inflight += p.droppedInFlight;
      }
      for (const s of stack.samplers.stats()) d.sampler += s.drops;
      return d;
    });
  }
  let boundUrl = publicUrlOf(config);
  control = new StreamControl({
    sfu: theSfu,
    store,
    events,
    metrics,
    enforcer,
    evidence,
    policies,
    banks: moderation,
    nodeId: config.nodeId,
    streamTtlMs: config.streamTtlMs,
    heartbeatMs: config.heartbeatMs,
    publicUrl: () => boundUrl,
    log,
  });
  const theControl = control;
  // the cluster's bank edits before the first stream: a restarted node matches what was added meanwhile
  await theControl.syncBanks();
  theControl.start();
  const reviewDeadlines = new ReviewDeadlineWatch({
    store,
    events,
    onError: (err) =>
      log.warn({ err: err instanceof Error ? err.message : String(err) }, 'review deadline check failed'),
  });
  reviewDeadlines.start();
  alarmSink = (alarm) => {
    // the chain went backwards or was rewritten: loud (log, metric, ops event, an audit entry of the new chain), and this node's blocks written again
    log.error({ alarm }, alarm.message);
    metrics.recordAuditAlarm(alarm.kind);
    events.emit(
      { roles: ['ops'] },
      { type: 'warning', message: `audit chain alarm (${alarm.kind}): ${alarm.message}`, at: Date.now() },
    );
    store
      .appendAudit({
        type: 'audit.chain_alarm',
        kind: alarm.kind,
        expected: alarm.expected,
        found: alarm.found,
        nodeId: config.nodeId,
        at: Date.now(),
      })
      .catch((err: unknown) => portError(err, 'audit append (chain alarm)'));
    theControl.restoreBlocks();
  };
  for (const a of earlyAlarms.splice(0)) alarmSink(a);

  app.setErrorHandler((err: FastifyError, req, reply) => {
    const body = replyError(err);
    if ((body.statusCode === 503 || body.statusCode === 429) && !reply.hasHeader('retry-after'))
      reply.header('retry-after', '5');
    if (body.statusCode >= 500 && body.statusCode !== 503) req.log.error({ err }, 'request failed');
    if (body.statusCode === 401) reply.header('www-authenticate', 'Bearer realm="moderating-sfu"');
    void reply.code(body.statusCode).send(body);
  });
  app.setNotFoundHandler((req, reply) => {
    void reply
      .code(404)
      .send(new SrvError('SRV_ERR_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`).toJSON());
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'moderating-sfu',
        description: 'Admin, review and live-stream API of the moderating WebRTC SFU',
        version: '0.1.0',
      },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
  });
  // Per client address: every route (health probes exempt), and the offers (WHIP/WHEP) tighter.
  await app.register(rateLimit, {
    global: config.rateLimitApi > 0,
    max: config.rateLimitApi || 1,
    timeWindow: '1 minute',
    allowList: (req) => req.url === '/healthz' || req.url === '/readyz',
    errorResponseBuilder: (_req, ctx) =>
      new SrvError('SRV_ERR_RATE_LIMITED', `more than ${ctx.max} requests in ${ctx.after}; retry later`).toJSON(),
  });
  await app.register(websocket, { options: { maxPayload: 64 * 1024 } });
  events.register(app);

  if (deps.webrtc !== false) {
    const { webrtcRoutes, pageRoutes } = await import('./routes/webrtc.ts');
    await app.register(webrtcRoutes, {
      sfu: theSfu,
      sessions,
      offersPerMinute: config.rateLimitSessions,
      maxSdpBytes: config.maxSdpBytes,
      iceServers: config.iceServers,
      authorizePublish: async (req, streamId) => {
        await auth.authorizePublish(req, streamId);
        const block = await theControl.blockOf(streamId);
        if (block)
          throw new SrvError(
            'SRV_ERR_STREAM_BLOCKED',
            `stream ${streamId} was killed (${block.reason}) and may not publish until resumed or the appeal succeeds${block.statementId ? `; statement ${block.statementId}` : ''}`,
          );
        // The same publish token again while the stream is live = the streamer reconnecting after a crash.
        const token = bearerOf(req);
        return { credential: token ? createHash('sha256').update(token).digest('base64url') : undefined };
      },
      // The viewer id comes from the token or from the engine, never from the client's query (an
      // anonymous ?viewerId= could evict another viewer).
      authorizeView: async (req, streamId) => {
        const v = await auth.authorizeView(req, streamId);
        return { jurisdiction: v.jurisdiction, viewerId: v.viewerId };
      },
      initialGate: (streamId, jurisdiction) => theControl.initialGate(streamId, jurisdiction),
    });
    await app.register(pageRoutes);
  }

  // The HTTP API, one plugin per area, all behind the same guard (routes/access.ts).
  const guard = guardOf(auth);
  await app.register(healthRoutes, {
    store,
    metrics,
    nodeId: config.nodeId,
    startedAt,
    policyLoaded: () => policies.loaded,
    sfuReady: () => slateDone,
    metricsToken: config.metricsToken,
  });
  await app.register(streamRoutes, { guard, store, control: theControl });
  await app.register(decisionRoutes, { guard, store });
  await app.register(reviewRoutes, {
    guard,
    store,
    control: theControl,
    policies,
    reviewClaimMs: config.reviewClaimMs,
  });
  await app.register(appealRoutes, { guard, store, control: theControl, policies });
  await app.register(policyRoutes, { guard, store, policies, policyDir: config.policyDir, nodeId: config.nodeId });
  const modelStatus =
    deps.modelStatus ??
    (moderation ? () => ({ ...moderation.status(), pipeline: pipeline?.stats() ?? [] }) : undefined) ??
    (() => ({
      backend: config.inferenceBackend,
      tritonUrl: config.tritonUrl ?? null,
      modelCacheDir: config.modelCacheDir,
      models: [],
      wired: false,
    }));
  await app.register(modelRoutes, { guard, modelStatus });
  await app.register(reportRoutes, { guard, store });
  await app.register(auditRoutes, {
    guard,
    store,
    auditKey,
    checkpoints: store instanceof DurableStore ? () => store.checkpointFile.list() : undefined,
  });
  await app.register(tokenRoutes, { guard, auth, store });
  await app.register(bankRoutes, {
    guard,
    store,
    moderation,
    nodeId: config.nodeId,
    syncBanks: () => theControl.syncBanks(),
  });
  await app.register(chatRoutes, { auth, store, events, policies, moderation });
  await app.register(webhookRoutes, { guard, webhooks });
  if (evidence) await app.register(evidenceRoutes, { guard, evidence });

  app.get('/openapi.json', { schema: { hide: true } as Record<string, unknown> }, async () => app.swagger());
  app.get('/ops', { schema: { hide: true } as Record<string, unknown> }, async (_req, reply) => {
    reply.header('cache-control', 'no-store');
    return reply.type('text/html; charset=utf-8').send(await readFile(join(PAGES, 'ops.html'), 'utf8'));
  });

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      await theControl.close();
      reviewDeadlines.close();
      pipeline?.close();
      events.close();
      enforcer.close();
      if (!slateDone) await Promise.race([slateReady, new Promise((r) => setTimeout(r, 10_000).unref())]);
      // Sessions end with 'shutdown'; their registry updates are store writes flushed below.
      if (ownSfu) await theSfu.close().catch((err: unknown) => log.error({ err }, 'sfu close'));
      // clips of decisions taken just before the shutdown are finished (their streams just closed)
      if (evidence) await Promise.race([evidence.idle(), new Promise((r) => setTimeout(r, 5000).unref())]);
      evidence?.close();
      await app.close().catch((err: unknown) => log.error({ err }, 'http close'));
      if (ownModeration) await moderation?.close().catch((err: unknown) => log.error({ err }, 'moderation close'));
      webhooks.close();
      await store.flush();
      if (ownStore) await store.close();
      metrics.close();
    })());

  const server: Server = {
    app,
    sfu: theSfu,
    sfuSummary,
    store,
    events,
    webhooks,
    evidence,
    metrics,
    auth,
    control: theControl,
    enforcer,
    policies,
    reviewDeadlines,
    moderation,
    pipeline,
    config,
    nodeId: config.nodeId,
    get url() {
      return boundUrl;
    },
    async listen() {
      await app.listen({ port: config.port, host: config.host });
      const addr = app.server.address();
      const port = typeof addr === 'object' && addr ? addr.port : config.port;
      boundUrl = publicUrlOf(config, port);
      if (realtime > 0) {
        // libuv's pool first, at normal priority (it starts on first use and inherits the policy)
        await stat('.');
        const mainPriority = Math.max(1, realtime - 5);
        const failed = realtimeSelf(mainPriority);
        if (failed)
          app.log.warn({ err: failed }, 'MODERATION_REALTIME_PRIORITY: the main thread stays at normal priority');
        else app.log.info({ main: mainPriority, decision: realtime }, 'moderation at real-time priority');
      }
      return { url: boundUrl, port };
    },
    close,
    [Symbol.asyncDispose]: close,
  };
  return server;
}

/** What a request log line says of a request: no credentials (tokens in query strings are redacted). */
function requestForLog(req: { method: string; url: string; ip?: string }): {
  method: string;
  url: string;
  remoteAddress?: string;
} {
  return { method: req.method, url: redactUrl(req.url), remoteAddress: req.ip };
}

/** `?token=…`, `access_token=…` and the like replaced by `***` (the dev links and the events WebSocket carry tokens in URLs). */
export function redactUrl(url: string): string {
  return url.replace(/([?&](?:access_token|token|jwt|auth|key)=)[^&#]*/gi, '$1***');
}

/** Pipeline figures into the Prometheus metrics: per-stage latencies, budget misses, lag, escalations. */
function pipelineMetrics(
  metrics: ServerMetrics,
  stack: ModerationStack,
  budgetMs: number,
  log: FastifyBaseLogger,
  events: EventHub,
): PipelineObserver {
  return {
    timedOut: (_streamId, kind) => metrics.recordModerationGap(kind, 'sample_timeout'),
    stall: (streamId, kind, stalled, sinceMs) => {
      if (stalled) metrics.recordModerationGap(kind, 'stall');
      log.warn(
        { streamId, kind, sinceMs: Math.round(sinceMs) },
        stalled ? 'moderation stalled: fail mode applies' : 'moderation signals back',
      );
      const message = stalled
        ? `no ${kind} moderation signal for ${Math.round(sinceMs)} ms: moderation unavailable, the policies' fail mode applies`
        : `${kind} moderation signals are back`;
      events.emit({ roles: ['ops'], streamId }, { type: 'warning', streamId, message, at: Date.now() });
      events.emit(
        { roles: ['ops'], streamId },
        { type: 'moderation.degraded', streamId, kind, cause: 'stall', degraded: stalled, message, at: Date.now() },
      );
    },
    sample: (_sample, latencyMs) => metrics.observeStage('sample', latencyMs),
    signals: (signals, _outcome, appliedAt) => {
      const total = appliedAt - signals.arrivedAt;
      if (signals.timings.queue !== undefined) metrics.observeStage('queue', signals.timings.queue);
      if (signals.timings.inference !== undefined) metrics.observeStage('inference', signals.timings.inference);
      if (signals.timings.run !== undefined) metrics.observeStage('run', signals.timings.run);
      metrics.observeStage('decision', appliedAt - signals.completedAt);
      // the budget is the sampled frames' fast path (classifier + hashes); text and audio are measured apart
      const path = signals.kind === 'audio' ? 'audio' : signals.timings.ocr !== undefined ? 'ocr' : 'total';
      metrics.observeStage(path, total);
      if (path === 'total' && total > budgetMs) metrics.recordBudgetMiss('total');
      metrics.setClassificationLag(signals.streamId, total);
      if (signals.kind === 'video' && signals.timings.inference !== undefined)
        metrics.recordClassified(signals.escalated);
      if (stack.cascade && signals.kind === 'video' && signals.timings.ocr === undefined) {
        const outcome =
          signals.status === 'ok'
            ? 'ok'
            : signals.status === 'deadline_missed'
              ? 'deadline'
              : signals.status === 'unavailable'
                ? 'fallback'
                : 'error';
        metrics.recordInference(stack.backendName, outcome);
        metrics.setBreakerState(stack.backendName, stack.cascade.backend.breaker.stats().state);
      }
    },
    error: (error, context) =>
      log.warn({ err: error instanceof Error ? error.message : String(error), context }, 'moderation pipeline'),
  };
}
