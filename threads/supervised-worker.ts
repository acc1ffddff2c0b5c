// One worker thread kept alive: started on a module, restarted with exponential backoff when it dies
// (uncaught exception, exit, or recycled by its owner as unresponsive), closed idempotently. A dead
// moderation thread used to stay dead (issue 12): the audio-fingerprint worker never came back, its
// callers waited forever and moderation silently stopped. Owners see every crash and restart as a
// typed event, so metrics and warnings have one source.
//
// The thread must call announceReady() (threads/thread.ts) when it can take work; what the owner
// posts before that waits in the port and is handled in order.
import type { TransferListItem, Worker } from 'node:worker_threads';
import { SafeEmitter } from './emitter.ts';
import { ThreadError } from './errors.ts';
import { isControl, type FromThreadControl, type ToThreadControl } from './protocol.ts';
import { spawnThread } from './spawn.ts';

export interface SupervisionOptions {
  /** Time (ms) a fresh thread has to announce ready; past it the start counts as failed. Default 120000. */
  startTimeoutMs: number;
  /** Delay (ms) before the first restart after a crash; it doubles with each crash in a row. Default 100. */
  restartDelayMs: number;
  /** Cap (ms) on the restart delay. Default 10000. */
  maxRestartDelayMs: number;
  /** A thread that stayed up this long (ms) resets the backoff to restartDelayMs. Default 30000. */
  stableAfterMs: number;
  /** Time (ms) a closed thread has to end by itself (finish its work, free its native objects) before it is terminated. Default 10000. */
  closeGraceMs: number;
}

export const DEFAULT_SUPERVISION: Readonly<SupervisionOptions> = Object.freeze({
  startTimeoutMs: 120_000,
  restartDelayMs: 100,
  maxRestartDelayMs: 10_000,
  stableAfterMs: 30_000,
  closeGraceMs: 10_000,
});

export interface SupervisedWorkerOptions extends Partial<SupervisionOptions> {
  /** Thread module (a .ts file is started through tsx). */
  entry: URL;
  /** Name of the thread: metrics label, warnings, error messages. */
  name: string;
  workerData?: unknown;
  /** Nice value of the thread and of the threads it starts (Linux); see spawnThread. Default 0. */
  nice?: number;
}

/** A thread died after it had been ready (or a restart failed to become ready). */
export interface WorkerCrash {
  worker: string;
  /** Generation of the thread that died (0 = the first). */
  generation: number;
  error: Error;
  /** Crashes in a row (reset once a thread stays up stableAfterMs). */
  consecutive: number;
  /** When the next thread starts (ms from now). */
  restartInMs: number;
}

export interface WorkerRestart {
  worker: string;
  generation: number;
  /** Restarts since the worker was created. */
  restarts: number;
}

export type SupervisedWorkerEvents = {
  /** A thread was created (first start and each restart), not yet ready: post its setup messages now. */
  spawn: [generation: number];
  /** The thread announced ready. */
  ready: [generation: number];
  /** A message of the owner's own protocol (control messages are handled here). */
  message: [msg: unknown, generation: number];
  crash: [crash: WorkerCrash];
  /** A restarted thread became ready. */
  restart: [restart: WorkerRestart];
};

export type SupervisedState = 'idle' | 'starting' | 'ready' | 'backoff' | 'closed';

export class SupervisedWorker extends SafeEmitter<SupervisedWorkerEvents> {
  readonly name: string;
  readonly options: Readonly<SupervisionOptions>;
  readonly #entry: URL;
  readonly #workerData: unknown;
  readonly #nice: number;
  #worker: Worker | null = null;
  #state: SupervisedState = 'idle';
  #generation = -1;
  #readyAt = 0;
  #consecutive = 0;
  #crashes = 0;
  #restarts = 0;
  #restartTimer: NodeJS.Timeout | null = null;
  #startTimer: NodeJS.Timeout | null = null;
  /** Why the current thread is being ended by us (recycle), so its exit reads as that. */
  #endReason: Error | null = null;
  #firstStart: { resolve: () => void; reject: (e: Error) => void } | null = null;

