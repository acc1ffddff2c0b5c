// Server configuration: embedded defaults < optional file (--config path, YAML or JSON) < environment
// < explicit overrides (tests, CLI). Validated with zod; `summarizeConfig` prints one screen at start.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { createHmac, randomBytes } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { SrvError } from './errors.ts';

const bool = z
  .union([z.boolean(), z.enum(['1', '0', 'true', 'false', 'yes', 'no', 'on', 'off'])])
  .transform((v) => (typeof v === 'boolean' ? v : ['1', 'true', 'yes', 'on'].includes(v)));
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
/** A value given as JSON text (environment variables) or as the parsed value (config file, overrides). */
const jsonOr = <T extends z.ZodType>(schema: T) =>
  z.preprocess((v) => {
    if (typeof v !== 'string') return v;
    try {
      return JSON.parse(v) as unknown;
    } catch {
      return v; // the schema then says what was expected
    }
  }, schema);
/** A STUN/TURN server offered to WHIP/WHEP clients (RTCIceServer's shape). */
const IceServerSchema = z
  .object({
    urls: z
      .union([z.string(), z.array(z.string()).min(1)])
      .transform((u) => (Array.isArray(u) ? u : [u]))
      .pipe(z.array(z.string().regex(/^(stun|stuns|turn|turns):[^\s<>]+$/, 'a stun:, stuns:, turn: or turns: URI'))),
    username: z.string().min(1).optional(),
    credential: z.string().min(1).optional(),
  })
  .strict()
  .refine((s) => (s.username === undefined) === (s.credential === undefined), 'username and credential go together');
const WebhookEndpointSchema = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9._-]{1,100}$/),
    url: z
      .string()
      .url()
      .refine((u) => /^https?:/.test(u), 'http(s) URL'),
    /** Newest first; two while rotating (both sign). */
    secrets: z.array(z.string().min(16)).min(1).max(2),
    events: z.array(z.string()).optional(),
    enabled: z.boolean().optional(),
  })
  .strict();

