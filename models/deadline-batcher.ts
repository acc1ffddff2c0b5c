// Deadline-aware batching. Each request carries its deadline (server clock: frame arrival + budget). A batch
// closes when it is full or when waiting any longer would make the earliest deadline in the queue
// unreachable, given a learned estimate of how long a batch of that size takes, and it holds no more
// requests than the earliest one's deadline allows. Requests that can still be answered in time go first;
// one that can only be answered late is still run when the model has time, and its answer comes back
// `deadline_missed` with the value attached (a late answer still says what the model saw); one that could
// not be answered even within lateGraceMs after its deadline is answered `deadline_missed` without a value.
// Everything is counted, nothing dropped silently. The queue is bounded.
import { ModelError, isModelError } from './errors.ts';
import type { SignalStatus } from './types.ts';

export interface BatchContext {
  /**
   * Latest deadline in the batch plus lateGraceMs (server clock, ms): the executor may stop waiting
   * after it. Until then an answer past a request's own deadline still comes back, late, with its value.
   */
  deadline: number;
}

export interface BatchRun<O> {
  /** One output per item, same order. */
  outputs: O[];
  /** Stage -> ms for the whole batch (e.g. preprocess, inference, postprocess). */
  timings?: Record<string, number>;
}

export type BatchExecutor<I, O> = (items: I[], ctx: BatchContext) => Promise<BatchRun<O>>;

export interface BatchAnswer<O> {
  status: SignalStatus;
  /** Present when status is 'ok' (and for late answers, which come back as 'deadline_missed'). */
  value?: O;
  error?: ModelError;
  /** ms: queue (submit -> dispatch) plus the executor's stages; batchSize. */
  timings: Record<string, number>;
  batchSize: number;
}

export interface DeadlineBatcherOptions {
  /** Largest batch. Default 8. */
  maxBatchSize: number;
  /** Queue bound; beyond it new requests are answered 'unavailable' (MOD_ERR_QUEUE_FULL). Default 64. */
  maxQueue: number;
  /** Never hold a request longer than this to fill a batch (ms). Default 10. */
  maxWaitMs: number;
  /** Safety margin subtracted from deadlines (ms). Default 2. */
  marginMs: number;
  /** Batches run at once. Default 1 (the backend's threads are the parallelism). */
  concurrency: number;
  /** Prior for the batch-time estimate before anything was observed: ms = fixed + perItem * n. */
  prior: { fixedMs: number; perItemMs: number };
  /**
   * How long past the batch's latest deadline the executor is given (ms). A model run on the CPU cannot
   * be cancelled, so giving up at the deadline would throw away an answer the CPU is already paying
   * for; a late answer is still what the model saw (the caller decides what lateness means), and only
   * a finished run teaches the estimate how long batches take. Default 500.
   */
  lateGraceMs: number;
  /** Clock (ms). Default the server clock. */
  now: () => number;
}

const DEFAULTS: Readonly<DeadlineBatcherOptions> = Object.freeze({
  maxBatchSize: 8,
  maxQueue: 64,
  maxWaitMs: 10,
  marginMs: 2,
  concurrency: 1,
  prior: { fixedMs: 2, perItemMs: 5 },
  lateGraceMs: 500,
  now: () => performance.timeOrigin + performance.now(),
});

/**
 * Learns how long a batch of size n takes: an exponentially weighted mean and mean deviation per size; sizes
 * never seen are scaled from the nearest seen size, or taken from the prior.
 */
export class BatchTimeEstimator {
  readonly #mean = new Map<number, number>();
  readonly #dev = new Map<number, number>();
  readonly #prior: { fixedMs: number; perItemMs: number };
  readonly #alpha: number;

  constructor(prior: { fixedMs: number; perItemMs: number }, alpha = 0.2) {
    this.#prior = prior;
    this.#alpha = alpha;
  }

