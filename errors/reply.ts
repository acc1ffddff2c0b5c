// The HTTP reply for any error a route throws: a CodedError answers with its own code and status;
// fastify's own 4xx (bad JSON, wrong content type, body too large, schema validation) read as
// SRV_ERR_BAD_REQUEST keeping their status; an uncoded 5xx is SRV_ERR_INTERNAL 'internal error'
// (its details go to the log, never to the client).
import { CodedError, statusText, type ErrorReply } from './coded.ts';

/** What fastify and Node hand an error handler (structurally: errors/ imports no framework). */
interface ThrownError extends Error {
  statusCode?: number;
  code?: string;
  validation?: unknown;
}

export function replyError(err: ThrownError): ErrorReply {
  if (err instanceof CodedError) return err.toJSON();
  if (err.validation)
    return { statusCode: 400, code: 'SRV_ERR_BAD_REQUEST', error: statusText(400), message: err.message };
  const status =
    typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
  if (status < 500 && (!err.code || err.code.startsWith('FST_'))) {
    return {
      statusCode: status,
      code: 'SRV_ERR_BAD_REQUEST',
      error: statusText(status),
      message: err.code ? `${err.message} (${err.code})` : err.message,
    };
  }
  if (status >= 500 && (!err.code || err.code.startsWith('FST_') || err.code.startsWith('ERR_'))) {
    return { statusCode: 500, code: 'SRV_ERR_INTERNAL', error: statusText(500), message: 'internal error' };
  }
  return { statusCode: status, code: err.code ?? 'SRV_ERR_INTERNAL', error: statusText(status), message: err.message };
}
