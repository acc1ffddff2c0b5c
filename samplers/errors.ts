// Coded errors of the samplers area (SMP_ERR_*), fastify-style: a stable code, a message.

export class SamplerError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'SamplerError';
    this.code = code;
  }
}

/** The pool was used after close(). */
export class SamplerClosedError extends SamplerError {
  constructor() {
    super('SMP_ERR_CLOSED', 'sampler pool is closed');
  }
}

/** A payload could not be parsed as the codec's RTP payload format (media/ owns the formats). */
export { PayloadFormatError } from '../media/errors.ts';

/** A decode worker could not start (node-av missing, bootstrap failed). */
export class WorkerStartError extends SamplerError {
  constructor(detail: string) {
    super('SMP_ERR_WORKER_START', `decode worker failed to start: ${detail}`);
  }
}
