// Coded errors of the worker-thread helper (THR_ERR_*). Callers in models/ and samplers/ map them to
// their own catalogues where they have one; the code and HTTP status travel either way.

export type ThreadErrorCode =
  /** The call got no reply within its timeout. */
  | 'THR_ERR_TIMEOUT'
  /** The thread died (uncaught exception, exit, or recycled as unresponsive) while the call was pending. */
  | 'THR_ERR_CRASHED'
  /** The worker was closed; the call was never answered. */
  | 'THR_ERR_CLOSED'
  /** Too many calls pending; this one was refused at once (counted). */
  | 'THR_ERR_QUEUE_FULL'
  /** The thread could not start (bootstrap failed, its setup threw, or it never said ready). */
  | 'THR_ERR_START'
  /** The thread's handler threw for this call; the thread itself is fine. */
  | 'THR_ERR_REMOTE';

const STATUS: Record<ThreadErrorCode, number> = {
  THR_ERR_TIMEOUT: 504,
  THR_ERR_CRASHED: 503,
  THR_ERR_CLOSED: 503,
  THR_ERR_QUEUE_FULL: 503,
  THR_ERR_START: 503,
  THR_ERR_REMOTE: 500,
};

export class ThreadError extends Error {
  readonly code: ThreadErrorCode;
  readonly statusCode: number;
  /** Name of the worker (as in metrics and warnings). */
  readonly worker: string;
  constructor(code: ThreadErrorCode, worker: string, message: string, options?: { cause?: unknown }) {
    super(`${worker}: ${message}`, options);
    this.name = 'ThreadError';
    this.code = code;
    this.worker = worker;
    this.statusCode = STATUS[code];
  }
}

export function isThreadError(err: unknown, code?: ThreadErrorCode): err is ThreadError {
  return err instanceof ThreadError && (code === undefined || err.code === code);
}
