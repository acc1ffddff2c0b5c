// A KServe-v2 / Triton gRPC client as a Backend. Every call carries a deadline; gRPC statuses map to coded
// errors (unknown model, wrong shape, server down, timeout), so a dead server is an error, never a hang.
import * as grpc from '@grpc/grpc-js';
import { ModelError, type ModelErrorCode } from '../../errors.ts';
import type { ModelRegistry } from '../../registry.ts';
import {
  now,
  shapeSize,
  type Backend,
  type BackendStatus,
  type InferOptions,
  type InferOutput,
  type Tensor,
} from '../types.ts';
import {
  MAX_MESSAGE_BYTES,
  bytesFromFloats,
  floatsFromBytes,
  method,
  type MethodName,
  type Methods,
  type ModelMetadataResponse,
} from './protocol.ts';

export interface KServeBackendOptions {
  /** host:port of the server. Default 127.0.0.1:8001. */
  address: string;
  /** Deadline for calls that carry none (ms). Default 5000. */
  defaultTimeoutMs: number;
  /** Registry used for tensor names; without one they come from ModelMetadata. */
  registry?: ModelRegistry;
  /** Reconnect backoff bounds (ms): small, so a restarted server is found quickly. Default 100 / 1000. */
  reconnectBackoffMs: { initial: number; max: number };
}

const DEFAULTS: Readonly<KServeBackendOptions> = Object.freeze({
  address: '127.0.0.1:8001',
  defaultTimeoutMs: 5000,
  reconnectBackoffMs: { initial: 100, max: 1000 },
});

interface Names {
  input: string;
  output: string;
}

export class KServeBackend implements Backend {
  readonly name: string;
  readonly options: Readonly<KServeBackendOptions>;
  readonly #client: grpc.Client;
  readonly #names = new Map<string, Names>();
  readonly #calls = new Set<grpc.ClientUnaryCall>();
  #lastError: string | null = null;
  #closed = false;
  #seq = 0;