export const ConfigSchema = z
  .object({
    /** 'dev' prints ready-to-use tokens and tolerates a missing AUTH_SECRET; 'production' requires one. Default 'dev'. */
    mode: z.enum(['dev', 'production']).default('dev'),
    /** HTTP port. Default 8080; 0 picks a free one. */
    port: int(0, 65535).default(8080),
    /** Bind address. Default 0.0.0.0 (tests use 127.0.0.1). */
    host: z.string().min(1).default('0.0.0.0'),
    /** Address announced in ICE candidates (host candidates only). Default: the engine picks. */
    announcedAddress: z.string().min(1).optional(),
    /** Local address media (UDP) sockets bind to. Default: the announced address (0.0.0.0 in containers). */
    mediaListenAddress: z.string().min(1).optional(),
    /** Inclusive UDP port range for media, e.g. "40000-40199" (publish it from a container). Default: ephemeral ports. */
    udpPortRange: z
      .string()
      .regex(/^\d{1,5}-\d{1,5}$/, 'LOW-HIGH')
      .transform((v) => v.split('-').map(Number) as [number, number])
      .refine(([lo, hi]) => lo >= 1024 && hi <= 65535 && lo <= hi, 'ports 1024..65535, LOW <= HIGH')
      .optional(),
    /**
     * STUN/TURN servers offered to WHIP/WHEP clients in `Link: <uri>; rel="ice-server"` headers of the
     * 201 answer (RFC 9725 section 4.6), e.g. a TURN relay for publishers behind restrictive networks:
     * JSON `[{"urls":"turn:turn.example.net:3478?transport=udp","username":"u","credential":"p"}]`, or
     * comma-separated URIs without credentials. The server itself contacts none. Default none.
     */
    iceServers: z
      .preprocess(
        (v) =>
          typeof v === 'string' && !v.trim().startsWith('[')
            ? v
                .split(',')
                .map((u) => u.trim())
                .filter(Boolean)
                .map((urls) => ({ urls }))
            : v,
        jsonOr(z.array(IceServerSchema).max(20)),
      )
      .default([]),
    /** Forwarding engine: mediasoup (C++ workers, one per core) when a worker binary is present, else werift (pure TypeScript, on the event loop). Default 'auto'. */
    sfuEngine: z.enum(['auto', 'werift', 'mediasoup']).default('auto'),
    /** mediasoup workers (processes). Default: one per core. */
    mediasoupWorkers: int(1, 256).optional(),
    /** mediasoup workers' real-time priority (SCHED_RR 1-99, needs CAP_SYS_NICE; refused, nice -10): forwarding runs the moment packets arrive; 0 = off (nice -10). Default 10. */
    mediasoupRealtimePriority: int(0, 99).default(10),
    /** A real-time worker above this share of one core over a second goes back to nice -10 until it stays under half of it for 10 s, so it never holds a core ahead of moderation and HTTP. Default 0.75. */
    mediasoupRealtimeMaxCpu: z.coerce.number().gt(0).max(1).default(0.75),
    /**
     * Real-time priority (SCHED_RR, needs CAP_SYS_NICE) of moderation's budgeted path: the decode
     * threads, the fast classifier's and PDQ's threads at this, the main thread (event loop, batching,
     * fusion) at 5 below it (at least 1); the rest of moderation stays at normal scheduling below them.
     * On the mediasoup engine MEDIASOUP_REALTIME_PRIORITY must be above it (forwarding first). 0 = off.
     * Default 0.
     */
    moderationRealtimePriority: int(0, 98).default(0),
    /** Base URL used in links (appeal URLs, dev links). Default http://127.0.0.1:PORT. */
    publicUrl: z.string().url().optional(),
    /** Redis URL; absent = in-memory store (one node). */
    redisUrl: z.string().url().optional(),
    /** Key prefix in Redis. Default 'msfu:'. */
    redisPrefix: z.string().default('msfu:'),
    /** HS256 secret for tokens, at least 32 characters. Absent in dev mode = random per start. */
    authSecret: z.string().min(32).optional(),
    /** HMAC-SHA256 key of the audit chain, at least 32 characters; never written to the store. Default: derived from AUTH_SECRET (HMAC-SHA256(AUTH_SECRET, "msfu-audit-chain/1")); neither set (dev) = random per start. */
    auditHmacKey: z.string().min(32).optional(),
    /** Directory of this node's outbox (enforcement records on disk until Redis has them) and audit checkpoints; one per node or host, on a volume. Used with REDIS_URL. Default '.data/outbox'. */
    outboxDir: z.string().min(1).default('.data/outbox'),
    /** Most records pending in the outbox; beyond it new records are refused and counted (msfu_outbox_dropped). Default 100000. */
    outboxMaxRecords: int(1, 100_000_000).default(100_000),
    /** A checkpoint (seq, hash) of the audit chain head every this many entries a node appends, to the log and the outbox directory. Default 100. */
    auditCheckpointEvery: int(1, 10_000_000).default(100),
    /** Viewers without a token may watch (jurisdiction unknown unless the header is trusted). Default true in dev mode, false in production. */
    anonymousViewers: bool.optional(),
    /** Trust `X-Viewer-Jurisdiction` / `?jurisdiction=` set by an edge. Explicit opt-in. Default false. */
    trustJurisdictionHeader: bool.default(false),
    /** Inference backend: onnxruntime-node in process, Triton (KServe v2 gRPC), or none. Default 'onnx'. */
    inferenceBackend: z.enum(['onnx', 'triton', 'none']).default('onnx'),
    /** Triton gRPC address host:port, when inferenceBackend = 'triton'. */
    tritonUrl: z.string().optional(),
    /** Directory of policy files. Default 'policies'. */
    policyDir: z.string().default('policies'),
    /** Converted model cache. Default '.cache/models'. */
    modelCacheDir: z.string().default('.cache/models'),
    /** Id of this node in a cluster sharing Redis. Default hostname-pid-random. */
    nodeId: z
      .string()
      .min(1)
      .default(() => `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`),
    /** A live-stream registry entry expires this long after its last heartbeat (ms). Default 15000. */
    streamTtlMs: int(1000, 3_600_000).default(15_000),
    /** Heartbeat period for live streams (ms). Default 5000. */
    heartbeatMs: int(100, 600_000).default(5_000),
    /** A review claim expires after this long (ms). Default 120000. */
    reviewClaimMs: int(1000, 86_400_000).default(120_000),
    /** A connected WHIP/WHEP session whose peer sends nothing (no STUN consent check, RTP or RTCP) for this long is closed (ms; RFC 7675). Default 15000. */
    sessionIdleTimeoutMs: int(1000, 600_000).default(15_000),
    /** Live streams (publishers) this node takes; more get 503 SRV_ERR_CAPACITY with Retry-After. Default 100. */
    maxStreams: int(1, 100_000).default(100),
    /** Viewers over all streams this node takes; more get 503 SRV_ERR_CAPACITY. Default 2000. */
    maxViewers: int(1, 1_000_000).default(2000),
    /** WHIP/WHEP sessions answered but not yet connected (ICE+DTLS), over all clients; more get 503. Default 64. */
    maxPendingSessions: int(1, 100_000).default(64),
    /** Unconnected WHIP/WHEP sessions of one client address; more get 429 SRV_ERR_RATE_LIMITED. Default 8. */
    maxPendingSessionsPerClient: int(1, 100_000).default(8),
    /** WHIP/WHEP offers per client address per minute (429 beyond); 0 = no limit (load tests). Default 120. */
    rateLimitSessions: int(0, 1_000_000).default(120),
    /** Other HTTP requests per client address per minute (429 beyond; /healthz and /readyz exempt); 0 = no limit. Default 1200. */
    rateLimitApi: int(0, 10_000_000).default(1200),
    /** Events WebSocket connections per client address; more are refused with 429. Default 16. */
    maxWsPerClient: int(1, 100_000).default(16),
    /** Client address from X-Forwarded-For (behind a trusted reverse proxy only). Default false. */
    trustProxy: bool.default(false),
    /** An HTTP request must arrive in full within this long (ms; slow-loris bound). Default 30000. */
    httpRequestTimeoutMs: int(1000, 600_000).default(30_000),
    /** When set, GET /metrics requires `Authorization: Bearer <this>` (Prometheus `bearer_token`). Default unset (open). */
    metricsToken: z.string().min(16).optional(),
    /** Largest SDP body accepted on WHIP/WHEP (bytes). Default 65536. */
    maxSdpBytes: int(1024, 1_048_576).default(65_536),
    /** pino level. Default 'info'. */
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** Start the synthetic demo streams (--demo). Default false. */
    demo: bool.default(false),
    /** Moderate live streams (samplers + models + policies). Off = a plain SFU, e.g. for load-test baselines. Default true. */
    moderation: bool.default(true),
    /** Read on-screen text (PaddleOCR, about 0.5 fps per stream). Default true. */
    ocr: bool.default(true),
    /** Voice activity on audio windows (silero). Default true. */
    vad: bool.default(true),
    /** Folder of PDQ hash bank files (`<bank>.txt`). Default 'banks'. */
    bankDir: z.string().default('banks'),
    /** Budget from a frame's last packet at the server to its decision (ms). Default 100. */
    budgetMs: int(10, 10_000).default(100),
    /** Packets of a kind flowing with no moderation signal of that kind for this long (ms) counts as moderation unavailable: the policies' fail mode applies. Default 5000; 0 = no watchdog. */
    moderationStallMs: int(0, 600_000).default(5_000),
    /** How packets reach the decode threads: 'auto' = by the engine's loopback RTP links where it has them (mediasoup: worker -> decode thread, none through the event loop), else the in-process tap; 'subscribe' = always the in-process tap. Default 'auto'. */
    moderationTap: z.enum(['auto', 'subscribe']).default('auto'),
    /** Most audit entries the in-memory store holds (oldest trimmed first; Redis: XTRIM). Default 100000. */
    storeMaxAudit: int(1, 100_000_000).default(100_000),
    /** Most decisions and most statements of reasons the store keeps each (statements an open item or a block refers to are never dropped). Default 10000. */
    storeMaxRecords: int(1, 10_000_000).default(10_000),
    /** Most resolved review items kept (earliest resolved dropped first). Default 2000. */
    storeMaxResolvedReview: int(1, 10_000_000).default(2_000),
    /** Most open amber review items; beyond it new amber items are refused and counted (appeals always taken). Default 5000. */
    storeMaxOpenReview: int(1, 10_000_000).default(5_000),
    /** Most bytes of review thumbnails held in memory (resolved items' go first, then the oldest open amber items'). Default 67108864. */
    storeMaxThumbnailBytes: int(0, 2 ** 40).default(64 * 1024 * 1024),
    /** A resolved review item's thumbnail is dropped this long after resolution (ms). Default 3600000. */
    storeThumbnailRetentionMs: int(0, 2 ** 40).default(3_600_000),
    /** Decisions, unreferenced statements and resolved review items older than this are dropped (ms); 0 = count bounds only. Default 604800000 (7 days). */
    storeRetentionMs: int(0, 2 ** 40).default(7 * 86_400_000),
    /** Webhook receivers: [{ id, url, secrets: [newest, previous?], events?: [...] }] (config file, or WEBHOOKS as JSON). More can be added through /v1/webhooks. Default none. */
    webhooks: jsonOr(z.array(WebhookEndpointSchema).max(100)).default([]),
    /** Folder of the durable webhook queue and of endpoints added through the API. Default '.data/webhooks'. */
    webhookDir: z.string().min(1).default('.data/webhooks'),
    /** First retry delay of a failed webhook delivery (ms); doubles per failure up to webhookBackoffMaxMs. Default 1000. */
    webhookBackoffMinMs: int(10, 3_600_000).default(1000),
    /** Longest delay between two retries of one endpoint (ms). Default 60000. */
    webhookBackoffMaxMs: int(10, 86_400_000).default(60_000),
    /** A webhook event not delivered this long after it was queued is dropped for that endpoint (ms, audited). Default 86400000 (24 h). */
    webhookMaxAgeMs: int(1000, 30 * 86_400_000).default(86_400_000),
    /** One webhook delivery attempt's timeout (ms). Default 5000. */
    webhookTimeoutMs: int(100, 120_000).default(5000),
    /** Most bytes of pending webhook bodies on disk; beyond it the oldest are dropped (counted, audited). Default 67108864. */
    webhookMaxQueueBytes: int(1024, 2 ** 40).default(64 * 1024 * 1024),
    /** Keep an evidence clip (RTP remuxed, no transcoding) around every restrictive decision. Each live stream then holds a ring of its forwarded RTP. Default true. */
    evidence: bool.default(true),
    /** Default folder of evidence clips. Default '.data/evidence'. */
    evidenceDir: z.string().min(1).default('.data/evidence'),
    /** Evidence folder per jurisdiction, so one region's evidence stays there: {"DE": "/srv/eu/evidence"} (EVIDENCE_DIRS as JSON). Default none. */
    evidenceDirs: jsonOr(
      z.record(z.string().regex(/^[A-Z]{2}$/, 'ISO 3166-1 alpha-2, upper case'), z.string().min(1)),
    ).default({}),
    /** How long evidence clips are kept (ms); deleted (audited) after. Default 2592000000 (30 days). */
    evidenceRetentionMs: int(1000, 2 ** 42).default(30 * 86_400_000),
    /** Retention per jurisdiction (ms): {"DE": 15552000000} (EVIDENCE_RETENTION as JSON); a clip kept for several jurisdictions in one place keeps the longest. Default none. */
    evidenceRetention: jsonOr(
      z.record(z.string().regex(/^[A-Z]{2}$/, 'ISO 3166-1 alpha-2, upper case'), int(1000, 2 ** 42)),
    ).default({}),
    /** Media kept before a decision (ms); the clip starts at the keyframe at or before it. Default 10000. */
    evidenceBeforeMs: int(0, 120_000).default(10_000),
    /** Media kept after a decision while the stream lives (ms). Default 5000. */
    evidenceAfterMs: int(0, 120_000).default(5000),
    /** Most RTP payload bytes one stream's evidence ring holds. Default 16777216. */
    evidenceRingBytes: int(65_536, 1 << 30).default(16 * 1024 * 1024),
    /** Expired evidence clips are looked for this often (ms). Default 60000. */
    evidenceSweepMs: int(100, 86_400_000).default(60_000),
  })
  .strict()
  .refine(
    (c) =>
      c.moderationRealtimePriority === 0 ||
      c.sfuEngine === 'werift' ||
      c.mediasoupRealtimePriority > c.moderationRealtimePriority,
    {
      message:
        'MODERATION_REALTIME_PRIORITY needs MEDIASOUP_REALTIME_PRIORITY above it (or SFU_ENGINE=werift): forwarding must stay above moderation',
      path: ['moderationRealtimePriority'],
    },
  );

