// The one error of media/: bytes that are not the payload format they claim to be. Callers decide
// what it costs (the samplers drop the frame and count it; the load tester counts a broken frame).

export class PayloadFormatError extends Error {
  readonly code = 'MEDIA_ERR_PAYLOAD';
  constructor(codec: string, detail: string) {
    super(`${codec} payload: ${detail}`);
    this.name = 'PayloadFormatError';
  }
}
