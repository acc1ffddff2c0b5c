// Coded errors of the worker-thread helper (THR_ERR_*), from the one factory (errors/coded.ts).
// Callers in models/ and samplers/ map them to their own catalogues where they have one; the code
// and HTTP status travel either way.
import { codedErrors } from '../errors/coded.ts';

const ThreadErrors = codedErrors({
  /** The call got no reply within its timeout. */
  THR_ERR_TIMEOUT: { status: 504 },
  /** The thread died (uncaught exception, exit, or recycled as unresponsive) while the call was pending. */
  THR_ERR_CRASHED: { status: 503 },
  /** The worker was closed; the call was never answered. */
  THR_ERR_CLOSED: { status: 503 },
  /** Too many calls pending; this one was refused at once (counted). */
  THR_ERR_QUEUE_FULL: { status: 503 },
  /** The thread could not start (bootstrap failed, its setup threw, or it never said ready). */
  THR_ERR_START: { status: 503 },
  /** The thread's handler threw for this call; the thread itself is fine. */
  THR_ERR_REMOTE: { status: 500 },
});

export type ThreadErrorCode = InstanceType<typeof ThreadErrors>['code'];

export class ThreadError extends ThreadErrors {
  /** Name of the worker (as in metrics and warnings). */
  readonly worker: string;
  constructor(code: ThreadErrorCode, worker: string, message: string, options?: { cause?: unknown }) {
    super(code, `${worker}: ${message}`, options);
    this.worker = worker;
  }
}

export function isThreadError(err: unknown, code?: ThreadErrorCode): err is ThreadError {
  return err instanceof ThreadError && (code === undefined || err.code === code);
}