/** The parsed configuration, with the defaults that depend on the mode resolved. */
export type Config = Omit<z.output<typeof ConfigSchema>, 'anonymousViewers'> & { anonymousViewers: boolean };
export type ConfigInput = z.input<typeof ConfigSchema>;

/** Environment variable -> config key (docs/CONFIG.md lists them all; a test keeps it so). */
export const ENV_KEYS: Record<string, keyof ConfigInput> = {
  MODE: 'mode',
  PORT: 'port',
  HOST: 'host',
  ANNOUNCED_ADDRESS: 'announcedAddress',
  MEDIA_LISTEN_ADDRESS: 'mediaListenAddress',
  UDP_PORT_RANGE: 'udpPortRange',
  ICE_SERVERS: 'iceServers',
  SFU_ENGINE: 'sfuEngine',
  MEDIASOUP_WORKERS: 'mediasoupWorkers',
  MEDIASOUP_REALTIME_PRIORITY: 'mediasoupRealtimePriority',
  MEDIASOUP_REALTIME_MAX_CPU: 'mediasoupRealtimeMaxCpu',
  MODERATION_REALTIME_PRIORITY: 'moderationRealtimePriority',
  PUBLIC_URL: 'publicUrl',
  REDIS_URL: 'redisUrl',
  REDIS_PREFIX: 'redisPrefix',
  AUTH_SECRET: 'authSecret',
  AUDIT_HMAC_KEY: 'auditHmacKey',
  OUTBOX_DIR: 'outboxDir',
  OUTBOX_MAX_RECORDS: 'outboxMaxRecords',
  AUDIT_CHECKPOINT_EVERY: 'auditCheckpointEvery',
  ANONYMOUS_VIEWERS: 'anonymousViewers',
  TRUST_JURISDICTION_HEADER: 'trustJurisdictionHeader',
  INFERENCE_BACKEND: 'inferenceBackend',
  TRITON_URL: 'tritonUrl',
  POLICY_DIR: 'policyDir',
  MODEL_CACHE_DIR: 'modelCacheDir',
  NODE_ID: 'nodeId',
  STREAM_TTL_MS: 'streamTtlMs',
  HEARTBEAT_MS: 'heartbeatMs',
  REVIEW_CLAIM_MS: 'reviewClaimMs',
  MAX_SDP_BYTES: 'maxSdpBytes',
  SESSION_IDLE_TIMEOUT_MS: 'sessionIdleTimeoutMs',
  MAX_STREAMS: 'maxStreams',
  MAX_VIEWERS: 'maxViewers',
  MAX_PENDING_SESSIONS: 'maxPendingSessions',
  MAX_PENDING_SESSIONS_PER_CLIENT: 'maxPendingSessionsPerClient',
  RATE_LIMIT_SESSIONS: 'rateLimitSessions',
  RATE_LIMIT_API: 'rateLimitApi',
  MAX_WS_PER_CLIENT: 'maxWsPerClient',
  TRUST_PROXY: 'trustProxy',
  HTTP_REQUEST_TIMEOUT_MS: 'httpRequestTimeoutMs',
  METRICS_TOKEN: 'metricsToken',
  LOG_LEVEL: 'logLevel',
  DEMO: 'demo',
  MODERATION: 'moderation',
  OCR: 'ocr',
  VAD: 'vad',
  BANK_DIR: 'bankDir',
  BUDGET_MS: 'budgetMs',
  MODERATION_STALL_MS: 'moderationStallMs',
  MODERATION_TAP: 'moderationTap',
  STORE_MAX_AUDIT: 'storeMaxAudit',
  STORE_MAX_RECORDS: 'storeMaxRecords',
  STORE_MAX_RESOLVED_REVIEW: 'storeMaxResolvedReview',
  STORE_MAX_OPEN_REVIEW: 'storeMaxOpenReview',
  STORE_MAX_THUMBNAIL_BYTES: 'storeMaxThumbnailBytes',
  STORE_THUMBNAIL_RETENTION_MS: 'storeThumbnailRetentionMs',
  STORE_RETENTION_MS: 'storeRetentionMs',
  WEBHOOKS: 'webhooks',
  WEBHOOK_DIR: 'webhookDir',
  WEBHOOK_BACKOFF_MIN_MS: 'webhookBackoffMinMs',
  WEBHOOK_BACKOFF_MAX_MS: 'webhookBackoffMaxMs',
  WEBHOOK_MAX_AGE_MS: 'webhookMaxAgeMs',
  WEBHOOK_TIMEOUT_MS: 'webhookTimeoutMs',
  WEBHOOK_MAX_QUEUE_BYTES: 'webhookMaxQueueBytes',
  EVIDENCE: 'evidence',
  EVIDENCE_DIR: 'evidenceDir',
  EVIDENCE_DIRS: 'evidenceDirs',
  EVIDENCE_RETENTION_MS: 'evidenceRetentionMs',
  EVIDENCE_RETENTION: 'evidenceRetention',
  EVIDENCE_BEFORE_MS: 'evidenceBeforeMs',
  EVIDENCE_AFTER_MS: 'evidenceAfterMs',
  EVIDENCE_RING_BYTES: 'evidenceRingBytes',
  EVIDENCE_SWEEP_MS: 'evidenceSweepMs',
};

