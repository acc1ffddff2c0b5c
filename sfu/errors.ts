// The SFU's error catalogue (SFU_ERR_*: a code, its HTTP status, a message template; errors/coded.ts).
import { codedErrors } from '../errors/coded.ts';

export class SfuError extends codedErrors({
  SFU_ERR_BAD_SDP: { status: 400, message: 'Malformed SDP offer: %s' },
  SFU_ERR_NO_MEDIA: { status: 400, message: 'No usable media in the offer: %s' },
  SFU_ERR_NO_COMMON_CODEC: { status: 406, message: 'No common codec: %s' },
  SFU_ERR_ALREADY_LIVE: { status: 409, message: 'Stream %s is already live' },
  SFU_ERR_STREAM_NOT_FOUND: { status: 404, message: 'Stream %s is not live' },
  SFU_ERR_SESSION_NOT_FOUND: { status: 404, message: 'Session %s does not exist' },
  SFU_ERR_CLOSED: { status: 503, message: 'The SFU is shutting down' },
  SFU_ERR_NEGOTIATION: { status: 500, message: 'Negotiation failed: %s' },
  SFU_ERR_NO_WORKER: { status: 503 },
  /** No media socket could be opened (the UDP port range is used up): a 201 without a candidate could never connect. */
  SFU_ERR_NO_PORTS: { status: 503, message: 'No media port is free: %s' },
  /** WHIP/WHEP offers are application/sdp. */
  SFU_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415 },
  /** Trickle ICE and ICE restarts (PATCH). */
  SFU_ERR_METHOD_NOT_ALLOWED: { status: 405 },
}) {}

export type SfuErrorCode = SfuError['code'];

export const badSdp = (detail: string): SfuError => new SfuError('SFU_ERR_BAD_SDP', detail);
export const noMedia = (detail: string): SfuError => new SfuError('SFU_ERR_NO_MEDIA', detail);
export const noCommonCodec = (detail: string): SfuError => new SfuError('SFU_ERR_NO_COMMON_CODEC', detail);
export const alreadyLive = (streamId: string): SfuError => new SfuError('SFU_ERR_ALREADY_LIVE', streamId);
export const streamNotFound = (streamId: string): SfuError => new SfuError('SFU_ERR_STREAM_NOT_FOUND', streamId);
export const sessionNotFound = (sessionId: string): SfuError => new SfuError('SFU_ERR_SESSION_NOT_FOUND', sessionId);
export const sfuClosed = (): SfuError => new SfuError('SFU_ERR_CLOSED');
export const negotiationFailed = (detail: string): SfuError => new SfuError('SFU_ERR_NEGOTIATION', detail);
export const noPorts = (detail: string): SfuError => new SfuError('SFU_ERR_NO_PORTS', detail);

export function isSfuError(e: unknown): e is SfuError {
  return e instanceof SfuError;
}
