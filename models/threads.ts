// models/' face of the worker-thread helper (threads/): its coded errors become ModelErrors, so the
// circuit breaker and the moderator see one catalogue. A crashed or unstarted thread is a backend
// fault (MOD_ERR_BACKEND_DOWN), a call past its timeout MOD_ERR_TIMEOUT: both count against a breaker.
import { isThreadError, type ThreadErrorCode } from '../threads/index.ts';
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
