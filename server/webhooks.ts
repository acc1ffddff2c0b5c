// Webhooks: the platform's backend learns of streams, kills, filters, reviews, appeals, statements
// and moderation outages by signed HTTP callbacks, without holding an events socket open. The
// event hub (events.ts) owns the event types; this file only observes it and maps what it sees.
//
// Delivery is at-least-once and in order per endpoint (hence per stream): every event is appended
// to a durable queue file before anything is sent, each endpoint drains its own queue head first,
// a failure backs off exponentially (backoffMinMs doubling to backoffMaxMs) and the head is retried
// until maxAgeMs after it was queued, then dropped (counted, audited). The queue survives a restart:
// the file is replayed on start. Receivers deduplicate by `id`; `seq` counts the events of one
// stream on this node, so a receiver also sees what is missing or repeated.
//
// The queue is an append-only JSON-lines journal (store/journal.ts, the file owner it shares with the
// store outbox; the queue stays its own because it fans out to receivers with a head each):
//   {"o":"e", id, eps, body, q}   an event for endpoints `eps`, `body` the exact bytes sent, queued at q
//   {"o":"a", id, ep}             delivered to ep (2xx)
//   {"o":"d", id, ep, why}        given up for ep (too old, queue over its byte bound, endpoint removed)
//   {"o":"s", seqs}               per-stream sequence numbers (first line after a compaction)
// It is rewritten with only what is still pending once it outgrows compactBytes.
//
// Signature (as Standard Webhooks and Stripe do it): `webhook-signature: t=<unix s>,v1=<hex>[,v1=<hex>]`,
// v1 = HMAC-SHA256(secret, `${t}.${body}`), one v1 per secret: during a rotation both secrets sign, so
// a receiver holding either verifies. `webhook-id` and `webhook-timestamp` repeat the id and t.
import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SrvError, badRequest, notFound } from './errors.ts';
import type { EventAudience, EventHub, EventMessage } from './events.ts';
import { Journal } from './store/journal.ts';

export const WEBHOOK_EVENTS = [
  'stream.started',
  'stream.ended',
  'stream.killed',
  'viewer.filtered',
  'review.created',
  'review.resolved',
  'appeal.created',
  'appeal.decided',
  'statement.created',
  'moderation.degraded',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENTS)[number];

/** One configured receiver. */
export interface WebhookEndpointConfig {
  id: string;
  url: string;
  /** Signing secrets, newest first; two while a rotation is under way (both sign). */
  secrets: string[];
  /** Event types it receives. Default all. */
  events?: WebhookEventType[];
  /** Default true. */
  enabled?: boolean;
}

/** What a receiver gets as the JSON body. */
export interface WebhookPayload {
  id: string;
  type: WebhookEventType;
  /** Event time (server clock ms). */
  at: number;
  streamId: string | null;
  /** 1, 2, 3 ... per stream on this node (events without a stream count under null). */
  seq: number;
  node: string;
  data: Record<string, unknown>;
}

export interface WebhookAttempt {
  eventId: string;
  type: string;
  at: number;
  /** HTTP status, or 0 when no answer came (refused, timeout). */
  status: number;
  ms: number;
  ok: boolean;
  error?: string;
}

/** What an endpoint's deliveries have done: kept per endpoint and shown as they are in its stats. */
export interface WebhookDeliveryState {
  delivered: number;
  failedAttempts: number;
  dropped: number;
  consecutiveFailures: number;
  lastSuccessAt: number | null;
  lastFailureAt: number | null;
  lastError: string | null;
  nextAttemptAt: number | null;
  /** Newest last. */
  recent: WebhookAttempt[];
}

export interface WebhookEndpointStats extends WebhookDeliveryState {
  id: string;
  url: string;
  source: 'config' | 'api';
  events: WebhookEventType[] | 'all';
  enabled: boolean;
  /** Fingerprints (sha256, 12 hex) of the signing secrets, newest first; the secrets themselves are never shown. */
  secrets: string[];
  pending: number;
}

