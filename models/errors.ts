// Coded errors of models/ (MOD_ERR_*). Over HTTP they serialize the fastify way.

export type ModelErrorCode =
  | 'MOD_ERR_UNKNOWN_MODEL'
  | 'MOD_ERR_BAD_SHAPE'
  | 'MOD_ERR_BACKEND_DOWN'
  | 'MOD_ERR_TIMEOUT'
  | 'MOD_ERR_UNAVAILABLE'
  | 'MOD_ERR_DEADLINE_MISSED'
  | 'MOD_ERR_CONFIG'
  | 'MOD_ERR_CONVERSION'
  | 'MOD_ERR_INFERENCE'
  | 'MOD_ERR_CLOSED'
  | 'MOD_ERR_QUEUE_FULL';

const STATUS: Record<ModelErrorCode, number> = {
  MOD_ERR_UNKNOWN_MODEL: 404,
  MOD_ERR_BAD_SHAPE: 400,
  MOD_ERR_BACKEND_DOWN: 503,
  MOD_ERR_TIMEOUT: 504,
  MOD_ERR_UNAVAILABLE: 503,
  MOD_ERR_DEADLINE_MISSED: 504,
  MOD_ERR_CONFIG: 500,
  MOD_ERR_CONVERSION: 500,
  MOD_ERR_INFERENCE: 500,
  MOD_ERR_CLOSED: 503,
  MOD_ERR_QUEUE_FULL: 503,
};

export class ModelError extends Error {
  readonly code: ModelErrorCode;
  readonly statusCode: number;
  constructor(code: ModelErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ModelError';
    this.code = code;
    this.statusCode = STATUS[code];
  }

  toJSON(): { statusCode: number; code: string; error: string; message: string } {
    return { statusCode: this.statusCode, code: this.code, error: this.name, message: this.message };
  }
}

export function isModelError(err: unknown, code?: ModelErrorCode): err is ModelError {
  return err instanceof ModelError && (code === undefined || err.code === code);
}

/** Errors that say the backend, not the request, is at fault: they count against the circuit breaker. */
export function isBackendFault(err: unknown): boolean {
  return isModelError(err) && (err.code === 'MOD_ERR_BACKEND_DOWN' || err.code === 'MOD_ERR_TIMEOUT');
}
