// Prometheus metrics (prom-client), one registry per server instance so two servers can share a
// process in tests. The pipeline and enforcer call the record* functions; forwarding counters and
// event-loop delay are collected at scrape time.
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

const ELD_RESOLUTION_MS = 10;

export type ModerationDropStage = 'tap' | 'sampler' | 'inflight';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { EngineStats, Sfu } from '../sfu/types.ts';
import type { StoreRetentionStats } from './store/types.ts';
import type { WebhookEndpointStats } from './webhooks.ts';
import type { OutboxStats } from './store/outbox.ts';
import type { EvidenceStats } from './evidence.ts';
import type { QueueStats } from '../policies/review.ts';

/**
 * 'total' is the budgeted fast path: a sampled frame's last packet at the server -> its classifier and
 * hash signals applied. On-screen text ('ocr', about 0.5 fps, 100-500 ms on CPU) and audio windows
 * ('audio': fingerprint and voice activity) are slower signals of their own, measured apart.
 */
export type Stage = 'sample' | 'queue' | 'inference' | 'run' | 'decision' | 'enforcement' | 'total' | 'ocr' | 'audio';
export type BreakerState = 'closed' | 'half_open' | 'open';
const BREAKER_VALUE: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2 };

const LATENCY_BUCKETS_MS = [1, 2, 5, 10, 20, 35, 50, 75, 100, 150, 250, 500, 1000, 2500];

export class ServerMetrics {
  readonly registry = new Registry();
  readonly #stage: Histogram<'stage'>;
  readonly #budgetMiss: Counter<'stage'>;
  readonly #kills: Counter<'source'>;
  readonly #shadow: Counter<'side' | 'outcome'>;
  readonly #killLatency: Histogram;
  readonly #exposure: Histogram;
  readonly #samples: Counter<'escalated'>;
  readonly #reviewDepth: Gauge;
  readonly #lag: Gauge<'stream'>;
  readonly #breaker: Gauge<'backend'>;
  readonly #inference: Counter<'backend' | 'outcome'>;
  readonly #decisions: Counter<'bucket' | 'source'>;
  readonly #workerEvents: Counter<'worker' | 'event'>;
  readonly #moderationGaps: Counter<'kind' | 'cause'>;
  readonly #unhandled: Counter;
  readonly #eld: IntervalHistogram;
  #sfu: Sfu | undefined;
  #moderationDrops: (() => Record<ModerationDropStage, number>) | undefined;
  #storeStats: (() => Promise<StoreRetentionStats>) | undefined;
  #reviewQueues: (() => Promise<QueueStats[]>) | undefined;
  #webhookStats: (() => WebhookEndpointStats[]) | undefined;
  #evidenceStats: (() => EvidenceStats) | undefined;
  readonly #webhookAttempts: Counter<'endpoint' | 'outcome'>;
  readonly #webhookLatency: Histogram<'endpoint'>;
  #outboxStats: (() => OutboxStats) | undefined;
  readonly #auditAlarms: Counter<'kind'>;

