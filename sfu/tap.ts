// The tap: hands copies of received RTP packets to any number of subscribers without ever touching
// the forwarding call stack. Each subscription owns a bounded ring (drop oldest, counted); rings are
// drained in one setImmediate batch, so a slow handler delays only its own deliveries.

import type { MediaKind, Tap, TapPacket, TapRtpLink, TapSubscription, TapSubscriptionOptions } from './types.ts';

const DEFAULT_CAPACITY = 512;
/** Most packets one subscription gets per drain turn, so one busy stream cannot starve the loop. */
const DRAIN_BATCH = 256;

class Ring {
  readonly #buf: (TapPacket | undefined)[];
  #head = 0;
  #size = 0;
  constructor(readonly capacity: number) {
    this.#buf = new Array<TapPacket | undefined>(capacity);
  }
  get size(): number {
    return this.#size;
  }
  /** Returns true when the oldest packet had to be dropped. */
  push(p: TapPacket): boolean {
    const cap = this.capacity;
    if (this.#size === cap) {
      this.#buf[this.#head] = p;
      this.#head = (this.#head + 1) % cap;
      return true;
    }
    this.#buf[(this.#head + this.#size) % cap] = p;
    this.#size++;
    return false;
  }
  shift(): TapPacket | undefined {
    if (this.#size === 0) return undefined;
    const p = this.#buf[this.#head];
    this.#buf[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.capacity;
    this.#size--;
    return p;
  }
  clear(): void {
    this.#buf.fill(undefined);
    this.#head = 0;
    this.#size = 0;
  }
}

class Subscription implements TapSubscription {
  delivered = 0;
  dropped = 0;
  closed = false;
  readonly ring: Ring;
  readonly kinds: ReadonlySet<MediaKind>;
  readonly #onClose: (s: Subscription) => void;
  constructor(
    readonly handler: (packet: TapPacket) => void,
    options: TapSubscriptionOptions,
    onClose: (s: Subscription) => void,
  ) {
    this.#onClose = onClose;
    this.ring = new Ring(Math.max(1, Math.floor(options.capacity ?? DEFAULT_CAPACITY)));
    this.kinds = new Set(options.kinds ?? ['audio', 'video']);
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ring.clear();
    this.#onClose(this);
  }
}

export interface TapPacketSource {
  streamId: string;
  trackId: string;
  kind: MediaKind;
  codec: TapPacket['codec'];
  clockRate: number;
}

export interface TapHubOptions {
  /** Told the number of subscribers whenever it changes, so an engine can copy packets only while someone listens. */
  onSubscribers?: (count: number) => void;
  /** The engine's loopback RTP links (Tap.openRtp), where it has them. */
  openRtp?: (trackId: string) => Promise<TapRtpLink>;
}

export class TapHub implements Tap {
  readonly #subs = new Set<Subscription>();
  readonly #onSubscribers: ((count: number) => void) | undefined;
  #scheduled = false;
  #closed = false;
  /** Handler exceptions, counted (a subscriber's bug must not reach the media path). */
  handlerErrors = 0;

  readonly openRtp?: (trackId: string) => Promise<TapRtpLink>;

  constructor(options: TapHubOptions = {}) {
    this.#onSubscribers = options.onSubscribers;
    if (options.openRtp) this.openRtp = options.openRtp;
  }

  get subscriberCount(): number {
    return this.#subs.size;
  }

  subscribe(handler: (packet: TapPacket) => void, options: TapSubscriptionOptions = {}): TapSubscription {
    const sub = new Subscription(handler, options, (s) => {
      if (this.#subs.delete(s) && !this.#closed) this.#onSubscribers?.(this.#subs.size);
    });
    if (this.#closed) {
      sub.closed = true;
    } else {
      this.#subs.add(sub);
      this.#onSubscribers?.(this.#subs.size);
    }
    return sub;
  }

  /** Called on the forwarding path: copies and enqueues, never calls handlers. */
  offer(
    src: TapPacketSource,
    header: { payloadType: number; sequenceNumber: number; timestamp: number; marker: boolean; ssrc: number },
    payload: Uint8Array,
    arrivedAt: number,
  ): void {
    if (this.#subs.size === 0) return;
    for (const sub of this.#subs) {
      if (!sub.kinds.has(src.kind)) continue;
      const packet: TapPacket = {
        streamId: src.streamId,
        trackId: src.trackId,
        kind: src.kind,
        codec: src.codec,
        clockRate: src.clockRate,
        payloadType: header.payloadType,
        sequenceNumber: header.sequenceNumber,
        timestamp: header.timestamp,
        marker: header.marker,
        ssrc: header.ssrc,
        payload: new Uint8Array(payload),
        arrivedAt,
      };
      if (sub.ring.push(packet)) sub.dropped++;
    }
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#drain);
    }
  }

  readonly #drain = (): void => {
    this.#scheduled = false;
    let more = false;
    for (const sub of this.#subs) {
      for (let n = 0; n < DRAIN_BATCH && !sub.closed; n++) {
        const p = sub.ring.shift();
        if (!p) break;
        sub.delivered++;
        try {
          sub.handler(p);
        } catch (err) {
          this.handlerErrors++;
          if (this.handlerErrors <= 3) console.error('sfu tap: subscriber handler threw', err);
        }
      }
      if (sub.ring.size > 0 && !sub.closed) more = true;
    }
    if (more && !this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#drain);
    }
  };

  close(): void {
    this.#closed = true;
    for (const sub of [...this.#subs]) sub.close();
  }
}