export interface LoadConfigOptions {
  argv?: readonly string[];
  env?: NodeJS.ProcessEnv;
  overrides?: Partial<ConfigInput>;
}

/** Parses `--config path`, `--demo`, `--port N`, `--host H` from argv. */
function fromArgv(argv: readonly string[]): { file?: string; values: Partial<ConfigInput> } {
  const values: Partial<ConfigInput> = {};
  let file: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new SrvError('SRV_ERR_CONFIG', `${a} needs a value`);
      return v;
    };
    if (a === '--config') file = next();
    else if (a.startsWith('--config=')) file = a.slice(9);
    else if (a === '--demo') values.demo = true;
    else if (a === '--port') values.port = next();
    else if (a === '--host') values.host = next();
  }
  return { file, values };
}

export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const cli = fromArgv(options.argv ?? []);
  const file = cli.file ?? env.CONFIG_FILE;
  let fromFile: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new SrvError('SRV_ERR_CONFIG', `cannot read config file ${file}: ${(err as Error).message}`);
    }
    const parsed: unknown = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed))
      fromFile = parsed as Record<string, unknown>;
    else if (parsed != null) throw new SrvError('SRV_ERR_CONFIG', `config file ${file} must hold an object`);
  }
  const fromEnv: Record<string, unknown> = {};
  for (const [name, key] of Object.entries(ENV_KEYS)) {
    const v = env[name];
    if (v !== undefined && v !== '') fromEnv[key] = v;
  }
  const merged = { ...fromFile, ...fromEnv, ...cli.values, ...(options.overrides ?? {}) };
  const result = ConfigSchema.safeParse(merged);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new SrvError('SRV_ERR_CONFIG', `invalid configuration: ${lines.join('; ')}`);
  }
  // Production takes no anonymous viewers unless told to: every viewer then has a token (a jurisdiction, an id).
  const config: Config = {
    ...result.data,
    anonymousViewers: result.data.anonymousViewers ?? result.data.mode !== 'production',
  };
  if (config.mode === 'production' && !config.authSecret)
    throw new SrvError(
      'SRV_ERR_CONFIG',
      'invalid configuration: AUTH_SECRET (32+ characters) is required in production mode',
    );
  return config;
}

