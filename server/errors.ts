// Coded errors of the server area. Over HTTP they serialize the fastify way:
// `{ statusCode, code, error, message }` (see app.ts error handler).

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  408: 'Request Timeout',
  413: 'Payload Too Large',
  417: 'Expectation Failed',
  431: 'Request Header Fields Too Large',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export type SrvErrorCode =
  | 'SRV_ERR_BAD_REQUEST'
  | 'SRV_ERR_UNAUTHORIZED'
  | 'SRV_ERR_FORBIDDEN'
  | 'SRV_ERR_NOT_FOUND'
  | 'SRV_ERR_CONFLICT'
  | 'SRV_ERR_STREAM_BLOCKED'
  | 'SRV_ERR_CLAIM_EXPIRED'
  | 'SRV_ERR_STORE_UNAVAILABLE'
  | 'SRV_ERR_POLICY_INVALID'
  | 'SRV_ERR_CONFIG'
  | 'SRV_ERR_UNAVAILABLE'
  | 'SRV_ERR_RATE_LIMITED'
  | 'SRV_ERR_CAPACITY'
  | 'SRV_ERR_INTERNAL';

const STATUS: Record<SrvErrorCode, number> = {
  SRV_ERR_BAD_REQUEST: 400,
  SRV_ERR_UNAUTHORIZED: 401,
  SRV_ERR_FORBIDDEN: 403,
  SRV_ERR_NOT_FOUND: 404,
  SRV_ERR_CONFLICT: 409,
  SRV_ERR_STREAM_BLOCKED: 403,
  SRV_ERR_CLAIM_EXPIRED: 409,
  SRV_ERR_STORE_UNAVAILABLE: 503,
  SRV_ERR_POLICY_INVALID: 400,
  SRV_ERR_CONFIG: 500,
  SRV_ERR_UNAVAILABLE: 503,
  SRV_ERR_RATE_LIMITED: 429,
  SRV_ERR_CAPACITY: 503,
  SRV_ERR_INTERNAL: 500,
};

export class SrvError extends Error {
  readonly code: SrvErrorCode;
  readonly statusCode: number;
  constructor(code: SrvErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SrvError';
    this.code = code;
    this.statusCode = STATUS[code];
  }
  toJSON(): { statusCode: number; code: string; error: string; message: string } {
    return { statusCode: this.statusCode, code: this.code, error: statusText(this.statusCode), message: this.message };
  }
}

export function statusText(status: number): string {
  return STATUS_TEXT[status] ?? 'Error';
}

export const unauthorized = (message: string): SrvError => new SrvError('SRV_ERR_UNAUTHORIZED', message);
export const forbidden = (message: string): SrvError => new SrvError('SRV_ERR_FORBIDDEN', message);
export const notFound = (message: string): SrvError => new SrvError('SRV_ERR_NOT_FOUND', message);
export const badRequest = (message: string): SrvError => new SrvError('SRV_ERR_BAD_REQUEST', message);