  observe(n: number, ms: number): void {
    const m = this.#mean.get(n);
    if (m === undefined) {
      this.#mean.set(n, ms);
      this.#dev.set(n, ms * 0.1);
      return;
    }
    const d = this.#dev.get(n)!;
    this.#mean.set(n, m + this.#alpha * (ms - m));
    this.#dev.set(n, d + this.#alpha * (Math.abs(ms - m) - d));
  }

  /**
   * Shrinks every estimate a little. Called when a request is refused on the estimate alone: estimates only
   * learn from runs, so a pessimistic one (say, seeded by a slow first run) would otherwise refuse forever.
   */
  relax(factor = 0.9): void {
    for (const [n, m] of this.#mean) {
      this.#mean.set(n, m * factor);
      this.#dev.set(n, this.#dev.get(n)! * factor);
    }
  }

  /** A cautious estimate (mean + 2 deviations) of a batch of n (ms): what batch sizes and waits are planned with. */
  estimate(n: number): number {
    return this.#estimate(n, 2);
  }

  /**
   * The typical time of a batch of n (ms, the mean): whether a request can still be answered in time at
   * all. A cautious figure there would refuse requests the model usually meets, whenever one slow run
   * (a stalled event loop delays its answer too) widened the deviation.
   */
  typical(n: number): number {
    return this.#estimate(n, 0);
  }

