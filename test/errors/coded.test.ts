// The one error factory (errors/coded.ts) and replyError (errors/reply.ts): every folder's catalogue
// keeps the codes and HTTP statuses it had before the factory, and every error answers HTTP in one shape.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CodedError, statusText } from '../../errors/coded.ts';
import { replyError } from '../../errors/reply.ts';
import { SrvError } from '../../server/errors.ts';
import { AdmissionError } from '../../server/sessions.ts';
import { SfuError, badSdp, sfuClosed, alreadyLive } from '../../sfu/errors.ts';
import { ModelError } from '../../models/errors.ts';
import { SamplerClosedError, SamplerError, WorkerStartError } from '../../samplers/errors.ts';
import { PolicyError } from '../../policies/errors.ts';
import { ThreadError } from '../../threads/errors.ts';
import { PayloadFormatError } from '../../media/errors.ts';

// The statuses each code had before the factory (server/errors.ts, models/errors.ts, threads/errors.ts
// tables; the sfu/ call sites; policies/ 422 by default).
const BEFORE: Record<string, Record<string, number>> = {
  SrvError: {
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
    SRV_ERR_SHADOW_REQUIRED: 409,
  },
  SfuError: {
    SFU_ERR_BAD_SDP: 400,
    SFU_ERR_NO_MEDIA: 400,
    SFU_ERR_NO_COMMON_CODEC: 406,
    SFU_ERR_ALREADY_LIVE: 409,
    SFU_ERR_STREAM_NOT_FOUND: 404,
    SFU_ERR_SESSION_NOT_FOUND: 404,
    SFU_ERR_CLOSED: 503,
    SFU_ERR_NEGOTIATION: 500,
    SFU_ERR_NO_WORKER: 503,
    SFU_ERR_NO_PORTS: 503,
    SFU_ERR_UNSUPPORTED_MEDIA_TYPE: 415,
    SFU_ERR_METHOD_NOT_ALLOWED: 405,
  },
  ModelError: {
    MOD_ERR_UNKNOWN_MODEL: 404,
    MOD_ERR_BAD_SHAPE: 400,
    MOD_ERR_BACKEND_DOWN: 503,
    MOD_ERR_TIMEOUT: 504,
    MOD_ERR_UNAVAILABLE: 503,
    MOD_ERR_DEADLINE_MISSED: 504,
    MOD_ERR_CONFIG: 500,
    MOD_ERR_CONVERSION: 500,
    MOD_ERR_INFERENCE: 500,
    MOD_ERR_CLOSED: 503,
    MOD_ERR_QUEUE_FULL: 503,
  },
  ThreadError: {
    THR_ERR_TIMEOUT: 504,
    THR_ERR_CRASHED: 503,
    THR_ERR_CLOSED: 503,
    THR_ERR_QUEUE_FULL: 503,
    THR_ERR_START: 503,
    THR_ERR_REMOTE: 500,
  },
  PolicyError: {
    POL_ERR_YAML: 422,
    POL_ERR_SCHEMA: 422,
    POL_ERR_REFERENCE: 422,
    POL_ERR_DUPLICATE: 422,
    POL_ERR_NO_BASE: 422,
    POL_ERR_REVIEW_STATE: 422,
  },
};

const CATALOGUES = { SrvError, SfuError, ModelError, ThreadError, PolicyError } as const;

test('every catalogue keeps its codes and HTTP statuses', () => {
  for (const [name, codes] of Object.entries(BEFORE)) {
    const cls = CATALOGUES[name as keyof typeof CATALOGUES];
    const statuses = Object.fromEntries(
      Object.entries(cls.catalogue).map(([code, spec]) => [code, (spec as { status: number }).status]),
    );
    assert.deepEqual(statuses, codes, name);
  }
});

