// WebSocket hub at GET /v1/events: live events to streamers (status, warnings, kill with reason,
// statement id and appeal route), viewers (why the feed is filtered) and ops (decisions, queue depth,
// budget figures). JSON text frames by default, msgpack binary frames with `?format=msgpack`.
// `emit` delivers to this node's sockets; `broadcast` also reaches the other nodes through the store.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type {} from '@fastify/websocket';
import { Packr } from 'msgpackr';
import { z } from 'zod';
import type { Auth, Principal } from './auth.ts';
import { SrvError, badRequest, forbidden, notFound } from './errors.ts';
import type { Bucket } from '../policies/types.ts';
import type { DecisionLog } from './enforcer.ts';
import type { ControlMessage, DecisionRecord, Store } from './store/types.ts';

export type EventRole = 'streamer' | 'viewer' | 'ops';

export type StreamStatusEvent = {
  type: 'stream.status';
  streamId: string;
  state: 'live' | 'ended' | 'killed';
  at: number;
};
export type StreamKilledEvent = {
  type: 'stream.killed';
  streamId: string;
  reason: string;
  statementId?: string;
  appealUrl: string;
  at: number;
};
export type ViewerFilteredEvent = {
  type: 'viewer.filtered';
  streamId: string;
  viewerId: string;
  /** The viewer's jurisdiction (undefined = none known), so observers can aggregate per jurisdiction. */
  jurisdiction?: string;
  video: 'forward' | 'blank';
  audio: 'forward' | 'mute';
  reason: string;
  statementId?: string;
  at: number;
};
export type ModerationStatusEvent = {
  type: 'moderation.status';
  streamId: string;
  verdict: { bucket: Bucket; categories: Record<string, number> };
  at: number;
};
export type WarningEvent = { type: 'warning'; streamId?: string; message: string; at: number };
/** To ops: an applied decision (the enforcer's log, or the record of a manual kill or resume). */
export type DecisionEvent = { type: 'decision'; decision: DecisionLog | DecisionRecord };
export type ReviewQueueEvent = { type: 'review.queue'; depth: number; at?: number };
export type BudgetEvent = { type: 'budget'; [key: string]: unknown };
/** A chat message that passed moderation for the receiver; ops also get withheld ones, with why. */
export type ChatEvent = {
  type: 'chat';
  streamId: string;
  id: string;
  /** Sender's token subject. */
  from: string;
  text: string;
  at: number;
  /** Ops only: jurisdiction keys the message was withheld from. */
  withheldIn?: string[];
  /** Ops only: what the text moderator matched. */
  hits?: { category: string; term: string }[];
};

/** A review item entered the queue: amber (`review.created`) or a streamer's appeal (`appeal.created`). */
export type ReviewCreatedEvent = {
  type: 'review.created' | 'appeal.created';
  streamId: string;
  itemId: string;
  priority: number;
  jurisdictions: string[];
  categories: string[];
  /** The statement under appeal (appeals), or the one the item cites. */
  statementId?: string;
  at: number;
};
/** A reviewer resolved an item: amber (`review.resolved`) or an appeal (`appeal.decided`). */
export type ReviewResolvedEvent = {
  type: 'review.resolved' | 'appeal.decided';
  streamId: string;
  itemId: string;
  decisionId: string;
  outcome: 'uphold' | 'overturn';
  effect: { kind: 'restrict' | 'lift' | 'none'; action?: string; jurisdictions?: string[] };
  /** The outcome's statement of reasons, when the decision issued one. */
  statementId?: string;
  at: number;
};
/** A statement of reasons was issued (automated, manual or on review). */
export type StatementCreatedEvent = {
  type: 'statement.created';
  streamId: string;
  statementId: string;
  action: string;
  jurisdictions: string[];
  automated: boolean;
  clause: string;
  /** Evidence clip ids the statement cites (GET /v1/evidence/:id), when clips are kept. */
  clips?: string[];
  at: number;
};
/** Moderation of a stream (or of the node) stopped or resumed giving signals: the policies' fail mode applies meanwhile. */
export type ModerationDegradedEvent = {
  type: 'moderation.degraded';
  streamId?: string;
  kind?: 'audio' | 'video';
  cause: 'stall' | 'worker_crash';
  /** false = signals are back. */
  degraded: boolean;
  message: string;
  at: number;
};

export type EventMessage =
  | StreamStatusEvent
  | StreamKilledEvent
  | ViewerFilteredEvent
  | ModerationStatusEvent
  | WarningEvent
  | DecisionEvent
  | ReviewQueueEvent
  | BudgetEvent
  | ChatEvent
  | ReviewCreatedEvent
  | ReviewResolvedEvent
  | StatementCreatedEvent
  | ModerationDegradedEvent;

/**
 * Monitoring code (the webhook dispatcher) sees every message this node originates, after the
 * sockets got it; messages relayed from other nodes are theirs to report. A listener that throws is
 * counted, never allowed to break the emitter.
 */
