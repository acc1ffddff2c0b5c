// Coded errors of the server area (SRV_ERR_*), from the one factory (errors/coded.ts). Over HTTP
// they serialize the fastify way: `{ statusCode, code, error, message }` (errors/reply.ts).
import { codedErrors } from '../errors/coded.ts';

export { statusText } from '../errors/coded.ts';
export { replyError } from '../errors/reply.ts';

export class SrvError extends codedErrors({
  SRV_ERR_BAD_REQUEST: { status: 400 },
  SRV_ERR_UNAUTHORIZED: { status: 401 },
  SRV_ERR_FORBIDDEN: { status: 403 },
  SRV_ERR_NOT_FOUND: { status: 404 },
  SRV_ERR_CONFLICT: { status: 409 },
  SRV_ERR_STREAM_BLOCKED: { status: 403 },
  SRV_ERR_CLAIM_EXPIRED: { status: 409 },
  SRV_ERR_STORE_UNAVAILABLE: { status: 503 },
  SRV_ERR_POLICY_INVALID: { status: 400 },
  SRV_ERR_CONFIG: { status: 500 },
  SRV_ERR_UNAVAILABLE: { status: 503 },
  SRV_ERR_RATE_LIMITED: { status: 429 },
  SRV_ERR_CAPACITY: { status: 503 },
  SRV_ERR_INTERNAL: { status: 500 },
  /** A policy activation without a fresh shadow report and without `force` (issue 17). */
  SRV_ERR_SHADOW_REQUIRED: { status: 409 },
}) {}

export type SrvErrorCode = SrvError['code'];

export const unauthorized = (message: string): SrvError => new SrvError('SRV_ERR_UNAUTHORIZED', message);
export const forbidden = (message: string): SrvError => new SrvError('SRV_ERR_FORBIDDEN', message);
export const notFound = (message: string): SrvError => new SrvError('SRV_ERR_NOT_FOUND', message);
export const badRequest = (message: string): SrvError => new SrvError('SRV_ERR_BAD_REQUEST', message);