  constructor(options: { sfu?: Sfu; defaultMetrics?: boolean } = {}) {
    const r = [this.registry];
    this.#sfu = options.sfu;
    this.#stage = new Histogram({
      name: 'msfu_stage_latency_ms',
      help: 'Latency per moderation stage (ms): sample, queue, inference (run = the model run itself, on its thread), decision, enforcement; total = frame at the server -> fast-path signals applied (the budgeted path); ocr and audio = the same for on-screen text and audio windows',
      labelNames: ['stage'],
      buckets: LATENCY_BUCKETS_MS,
      registers: r,
    });
    this.#budgetMiss = new Counter({
      name: 'msfu_budget_misses_total',
      help: 'Samples that missed the latency budget',
      labelNames: ['stage'],
      registers: r,
    });
    this.#kills = new Counter({
      name: 'msfu_kills_total',
      help: 'Streams killed',
      labelNames: ['source'],
      registers: r,
    });
    this.#shadow = new Counter({
      name: 'msfu_shadow_differences_total',
      help: 'What the shadow candidate would have done differently on this node (issue 17): side shadow_only / active_only, outcome kill, block, blank, mute, review; counted when a difference opens',
      labelNames: ['side', 'outcome'],
      registers: r,
    });
    this.#killLatency = new Histogram({
      name: 'msfu_kill_latency_ms',
      help: 'First violating frame -> publisher closed and viewers cut (ms)',
      buckets: LATENCY_BUCKETS_MS,
      registers: r,
    });
    this.#exposure = new Histogram({
      name: 'msfu_exposure_window_ms',
      help: 'How long viewers could see violating content before it was blocked (ms)',
      buckets: [10, 50, 100, 150, 250, 500, 1000, 2500, 5000, 10000],
      registers: r,
    });
    this.#samples = new Counter({
      name: 'msfu_classified_samples_total',
      help: 'Classified samples by cascade escalation',
      labelNames: ['escalated'],
      registers: r,
    });
    const samples = this.#samples;
    new Gauge({
      name: 'msfu_escalation_rate',
      help: 'Share of classified samples escalated to the deep model',
      registers: r,
      async collect() {
        const m = await samples.get();
        let yes = 0;
        let all = 0;
        for (const v of m.values) {
          all += v.value;
          if (v.labels.escalated === 'true') yes += v.value;
        }
        this.set(all === 0 ? 0 : yes / all);
      },
    });
    this.#reviewDepth = new Gauge({ name: 'msfu_review_queue_depth', help: 'Unresolved review items', registers: r });
    // per-jurisdiction queues (issue 17): read from the store at most every 250 ms, however many scrapes
    let queuesRead: { at: number; stats: Promise<QueueStats[] | undefined> } | undefined;
    const queues = (): Promise<QueueStats[] | undefined> => {
      const now = performance.now();
      if (!queuesRead || now - queuesRead.at > 250)
        queuesRead = {
          at: now,
          stats: this.#reviewQueues
            ? this.#reviewQueues().then(
                (x) => x,
                () => undefined,
              )
            : Promise.resolve(undefined),
        };
      return queuesRead.stats;
    };
    new Gauge({
      name: 'msfu_review_queue_depth_by_jurisdiction',
      help: "Open review items per jurisdiction's queue (an item naming two jurisdictions is in both)",
      labelNames: ['jurisdiction'],
      registers: r,
      async collect() {
        this.reset();
        for (const q of (await queues()) ?? []) this.set({ jurisdiction: q.jurisdiction }, q.depth);
      },
    });
    new Gauge({
      name: 'msfu_review_overdue',
      help: "Open review items past their due time, per jurisdiction's queue",
      labelNames: ['jurisdiction'],
      registers: r,
      async collect() {
        this.reset();
        for (const q of (await queues()) ?? []) this.set({ jurisdiction: q.jurisdiction }, q.overdue);
      },
    });
    new Gauge({
      name: 'msfu_review_queue_oldest_age_seconds',
      help: "Age of the oldest open item of each jurisdiction's review queue (s)",
      labelNames: ['jurisdiction'],
      registers: r,
      async collect() {
        this.reset();
        for (const q of (await queues()) ?? []) this.set({ jurisdiction: q.jurisdiction }, q.oldestAgeS);
      },
    });
    this.#lag = new Gauge({
      name: 'msfu_classification_lag_ms',
      help: 'Now minus arrival of the newest classified sample, per stream (ms)',
      labelNames: ['stream'],
      registers: r,
    });
    this.#breaker = new Gauge({
      name: 'msfu_breaker_state',
      help: 'Inference circuit breaker: 0 closed, 1 half-open, 2 open',
      labelNames: ['backend'],
      registers: r,
    });
    this.#inference = new Counter({
      name: 'msfu_inference_requests_total',
      help: 'Inference requests by backend and outcome (ok, fallback, error, deadline)',
      labelNames: ['backend', 'outcome'],
      registers: r,
    });
    const inference = this.#inference;
    new Gauge({
      name: 'msfu_fallback_rate',
      help: 'Share of inference requests served by a fallback',
      registers: r,
      async collect() {
        const m = await inference.get();
        let fb = 0;
        let all = 0;
        for (const v of m.values) {
          all += v.value;
          if (v.labels.outcome === 'fallback') fb += v.value;
        }
        this.set(all === 0 ? 0 : fb / all);
      },
    });
    this.#decisions = new Counter({
      name: 'msfu_decisions_total',
      help: 'Decisions by bucket and source',
      labelNames: ['bucket', 'source'],
      registers: r,
    });
    this.#workerEvents = new Counter({
      name: 'msfu_worker_events_total',
      help: 'Moderation worker threads (sampler-N, onnxruntime:<model>, ocr, audio-fingerprint, pdq, vad) by event: crash (thread died, restarted after a backoff), restart (a new thread is ready), timeout (a call got no reply in time)',
      labelNames: ['worker', 'event'],
      registers: r,
    });
    this.#moderationGaps = new Counter({
      name: 'msfu_moderation_unavailable_total',
      help: "Moderation gaps fed to the policies as 'unavailable', by kind and cause: sample_timeout (a sample's moderation did not finish in time), stall (packets flowing with no signal for moderationStallMs; counted once per stall)",
      labelNames: ['kind', 'cause'],
      registers: r,
    });

    this.#unhandled = new Counter({
      name: 'msfu_unhandled_rejections_total',
      help: 'Promise rejections nobody handled (logged; the process keeps running): each one is a bug to report',
      registers: r,
    });

    const sfuOf = (): Sfu | undefined => this.#sfu;
    // one engine read per scrape, shared by the gauges below (mediasoup's figures come from its workers)
    let statsRead: { at: number; stats: Promise<EngineStats | undefined> } | undefined;
    const engineStats = (): Promise<EngineStats | undefined> => {
      const now = performance.now();
      if (!statsRead || now - statsRead.at > 250) {
        const sfu = sfuOf();
        statsRead = { at: now, stats: sfu ? sfu.engineStats().catch(() => undefined) : Promise.resolve(undefined) };
      }
      return statsRead.stats;
    };
    const engineGauge = (name: string, help: string, pick: (s: EngineStats) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: ['engine'],
        registers: r,
        async collect() {
          const s = await engineStats();
          if (s) this.set({ engine: s.engine }, pick(s));
        },
      });
    };
    // Gauges, not counters: viewers come and go, so the sum over live viewers can go down.
    engineGauge('msfu_forward_packets', 'RTP packets forwarded to live viewers', (s) => s.packetsForwarded);
    engineGauge('msfu_forward_bytes', 'Bytes forwarded to live viewers', (s) => s.bytesForwarded);
    engineGauge('msfu_viewers', 'Live viewer sessions on this node', (s) => s.viewers);
    engineGauge('msfu_streams', 'Live streams on this node', (s) => s.streams);
    engineGauge('msfu_sfu_consumers', 'Outbound tracks being forwarded (one per viewer and kind)', (s) => s.consumers);
    engineGauge(
      'msfu_sfu_workers',
      'Forwarding worker processes (mediasoup; 0 = werift, forwarding on the Node event loop)',
      (s) => s.workers,
    );
    engineGauge(
      'msfu_sfu_worker_cpu_seconds',
      'CPU time of the forwarding worker processes since start (s)',
      (s) => s.workerCpuMs / 1000,
    );
    engineGauge(
      'msfu_sfu_workers_realtime',
      'Forwarding workers running at real-time priority now (MEDIASOUP_REALTIME_PRIORITY; fewer while some are demoted)',
      (s) => s.realtimeWorkers,
    );
    engineGauge(
      'msfu_sfu_worker_realtime_demotions',
      'Times a forwarding worker lost real-time priority since start for using more than MEDIASOUP_REALTIME_MAX_CPU of a core',
      (s) => s.realtimeDemotions,
    );
    engineGauge(
      'msfu_sfu_worker_deaths',
      'Forwarding workers that died since start (each replaced)',
      (s) => s.workerDeaths,
    );
    new Gauge({
      name: 'msfu_forward_drops',
      help: 'Packets dropped on the way to live viewers',
      registers: r,
      collect() {
        let total = 0;
        const sfu = sfuOf();
        if (sfu) for (const s of sfu.streams()) for (const v of s.viewers.values()) total += v.stats().packetsDropped;
        this.set(total);
      },
    });

    const dropsOf = (): Record<ModerationDropStage, number> | undefined => this.#moderationDrops?.();
    new Gauge({
      name: 'msfu_moderation_drops',
      help: 'Packets or samples of live streams dropped on the way to moderation (never waited for), by stage: tap (SFU tap ring), sampler (packets and frames the samplers dropped: loss, lag, undecodable), inflight (samples dropped because the stream had too many being moderated)',
      labelNames: ['stage'],
      registers: r,
      collect() {
        const d = dropsOf();
        if (d) for (const [stage, n] of Object.entries(d)) this.set({ stage }, n);
      },
    });

    // one store read per scrape, shared by the two gauges below (docs/RETENTION.md)
    let storeRead: { at: number; stats: Promise<StoreRetentionStats | undefined> } | undefined;
    const storeStats = (): Promise<StoreRetentionStats | undefined> => {
      const now = performance.now();
      if (!storeRead || now - storeRead.at > 250)
        storeRead = {
          at: now,
          stats: this.#storeStats ? this.#storeStats().catch(() => undefined) : Promise.resolve(undefined),
        };
      return storeRead.stats;
    };
    new Gauge({
      name: 'msfu_store_entries',
      help: 'Entries the store holds now, by collection (audit, decisions, statements, review_open, review_resolved, thumbnails, blocks, streams); thumbnail_bytes = bytes of thumbnails held (memory store)',
      labelNames: ['collection'],
      registers: r,
      async collect() {
        const s = await storeStats();
        if (!s) return;
        for (const [collection, n] of Object.entries(s.entries)) this.set({ collection }, n ?? 0);
        this.set({ collection: 'thumbnail_bytes' }, s.thumbnailBytes);
      },
    });
    new Gauge({
      name: 'msfu_store_dropped',
      help: 'Store entries dropped by retention since start, by collection and reason (count, age, bytes; queue_full = amber review items refused at the open-item bound)',
      labelNames: ['collection', 'reason'],
      registers: r,
      async collect() {
        const s = await storeStats();
        if (s) for (const d of s.dropped) this.set({ collection: d.collection, reason: d.reason }, d.count);
      },
    });
    const outbox = (): OutboxStats | undefined => this.#outboxStats?.();
    new Gauge({
      name: 'msfu_outbox_depth',
      help: "Enforcement records in this node's outbox not yet acknowledged by the store (0 without an outbox)",
      registers: r,
      collect() {
        this.set(outbox()?.depth ?? 0);
      },
    });
    new Gauge({
      name: 'msfu_outbox_oldest_age_seconds',
      help: 'Age of the oldest record waiting in the outbox (s); 0 when empty',
      registers: r,
      collect() {
        this.set(outbox()?.oldestAgeS ?? 0);
      },
    });
    new Gauge({
      name: 'msfu_outbox_records',
      help: 'Outbox records since start: delivered (acknowledged by the store), retried (deliveries that failed and were retried), adopted (from outboxes of processes that are gone)',
      labelNames: ['outcome'],
      registers: r,
      collect() {
        const o = outbox();
        if (!o) return;
        this.set({ outcome: 'delivered' }, o.delivered);
        this.set({ outcome: 'retried' }, o.retries);
        this.set({ outcome: 'adopted' }, o.adopted);
      },
    });
    new Gauge({
      name: 'msfu_outbox_dropped',
      help: 'Outbox records lost since start: full = refused at the outbox bound, refused = the store refused them for good (e.g. a full review queue)',
      labelNames: ['reason'],
      registers: r,
      collect() {
        const o = outbox();
        if (!o) return;
        this.set({ reason: 'full' }, o.dropped.full);
        this.set({ reason: 'refused' }, o.dropped.refused);
      },
    });
    this.#auditAlarms = new Counter({
      name: 'msfu_audit_chain_alarms_total',
      help: "Audit chain alarms: backwards = the store's chain head fell behind a checkpoint (store restarted empty), rewritten = an entry no longer carries its checkpointed hash",
      labelNames: ['kind'],
      registers: r,
    });

    this.#webhookAttempts = new Counter({
      name: 'msfu_webhook_attempts_total',
      help: 'Webhook delivery attempts by endpoint and outcome (delivered = 2xx, failed = retried later, dropped = given up: too old, queue over its bound, endpoint removed)',
      labelNames: ['endpoint', 'outcome'],
      registers: r,
    });
    this.#webhookLatency = new Histogram({
      name: 'msfu_webhook_delivery_latency_ms',
      help: 'Event time -> 2xx from the receiver (ms), retries included',
      labelNames: ['endpoint'],
      buckets: [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 300_000, 900_000],
      registers: r,
    });
    const webhooksOf = (): WebhookEndpointStats[] => this.#webhookStats?.() ?? [];
    new Gauge({
      name: 'msfu_webhook_pending',
      help: 'Webhook events queued (on disk) and not yet delivered, per endpoint',
      labelNames: ['endpoint'],
      registers: r,
      collect() {
        this.reset();
        for (const e of webhooksOf()) this.set({ endpoint: e.id }, e.pending);
      },
    });
    new Gauge({
      name: 'msfu_webhook_consecutive_failures',
      help: 'Failed attempts in a row per webhook endpoint (0 = the last attempt succeeded)',
      labelNames: ['endpoint'],
      registers: r,
      collect() {
        this.reset();
        for (const e of webhooksOf()) this.set({ endpoint: e.id }, e.consecutiveFailures);
      },
    });
    const evidenceOf = (): EvidenceStats | undefined => this.#evidenceStats?.();
    new Gauge({
      name: 'msfu_evidence',
      help: 'Evidence: ring_bytes = RTP payload bytes held in the per-stream rings now, rings = streams with a ring, clips = clips stored, clip_bytes = their bytes, deleted = clips deleted at retention since start, failed = clips that could not be written',
      labelNames: ['what'],
      registers: r,
      collect() {
        const e = evidenceOf();
        if (!e) return;
        this.set({ what: 'ring_bytes' }, e.ringBytes);
        this.set({ what: 'rings' }, e.rings);
        this.set({ what: 'clips' }, e.clips);
        this.set({ what: 'clip_bytes' }, e.clipBytes);
        this.set({ what: 'deleted' }, e.deleted);
        this.set({ what: 'failed' }, e.failed);
      },
    });

    this.#eld = monitorEventLoopDelay({ resolution: ELD_RESOLUTION_MS });
    this.#eld.enable();
    const eld = this.#eld;
    new Gauge({
      name: 'msfu_event_loop_delay_ms',
      help: 'Event-loop delay since the last scrape (ms, beyond the 10 ms sampling timer), by quantile',
      labelNames: ['quantile'],
      registers: r,
      collect() {
        // perf_hooks records each whole timer period (an idle loop reads ~10 ms at resolution 10):
        // what is reported is the delay beyond it
        const ms = (ns: number): number => (Number.isFinite(ns) ? Math.max(0, ns / 1e6 - ELD_RESOLUTION_MS) : 0);
        this.set({ quantile: '0.5' }, ms(eld.percentile(50)));
        this.set({ quantile: '0.99' }, ms(eld.percentile(99)));
        this.set({ quantile: 'max' }, ms(eld.max));
        eld.reset();
      },
    });
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'msfu_process_' });
  }

  attachSfu(sfu: Sfu): void {
    this.#sfu = sfu;
  }

  /** Where moderation drop counts come from (sums over live streams; read at scrape time). */
  setModerationDrops(source: () => Record<ModerationDropStage, number>): void {
    this.#moderationDrops = source;
  }

  /** Where store sizes and retention drops come from (read at scrape time). */
  /** Per-jurisdiction review queue figures (policies/ reviewQueueStats over the store's open items). */
  setReviewQueueStats(source: () => Promise<QueueStats[]>): void {
    this.#reviewQueues = source;
  }

  setStoreStats(source: () => Promise<StoreRetentionStats>): void {
    this.#storeStats = source;
  }

  /** Where webhook endpoint figures come from (read at scrape time). */
  setWebhookStats(source: () => WebhookEndpointStats[]): void {
    this.#webhookStats = source;
  }

  /** Where evidence ring and clip figures come from (read at scrape time). */
  setEvidenceStats(source: () => EvidenceStats): void {
    this.#evidenceStats = source;
  }

  /** One finished webhook attempt; `latencyMs` = event time -> 2xx. */
  recordWebhookAttempt(endpoint: string, outcome: 'delivered' | 'failed' | 'dropped', latencyMs?: number): void {
    this.#webhookAttempts.inc({ endpoint, outcome });
    if (latencyMs !== undefined) this.#webhookLatency.observe({ endpoint }, latencyMs);
  }

  /** Outbox figures (server/store/outbox.ts), read at scrape time. */
  setOutboxStats(source: () => OutboxStats): void {
    this.#outboxStats = source;
  }

  recordAuditAlarm(kind: 'backwards' | 'rewritten'): void {
    this.#auditAlarms.inc({ kind });
  }

  /** One stage's latency (ms). */
  observeStage(stage: Stage, ms: number): void {
    this.#stage.observe({ stage }, ms);
  }
  /** A sample that missed its budget at `stage` ('total' for the end-to-end 100 ms budget). */
  recordBudgetMiss(stage: Stage = 'total'): void {
    this.#budgetMiss.inc({ stage });
  }
  /** A kill; `latencyMs` = first violating frame -> publisher closed and viewers cut, when known. */
  recordKill(source: 'automated' | 'manual' | 'review' | 'remote', latencyMs?: number): void {
    this.#kills.inc({ source });
    if (latencyMs !== undefined) this.#killLatency.observe(latencyMs);
  }
  recordShadowDifferences(differences: readonly { side: string; outcome: string }[]): void {
    for (const d of differences) this.#shadow.inc({ side: d.side, outcome: d.outcome });
  }
  recordExposure(ms: number): void {
    this.#exposure.observe(ms);
  }
  recordClassified(escalated: boolean): void {
    this.#samples.inc({ escalated: String(escalated) });
  }
  setReviewDepth(depth: number): void {
    this.#reviewDepth.set(depth);
  }
  setClassificationLag(streamId: string, ms: number): void {
    this.#lag.set({ stream: streamId }, ms);
  }
  clearStream(streamId: string): void {
    this.#lag.remove({ stream: streamId });
  }
  setBreakerState(backend: string, state: BreakerState): void {
    this.#breaker.set({ backend }, BREAKER_VALUE[state]);
  }
  recordInference(backend: string, outcome: 'ok' | 'fallback' | 'error' | 'deadline'): void {
    this.#inference.inc({ backend, outcome });
  }
  recordDecision(bucket: string, source: string): void {
    this.#decisions.inc({ bucket, source });
  }
  /** A moderation worker thread crashed, was restarted, or let a call time out. */
  recordWorkerEvent(worker: string, event: 'crash' | 'restart' | 'timeout'): void {
    this.#workerEvents.inc({ worker, event });
  }
  /** A sample timed out, or a stream's kind entered a moderation stall. */
  recordModerationGap(kind: 'audio' | 'video', cause: 'sample_timeout' | 'stall'): void {
    this.#moderationGaps.inc({ kind, cause });
  }

  /** A promise rejection reached the process handler (server/main.ts). */
  recordUnhandledRejection(): void {
    this.#unhandled.inc();
  }

  /** Prometheus text exposition. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  close(): void {
    this.#eld.disable();
    this.registry.clear();
  }
}
