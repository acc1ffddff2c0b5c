// models/' face of the worker-thread helper (threads/): its coded errors become ModelErrors, so the
// circuit breaker and the moderator see one catalogue, and the model threads' facades start their
// threads one way (modelThread, modelThreadLoaded). A crashed or unstarted thread is a backend
// fault (MOD_ERR_BACKEND_DOWN), a call past its timeout MOD_ERR_TIMEOUT: both count against a breaker.
import {
  RequestWorker,
  isThreadError,
  reportWorkerEvents,
  type RequestWorkerOptions,
  type ThreadErrorCode,
  type WorkerEventListener,
} from '../threads/index.ts';
import { ModelError, isModelError, type ModelErrorCode } from './errors.ts';

const CODE: Record<ThreadErrorCode, ModelErrorCode> = {
  THR_ERR_TIMEOUT: 'MOD_ERR_TIMEOUT',
  THR_ERR_CRASHED: 'MOD_ERR_BACKEND_DOWN',
  THR_ERR_CLOSED: 'MOD_ERR_CLOSED',
  THR_ERR_QUEUE_FULL: 'MOD_ERR_QUEUE_FULL',
  THR_ERR_START: 'MOD_ERR_BACKEND_DOWN',
  THR_ERR_REMOTE: 'MOD_ERR_INFERENCE',
};

/** The ModelError for a worker call's rejection; `remote` overrides the code of errors the thread's handler threw. */
export function modelErrorOf(err: unknown, remote: ModelErrorCode = 'MOD_ERR_INFERENCE'): ModelError {
  if (isModelError(err)) return err;
  if (isThreadError(err))
    return new ModelError(err.code === 'THR_ERR_REMOTE' ? remote : CODE[err.code], err.message, { cause: err });
  return new ModelError('MOD_ERR_INFERENCE', err instanceof Error ? err.message : String(err), { cause: err });
}

/**
 * What every model thread's facade (OcrWorker, VadWorker, FingerprintWorker, PdqWorker) lets its caller
 * set; each facade has its own defaults for the first two.
 */
export interface ModelThreadOptions {
  /** Calls pending (queued or in the thread); one beyond it is refused at once (MOD_ERR_QUEUE_FULL). */
  maxQueue?: number;
  /** A call not answered within this long (ms) is rejected MOD_ERR_TIMEOUT. */
  timeoutMs?: number;
  /** First restart delay after a crash (ms); doubles per crash in a row up to 10 s. Default 100. */
  restartDelayMs?: number;
  /** Crashes, restarts and timeouts of the thread (metrics, warnings). */
  onWorkerEvent?: WorkerEventListener;
}

/** The facade's thread: supervised, its events reported to `opts.onWorkerEvent`. */
export function modelThread<Req, Res>(
  thread: Omit<RequestWorkerOptions, 'maxPending' | 'timeoutMs' | 'restartDelayMs'> & {
    maxQueue: number;
    timeoutMs: number;
  },
  opts: ModelThreadOptions,
): RequestWorker<Req, Res> {
  const { maxQueue, timeoutMs, ...rest } = thread;
  const rpc = new RequestWorker<Req, Res>({
    ...rest,
    maxPending: opts.maxQueue ?? maxQueue,
    timeoutMs: opts.timeoutMs ?? timeoutMs,
    ...(opts.restartDelayMs !== undefined ? { restartDelayMs: opts.restartDelayMs } : {}),
  });
  reportWorkerEvents(rpc, opts.onWorkerEvent);
  return rpc;
}

/**
 * Waits until a model thread has loaded what it serves. A thread that cannot (or cannot start at all) is
 * a configuration problem: it is closed and MOD_ERR_CONFIG says `cannot load <what>`.
 */
export async function modelThreadLoaded(
  rpc: Pick<RequestWorker<unknown, unknown>, 'started' | 'close'>,
  what: string,
): Promise<void> {
  try {
    await rpc.started();
  } catch (err) {
    await rpc.close();
    throw isThreadError(err, 'THR_ERR_START')
      ? new ModelError('MOD_ERR_CONFIG', `cannot load ${what}: ${err.message}`, { cause: err })
      : modelErrorOf(err);
  }
}