export interface WebhookDispatcherOptions {
  /** Folder of the queue file and of the endpoints added through the API. */
  dir: string;
  nodeId: string;
  /** Endpoints from the configuration (not changeable through the API). */
  endpoints?: WebhookEndpointConfig[];
  /** First retry delay (ms); doubles per failure. Default 1000. */
  backoffMinMs?: number;
  /** Longest retry delay (ms). Default 60000. */
  backoffMaxMs?: number;
  /** An event not delivered this long after it was queued is dropped for that endpoint (ms). Default 86400000 (24 h). */
  maxAgeMs?: number;
  /** One delivery attempt's timeout (ms). Default 5000. */
  timeoutMs?: number;
  /** Most bytes of pending event bodies; beyond it the oldest are dropped (counted). Default 67108864 (64 MiB). */
  maxQueueBytes?: number;
  /** The queue file is rewritten with what is pending once it is this big (bytes). Default 4194304. */
  compactBytes?: number;
  /** viewer.filtered changes of one stream and jurisdiction within this window make one event (ms). Default 500. */
  aggregateMs?: number;
  /** Attempts kept per endpoint for the API. Default 20. */
  recentAttempts?: number;
  audit?: (body: Record<string, unknown>) => unknown;
  /** Every finished attempt (metrics). `latencyMs` = event time -> 2xx, on success. */
  onAttempt?: (endpointId: string, outcome: 'delivered' | 'failed' | 'dropped', latencyMs?: number) => void;
  log?: (level: 'warn' | 'info', msg: string, fields?: Record<string, unknown>) => void;
  /** Clock (ms since the epoch). Default Date.now. */
  now?: () => number;
}

/** One line of the queue file (see the header). */
interface QueueRow {
  o: 'e' | 'a' | 'd' | 's';
  id?: string;
  ep?: string;
  eps?: string[];
  body?: string;
  q?: number;
  why?: string;
  seqs?: Record<string, number>;
}

interface QueuedEvent {
  id: string;
  body: string;
  /** Queued at (ms). */
  q: number;
  at: number;
  type: string;
  /** Endpoints still to deliver to. */
  eps: Set<string>;
}

interface Endpoint extends WebhookDeliveryState {
  cfg: WebhookEndpointConfig;
  source: 'config' | 'api';
  queue: QueuedEvent[];
  busy: boolean;
  timer: NodeJS.Timeout | undefined;
}

interface ViewerAggregate {
  video: string;
  audio: string;
  reason: string;
  statementId?: string;
  at: number;
  viewers: Set<string>;
  timer: NodeJS.Timeout;
}

/** Most streams whose sequence numbers a compaction keeps (the most recently active). */
const MAX_SEQ_STREAMS = 10_000;
const NO_STREAM = '';

/** `t=...,v1=...` for a body, one v1 per secret. */
export function signWebhook(body: string, secrets: readonly string[], t: number): string {
  return [`t=${t}`, ...secrets.map((s) => `v1=${createHmac('sha256', s).update(`${t}.${body}`).digest('hex')}`)].join(
    ',',
  );
}

/** A receiver's check: true when some v1 of the header matches `secret` and t is within toleranceS of nowS. */
export function verifyWebhook(
  body: string,
  header: string,
  secret: string,
  nowS = Math.floor(Date.now() / 1000),
  toleranceS = 300,
): boolean {
  const parts = header.split(',').map((p) => p.trim().split('=') as [string, string]);
  const t = Number(parts.find(([k]) => k === 't')?.[1]);
  if (!Number.isFinite(t) || Math.abs(nowS - t) > toleranceS) return false;
  const want = Buffer.from(createHmac('sha256', secret).update(`${t}.${body}`).digest('hex'));
  return parts.some(
    ([k, v]) => k === 'v1' && v !== undefined && v.length === want.length && timingSafeEqual(Buffer.from(v), want),
  );
}

const fingerprint = (secret: string): string => createHash('sha256').update(secret).digest('hex').slice(0, 12);

type ResolvedOptions = Required<Omit<WebhookDispatcherOptions, 'audit' | 'onAttempt' | 'log' | 'endpoints'>> &
  Pick<WebhookDispatcherOptions, 'audit' | 'onAttempt' | 'log'>;

export class WebhookDispatcher {
  readonly #o: ResolvedOptions;
  readonly #endpoints = new Map<string, Endpoint>();
  readonly #events = new Map<string, QueuedEvent>();
  /** streamId -> last seq, most recently used last. */
  readonly #seqs = new Map<string, number>();
  readonly #aggregates = new Map<string, ViewerAggregate>();
  /** `${streamId}|${jurisdiction}` -> the last viewer.filtered state sent. */
  readonly #announced = new Map<string, string>();
  readonly #file: Journal;
  readonly #endpointsPath: string;
  #pendingBytes = 0;
  #unobserve: (() => void) | undefined;
  #closed = false;

