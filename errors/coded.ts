// One error factory for every folder, the fastify way (lib/errors.js createError): each folder
// declares a catalogue mapping its codes (SRV_ERR_*, SFU_ERR_*, MOD_ERR_*, SMP_ERR_*, POL_ERR_*,
// THR_ERR_*, MEDIA_ERR_*) to an HTTP status and a message template, and gets one class for them.
// Every error of the project then has the same shape: `code`, `statusCode`, a message, and `toJSON()`
// giving the HTTP reply `{ statusCode, code, error, message }` (replyError.ts answers with it).
// Before this, five shapes: samplers/ had no status, sfu/ passed the status at every call site,
// models/ and server/ each kept a table, and only two had toJSON (with different `error` fields).
// Imports nothing of the project, so every folder may use it.

/** The HTTP body of an error reply. */
export interface ErrorReply {
  statusCode: number;
  code: string;
  /** The status's reason phrase ('Not Found'). */
  error: string;
  message: string;
}

/** A code's HTTP status and message template; `%s` takes the detail given at the throw site. */
export interface ErrorSpec {
  status: number;
  /** Default '%s' (the throw site writes the whole message). */
  message?: string;
}

export interface CodedErrorOptions {
  cause?: unknown;
  /** This one error's status when it differs from its code's (a policy error that means "not ready" is a 503). */
  statusCode?: number;
}

const REASON: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  417: 'Expectation Failed',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** The reason phrase of the statuses the catalogues use ('Error' for any other). */
export function statusText(status: number): string {
  return REASON[status] ?? 'Error';
}

/** An error with a stable code and an HTTP status: the base of every catalogue's class. */
export class CodedError<C extends string = string> extends Error {
  readonly code: C;
  readonly statusCode: number;
  constructor(code: C, statusCode: number, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.statusCode = statusCode;
  }

  toJSON(): ErrorReply {
    return { statusCode: this.statusCode, code: this.code, error: statusText(this.statusCode), message: this.message };
  }
}

/** The message of `template` with its `%s` filled by `detail` (a template without `%s` takes none). */
export function formatMessage(template: string, detail: string | undefined): string {
  return template.includes('%s') ? template.replace('%s', () => detail ?? '') : template;
}

/**
 * A folder's error class over its catalogue: `class SfuError extends codedErrors({...}) {}`, then
 * `new SfuError('SFU_ERR_BAD_SDP', 'empty body')`. The class is the folder's (instanceof tells the
 * folders apart); its name is the subclass's.
 */
export function codedErrors<C extends string>(catalogue: Readonly<Record<C, ErrorSpec>>) {
  return class extends CodedError<C> {
    static readonly catalogue: Readonly<Record<C, ErrorSpec>> = catalogue;
    constructor(code: C, detail?: string, options?: CodedErrorOptions) {
      const spec = catalogue[code];
      super(code, options?.statusCode ?? spec.status, formatMessage(spec.message ?? '%s', detail), options);
    }
  };
}