  constructor(options: SupervisedWorkerOptions) {
    super();
    this.name = options.name;
    this.#entry = options.entry;
    this.#workerData = options.workerData;
    this.#nice = options.nice ?? 0;
    this.options = Object.freeze({
      startTimeoutMs: options.startTimeoutMs ?? DEFAULT_SUPERVISION.startTimeoutMs,
      restartDelayMs: options.restartDelayMs ?? DEFAULT_SUPERVISION.restartDelayMs,
      maxRestartDelayMs: options.maxRestartDelayMs ?? DEFAULT_SUPERVISION.maxRestartDelayMs,
      stableAfterMs: options.stableAfterMs ?? DEFAULT_SUPERVISION.stableAfterMs,
      closeGraceMs: options.closeGraceMs ?? DEFAULT_SUPERVISION.closeGraceMs,
    });
  }

  get state(): SupervisedState {
    return this.#state;
  }

  get ready(): boolean {
    return this.#state === 'ready';
  }

  get generation(): number {
    return this.#generation;
  }

  stats(): { state: SupervisedState; generation: number; crashes: number; restarts: number } {
    return { state: this.#state, generation: this.#generation, crashes: this.#crashes, restarts: this.#restarts };
  }

  /**
   * Starts the first thread; resolves when it is ready. A first start that fails (the thread's setup
   * threw, it exited or it never said ready) rejects with THR_ERR_START and leaves the worker closed:
   * a thread that cannot start once (missing models, no tsx) will not start by retrying either.
   */
  start(): Promise<void> {
    if (this.#state !== 'idle')
      return Promise.reject(
        new ThreadError(this.#state === 'closed' ? 'THR_ERR_CLOSED' : 'THR_ERR_START', this.name, 'already started'),
      );
    return new Promise<void>((resolve, reject) => {
      this.#firstStart = { resolve, reject };
      this.#spawn();
    });
  }

  /** Posts to the current thread (ready or still starting). False when there is none (backoff, closed). */
  post(msg: unknown, transfer: readonly TransferListItem[] = []): boolean {
    const w = this.#worker;
    if (!w || (this.#state !== 'ready' && this.#state !== 'starting')) return false;
    w.postMessage(msg, transfer);
    return true;
  }

  /** Makes the thread throw an uncaught exception (tests, chaos drills): it is restarted like any crash. */
  crash(): void {
    this.post({ __thr: 'crash' } satisfies ToThreadControl);
  }

  /** Blocks the thread's event loop for `ms` (tests): calls time out as with a wedged native call. */
  hang(ms: number): void {
    this.post({ __thr: 'hang', ms } satisfies ToThreadControl);
  }

  /** Ends the current thread as failed (e.g. it stopped answering); a new one starts after the backoff. */
  recycle(reason: string): void {
    const w = this.#worker;
    if (!w || this.#state === 'closed' || this.#endReason) return;
    this.#endReason = new ThreadError('THR_ERR_CRASHED', this.name, reason);
    void w.terminate();
  }

  /**
   * Ends the thread and stops supervising. The thread is asked to end by itself (the control 'close':
   * it finishes the work in progress, runs its onClose hooks, which free its native objects, and closes
   * its port); only a thread still alive after `graceMs` is terminated. Terminating a thread inside a
   * native call (an onnxruntime run, an FFmpeg decode) aborts the whole process, so that is the last
   * resort for a wedged thread, never the way to close. Idempotent.
   */
  async close(opts: { graceMs?: number } = {}): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#clearTimers();
    this.#settleFirst(new ThreadError('THR_ERR_CLOSED', this.name, 'closed while starting'));
    const w = this.#worker;
    this.#worker = null;
    if (!w || w.threadId === -1) return;
    await new Promise<void>((resolve) => {
      const fallback = setTimeout(
        () =>
          void w.terminate().then(
            () => resolve(),
            () => resolve(),
          ),
        opts.graceMs ?? this.options.closeGraceMs,
      );
      w.once('exit', () => {
        clearTimeout(fallback);
        resolve();
      });
      // A thread still starting reads it once its setup has installed the port (serve() lets setup finish).
      w.postMessage({ __thr: 'close' } satisfies ToThreadControl);
    });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  protected override onListenerError(event: keyof SupervisedWorkerEvents, err: unknown): void {
    console.error(`${this.name}: '${String(event)}' listener threw`, err);
  }

  #spawn(): void {
    const generation = ++this.#generation;
    let w: Worker;
    try {
      w = spawnThread(this.#entry, { name: this.name, workerData: this.#workerData, nice: this.#nice });
    } catch (err) {
      this.#onDeath(
        null,
        generation,
        new ThreadError('THR_ERR_START', this.name, `cannot create thread: ${(err as Error).message}`, { cause: err }),
      );
      return;
    }
    this.#worker = w;
    this.#state = 'starting';
    this.#endReason = null;
    let error: Error | null = null;
    let loadError: string | null = null;
    this.#startTimer = setTimeout(() => {
      this.#startTimer = null;
      if (this.#worker !== w || this.#state !== 'starting') return;
      this.#endReason = new ThreadError(
        'THR_ERR_START',
        this.name,
        `not ready after ${this.options.startTimeoutMs} ms`,
      );
      void w.terminate();
    }, this.options.startTimeoutMs);
    this.#startTimer.unref();
    w.on('message', (msg: unknown) => {
      if (this.#worker !== w) return;
      if (!isControl(msg)) {
        this.emit('message', msg, generation);
        return;
      }
      const m = msg as FromThreadControl;
      if (m.__thr === 'ready') {
        if (this.#state !== 'starting') return;
        if (this.#startTimer) clearTimeout(this.#startTimer);
        this.#startTimer = null;
        this.#state = 'ready';
        this.#readyAt = Date.now();
        this.#settleFirst(null);
        this.emit('ready', generation);
        if (generation > 0) {
          this.#restarts++;
          this.emit('restart', { worker: this.name, generation, restarts: this.#restarts });
        }
      } else if (m.__thr === 'load_error') {
        loadError = m.message;
        this.#endReason ??= new ThreadError('THR_ERR_START', this.name, `setup failed: ${m.message}`);
        void w.terminate();
      } else {
        this.emit('message', msg, generation);
      }
    });
    w.on('error', (err) => {
      error = err;
    });
    w.on('exit', (code) => {
      if (this.#worker !== w) return;
      this.#worker = null;
      const why =
        this.#endReason ??
        (error
          ? new ThreadError('THR_ERR_CRASHED', this.name, `thread crashed: ${error.message}`, { cause: error })
          : new ThreadError(
              loadError ? 'THR_ERR_START' : 'THR_ERR_CRASHED',
              this.name,
              loadError ?? `thread exited (code ${code})`,
            ));
      this.#onDeath(w, generation, why);
    });
    this.emit('spawn', generation);
  }

  #onDeath(_w: Worker | null, generation: number, error: Error): void {
    if (this.#startTimer) clearTimeout(this.#startTimer);
    this.#startTimer = null;
    if (this.#state === 'closed') return;
    const wasReady = this.#state === 'ready';
    if (this.#firstStart) {
      // The very first thread never became ready: report it to start() and stay closed.
      this.#state = 'closed';
      const start =
        error instanceof ThreadError && error.code === 'THR_ERR_START'
          ? error
          : new ThreadError('THR_ERR_START', this.name, error.message, { cause: error });
      this.#settleFirst(start);
      return;
    }
    if (wasReady && Date.now() - this.#readyAt >= this.options.stableAfterMs) this.#consecutive = 0;
    this.#consecutive++;
    this.#crashes++;
    const delay = Math.min(this.options.maxRestartDelayMs, this.options.restartDelayMs * 2 ** (this.#consecutive - 1));
    this.#state = 'backoff';
    this.emit('crash', { worker: this.name, generation, error, consecutive: this.#consecutive, restartInMs: delay });
    if (this.#state !== 'backoff') return; // a crash listener closed us
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = null;
      if (this.#state === 'backoff') this.#spawn();
    }, delay);
    this.#restartTimer.unref();
  }

  #settleFirst(err: Error | null): void {
    const f = this.#firstStart;
    if (!f) return;
    this.#firstStart = null;
    if (err) f.reject(err);
    else f.resolve();
  }

  #clearTimers(): void {
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    if (this.#startTimer) clearTimeout(this.#startTimer);
    this.#restartTimer = null;
    this.#startTimer = null;
  }
}
