// The WHIP/WHEP sessions of this node and who may open more: one owner for the session ids the
// Location headers carry, the client each session belongs to, and admission (capacity and
// unconnected-session caps). Measured before it existed: with a 20-port range, 8 anonymous WHEP
// offers made the server answer 201 with no candidate, and nothing bounded how many unconnected
// sessions one client could hold open for the 15 s connect timeout.
//
//   const sessions = new WebrtcSessions(sfu, limits);
//   const ticket = sessions.admit('whep', client);   // throws 503/429 with Retry-After
//   try { ... sfu.view(...) } catch (e) { ticket.release(); throw e; }
//   const id = sessions.add(ticket, { kind: 'whep', streamId, viewer });
//
// A session counts as pending from admission until its ICE and DTLS complete (the engine's
// 'connected') or it closes; the engines close sessions that never connect (connect timeout) and
// sessions whose peer went silent (idle timeout), so pending and live counts come back by themselves.

import { randomBytes } from 'node:crypto';
import type { Sfu, Stream, Viewer } from '../sfu/types.ts';
import { SrvError } from './errors.ts';

export interface AdmissionLimits {
  /** Live streams (publishers) on this node. Default 100. */
  maxStreams: number;
  /** Viewers over all streams of this node. Default 2000. */
  maxViewers: number;
  /** Unconnected sessions over all clients. Default 64. */
  maxPending: number;
  /** Unconnected sessions of one client address. Default 8. */
  maxPendingPerClient: number;
  /** Seconds a refused client is told to wait (Retry-After). Default 5. */
  retryAfterS: number;
}

export const DEFAULT_ADMISSION: AdmissionLimits = {
  maxStreams: 100,
  maxViewers: 2000,
  maxPending: 64,
  maxPendingPerClient: 8,
  retryAfterS: 5,
};

export type Session =
  | { kind: 'whip'; streamId: string; stream: Stream; client: string; credential?: string }
  | { kind: 'whep'; streamId: string; viewer: Viewer; client: string };

/** A reserved admission slot: turned into a session by add(), or given back by release(). */
export interface Ticket {
  readonly kind: 'whip' | 'whep';
  readonly client: string;
  release(): void;
}

/** An admission refusal: the coded error plus how long to wait. */
export class AdmissionError extends SrvError {
  constructor(
    code: 'SRV_ERR_CAPACITY' | 'SRV_ERR_RATE_LIMITED',
    message: string,
    readonly retryAfterS: number,
  ) {
    super(code, message);
  }
}

export class WebrtcSessions {
  readonly #sfu: Sfu;
  readonly #limits: AdmissionLimits;
  readonly #sessions = new Map<string, Session>();
  /** Per client address: unconnected sessions and reserved tickets. */
  readonly #pendingOf = new Map<string, number>();
  #pending = 0;
  #negotiating: Record<'whip' | 'whep', number> = { whip: 0, whep: 0 };

  constructor(sfu: Sfu, limits: Partial<AdmissionLimits> = {}) {
    this.#sfu = sfu;
    this.#limits = { ...DEFAULT_ADMISSION, ...limits };
  }

  get size(): number {
    return this.#sessions.size;
  }

  /** Unconnected sessions (all clients), including offers being answered. */
  get pending(): number {
    return this.#pending;
  }

  pendingOf(client: string): number {
    return this.#pendingOf.get(client) ?? 0;
  }

  /**
   * Reserves a slot for a new session or throws AdmissionError: 503 SRV_ERR_CAPACITY when the node is
   * full (streams, viewers, unconnected sessions), 429 SRV_ERR_RATE_LIMITED when this client holds too
   * many unconnected sessions. `replacing` = a publisher taking over its own stream (no new stream).
   */
  admit(kind: 'whip' | 'whep', client: string, replacing = false): Ticket {
    const l = this.#limits;
    if (this.pendingOf(client) >= l.maxPendingPerClient)
      throw new AdmissionError(
        'SRV_ERR_RATE_LIMITED',
        `this client already has ${this.pendingOf(client)} sessions that have not connected (limit ${l.maxPendingPerClient})`,
        l.retryAfterS,
      );
    if (this.#pending >= l.maxPending)
      throw new AdmissionError(
        'SRV_ERR_CAPACITY',
        `${this.#pending} sessions are still connecting on this node (limit ${l.maxPending})`,
        l.retryAfterS,
      );
    if (kind === 'whip' && !replacing) {
      let streams = this.#negotiating.whip;
      for (const s of this.#sfu.streams()) if (!s.closed) streams++;
      if (streams >= l.maxStreams)
        throw new AdmissionError(
          'SRV_ERR_CAPACITY',
          `this node carries ${streams} streams (limit ${l.maxStreams})`,
          l.retryAfterS * 6,
        );
    }
    if (kind === 'whep') {
      let viewers = this.#negotiating.whep;
      for (const s of this.#sfu.streams()) viewers += s.viewers.size;
      if (viewers >= l.maxViewers)
        throw new AdmissionError(
          'SRV_ERR_CAPACITY',
          `this node carries ${viewers} viewers (limit ${l.maxViewers})`,
          l.retryAfterS,
        );
    }
    this.#negotiating[kind]++;
    this.#addPending(client, 1);
    let done = false;
    return {
      kind,
      client,
      release: () => {
        if (done) return;
        done = true;
        this.#negotiating[kind]--;
        this.#addPending(client, -1);
      },
    };
  }

  /** Registers the session a ticket was for; it stays pending until connected. Returns its id. */
  add(ticket: Ticket, session: Session): string {
    const id = randomBytes(12).toString('base64url');
    // the ticket's pending slot passes to the session
    this.#negotiating[ticket.kind]--;
    this.#sessions.set(id, session);
    const target = session.kind === 'whip' ? session.stream : session.viewer;
    let pending = true;
    const settle = (): void => {
      if (!pending) return;
      pending = false;
      this.#addPending(session.client, -1);
    };
    if (target.connected) settle();
    else target.on('connected', settle);
    target.on('close', () => {
      settle();
      if (this.#sessions.get(id) === session) this.#sessions.delete(id);
    });
    if (target.closed) {
      settle();
      this.#sessions.delete(id);
    }
    return id;
  }

  get(id: string): Session | undefined {
    return this.#sessions.get(id);
  }

  /** The live publisher session of a stream, if this node holds one. */
  publisherOf(streamId: string): Session | undefined {
    for (const s of this.#sessions.values())
      if (s.kind === 'whip' && s.streamId === streamId && !s.stream.closed) return s;
    return undefined;
  }

  /** The viewer a WHEP session id (the last segment of its Location) names, when it is of this stream. */
  viewerOf(streamId: string, id: string): Viewer | undefined {
    const s = this.#sessions.get(id);
    return s?.kind === 'whep' && s.streamId === streamId && !s.viewer.closed ? s.viewer : undefined;
  }

  #addPending(client: string, delta: number): void {
    this.#pending += delta;
    const n = (this.#pendingOf.get(client) ?? 0) + delta;
    if (n <= 0) this.#pendingOf.delete(client);
    else this.#pendingOf.set(client, n);
  }
}
