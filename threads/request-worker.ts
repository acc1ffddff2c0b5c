// Typed request/reply over one supervised worker thread: the pending map, queue bound, per-call
// timeout and fail-all that FingerprintWorker, OcrWorker and the onnxruntime session host each had
// their own copy of, with restarts added. Every call settles: with the thread's reply, or with a
// coded ThreadError (THR_ERR_TIMEOUT / _CRASHED / _CLOSED / _QUEUE_FULL / _START / _REMOTE).
//
// Calls made while the thread is (re)starting wait in the queue (same bound) and are sent once it is
// ready and `onStart` (e.g. reloading models into the fresh thread) has run; calls that were in the
// thread when it died are rejected THR_ERR_CRASHED at once, never replayed (they may be what killed it).
import type { TransferListItem } from 'node:worker_threads';
import { SafeEmitter } from './emitter.ts';
import { ThreadError } from './errors.ts';
import type { FromThreadControl, ToThreadControl } from './protocol.ts';
import {
  SupervisedWorker,
  type SupervisionOptions,
  type WorkerCrash,
  type WorkerRestart,
} from './supervised-worker.ts';

export interface RequestWorkerOptions extends Partial<SupervisionOptions> {
  /** Thread module; it calls serve() from threads/thread.ts. */
  entry: URL;
  /** Name of the worker (metrics label, warnings, error messages). */
  name: string;
  workerData?: unknown;
  /** Nice value of the thread and of the threads it starts (Linux); see spawnThread. Default 0. */
  nice?: number;
  /** Calls pending at once (queued or in the thread); one beyond it is refused THR_ERR_QUEUE_FULL (counted). Default 64. */
  maxPending?: number;
  /** A call not answered within this long (ms) is rejected THR_ERR_TIMEOUT; per call overridable. Default 10000. */
  timeoutMs?: number;
  /**
   * A call that times out while the thread has answered nothing since it was sent means the thread is
   * wedged: terminate and restart it. Default false (terminating a thread inside some native calls,
   * onnxruntime's or FFmpeg's, is not safe).
   */
  recycleUnresponsive?: boolean;
  /**
   * Runs after each thread (first and restarted) is ready and before queued calls are sent to it, with
   * a `call` that bypasses the queue (e.g. to load models into a fresh thread). If it throws, the thread
   * is recycled.
   */
  onStart?: (call: <R>(req: unknown, opts?: CallOptions) => Promise<R>, generation: number) => Promise<void>;
}

export interface CallOptions {
  /** Buffers to transfer to the thread instead of copying (they are unusable here afterwards). */
  transfer?: readonly TransferListItem[];
  /** Timeout of this call (ms). Default: the worker's timeoutMs. */
  timeoutMs?: number;
}

export interface RequestWorkerStats {
  /** Calls pending (queued + in the thread). */
  pending: number;
  /** Calls waiting for a thread to be ready. */
  queued: number;
  /** Calls refused because maxPending were pending. */
  dropped: number;
  timeouts: number;
  /** Calls rejected because the thread died under them. */
  crashedCalls: number;
  /** Replies that came after their call had timed out (ignored). */
  late: number;
  crashes: number;
  restarts: number;
}

export type RequestWorkerEvents = {
  crash: [crash: WorkerCrash];
  restart: [restart: WorkerRestart];
  timeout: [info: { worker: string; timeoutMs: number }];
};

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  /** Generation of the thread it was posted to; -1 while queued. */
  sentTo: number;
  /** Replies received from the thread before this call was posted (unresponsiveness check). */
  repliesAtSend: number;
  req: unknown;
  transfer: readonly TransferListItem[];
}

