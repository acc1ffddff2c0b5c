// Coded errors of the samplers area (SMP_ERR_*), from the one factory (errors/coded.ts).
import { codedErrors } from '../errors/coded.ts';

export class SamplerError extends codedErrors({
  /** The pool was used after close(). */
  SMP_ERR_CLOSED: { status: 503, message: 'sampler pool is closed' },
  /** A decode worker could not start (node-av missing, bootstrap failed). */
  SMP_ERR_WORKER_START: { status: 503, message: 'decode worker failed to start: %s' },
}) {}

/** The pool was used after close(). */
export class SamplerClosedError extends SamplerError {
  constructor() {
    super('SMP_ERR_CLOSED');
  }
}

/** A payload could not be parsed as the codec's RTP payload format (media/ owns the formats). */
export { PayloadFormatError } from '../media/errors.ts';

/** A decode worker could not start (node-av missing, bootstrap failed). */
export class WorkerStartError extends SamplerError {
  constructor(detail: string) {
    super('SMP_ERR_WORKER_START', detail);
  }
}