export function publicUrlOf(config: Config, boundPort?: number): string {
  if (config.publicUrl) return config.publicUrl.replace(/\/$/, '');
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  return `http://${host}:${boundPort ?? config.port}`;
}

const randomAuditKeys = new WeakMap<Config, string>();

/**
 * The audit chain's HMAC key and where it came from: AUDIT_HMAC_KEY, else derived from AUTH_SECRET
 * (so every node of a cluster, and `npm run audit:verify`, agree without a second secret), else
 * (dev, no secrets) random for this process: such a chain verifies only while it runs.
 */
export function auditKeyOf(config: Config): { key: string; source: 'AUDIT_HMAC_KEY' | 'AUTH_SECRET' | 'random' } {
  if (config.auditHmacKey) return { key: config.auditHmacKey, source: 'AUDIT_HMAC_KEY' };
  if (config.authSecret)
    return {
      key: createHmac('sha256', config.authSecret).update('msfu-audit-chain/1').digest('hex'),
      source: 'AUTH_SECRET',
    };
  let key = randomAuditKeys.get(config);
  if (!key) randomAuditKeys.set(config, (key = randomBytes(32).toString('hex')));
  return { key, source: 'random' };
}

/** One screen: what this process will do, secrets redacted. */
export function summarizeConfig(config: Config, boundPort?: number, engine?: string): string {
  const redis = config.redisUrl ? config.redisUrl.replace(/\/\/([^@]*)@/, '//***@') : 'off (in-memory store)';
  const rows: [string, string][] = [
    ['mode', config.mode],
    ['listen', `${config.host}:${boundPort ?? config.port}`],
    ['public url', publicUrlOf(config, boundPort)],
    ['sfu engine', engine ?? config.sfuEngine],
    ['announced address', config.announcedAddress ?? '(engine default, 127.0.0.1)'],
    [
      'media sockets',
      `${config.mediaListenAddress ?? config.announcedAddress ?? '127.0.0.1'} ${engine?.startsWith('mediasoup') ? 'udp+tcp, one port per worker from' : 'udp'} ${config.udpPortRange ? config.udpPortRange.join('-') : 'ephemeral'}`,
    ],
    [
      'scheduling',
      config.moderationRealtimePriority > 0
        ? `SCHED_RR: media workers ${config.mediasoupRealtimePriority}, moderation's budgeted path ${config.moderationRealtimePriority}, main thread ${Math.max(1, config.moderationRealtimePriority - 5)}`
        : config.mediasoupRealtimePriority > 0
          ? `SCHED_RR: media workers ${config.mediasoupRealtimePriority} where permitted (nice -10 while above ${Math.round(config.mediasoupRealtimeMaxCpu * 100)} % of a core; the sfu engine line says what they got); moderation by nice value`
          : 'by nice value (mediasoup workers -10; moderation: budgeted path 5, the rest 10)',
    ],
    ['node id', config.nodeId],
    ['store', config.redisUrl ? `redis ${redis} prefix ${config.redisPrefix}` : redis],
    [
      'auth',
      config.authSecret ? 'HS256, secret from config' : 'HS256, random dev secret (tokens die with this process)',
    ],
    [
      'audit chain',
      `HMAC-SHA256, key ${{ AUDIT_HMAC_KEY: 'from AUDIT_HMAC_KEY', AUTH_SECRET: 'derived from AUTH_SECRET', random: 'random per start (set AUTH_SECRET or AUDIT_HMAC_KEY to verify across restarts)' }[auditKeyOf(config).source]}`,
    ],
    [
      'outbox',
      config.redisUrl
        ? `${config.outboxDir} (max ${config.outboxMaxRecords} records), checkpoint every ${config.auditCheckpointEvery} entries`
        : 'off (in-memory store)',
    ],
    ['anonymous viewers', String(config.anonymousViewers)],
    ['trust jurisdiction header', String(config.trustJurisdictionHeader)],
    [
      'inference backend',
      config.inferenceBackend + (config.inferenceBackend === 'triton' ? ` @ ${config.tritonUrl ?? '(unset)'}` : ''),
    ],
    ['policy dir', config.policyDir],
    ['model cache', config.modelCacheDir],
    ['stream ttl / heartbeat', `${config.streamTtlMs} ms / ${config.heartbeatMs} ms`],
    ['review claim timeout', `${config.reviewClaimMs} ms`],
    [
      'evidence clips',
      config.evidence
        ? `${config.evidenceBeforeMs} ms before / ${config.evidenceAfterMs} ms after, kept ${config.evidenceRetentionMs} ms in ${config.evidenceDir}${Object.keys(config.evidenceDirs).length ? ` (+ ${Object.keys(config.evidenceDirs).join(', ')})` : ''}`
        : 'off',
    ],
    [
      'webhooks',
      config.webhooks.length
        ? `${config.webhooks.map((w) => w.id).join(', ')} (queue ${config.webhookDir})`
        : `none configured (queue ${config.webhookDir})`,
    ],
    ['demo streams', String(config.demo)],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  return ['moderating-sfu configuration', ...rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`)].join('\n');
}