export type EventObserver = (message: EventMessage, audience: EventAudience) => void;

/** Who receives a message. Every given field must match; absent fields match everyone. */
export interface EventAudience {
  roles?: readonly EventRole[];
  /** Clients of this stream; ops clients without a stream filter receive every stream. */
  streamId?: string;
  viewerId?: string;
  /** Viewers of this jurisdiction; 'default' = viewers with none. */
  jurisdiction?: string;
  /** Viewers of any of these jurisdictions ('default' = viewers with none). */
  jurisdictions?: readonly string[];
  /** Viewers of none of these jurisdictions ('default' = viewers with none). */
  exceptJurisdictions?: readonly string[];
}

/** Minimal view of a `ws` socket. */
interface EventSocket {
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: string | Buffer): void;
  close(code?: number, reason?: string): void;
  on(event: 'close', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  on(event: 'message', listener: (data: unknown) => void): unknown;
}

interface EventClient {
  socket: EventSocket;
  role: EventRole;
  streamId?: string;
  viewerId?: string;
  jurisdiction?: string;
  msgpack: boolean;
  principal?: Principal;
  /** Client address (for the per-client socket cap). */
  address: string;
}

const OPEN = 1;
/** A client this far behind is skipped (message dropped, counted) rather than buffered without bound. */
const MAX_BUFFERED_BYTES = 1 << 20;

const QuerySchema = z.object({
  role: z.enum(['streamer', 'viewer', 'ops']),
  streamId: z.string().min(1).max(200).optional(),
  /** A viewer's WHEP session id (the last segment of its Location): its viewer's own events. */
  session: z.string().min(1).max(200).optional(),
  access_token: z.string().optional(),
  format: z.enum(['json', 'msgpack']).optional(),
  jurisdiction: z.string().optional(),
});

export interface EventHubOptions {
  auth: Auth;
  store: Store;
  nodeId: string;
  /** Current state of a stream for the greeting `stream.status`. */
  streamState?: (streamId: string) => Promise<'live' | 'ended' | 'killed' | undefined>;
  /** The viewer a WHEP session id names (so `?session=` proves which viewer a socket is for). */
  viewerOfSession?: (
    streamId: string,
    sessionId: string,
  ) => { id: string; jurisdiction: string | undefined } | undefined;
  /** Sockets one client address may hold; more are refused with 429. Default 16. */
  maxPerClient?: number;
}

export class EventHub {
  readonly #clients = new Set<EventClient>();
  readonly #packr = new Packr({ useRecords: false });
  readonly #opts: EventHubOptions;
  readonly #observers = new Set<EventObserver>();
  #sent = 0;
  #dropped = 0;
  #observerErrors = 0;
  #closed = false;

  constructor(options: EventHubOptions) {
    this.#opts = options;
  }

  get clientCount(): number {
    return this.#clients.size;
  }
  get stats(): { clients: number; sent: number; dropped: number; observerErrors: number } {
    return {
      clients: this.#clients.size,
      sent: this.#sent,
      dropped: this.#dropped,
      observerErrors: this.#observerErrors,
    };
  }

  /** Adds a monitoring listener (see EventObserver); returns its removal. */
  observe(listener: EventObserver): () => void {
    this.#observers.add(listener);
    return () => this.#observers.delete(listener);
  }

  /**
   * Delivers to matching sockets on this node; returns how many received it. `relayed`: the message
   * came from another node through the store (its observers have seen it there).
   */
  emit(audience: EventAudience, message: EventMessage, options: { relayed?: boolean } = {}): number {
    const n = this.#send(audience, message);
    if (!options.relayed) {
      for (const o of this.#observers) {
        try {
          o(message, audience);
        } catch {
          this.#observerErrors++;
        }
      }
    }
    return n;
  }

