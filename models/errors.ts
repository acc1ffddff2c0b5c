// Coded errors of models/ (MOD_ERR_*), from the one factory (errors/coded.ts). Over HTTP they
// serialize the fastify way.
import { codedErrors } from '../errors/coded.ts';

export class ModelError extends codedErrors({
  MOD_ERR_UNKNOWN_MODEL: { status: 404 },
  MOD_ERR_BAD_SHAPE: { status: 400 },
  MOD_ERR_BACKEND_DOWN: { status: 503 },
  MOD_ERR_TIMEOUT: { status: 504 },
  MOD_ERR_UNAVAILABLE: { status: 503 },
  MOD_ERR_DEADLINE_MISSED: { status: 504 },
  MOD_ERR_CONFIG: { status: 500 },
  MOD_ERR_CONVERSION: { status: 500 },
  MOD_ERR_INFERENCE: { status: 500 },
  MOD_ERR_CLOSED: { status: 503 },
  MOD_ERR_QUEUE_FULL: { status: 503 },
}) {}

export type ModelErrorCode = ModelError['code'];

export function isModelError(err: unknown, code?: ModelErrorCode): err is ModelError {
  return err instanceof ModelError && (code === undefined || err.code === code);
}

/** Errors that say the backend, not the request, is at fault: they count against the circuit breaker. */
export function isBackendFault(err: unknown): boolean {
  return isModelError(err) && (err.code === 'MOD_ERR_BACKEND_DOWN' || err.code === 'MOD_ERR_TIMEOUT');
}