  #estimate(n: number, devs: number): number {
    const m = this.#mean.get(n);
    if (m !== undefined) return m + devs * this.#dev.get(n)!;
    let nearest: number | undefined;
    for (const k of this.#mean.keys())
      if (nearest === undefined || Math.abs(k - n) < Math.abs(nearest - n)) nearest = k;
    if (nearest !== undefined)
      return (this.#mean.get(nearest)! + devs * this.#dev.get(nearest)!) * (n > nearest ? n / nearest : 1);
    return this.#prior.fixedMs + this.#prior.perItemMs * n;
  }

  snapshot(): Record<number, { meanMs: number; devMs: number }> {
    const out: Record<number, { meanMs: number; devMs: number }> = {};
    for (const [n, m] of [...this.#mean.entries()].sort((a, b) => a[0] - b[0]))
      out[n] = { meanMs: m, devMs: this.#dev.get(n)! };
    return out;
  }
}

interface Pending<I, O> {
  item: I;
  deadline: number;
  enqueuedAt: number;
  resolve: (a: BatchAnswer<O>) => void;
}

export interface BatcherStats {
  submitted: number;
  ok: number;
  /** Answered deadline_missed: could not be scheduled in time, or the result came back late. */
  deadlineMissed: number;
  missedBeforeRun: number;
  missedLate: number;
  unavailable: number;
  errors: number;
  queueFull: number;
  batches: number;
  queued: number;
  inflight: number;
  /** Batch size -> count. */
  batchSizes: Record<number, number>;
  estimateMs: Record<number, { meanMs: number; devMs: number }>;
}

export class DeadlineBatcher<I, O> {
  readonly options: Readonly<DeadlineBatcherOptions>;
  readonly estimator: BatchTimeEstimator;
  #queue: Pending<I, O>[] = [];
  #inflight = 0;
  #timer: NodeJS.Timeout | null = null;
  #timerAt = Infinity;
  #closed = false;
  readonly #counters = {
    submitted: 0,
    ok: 0,
    missedBeforeRun: 0,
    missedLate: 0,
    unavailable: 0,
    errors: 0,
    queueFull: 0,
    batches: 0,
  };
  readonly #sizes: Record<number, number> = {};
  readonly #executor: BatchExecutor<I, O>;

  constructor(executor: BatchExecutor<I, O>, opts: Partial<DeadlineBatcherOptions> = {}) {
    this.#executor = executor;
    this.options = Object.freeze({ ...DEFAULTS, ...opts });
    this.estimator = new BatchTimeEstimator(this.options.prior);
  }

  /** Queues one item; the promise always resolves (never rejects) with an answer carrying its status. */
  submit(item: I, deadline: number): Promise<BatchAnswer<O>> {
    const now = this.options.now();
    this.#counters.submitted++;
    if (this.#closed)
      return Promise.resolve(this.#fail('unavailable', new ModelError('MOD_ERR_CLOSED', 'batcher closed'), 0));
    if (now + this.estimator.typical(1) + this.options.marginMs > deadline + this.options.lateGraceMs) {
      this.#counters.missedBeforeRun++;
      if (deadline > now) this.estimator.relax();
      return Promise.resolve(
        this.#fail(
          'deadline_missed',
          new ModelError('MOD_ERR_DEADLINE_MISSED', `deadline in ${(deadline - now).toFixed(1)} ms cannot be met`),
          0,
        ),
      );
    }
    if (this.#queue.length >= this.options.maxQueue) {
      this.#counters.queueFull++;
      return Promise.resolve(
        this.#fail('unavailable', new ModelError('MOD_ERR_QUEUE_FULL', `queue full (${this.options.maxQueue})`), 0),
      );
    }
    return new Promise((resolve) => {
      this.#queue.push({ item, deadline, enqueuedAt: now, resolve });
      this.#schedule();
    });
  }

  stats(): BatcherStats {
    const c = this.#counters;
    return {
      ...c,
      deadlineMissed: c.missedBeforeRun + c.missedLate,
      queued: this.#queue.length,
      inflight: this.#inflight,
      batchSizes: { ...this.#sizes },
      estimateMs: this.estimator.snapshot(),
    };
  }

  /** Answers everything queued 'unavailable' (MOD_ERR_CLOSED); batches in flight finish. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#clearTimer();
    const q = this.#queue;
    this.#queue = [];
    for (const p of q) {
      this.#counters.unavailable++;
      p.resolve(
        this.#fail(
          'unavailable',
          new ModelError('MOD_ERR_CLOSED', 'batcher closed'),
          this.options.now() - p.enqueuedAt,
        ),
      );
    }
  }

  #fail(status: SignalStatus, error: ModelError, queueMs: number): BatchAnswer<O> {
    return { status, error, timings: { queue: queueMs }, batchSize: 0 };
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#timerAt = Infinity;
  }

  /** Decides whether to dispatch now or when; called on every submit and batch completion. */
  #schedule(): void {
    if (!this.#closed) this.#expire();
    while (!this.#closed && this.#queue.length > 0 && this.#inflight < this.options.concurrency) {
      this.#expire();
      if (this.#queue.length === 0) break;
      const now = this.options.now();
      const floor = this.estimator.typical(1) + this.options.marginMs;
      // Requests that can still be answered in time go first, earliest deadline first; the ones that can
      // only be answered late (still useful: see lateGraceMs) take what time is left over, so that a burst
      // makes a few answers late rather than, domino-like, every answer after it.
      this.#queue.sort((a, b) => {
        const aLate = now + floor > a.deadline;
        const bLate = now + floor > b.deadline;
        return aLate === bLate ? a.deadline - b.deadline : aLate ? 1 : -1;
      });
      const head = this.#queue[0]!;
      const headLate = now + floor > head.deadline;
      // A batch answers all its requests at once, so its first (earliest) request bounds its size: the
      // ones that do not fit go in the next batch, rather than all of them late together.
      const due = headLate ? head.deadline + this.options.lateGraceMs : head.deadline;
      let fit = 1;
      while (fit < this.options.maxBatchSize && now + this.estimator.estimate(fit + 1) + this.options.marginMs <= due)
        fit++;
      const inTime = headLate ? this.#queue.length : this.#queue.filter((p) => now + floor <= p.deadline).length;
      const n = Math.min(inTime, this.options.maxBatchSize, fit);
      if (!headLate && n === this.#queue.length && n < this.options.maxBatchSize) {
        // Waiting to grow the batch to n+1 is allowed only while that larger batch still meets every deadline.
        const oldest = Math.min(...this.#queue.map((p) => p.enqueuedAt));
        const closeAt = Math.min(
          head.deadline - this.estimator.estimate(n + 1) - this.options.marginMs,
          oldest + this.options.maxWaitMs,
        );
        if (closeAt > now) {
          this.#armTimer(closeAt);
          return;
        }
      }
      this.#dispatch(n);
    }
    if (!this.#closed && this.#queue.length > 0 && this.#inflight >= this.options.concurrency) {
      // The model is busy: answer each queued request once even a late answer could no longer come in time.
      const floor = this.estimator.typical(1) + this.options.marginMs;
      this.#armTimer(Math.min(...this.#queue.map((p) => p.deadline)) + this.options.lateGraceMs - floor);
    }
  }

  #armTimer(at: number): void {
    if (this.#timer && this.#timerAt <= at) return;
    this.#clearTimer();
    this.#timerAt = at;
    this.#timer = setTimeout(
      () => {
        this.#timer = null;
        this.#timerAt = Infinity;
        this.#schedule();
      },
      Math.max(0, at - this.options.now()),
    );
  }

  /** Answers deadline_missed to every queued request that a batch of one could no longer serve, even late. */
  #expire(): void {
    const now = this.options.now();
    const floor = this.estimator.typical(1) + this.options.marginMs - this.options.lateGraceMs;
    const keep: Pending<I, O>[] = [];
    for (const p of this.#queue) {
      if (now + floor >= p.deadline) {
        this.#counters.missedBeforeRun++;
        p.resolve(
          this.#fail(
            'deadline_missed',
            new ModelError('MOD_ERR_DEADLINE_MISSED', 'deadline passed while queued'),
            now - p.enqueuedAt,
          ),
        );
      } else keep.push(p);
    }
    this.#queue = keep;
  }

  #dispatch(n: number): void {
    this.#clearTimer();
    const batch = this.#queue.splice(0, n);
    this.#inflight++;
    this.#counters.batches++;
    this.#sizes[n] = (this.#sizes[n] ?? 0) + 1;
    const started = this.options.now();
    const deadline = Math.max(...batch.map((p) => p.deadline)) + this.options.lateGraceMs;
    let run: Promise<BatchRun<O>>;
    try {
      run = this.#executor(
        batch.map((p) => p.item),
        { deadline },
      );
    } catch (err) {
      run = Promise.reject(err);
    }
    run
      .then((result) => {
        const done = this.options.now();
        this.estimator.observe(n, done - started);
        if (result.outputs.length !== n)
          throw new ModelError('MOD_ERR_INFERENCE', `executor returned ${result.outputs.length} outputs for ${n}`);
        for (let i = 0; i < n; i++) {
          const p = batch[i]!;
          const timings = { queue: started - p.enqueuedAt, ...result.timings };
          if (done > p.deadline) {
            this.#counters.missedLate++;
            p.resolve({
              status: 'deadline_missed',
              value: result.outputs[i],
              timings,
              batchSize: n,
              error: new ModelError('MOD_ERR_DEADLINE_MISSED', `answer ${(done - p.deadline).toFixed(1)} ms late`),
            });
          } else {
            this.#counters.ok++;
            p.resolve({ status: 'ok', value: result.outputs[i], timings, batchSize: n });
          }
        }
      })
      .catch((err: unknown) => {
        const e = isModelError(err)
          ? err
          : new ModelError('MOD_ERR_INFERENCE', (err as Error)?.message ?? String(err), { cause: err });
        const status: SignalStatus =
          e.code === 'MOD_ERR_UNAVAILABLE' || e.code === 'MOD_ERR_BACKEND_DOWN' || e.code === 'MOD_ERR_CLOSED'
            ? 'unavailable'
            : e.code === 'MOD_ERR_TIMEOUT'
              ? 'deadline_missed'
              : 'error';
        for (const p of batch) {
          if (status === 'unavailable') this.#counters.unavailable++;
          else if (status === 'deadline_missed') this.#counters.missedLate++;
          else this.#counters.errors++;
          p.resolve({ status, error: e, timings: { queue: started - p.enqueuedAt }, batchSize: n });
        }
      })
      .finally(() => {
        this.#inflight--;
        this.#schedule();
      });
  }
}