export class RequestWorker<Req, Res> extends SafeEmitter<RequestWorkerEvents> {
  readonly name: string;
  readonly supervisor: SupervisedWorker;
  readonly #maxPending: number;
  readonly #timeoutMs: number;
  readonly #recycleUnresponsive: boolean;
  readonly #onStart: RequestWorkerOptions['onStart'];
  readonly #pending = new Map<number, Pending>();
  readonly #queue: number[] = [];
  #nextId = 1;
  /** Ready and onStart done for this generation; -1 = not accepting sends. */
  #liveGeneration = -1;
  #replies = 0;
  #closed = false;
  #startError: Error | null = null;
  readonly #counters = { dropped: 0, timeouts: 0, crashedCalls: 0, late: 0 };
  readonly #started: Promise<void>;
  #resolveFirstLive: () => void = () => undefined;
  readonly #firstLive: Promise<void> = new Promise<void>((resolve) => {
    this.#resolveFirstLive = resolve;
  });

  constructor(options: RequestWorkerOptions) {
    super();
    this.name = options.name;
    this.#maxPending = options.maxPending ?? 64;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#recycleUnresponsive = options.recycleUnresponsive ?? false;
    this.#onStart = options.onStart;
    const sup = new SupervisedWorker(options);
    this.supervisor = sup;
    sup.on('message', (msg) => this.#onReply(msg as FromThreadControl));
    sup.on('ready', (generation) => void this.#onReady(generation));
    sup.on('crash', (crash) => {
      this.#liveGeneration = -1;
      this.#failSent(
        new ThreadError('THR_ERR_CRASHED', this.name, `thread died: ${crash.error.message}`, { cause: crash.error }),
      );
      this.emit('crash', crash);
    });
    sup.on('restart', (r) => this.emit('restart', r));
    this.#started = sup.start().then(
      () => undefined,
      (err: Error) => {
        this.#startError = err;
        this.#failAll(err);
        throw err;
      },
    );
    // Callers who never await started() still learn of a failed start through their calls.
    this.#started.catch(() => undefined);
  }

  /** Resolves when the first thread is ready (and onStart ran); rejects THR_ERR_START if it could not start. */
  started(): Promise<void> {
    return this.#started.then(() => this.#firstLive);
  }

  get closed(): boolean {
    return this.#closed;
  }

  stats(): RequestWorkerStats {
    const s = this.supervisor.stats();
    return {
      pending: this.#pending.size,
      queued: this.#queue.length,
      ...this.#counters,
      crashes: s.crashes,
      restarts: s.restarts,
    };
  }

  /** Sends one request; settles with the thread's reply or a coded ThreadError, never hangs. */
  call(req: Req, opts: CallOptions = {}): Promise<Res> {
    return this.#call(req, opts, false) as Promise<Res>;
  }

  /** Test and chaos hook: the thread throws an uncaught exception (then restarts). */
  crash(): void {
    this.supervisor.crash();
  }

  /** Test hook: blocks the thread's loop for `ms`. */
  hang(ms: number): void {
    this.supervisor.hang(ms);
  }

  /**
   * Rejects everything pending THR_ERR_CLOSED and ends the thread: it finishes the calls it holds, frees
   * what it registered with onClose and exits (see SupervisedWorker.close). Idempotent.
   */
  async close(opts: { graceMs?: number } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#liveGeneration = -1;
    this.#failAll(new ThreadError('THR_ERR_CLOSED', this.name, 'closed'));
    this.#resolveFirstLive();
    await this.supervisor.close(opts);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #call(req: unknown, opts: CallOptions, bypassQueue: boolean): Promise<unknown> {
    if (this.#closed) return Promise.reject(new ThreadError('THR_ERR_CLOSED', this.name, 'closed'));
    if (this.#startError) return Promise.reject(this.#startError);
    if (!bypassQueue && this.#pending.size >= this.#maxPending) {
      this.#counters.dropped++;
      return Promise.reject(new ThreadError('THR_ERR_QUEUE_FULL', this.name, `${this.#pending.size} calls pending`));
    }
    const id = this.#nextId++;
    const timeoutMs = opts.timeoutMs ?? this.#timeoutMs;
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => this.#onTimeout(id, timeoutMs), timeoutMs);
      const p: Pending = { resolve, reject, timer, sentTo: -1, repliesAtSend: 0, req, transfer: opts.transfer ?? [] };
      this.#pending.set(id, p);
      if (bypassQueue || this.#liveGeneration >= 0) this.#send(id, p, this.supervisor.generation);
      else this.#queue.push(id);
    });
  }

  #send(id: number, p: Pending, generation: number): void {
    p.sentTo = generation;
    p.repliesAtSend = this.#replies;
    const transfer = p.transfer;
    p.transfer = [];
    if (!this.supervisor.post({ __thr: 'call', id, req: p.req } satisfies ToThreadControl, transfer)) {
      this.#settle(id, new ThreadError('THR_ERR_CRASHED', this.name, 'no thread to send to'));
      return;
    }
    p.req = undefined;
  }

  async #onReady(generation: number): Promise<void> {
    if (this.#onStart) {
      try {
        await this.#onStart((req, opts) => this.#call(req, opts ?? {}, true) as Promise<never>, generation);
      } catch (err) {
        if (this.supervisor.generation === generation)
          this.supervisor.recycle(`start hook failed: ${(err as Error).message}`);
        return;
      }
    }
    if (this.#closed || this.supervisor.generation !== generation || !this.supervisor.ready) return;
    this.#liveGeneration = generation;
    this.#resolveFirstLive();
    for (const id of this.#queue.splice(0)) {
      const p = this.#pending.get(id);
      if (p) this.#send(id, p, generation);
    }
  }

  #onReply(msg: FromThreadControl): void {
    if (msg.__thr !== 'reply') return;
    this.#replies++;
    const p = this.#pending.get(msg.id);
    if (!p) {
      this.#counters.late++;
      return;
    }
    if (msg.ok) this.#settle(msg.id, null, msg.res);
    else this.#settle(msg.id, new ThreadError('THR_ERR_REMOTE', this.name, msg.message));
  }

  #onTimeout(id: number, timeoutMs: number): void {
    const p = this.#pending.get(id);
    if (!p) return;
    this.#counters.timeouts++;
    const unresponsive = p.sentTo >= 0 && p.sentTo === this.supervisor.generation && this.#replies === p.repliesAtSend;
    this.#settle(id, new ThreadError('THR_ERR_TIMEOUT', this.name, `no reply within ${timeoutMs} ms`));
    this.emit('timeout', { worker: this.name, timeoutMs });
    if (unresponsive && this.#recycleUnresponsive) this.supervisor.recycle(`no reply within ${timeoutMs} ms`);
  }

  #settle(id: number, err: Error | null, value?: unknown): void {
    const p = this.#pending.get(id);
    if (!p) return;
    this.#pending.delete(id);
    clearTimeout(p.timer);
    if (p.sentTo < 0) {
      const i = this.#queue.indexOf(id);
      if (i >= 0) this.#queue.splice(i, 1);
    }
    if (err) p.reject(err);
    else p.resolve(value);
  }

  /** Calls that were in the dead thread; queued ones wait for the next thread (within their timeout). */
  #failSent(err: Error): void {
    for (const [id, p] of [...this.#pending]) {
      if (p.sentTo < 0) continue;
      this.#counters.crashedCalls++;
      this.#settle(id, err);
    }
  }

  #failAll(err: Error): void {
    for (const id of [...this.#pending.keys()]) this.#settle(id, err);
    this.#queue.length = 0;
  }
}