  constructor(options: WebhookDispatcherOptions) {
    this.#o = {
      backoffMinMs: 1000,
      backoffMaxMs: 60_000,
      maxAgeMs: 86_400_000,
      timeoutMs: 5000,
      maxQueueBytes: 64 * 1024 * 1024,
      compactBytes: 4 * 1024 * 1024,
      aggregateMs: 500,
      recentAttempts: 20,
      now: Date.now,
      ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
    } as ResolvedOptions;
    this.#file = new Journal(join(options.dir, 'webhook-queue.jsonl'));
    this.#endpointsPath = join(options.dir, 'webhook-endpoints.json');
    for (const cfg of options.endpoints ?? []) this.#addEndpoint(checkEndpoint(cfg), 'config');
    if (existsSync(this.#endpointsPath)) {
      const saved = JSON.parse(readFileSync(this.#endpointsPath, 'utf8')) as WebhookEndpointConfig[];
      for (const cfg of saved) if (!this.#endpoints.has(cfg.id)) this.#addEndpoint(cfg, 'api');
    }
    // Nothing is written until there is something to keep: a server without webhooks leaves no files.
    if (existsSync(this.#file.path)) {
      this.#replay();
      this.#compact();
    }
    for (const ep of this.#endpoints.values()) this.#pump(ep);
  }

  /** Subscribes to the event hub: every event this node originates that a webhook type maps. */
  observe(events: EventHub): void {
    this.#unobserve?.();
    this.#unobserve = events.observe((m, a) => this.#onEvent(m, a));
  }

  // ---- endpoints (the API's)

  list(): WebhookEndpointStats[] {
    return [...this.#endpoints.values()].map((ep) => this.#stats(ep));
  }

  get(id: string): WebhookEndpointStats {
    return this.#stats(this.#require(id));
  }

  /** Adds an endpoint (API); returns it with its secret, shown this once. Audited. */
  create(
    input: { id?: string; url: string; secret?: string; events?: WebhookEventType[] },
    by: string,
  ): WebhookEndpointStats & { secret: string } {
    const id = input.id ?? `wh_${randomUUID().slice(0, 8)}`;
    if (this.#endpoints.has(id)) throw new SrvError('SRV_ERR_CONFLICT', `webhook endpoint ${id} exists`);
    const secret = input.secret ?? `whsec_${randomBytes(24).toString('base64url')}`;
    const cfg = checkEndpoint({ id, url: input.url, secrets: [secret], events: input.events, enabled: true });
    const ep = this.#addEndpoint(cfg, 'api');
    this.#save();
    this.#audit({
      type: 'webhook.created',
      endpointId: id,
      url: cfg.url,
      events: cfg.events ?? 'all',
      secret: fingerprint(secret),
      by,
    });
    return { ...this.#stats(ep), secret };
  }

  /** Changes an API endpoint's url, events or enabled flag. Audited. */
  update(
    id: string,
    patch: { url?: string; events?: WebhookEventType[]; enabled?: boolean },
    by: string,
  ): WebhookEndpointStats {
    const ep = this.#mutable(id);
    ep.cfg = checkEndpoint({
      ...ep.cfg,
      ...Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)),
    });
    this.#save();
    this.#audit({ type: 'webhook.updated', endpointId: id, changes: patch, by });
    if (ep.cfg.enabled !== false) this.#pump(ep);
    return this.#stats(ep);
  }

  /**
   * Rotation: a new primary secret, the old one kept as the second (both sign until retired), or
   * `retire` drops the second. Audited (fingerprints only).
   */
  rotate(
    id: string,
    input: { secret?: string; retire?: boolean },
    by: string,
  ): WebhookEndpointStats & { secret?: string } {
    const ep = this.#mutable(id);
    if (input.retire) {
      if (ep.cfg.secrets.length < 2)
        throw new SrvError('SRV_ERR_CONFLICT', `webhook endpoint ${id} has no previous secret to retire`);
      const retired = ep.cfg.secrets[1]!;
      ep.cfg = { ...ep.cfg, secrets: [ep.cfg.secrets[0]!] };
      this.#save();
      this.#audit({ type: 'webhook.secret_retired', endpointId: id, secret: fingerprint(retired), by });
      return this.#stats(ep);
    }
    const secret = input.secret ?? `whsec_${randomBytes(24).toString('base64url')}`;
    ep.cfg = checkEndpoint({ ...ep.cfg, secrets: [secret, ep.cfg.secrets[0]!] });
    this.#save();
    this.#audit({
      type: 'webhook.secret_rotated',
      endpointId: id,
      secret: fingerprint(secret),
      previous: fingerprint(ep.cfg.secrets[1]!),
      by,
    });
    return { ...this.#stats(ep), secret };
  }

  /** Removes an API endpoint; what it had pending is dropped. Audited. */
  remove(id: string, by: string): void {
    const ep = this.#mutable(id);
    if (ep.timer) clearTimeout(ep.timer);
    const pending = ep.queue.length;
    for (const e of ep.queue) this.#settle(e, id, 'd', 'endpoint removed');
    ep.queue = [];
    this.#endpoints.delete(id);
    this.#save();
    this.#audit({ type: 'webhook.removed', endpointId: id, droppedPending: pending, by });
  }

  /** Totals for /metrics. */
  stats(): WebhookEndpointStats[] {
    return this.list();
  }

  /** Stops sending (what is pending stays in the file for the next start). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unobserve?.();
    for (const a of this.#aggregates.values()) clearTimeout(a.timer);
    for (const ep of this.#endpoints.values()) if (ep.timer) clearTimeout(ep.timer);
    this.#file.close();
  }

  // ---- events in

  #onEvent(m: EventMessage, _audience: EventAudience): void {
    if (this.#closed) return;
    switch (m.type) {
      case 'stream.status':
        if (m.state === 'live') this.enqueue('stream.started', m.streamId, m.at, {});
        else {
          this.#flushViewers(m.streamId);
          this.enqueue('stream.ended', m.streamId, m.at, { state: m.state });
          for (const k of [...this.#announced.keys()]) if (k.startsWith(`${m.streamId}|`)) this.#announced.delete(k);
        }
        return;
      case 'stream.killed':
        this.#flushViewers(m.streamId);
        this.enqueue('stream.killed', m.streamId, m.at, {
          reason: m.reason,
          statementId: m.statementId ?? null,
          appealUrl: m.appealUrl,
        });
        return;
      case 'viewer.filtered':
        this.#aggregate(m);
        return;
      case 'review.created':
      case 'appeal.created':
      case 'review.resolved':
      case 'appeal.decided':
      case 'statement.created':
      case 'moderation.degraded': {
        const { type, streamId, at, ...data } = m;
        this.enqueue(type, streamId, at, data);
        return;
      }
      default:
        return;
    }
  }

  /** One viewer.filtered event per stream, jurisdiction and gate state, however many viewers it concerns. */
  #aggregate(m: Extract<EventMessage, { type: 'viewer.filtered' }>): void {
    const key = `${m.streamId}|${m.jurisdiction ?? 'default'}`;
    const a = this.#aggregates.get(key);
    if (a && a.video === m.video && a.audio === m.audio && a.statementId === m.statementId) {
      a.viewers.add(m.viewerId);
      return;
    }
    if (a) {
      // the state changed within the window: the latest state wins, counted from here
      Object.assign(a, {
        video: m.video,
        audio: m.audio,
        reason: m.reason,
        statementId: m.statementId,
        viewers: new Set([m.viewerId]),
      });
      return;
    }
    const timer = setTimeout(() => this.#flushAggregate(key), this.#o.aggregateMs);
    timer.unref();
    this.#aggregates.set(key, {
      video: m.video,
      audio: m.audio,
      reason: m.reason,
      statementId: m.statementId,
      at: m.at,
      viewers: new Set([m.viewerId]),
      timer,
    });
  }

  #flushViewers(streamId: string): void {
    for (const key of [...this.#aggregates.keys()]) if (key.startsWith(`${streamId}|`)) this.#flushAggregate(key);
  }

  #flushAggregate(key: string): void {
    const a = this.#aggregates.get(key);
    if (!a) return;
    clearTimeout(a.timer);
    this.#aggregates.delete(key);
    const state = `${a.video}|${a.audio}|${a.statementId ?? ''}`;
    if (this.#announced.get(key) === state) return;
    this.#announced.set(key, state);
    const [streamId, jurisdiction] = key.split('|') as [string, string];
    this.enqueue('viewer.filtered', streamId, a.at, {
      jurisdiction,
      video: a.video,
      audio: a.audio,
      reason: a.reason,
      statementId: a.statementId ?? null,
      viewers: a.viewers.size,
    });
  }

  /** Queues one event for every enabled endpoint that takes its type; written to disk before this returns. */
  enqueue(type: WebhookEventType, streamId: string | undefined, at: number, data: Record<string, unknown>): string {
    const key = streamId ?? NO_STREAM;
    const seq = (this.#seqs.get(key) ?? 0) + 1;
    this.#seqs.delete(key);
    this.#seqs.set(key, seq);
    const id = `evt_${randomUUID()}`;
    const payload: WebhookPayload = { id, type, at, streamId: streamId ?? null, seq, node: this.#o.nodeId, data };
    const eps = [...this.#endpoints.values()].filter((ep) => !ep.cfg.events || ep.cfg.events.includes(type));
    if (eps.length === 0) return id;
    const body = JSON.stringify(payload);
    const e: QueuedEvent = { id, body, q: this.#o.now(), at, type, eps: new Set(eps.map((ep) => ep.cfg.id)) };
    this.#file.append({ o: 'e', id, eps: [...e.eps], body, q: e.q } satisfies QueueRow);
    this.#events.set(id, e);
    this.#pendingBytes += body.length * e.eps.size;
    for (const ep of eps) {
      ep.queue.push(e);
      this.#pump(ep);
    }
    this.#bound();
    return id;
  }

  // ---- delivery

  #pump(ep: Endpoint): void {
    if (this.#closed || ep.busy || ep.timer || ep.queue.length === 0 || ep.cfg.enabled === false) return;
    ep.busy = true;
    void this.#attempt(ep, ep.queue[0]!).finally(() => {
      ep.busy = false;
      this.#pump(ep);
    });
  }

  async #attempt(ep: Endpoint, e: QueuedEvent): Promise<void> {
    const started = this.#o.now();
    const t = Math.floor(started / 1000);
    let status = 0;
    let error: string | undefined;
    try {
      const res = await fetch(ep.cfg.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'moderating-sfu-webhooks/1',
          'webhook-id': e.id,
          'webhook-timestamp': String(t),
          'webhook-signature': signWebhook(e.body, ep.cfg.secrets, t),
        },
        body: e.body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.#o.timeoutMs),
      });
      status = res.status;
      await res.arrayBuffer().catch(() => undefined);
      if (status < 200 || status >= 300) error = `HTTP ${status}`;
    } catch (err) {
      error = errorText(err);
    }
    if (this.#closed || !this.#endpoints.has(ep.cfg.id)) return;
    const now = this.#o.now();
    const ok = error === undefined;
    ep.recent.push({
      eventId: e.id,
      type: e.type,
      at: started,
      status,
      ms: now - started,
      ok,
      ...(error ? { error } : {}),
    });
    if (ep.recent.length > this.#o.recentAttempts) ep.recent.shift();
    if (ok) {
      ep.delivered++;
      ep.consecutiveFailures = 0;
      ep.lastSuccessAt = now;
      ep.nextAttemptAt = null;
      if (ep.queue[0] === e) ep.queue.shift();
      this.#settle(e, ep.cfg.id, 'a');
      this.#o.onAttempt?.(ep.cfg.id, 'delivered', now - e.at);
      return;
    }
    ep.failedAttempts++;
    ep.consecutiveFailures++;
    ep.lastFailureAt = now;
    ep.lastError = error ?? null;
    this.#o.onAttempt?.(ep.cfg.id, 'failed');
    if (ep.consecutiveFailures === 1 || ep.consecutiveFailures % 10 === 0)
      this.#o.log?.('warn', 'webhook delivery failed; retrying with backoff', {
        endpoint: ep.cfg.id,
        url: ep.cfg.url,
        error,
        failures: ep.consecutiveFailures,
      });
    if (now - e.q >= this.#o.maxAgeMs) {
      if (ep.queue[0] === e) ep.queue.shift();
      this.#drop(ep, e, `not delivered within ${this.#o.maxAgeMs} ms (last: ${error})`);
      return;
    }
    const delay =
      Math.min(this.#o.backoffMaxMs, this.#o.backoffMinMs * 2 ** Math.min(30, ep.consecutiveFailures - 1)) *
      (0.8 + 0.4 * Math.random());
    ep.nextAttemptAt = now + delay;
    ep.timer = setTimeout(() => {
      ep.timer = undefined;
      this.#pump(ep);
    }, delay);
    ep.timer.unref();
  }

  #drop(ep: Endpoint, e: QueuedEvent, why: string): void {
    ep.dropped++;
    this.#settle(e, ep.cfg.id, 'd', why);
    this.#o.onAttempt?.(ep.cfg.id, 'dropped');
    this.#audit({ type: 'webhook.dropped', endpointId: ep.cfg.id, eventId: e.id, eventType: e.type, why });
  }

  /** An endpoint is done with an event (delivered or dropped): on disk first, then in memory. */
  #settle(e: QueuedEvent, epId: string, o: 'a' | 'd', why?: string): void {
    if (!e.eps.delete(epId)) return;
    this.#file.append((o === 'a' ? { o, id: e.id, ep: epId } : { o, id: e.id, ep: epId, why }) satisfies QueueRow);
    this.#pendingBytes -= e.body.length;
    if (e.eps.size === 0) this.#events.delete(e.id);
    if (this.#file.bytes > this.#o.compactBytes) this.#compact();
  }

  /** Over the byte bound: the oldest pending events go first. */
  #bound(): void {
    if (this.#pendingBytes <= this.#o.maxQueueBytes) return;
    for (const e of this.#events.values()) {
      if (this.#pendingBytes <= this.#o.maxQueueBytes) break;
      for (const epId of [...e.eps]) {
        const ep = this.#endpoints.get(epId);
        if (!ep || (ep.queue[0] === e && ep.busy)) continue;
        ep.queue = ep.queue.filter((x) => x !== e);
        this.#drop(ep, e, `webhook queue over ${this.#o.maxQueueBytes} bytes`);
      }
    }
  }

  // ---- the file

  #replay(): void {
    for (const r of Journal.read<QueueRow>(this.#file.path)) {
      if (r.o === 's' && r.seqs) for (const [k, v] of Object.entries(r.seqs)) this.#seqs.set(k, v);
      else if (r.o === 'e' && r.id && r.body && r.eps) {
        const p = JSON.parse(r.body) as WebhookPayload;
        const key = p.streamId ?? NO_STREAM;
        if ((this.#seqs.get(key) ?? 0) < p.seq) {
          this.#seqs.delete(key);
          this.#seqs.set(key, p.seq);
        }
        this.#events.set(r.id, { id: r.id, body: r.body, q: r.q ?? p.at, at: p.at, type: p.type, eps: new Set(r.eps) });
      } else if ((r.o === 'a' || r.o === 'd') && r.id && r.ep) {
        const e = this.#events.get(r.id);
        e?.eps.delete(r.ep);
        if (e && e.eps.size === 0) this.#events.delete(r.id);
      }
    }
    for (const e of this.#events.values()) {
      for (const epId of [...e.eps]) {
        const ep = this.#endpoints.get(epId);
        if (ep) ep.queue.push(e);
        else e.eps.delete(epId); // the endpoint is gone from the configuration
      }
      if (e.eps.size === 0) this.#events.delete(e.id);
      else this.#pendingBytes += e.body.length * e.eps.size;
    }
    this.#o.log?.('info', 'webhook queue replayed', { pending: this.#events.size });
  }

  /** Rewrites the file with the sequence numbers and what is still pending. */
  #compact(): void {
    const seqs = Object.fromEntries([...this.#seqs].slice(-MAX_SEQ_STREAMS));
    const rows: QueueRow[] = [{ o: 's', seqs }];
    for (const e of this.#events.values()) rows.push({ o: 'e', id: e.id, eps: [...e.eps], body: e.body, q: e.q });
    this.#file.rewrite(rows);
    // trimmed sequence map: the streams a compaction forgot start again at 1 (their events are long delivered)
    if (this.#seqs.size > MAX_SEQ_STREAMS)
      for (const k of [...this.#seqs.keys()].slice(0, this.#seqs.size - MAX_SEQ_STREAMS)) this.#seqs.delete(k);
  }

  #save(): void {
    const api = [...this.#endpoints.values()].filter((ep) => ep.source === 'api').map((ep) => ep.cfg);
    const tmp = `${this.#endpointsPath}.tmp`;
    mkdirSync(this.#o.dir, { recursive: true });
    writeFileSync(tmp, `${JSON.stringify(api, null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, this.#endpointsPath);
  }

  // ---- helpers

  #addEndpoint(cfg: WebhookEndpointConfig, source: 'config' | 'api'): Endpoint {
    const ep: Endpoint = {
      cfg,
      source,
      queue: [],
      busy: false,
      timer: undefined,
      nextAttemptAt: null,
      delivered: 0,
      failedAttempts: 0,
      dropped: 0,
      consecutiveFailures: 0,
      lastSuccessAt: null,
      lastFailureAt: null,
      lastError: null,
      recent: [],
    };
    this.#endpoints.set(cfg.id, ep);
    return ep;
  }

  #require(id: string): Endpoint {
    const ep = this.#endpoints.get(id);
    if (!ep) throw notFound(`no webhook endpoint ${id}`);
    return ep;
  }

  #mutable(id: string): Endpoint {
    const ep = this.#require(id);
    if (ep.source === 'config')
      throw new SrvError(
        'SRV_ERR_CONFLICT',
        `webhook endpoint ${id} is defined in the configuration (webhooks); change it there`,
      );
    return ep;
  }

  #stats(ep: Endpoint): WebhookEndpointStats {
    return {
      id: ep.cfg.id,
      url: ep.cfg.url,
      source: ep.source,
      events: ep.cfg.events ?? 'all',
      enabled: ep.cfg.enabled !== false,
      secrets: ep.cfg.secrets.map(fingerprint),
      pending: ep.queue.length,
      delivered: ep.delivered,
      failedAttempts: ep.failedAttempts,
      dropped: ep.dropped,
      consecutiveFailures: ep.consecutiveFailures,
      lastSuccessAt: ep.lastSuccessAt,
      lastFailureAt: ep.lastFailureAt,
      lastError: ep.lastError,
      nextAttemptAt: ep.nextAttemptAt,
      recent: [...ep.recent],
    };
  }

  #audit(body: Record<string, unknown>): void {
    try {
      const r = this.#o.audit?.({ ...body, at: this.#o.now() });
      if (r instanceof Promise)
        r.catch((err: unknown) => this.#o.log?.('warn', 'webhook audit append failed', { err: errorText(err) }));
    } catch (err) {
      this.#o.log?.('warn', 'webhook audit append failed', { err: errorText(err) });
    }
  }
}

/** Validates an endpoint definition (config file, env or API); coded 400 on a bad one. */
export function checkEndpoint(cfg: WebhookEndpointConfig): WebhookEndpointConfig {
  if (!/^[A-Za-z0-9._-]{1,100}$/.test(cfg.id ?? ''))
    throw badRequest(`webhook endpoint id ${JSON.stringify(cfg.id)}: 1-100 letters, digits, . _ -`);
  let url: URL;
  try {
    url = new URL(cfg.url);
  } catch {
    throw badRequest(`webhook endpoint ${cfg.id}: url ${JSON.stringify(cfg.url)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw badRequest(`webhook endpoint ${cfg.id}: url must be http(s), not ${url.protocol}`);
  if (
    !Array.isArray(cfg.secrets) ||
    cfg.secrets.length < 1 ||
    cfg.secrets.length > 2 ||
    cfg.secrets.some((s) => typeof s !== 'string' || s.length < 16)
  )
    throw badRequest(`webhook endpoint ${cfg.id}: secrets must be 1 or 2 strings of 16+ characters (newest first)`);
  const unknown = (cfg.events ?? []).filter((e) => !(WEBHOOK_EVENTS as readonly string[]).includes(e));
  if (unknown.length)
    throw badRequest(
      `webhook endpoint ${cfg.id}: unknown event types ${unknown.join(', ')} (known: ${WEBHOOK_EVENTS.join(', ')})`,
    );
  return {
    id: cfg.id,
    url: url.toString(),
    secrets: [...cfg.secrets],
    ...(cfg.events ? { events: [...cfg.events] } : {}),
    ...(cfg.enabled === false ? { enabled: false } : {}),
  };
}

function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as Error & { cause?: unknown }).cause;
  return cause instanceof Error ? `${err.message}: ${cause.message}` : err.message;
}
