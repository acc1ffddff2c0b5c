// A circuit breaker per backend. Consecutive backend faults (server down, timeouts) open it: callers are
// answered MOD_ERR_UNAVAILABLE at once, so policies can apply their fail mode instead of waiting. After
// `openMs` the next call goes through as a half-open probe; its success closes the breaker, its failure
// re-opens it.
import { ModelError, isBackendFault } from './errors.ts';
import type { Backend, BackendStatus, InferOptions, InferOutput, Tensor } from './backends/types.ts';

export type BreakerState = 'closed' | 'open' | 'half_open';

export interface CircuitBreakerOptions {
  /** Consecutive faults that open the breaker. Default 3. */
  failureThreshold: number;
  /** Time the breaker stays open before letting a probe through (ms). Default 1000. */
  openMs: number;
  /** Concurrent probe calls allowed while half-open. Default 1. */
  halfOpenProbes: number;
  /** Which errors count as faults. Default: MOD_ERR_BACKEND_DOWN and MOD_ERR_TIMEOUT. */
  isFault: (err: unknown) => boolean;
  /** Clock (ms). Default the server clock. */
  now: () => number;
}

const DEFAULTS: Readonly<CircuitBreakerOptions> = Object.freeze({
  failureThreshold: 3,
  openMs: 1000,
  halfOpenProbes: 1,
  isFault: isBackendFault,
  now: () => performance.timeOrigin + performance.now(),
});

export interface BreakerStats {
  name: string;
  state: BreakerState;
  consecutiveFailures: number;
  /** Times the breaker went to open. */
  opened: number;
  /** Calls answered unavailable without trying. */
  rejected: number;
  lastError: string | null;
  /** Server clock when the state last changed. */
  since: number;
}

type Listener = (state: BreakerState, previous: BreakerState) => void;

export class CircuitBreaker {
  readonly options: Readonly<CircuitBreakerOptions>;
  #current: BreakerState = 'closed';
  #failures = 0;
  #openedAt = 0;
  #probes = 0;
  #opened = 0;
  #rejected = 0;
  #lastError: string | null = null;
  #since: number;
  readonly #listeners = new Set<Listener>();

  constructor(
    readonly name: string,
    opts: Partial<CircuitBreakerOptions> = {},
  ) {
    this.options = Object.freeze({ ...DEFAULTS, ...opts });
    this.#since = this.options.now();
  }

  get state(): BreakerState {
    if (this.#current === 'open' && this.options.now() - this.#openedAt >= this.options.openMs)
      this.#transition('half_open');
    return this.#current;
  }

  stats(): BreakerStats {
    return {
      name: this.name,
      state: this.state,
      consecutiveFailures: this.#failures,
      opened: this.#opened,
      rejected: this.#rejected,
      lastError: this.#lastError,
      since: this.#since,
    };
  }

  /** Subscribes to state changes; returns the unsubscribe function. A throwing listener is ignored. */
  onStateChange(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const state = this.state;
    if (state === 'open' || (state === 'half_open' && this.#probes >= this.options.halfOpenProbes)) {
      this.#rejected++;
      throw new ModelError(
        'MOD_ERR_UNAVAILABLE',
        `circuit ${this.name} is ${state}${this.#lastError ? `: ${this.#lastError}` : ''}`,
      );
    }
    const probe = state === 'half_open';
    if (probe) this.#probes++;
    try {
      const v = await fn();
      this.#onSuccess();
      return v;
    } catch (err) {
      if (this.options.isFault(err)) this.#onFault(err);
      else if (probe) this.#onSuccess(); // the backend answered (e.g. bad shape): it is up
      throw err;
    } finally {
      if (probe) this.#probes--;
    }
  }

  #onSuccess(): void {
    this.#failures = 0;
    if (this.#current !== 'closed') this.#transition('closed');
  }

  #onFault(err: unknown): void {
    this.#failures++;
    this.#lastError = err instanceof Error ? err.message : String(err);
    if (
      this.#current === 'half_open' ||
      (this.#current === 'closed' && this.#failures >= this.options.failureThreshold)
    ) {
      this.#openedAt = this.options.now();
      this.#opened++;
      this.#transition('open');
    }
  }

  #transition(to: BreakerState): void {
    const from = this.#current;
    if (from === to) return;
    this.#current = to;
    this.#since = this.options.now();
    for (const l of this.#listeners) {
      try {
        l(to, from);
      } catch {
        // A listener's failure must not change the breaker's behaviour.
      }
    }
  }
}

/** A Backend whose calls go through a CircuitBreaker. */
export class GuardedBackend implements Backend {
  readonly name: string;
  readonly breaker: CircuitBreaker;

  constructor(
    readonly inner: Backend,
    opts: Partial<CircuitBreakerOptions> = {},
  ) {
    this.name = inner.name;
    this.breaker = new CircuitBreaker(inner.name, opts);
  }

  load(model: string): Promise<void> {
    return this.breaker.run(() => this.inner.load(model));
  }

  infer(model: string, input: Tensor, opts?: InferOptions): Promise<InferOutput> {
    return this.breaker.run(() => this.inner.infer(model, input, opts));
  }

  status(): BackendStatus & { breaker: BreakerStats } {
    return { ...this.inner.status(), breaker: this.breaker.stats() };
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
