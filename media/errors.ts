// The one error of media/: bytes that are not the payload format they claim to be. Callers decide
// what it costs (the samplers drop the frame and count it; the load tester counts a broken frame).
import { codedErrors } from '../errors/coded.ts';

class MediaError extends codedErrors({
  MEDIA_ERR_PAYLOAD: { status: 400, message: '%s' },
}) {}

export class PayloadFormatError extends MediaError {
  constructor(codec: string, detail: string) {
    super('MEDIA_ERR_PAYLOAD', `${codec} payload: ${detail}`);
  }
}
