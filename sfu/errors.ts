// The SFU's error catalogue (fastify style: a code, an HTTP status where one applies, a message).

export type SfuErrorCode =
  | 'SFU_ERR_BAD_SDP'
  | 'SFU_ERR_NO_MEDIA'
  | 'SFU_ERR_NO_COMMON_CODEC'
  | 'SFU_ERR_ALREADY_LIVE'
  | 'SFU_ERR_STREAM_NOT_FOUND'
  | 'SFU_ERR_SESSION_NOT_FOUND'
  | 'SFU_ERR_CLOSED'
  | 'SFU_ERR_NEGOTIATION'
  | 'SFU_ERR_NO_WORKER'
  | 'SFU_ERR_NO_PORTS';

export class SfuError extends Error {
  readonly code: SfuErrorCode;
  readonly statusCode: number;
  constructor(code: SfuErrorCode, statusCode: number, message: string) {
    super(message);
    this.name = 'SfuError';
    this.code = code;
    this.statusCode = statusCode;
  }
}

export const badSdp = (detail: string): SfuError => new SfuError('SFU_ERR_BAD_SDP', 400, `Malformed SDP offer: ${detail}`);
export const noMedia = (detail: string): SfuError => new SfuError('SFU_ERR_NO_MEDIA', 400, `No usable media in the offer: ${detail}`);
export const noCommonCodec = (detail: string): SfuError => new SfuError('SFU_ERR_NO_COMMON_CODEC', 406, `No common codec: ${detail}`);
export const alreadyLive = (streamId: string): SfuError => new SfuError('SFU_ERR_ALREADY_LIVE', 409, `Stream ${streamId} is already live`);
export const streamNotFound = (streamId: string): SfuError => new SfuError('SFU_ERR_STREAM_NOT_FOUND', 404, `Stream ${streamId} is not live`);
export const sessionNotFound = (sessionId: string): SfuError => new SfuError('SFU_ERR_SESSION_NOT_FOUND', 404, `Session ${sessionId} does not exist`);
export const sfuClosed = (): SfuError => new SfuError('SFU_ERR_CLOSED', 503, 'The SFU is shutting down');
export const negotiationFailed = (detail: string): SfuError => new SfuError('SFU_ERR_NEGOTIATION', 500, `Negotiation failed: ${detail}`);

/** No media socket could be opened (the UDP port range is used up): a 201 without a candidate could never connect. */
export const noPorts = (detail: string): SfuError => new SfuError('SFU_ERR_NO_PORTS', 503, `No media port is free: ${detail}`);

export function isSfuError(e: unknown): e is SfuError {
  return e instanceof SfuError;
}
