// Keyframe requests to a publisher, throttled (both engines). Keyframe detection itself is media/'s
// (media/keyframe.ts).

/**
 * Keyframe requests to a publisher, at most one per `minIntervalMs`: a request inside the window is
 * coalesced into one sent when it ends, which serves everyone who asked meanwhile.
 */
export class KeyframeThrottle {
  #last = -Infinity;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  constructor(
    /** Requests at least this far apart (ms). */
    readonly minIntervalMs: number,
    readonly send: (trackId?: string) => void,
  ) {}

  request(trackId?: string): void {
    if (this.#closed || this.#timer) return;
    const wait = this.#last + this.minIntervalMs - performance.now();
    if (wait > 0) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#fire(trackId);
      }, wait);
      return;
    }
    this.#fire(trackId);
  }

  #fire(trackId?: string): void {
    if (this.#closed) return;
    this.#last = performance.now();
    this.send(trackId);
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
