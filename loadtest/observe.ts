// What the synthetic clients record while the run goes on, kept small enough for hundreds of viewers:
// a ledger of sent payloads (to recognise our own packets at the far end and time them), per-viewer
// timelines of source vs foreign media (the slate is foreign: the server made it, we never sent it),
// and the latency/jitter accumulators.

import { JitterEstimator, Reservoir } from './stats.ts';

/** Cheap fingerprint of an RTP payload: length, the first 48 and the last 16 bytes (FNV-1a, 32 bit). */
export function payloadKey(payload: Uint8Array): number {
  let h = 0x811c9dc5 ^ payload.length;
  const head = Math.min(48, payload.length);
  for (let i = 0; i < head; i++) h = Math.imul(h ^ payload[i]!, 0x01000193);
  for (let i = Math.max(head, payload.length - 16); i < payload.length; i++) h = Math.imul(h ^ payload[i]!, 0x01000193);
  return h >>> 0;
}

/**
 * Payload fingerprint -> the latest time it was sent, per stream and kind. Scenes loop, so a payload
 * can repeat; the latest send is the one a receiver sees (a loop is seconds, latency is milliseconds).
 * Entries older than `horizonMs` are pruned so memory stays bounded.
 */
export class SendLedger {
  readonly #maps = new Map<string, Map<number, number>>();
  #lastPrune = 0;
  readonly #horizonMs: number;

  constructor(horizonMs = 5000) {
    this.#horizonMs = horizonMs;
  }

  sent(streamId: string, kind: 'audio' | 'video', payload: Uint8Array, at: number): void {
    const id = `${streamId}/${kind}`;
    let m = this.#maps.get(id);
    if (!m) this.#maps.set(id, (m = new Map<number, number>()));
    const key = payloadKey(payload);
    // Map keeps insertion order; re-insert so the oldest entries stay at the front for pruning
    m.delete(key);
    m.set(key, at);
    if (at - this.#lastPrune > this.#horizonMs) this.#prune(at);
  }

  /** When this payload was last sent on that stream, or undefined when we never sent it (a slate, silence). */
  lookup(streamId: string, kind: 'audio' | 'video', payload: Uint8Array): number | undefined {
    return this.#maps.get(`${streamId}/${kind}`)?.get(payloadKey(payload));
  }

  #prune(now: number): void {
    this.#lastPrune = now;
    for (const m of this.#maps.values()) {
      for (const [k, t] of m) {
        if (now - t <= this.#horizonMs) break;
        m.delete(k);
      }
    }
  }
}

export type MediaOrigin = 'source' | 'foreign';

export interface Segment {
  origin: MediaOrigin;
  from: number;
  to: number;
  packets: number;
}

/**
 * Runs of packets of one kind at one viewer. A new segment starts when the origin changes or after a
 * silence longer than `gapMs`, so "muted" shows as the end of a source segment with nothing after it
 * (or a foreign one), and "blanked" as a foreign segment.
 */
export class KindTimeline {
  readonly segments: Segment[] = [];
  readonly #gapMs: number;
  constructor(gapMs = 400) {
    this.#gapMs = gapMs;
  }

  add(origin: MediaOrigin, at: number): void {
    const last = this.segments[this.segments.length - 1];
    if (last && last.origin === origin && at - last.to <= this.#gapMs) {
      last.to = at;
      last.packets++;
      return;
    }
    this.segments.push({ origin, from: at, to: at, packets: 1 });
  }

  lastAt(origin?: MediaOrigin): number | undefined {
    for (let i = this.segments.length - 1; i >= 0; i--) {
      const s = this.segments[i]!;
      if (!origin || s.origin === origin) return s.to;
    }
    return undefined;
  }

  count(origin: MediaOrigin): number {
    let n = 0;
    for (const s of this.segments) if (s.origin === origin) n += s.packets;
    return n;
  }
}

export interface ViewerRecord {
  viewerId: string;
  streamId: string;
  jurisdiction: string;
  connectedAt?: number;
  closedAt?: number;
  error?: string;
  video: KindTimeline;
  audio: KindTimeline;
  jitter: { audio: JitterEstimator; video: JitterEstimator };
  /** `viewer.filtered` / `stream.killed` events this viewer's WS got (client receive time). */
  events: { at: number; type: string; video?: string; audio?: string }[];
}

export function newViewerRecord(viewerId: string, streamId: string, jurisdiction: string): ViewerRecord {
  return {
    viewerId,
    streamId,
    jurisdiction,
    video: new KindTimeline(1500),
    audio: new KindTimeline(400),
    jitter: { audio: new JitterEstimator(), video: new JitterEstimator() },
    events: [],
  };
}

/** Latency of our own packets through the server, all viewers together. */
export class ForwardingRecorder {
  readonly latency = new Reservoir(200_000, 7);
  matched = 0;
  foreign = 0;
  /** Latency is recorded from this instant on (connection setup bursts are not the steady state). */
  recordFrom = 0;
  readonly #ledger: SendLedger;

  constructor(ledger: SendLedger) {
    this.#ledger = ledger;
  }

  /** Classifies a packet a viewer received and records its latency when it is ours. */
  received(v: ViewerRecord, kind: 'audio' | 'video', payload: Uint8Array, at: number): MediaOrigin {
    const sentAt = this.#ledger.lookup(v.streamId, kind, payload);
    if (sentAt === undefined) {
      this.foreign++;
      v[kind].add('foreign', at);
      return 'foreign';
    }
    this.matched++;
    if (at >= this.recordFrom) this.latency.add(at - sentAt);
    v.jitter[kind].add(sentAt, at);
    v[kind].add('source', at);
    return 'source';
  }
}