  #send(audience: EventAudience, message: EventMessage): number {
    let n = 0;
    let json: string | undefined;
    let packed: Buffer | undefined;
    for (const c of this.#clients) {
      if (!matches(c, audience)) continue;
      if (c.socket.readyState !== OPEN) continue;
      if (c.socket.bufferedAmount > MAX_BUFFERED_BYTES) {
        this.#dropped++;
        continue;
      }
      try {
        if (c.msgpack) c.socket.send((packed ??= this.#packr.pack(message)));
        else c.socket.send((json ??= JSON.stringify(message)));
        n++;
        this.#sent++;
      } catch {
        this.#dropped++;
      }
    }
    return n;
  }

  /** emit() here and on every other node sharing the store. */
  async broadcast(audience: EventAudience, message: EventMessage): Promise<number> {
    const n = this.emit(audience, message);
    const wire: ControlMessage = {
      type: 'event',
      audience: {
        ...audience,
        roles: audience.roles ? [...audience.roles] : undefined,
        jurisdictions: audience.jurisdictions ? [...audience.jurisdictions] : undefined,
        exceptJurisdictions: audience.exceptJurisdictions ? [...audience.exceptJurisdictions] : undefined,
      },
      message: message as Record<string, unknown>,
      origin: this.#opts.nodeId,
      at: Date.now(),
    };
    await this.#opts.store.publishControl(wire);
    return n;
  }

  /** Registers GET /v1/events on `app` (which must have @fastify/websocket registered). */
  register(app: FastifyInstance): void {
    const auth = this.#opts.auth;
    app.get(
      '/v1/events',
      {
        websocket: true,
        // Runs before the upgrade: a rejected client gets a plain coded HTTP error, not a socket.
        preValidation: async (req: FastifyRequest) => {
          const q = QuerySchema.safeParse(req.query);
          if (!q.success)
            throw badRequest(
              `bad /v1/events query: ${q.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
            );
          const { role, streamId } = q.data;
          const held = [...this.#clients].filter((c) => c.address === req.ip).length;
          const cap = this.#opts.maxPerClient ?? 16;
          if (held >= cap)
            throw new SrvError(
              'SRV_ERR_RATE_LIMITED',
              `this client already holds ${held} event sockets (limit ${cap})`,
            );
          let principal: Principal | undefined;
          let jurisdiction: string | undefined;
          let viewerId: string | undefined;
          if (role === 'ops') principal = await auth.require(req, ['reviewer'], true);
          else if (role === 'streamer') {
            if (!streamId) throw badRequest('role=streamer needs streamId');
            principal = await auth.authorizePublish(req, streamId, true);
          } else {
            if (!streamId) throw badRequest('role=viewer needs streamId');
            const v = await auth.authorizeView(req, streamId, true);
            principal = v.principal;
            jurisdiction = v.jurisdiction;
            // A viewer's own events (viewer.filtered) need its id: from its token, or proven by its WHEP session id.
            if (q.data.session) {
              const viewer = this.#opts.viewerOfSession?.(streamId, q.data.session);
              if (!viewer) throw notFound(`no WHEP session ${q.data.session} of stream ${streamId} on this node`);
              if (principal?.viewerId && principal.viewerId !== viewer.id)
                throw forbidden("the session is not this token's viewer");
              viewerId = viewer.id;
              jurisdiction = viewer.jurisdiction;
            }
          }
          (req as FastifyRequest & { eventClient?: Omit<EventClient, 'socket'> }).eventClient = {
            role,
            streamId,
            viewerId: viewerId ?? principal?.viewerId,
            address: req.ip,
            jurisdiction,
            msgpack: q.data.format === 'msgpack',
            principal,
          };
        },
      },
      (socket: EventSocket, req: FastifyRequest) => {
        const meta = (req as FastifyRequest & { eventClient?: Omit<EventClient, 'socket'> }).eventClient;
        if (!meta || this.#closed) {
          socket.close(1011, 'not ready');
          return;
        }
        const client: EventClient = { ...meta, socket };
        this.#clients.add(client);
        socket.on('close', () => this.#clients.delete(client));
        socket.on('error', () => this.#clients.delete(client));
        // Clients only listen; anything they send is ignored.
        socket.on('message', () => undefined);
        void this.#greet(client);
      },
    );
  }

  async #greet(c: EventClient): Promise<void> {
    const at = Date.now();
    const send = (m: EventMessage): void => {
      if (c.socket.readyState !== OPEN) return;
      c.socket.send(c.msgpack ? this.#packr.pack(m) : JSON.stringify(m));
    };
    try {
      if (c.role === 'ops') send({ type: 'review.queue', depth: await this.#opts.store.reviewDepth(), at });
      if (c.streamId && this.#opts.streamState) {
        const state = await this.#opts.streamState(c.streamId);
        if (state) send({ type: 'stream.status', streamId: c.streamId, state, at });
      }
    } catch {
      // The greeting is a courtesy (store may be away); the subscription itself stands.
    }
  }

  /** Closes every socket (1001 going away). */
  close(): void {
    this.#closed = true;
    for (const c of this.#clients) {
      try {
        c.socket.close(1001, 'server shutting down');
      } catch {
        // already gone
      }
    }
    this.#clients.clear();
  }
}

function matches(c: EventClient, a: EventAudience): boolean {
  if (a.roles && !a.roles.includes(c.role)) return false;
  if (a.streamId !== undefined && c.streamId !== a.streamId && !(c.role === 'ops' && c.streamId === undefined))
    return false;
  if (a.viewerId !== undefined && c.role === 'viewer' && c.viewerId !== a.viewerId) return false;
  if (c.role === 'viewer') {
    const j = c.jurisdiction ?? 'default';
    if (a.jurisdiction !== undefined && a.jurisdiction !== j) return false;
    if (a.jurisdictions && !a.jurisdictions.includes(j)) return false;
    if (a.exceptJurisdictions?.includes(j)) return false;
  }
  return true;
}