  constructor(opts: Partial<KServeBackendOptions> = {}) {
    this.options = Object.freeze({ ...DEFAULTS, ...opts });
    this.name = `kserve(${this.options.address})`;
    this.#client = new grpc.Client(this.options.address, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
      'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
      'grpc.initial_reconnect_backoff_ms': this.options.reconnectBackoffMs.initial,
      'grpc.max_reconnect_backoff_ms': this.options.reconnectBackoffMs.max,
      'grpc.enable_retries': 0,
    });
  }

  /** One unary call with a deadline; statuses become ModelErrors. */
  call<K extends MethodName>(name: K, req: Methods[K][0], deadline?: number): Promise<Methods[K][1]> {
    if (this.#closed) return Promise.reject(new ModelError('MOD_ERR_CLOSED', 'backend closed'));
    const m = method(name);
    const until = deadline ?? now() + this.options.defaultTimeoutMs;
    // grpc-js deadlines are wall-clock Dates; convert from the server clock.
    const wall = new Date(Date.now() + Math.max(0, until - now()));
    return new Promise((resolve, reject) => {
      const call = this.#client.makeUnaryRequest(
        m.path,
        m.requestSerialize,
        m.responseDeserialize,
        req,
        new grpc.Metadata(),
        { deadline: wall },
        (err, res) => {
          this.#calls.delete(call);
          if (err || !res) {
            const e = mapGrpcError(err, name, this.options.address);
            this.#lastError = e.message;
            reject(e);
            return;
          }
          this.#lastError = null;
          resolve(res);
        },
      );
      this.#calls.add(call);
    });
  }

  async serverLive(deadline?: number): Promise<boolean> {
    return (await this.call('ServerLive', {}, deadline)).live;
  }

  async serverReady(deadline?: number): Promise<boolean> {
    return (await this.call('ServerReady', {}, deadline)).ready;
  }

  async modelReady(model: string, deadline?: number): Promise<boolean> {
    return (await this.call('ModelReady', { name: model, version: '' }, deadline)).ready;
  }

  modelMetadata(model: string, deadline?: number): Promise<ModelMetadataResponse> {
    return this.call('ModelMetadata', { name: model, version: '' }, deadline);
  }

  async load(model: string): Promise<void> {
    await this.#tensorNames(model);
    if (!(await this.modelReady(model)))
      throw new ModelError('MOD_ERR_BACKEND_DOWN', `model ${model} is not ready on ${this.options.address}`);
  }

  async #tensorNames(model: string, deadline?: number): Promise<Names> {
    const known = this.#names.get(model);
    if (known) return known;
    let names: Names;
    const reg = this.options.registry;
    if (reg) {
      const spec = reg.get(model);
      names = { input: spec.input.name, output: spec.output.name };
    } else {
      const md = await this.modelMetadata(model, deadline);
      if (!md.inputs[0] || !md.outputs[0])
        throw new ModelError('MOD_ERR_CONFIG', `model ${model}: metadata lists no tensors`);
      names = { input: md.inputs[0].name, output: md.outputs[0].name };
    }
    this.#names.set(model, names);
    return names;
  }

  async infer(model: string, input: Tensor, opts: InferOptions = {}): Promise<InferOutput> {
    const t0 = now();
    if (input.data.length !== shapeSize(input.shape)) {
      throw new ModelError(
        'MOD_ERR_BAD_SHAPE',
        `model ${model}: ${input.data.length} values for shape [${input.shape}]`,
      );
    }
    const names = await this.#tensorNames(model, opts.deadline);
    const res = await this.call(
      'ModelInfer',
      {
        model_name: model,
        id: String(++this.#seq),
        inputs: [{ name: names.input, datatype: 'FP32', shape: input.shape }],
        outputs: [{ name: names.output }],
        raw_input_contents: [bytesFromFloats(input.data)],
      },
      opts.deadline,
    );
    const idx = Math.max(
      0,
      res.outputs.findIndex((o) => o.name === names.output),
    );
    const meta = res.outputs[idx];
    if (!meta || meta.datatype !== 'FP32')
      throw new ModelError('MOD_ERR_INFERENCE', `model ${model}: no FP32 output in the response`);
    const raw = res.raw_output_contents[idx];
    const data = raw ? floatsFromBytes(raw) : Float32Array.from(meta.contents?.fp32_contents ?? []);
    if (data.length !== shapeSize(meta.shape))
      throw new ModelError('MOD_ERR_INFERENCE', `model ${model}: output size mismatch`);
    return { data, shape: meta.shape, inferMs: now() - t0 };
  }

  status(): BackendStatus {
    const state = this.#client.getChannel().getConnectivityState(false);
    return {
      backend: this.name,
      ready:
        !this.#closed &&
        state !== grpc.connectivityState.TRANSIENT_FAILURE &&
        state !== grpc.connectivityState.SHUTDOWN,
      models: [...this.#names.keys()],
      detail: `channel ${grpc.connectivityState[state]}${this.#lastError ? `; last error: ${this.#lastError}` : ''}`,
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of this.#calls) c.cancel();
    this.#calls.clear();
    this.#client.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

export function mapGrpcError(err: grpc.ServiceError | null, methodName: string, address: string): ModelError {
  if (!err) return new ModelError('MOD_ERR_INFERENCE', `${methodName}: empty response`);
  const S = grpc.status;
  const detail = err.details || err.message;
  let code: ModelErrorCode;
  switch (err.code) {
    case S.NOT_FOUND:
      code = 'MOD_ERR_UNKNOWN_MODEL';
      break;
    case S.INVALID_ARGUMENT:
    case S.OUT_OF_RANGE:
      code = 'MOD_ERR_BAD_SHAPE';
      break;
    case S.DEADLINE_EXCEEDED:
      code = 'MOD_ERR_TIMEOUT';
      break;
    case S.CANCELLED:
      code = 'MOD_ERR_CLOSED';
      break;
    case S.UNAVAILABLE:
      // Triton answers requests for unknown models with UNAVAILABLE too.
      code = /unknown model|not found/i.test(detail) ? 'MOD_ERR_UNKNOWN_MODEL' : 'MOD_ERR_BACKEND_DOWN';
      break;
    default:
      code = 'MOD_ERR_INFERENCE';
  }
  const msg =
    code === 'MOD_ERR_BACKEND_DOWN' ? `inference server ${address} unreachable: ${detail}` : `${methodName}: ${detail}`;
  return new ModelError(code, msg, { cause: err });
}