test('each folder error is a CodedError with the same reply shape', () => {
  const issue = { file: 'base.yaml', line: 3, column: 5, path: 'taxonomy', reason: 'expected a map' };
  const cases: [CodedError, string, string, number, string][] = [
    [
      new SrvError('SRV_ERR_NOT_FOUND', 'decision d1 not found'),
      'SrvError',
      'SRV_ERR_NOT_FOUND',
      404,
      'decision d1 not found',
    ],
    [new AdmissionError('SRV_ERR_CAPACITY', 'node full', 5), 'AdmissionError', 'SRV_ERR_CAPACITY', 503, 'node full'],
    [badSdp('empty body'), 'SfuError', 'SFU_ERR_BAD_SDP', 400, 'Malformed SDP offer: empty body'],
    [alreadyLive('s1'), 'SfuError', 'SFU_ERR_ALREADY_LIVE', 409, 'Stream s1 is already live'],
    [sfuClosed(), 'SfuError', 'SFU_ERR_CLOSED', 503, 'The SFU is shutting down'],
    [new ModelError('MOD_ERR_TIMEOUT', 'nsfw: 80 ms'), 'ModelError', 'MOD_ERR_TIMEOUT', 504, 'nsfw: 80 ms'],
    [new SamplerClosedError(), 'SamplerClosedError', 'SMP_ERR_CLOSED', 503, 'sampler pool is closed'],
    [
      new WorkerStartError('no node-av'),
      'WorkerStartError',
      'SMP_ERR_WORKER_START',
      503,
      'decode worker failed to start: no node-av',
    ],
    [
      new ThreadError('THR_ERR_TIMEOUT', 'ocr', 'no reply in 2000 ms'),
      'ThreadError',
      'THR_ERR_TIMEOUT',
      504,
      'ocr: no reply in 2000 ms',
    ],
    [
      new PayloadFormatError('VP8', 'descriptor cut short'),
      'PayloadFormatError',
      'MEDIA_ERR_PAYLOAD',
      400,
      'VP8 payload: descriptor cut short',
    ],
    [
      new PolicyError('POL_ERR_SCHEMA', [issue, issue]),
      'PolicyError',
      'POL_ERR_SCHEMA',
      422,
      'POL_ERR_SCHEMA: policy file does not match the schema: base.yaml:3:5 at taxonomy: expected a map (+1 more)',
    ],
    [
      new PolicyError('POL_ERR_NO_BASE', [], 503),
      'PolicyError',
      'POL_ERR_NO_BASE',
      503,
      'POL_ERR_NO_BASE: policy bundle has no base file: : policy bundle has no base file',
    ],
  ];
  for (const [err, name, code, status, message] of cases) {
    assert.ok(err instanceof CodedError && err instanceof Error, name);
    assert.equal(err.name, name);
    assert.equal(err.code, code, name);
    assert.equal(err.statusCode, status, name);
    assert.equal(err.message, message, name);
    assert.deepEqual(err.toJSON(), { statusCode: status, code, error: statusText(status), message }, name);
    assert.deepEqual(replyError(err), err.toJSON(), name);
    assert.deepEqual(JSON.parse(JSON.stringify(err)), err.toJSON(), name);
  }
  assert.ok(new SamplerClosedError() instanceof SamplerError);
  assert.ok(!(new SrvError('SRV_ERR_INTERNAL', 'x') instanceof SfuError), 'instanceof tells the folders apart');
});

test('a detail is put in the template as written ($ patterns are not replacement patterns)', () => {
  assert.equal(badSdp("a=x:$& $1 $'").message, "Malformed SDP offer: a=x:$& $1 $'");
  const cause = new Error('socket');
  assert.equal(new ModelError('MOD_ERR_BACKEND_DOWN', 'triton', { cause }).cause, cause);
});

test('replyError: fastify and Node errors answer in the house shape', () => {
  const fst = (message: string, code: string | undefined, statusCode?: number, extra: object = {}) =>
    Object.assign(new Error(message), { code, statusCode, ...extra });
  assert.deepEqual(replyError(fst('body/x must be string', 'FST_ERR_VALIDATION', 400, { validation: [{}] })), {
    statusCode: 400,
    code: 'SRV_ERR_BAD_REQUEST',
    error: 'Bad Request',
    message: 'body/x must be string',
  });
  assert.deepEqual(replyError(fst('Unexpected token', 'FST_ERR_CTP_INVALID_JSON_BODY', 400)), {
    statusCode: 400,
    code: 'SRV_ERR_BAD_REQUEST',
    error: 'Bad Request',
    message: 'Unexpected token (FST_ERR_CTP_INVALID_JSON_BODY)',
  });
  assert.deepEqual(replyError(fst('Request body is too large', 'FST_ERR_CTP_BODY_TOO_LARGE', 413)), {
    statusCode: 413,
    code: 'SRV_ERR_BAD_REQUEST',
    error: 'Payload Too Large',
    message: 'Request body is too large (FST_ERR_CTP_BODY_TOO_LARGE)',
  });
  assert.deepEqual(replyError(new TypeError('x is undefined')), {
    statusCode: 500,
    code: 'SRV_ERR_INTERNAL',
    error: 'Internal Server Error',
    message: 'internal error',
  });
  assert.deepEqual(replyError(fst('ECONNRESET', 'ERR_STREAM_PREMATURE_CLOSE', 500)), {
    statusCode: 500,
    code: 'SRV_ERR_INTERNAL',
    error: 'Internal Server Error',
    message: 'internal error',
  });
  // A coded error of a library that is not ours keeps its code and status.
  assert.deepEqual(replyError(fst('quota', 'LIB_QUOTA', 429)), {
    statusCode: 429,
    code: 'LIB_QUOTA',
    error: 'Too Many Requests',
    message: 'quota',
  });
});
