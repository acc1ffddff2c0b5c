// A KServe-v2 gRPC inference server backed by onnxruntime-node, serving the registry's models, so inference
// can run on another machine than the SFU and the gRPC path is exercised for real.
//   npm run inference-server -- [--host 127.0.0.1] [--port 8001] [--threads 2] [--models a,b] [--registry FILE]
// Env: INFERENCE_HOST, INFERENCE_PORT, INFERENCE_THREADS, INFERENCE_MODELS, MODEL_REGISTRY, MODEL_CACHE_DIR.
// Prints one line `inference-server listening on HOST:PORT` once every model is loaded.
import * as grpc from '@grpc/grpc-js';
import { pathToFileURL } from 'node:url';
import { ModelError, isModelError } from './errors.ts';
import { ModelRegistry, inputShape } from './registry.ts';
import { OnnxRuntimeBackend, checkShape, type ExecutionProvider } from './backends/onnxruntime/onnxruntime-backend.ts';
import { shapeSize } from './backends/types.ts';
import {
  MAX_MESSAGE_BYTES,
  bytesFromFloats,
  floatsFromBytes,
  inferenceService,
  type Methods,
  type MethodName,
} from './backends/kserve/protocol.ts';

export interface InferenceServerOptions {
  /** Default 127.0.0.1. */
  host: string;
  /** Default 8001; 0 picks a free port. */
  port: number;
  registry: ModelRegistry;
  /** Models to serve (registry names). Default all. */
  models: string[] | null;
  /** onnxruntime intra-op threads. Default 2. */
  threads: number;
  executionProviders: ExecutionProvider[];
}

type Handler<K extends MethodName> = grpc.handleUnaryCall<Methods[K][0], Methods[K][1]>;

export class InferenceServer {
  #closed = false;

  private constructor(
    readonly server: grpc.Server,
    readonly backend: OnnxRuntimeBackend,
    readonly host: string,
    readonly port: number,
    readonly models: string[],
  ) {}

  get address(): string {
    return `${this.host}:${this.port}`;
  }

  static async start(opts: Partial<InferenceServerOptions> = {}): Promise<InferenceServer> {
    const registry = opts.registry ?? ModelRegistry.load();
    const host = opts.host ?? '127.0.0.1';
    const models = opts.models ?? registry.list().map((m) => m.name);
    for (const m of models) registry.get(m);
    const backend = new OnnxRuntimeBackend({
      registry,
      intraOpNumThreads: opts.threads ?? 2,
      executionProviders: opts.executionProviders ?? ['cpu'],
    });
    for (const m of models) await backend.load(m);
    const served = new Set(models);
    const server = new grpc.Server({
      'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
      'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
    });
    const unknown = (name: string) => ({ code: grpc.status.NOT_FOUND, details: `unknown model '${name}'` });

    const ServerLive: Handler<'ServerLive'> = (_call, cb) => cb(null, { live: true });
    const ServerReady: Handler<'ServerReady'> = (_call, cb) => cb(null, { ready: true });
    const ModelReady: Handler<'ModelReady'> = (call, cb) => {
      if (!served.has(call.request.name)) return cb(unknown(call.request.name));
      cb(null, { ready: true });
    };
    const ModelMetadata: Handler<'ModelMetadata'> = (call, cb) => {
      const name = call.request.name;
      if (!served.has(name)) return cb(unknown(name));
      const spec = registry.get(name);
      cb(null, {
        name,
        versions: [spec.version],
        platform: 'onnxruntime_onnx',
        inputs: [{ name: spec.input.name, datatype: 'FP32', shape: inputShape(spec, -1) }],
        outputs: [{ name: spec.output.name, datatype: 'FP32', shape: [-1, spec.labels.length] }],
      });
    };
    const ModelInfer: Handler<'ModelInfer'> = (call, cb) => {
      const req = call.request;
      if (!served.has(req.model_name)) return cb(unknown(req.model_name));
      const spec = registry.get(req.model_name);
      const bad = (details: string) => cb({ code: grpc.status.INVALID_ARGUMENT, details });
      const tensor = req.inputs[0];
      if (req.inputs.length !== 1 || !tensor) return bad(`expected 1 input, got ${req.inputs.length}`);
      if (tensor.datatype !== 'FP32') return bad(`input datatype ${tensor.datatype}, expected FP32`);
      const raw = req.raw_input_contents?.[0];
      const data =
        raw && raw.length > 0 ? floatsFromBytes(raw) : Float32Array.from(tensor.contents?.fp32_contents ?? []);
      if (data.length !== shapeSize(tensor.shape)) {
        return bad(`input holds ${data.length} values, shape [${tensor.shape}] needs ${shapeSize(tensor.shape)}`);
      }
      try {
        checkShape(spec, { data, shape: tensor.shape });
      } catch (err) {
        return bad((err as Error).message);
      }
      const deadline = call.getDeadline();
      const deadlineMs =
        deadline instanceof Date && Number.isFinite(deadline.getTime())
          ? performance.timeOrigin + performance.now() + (deadline.getTime() - Date.now())
          : undefined;
      backend
        .infer(req.model_name, { data, shape: tensor.shape }, deadlineMs === undefined ? {} : { deadline: deadlineMs })
        .then(
          (out) =>
            cb(null, {
              model_name: req.model_name,
              model_version: spec.version,
              id: req.id ?? '',
              outputs: [{ name: spec.output.name, datatype: 'FP32', shape: out.shape }],
              raw_output_contents: [bytesFromFloats(out.data)],
            }),
          (err: unknown) => {
            const e = isModelError(err) ? err : new ModelError('MOD_ERR_INFERENCE', String(err));
            const code =
              e.code === 'MOD_ERR_BAD_SHAPE'
                ? grpc.status.INVALID_ARGUMENT
                : e.code === 'MOD_ERR_TIMEOUT'
                  ? grpc.status.DEADLINE_EXCEEDED
                  : e.code === 'MOD_ERR_CLOSED'
                    ? grpc.status.UNAVAILABLE
                    : grpc.status.INTERNAL;
            cb({ code, details: e.message });
          },
        );
    };
    server.addService(inferenceService(), { ServerLive, ServerReady, ModelReady, ModelMetadata, ModelInfer });
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`${host}:${opts.port ?? 8001}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      );
    });
    return new InferenceServer(server, backend, host, port, models);
  }

  /** Idempotent: stops accepting calls, lets running ones finish (1 s), then releases the sessions. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 1000);
      this.server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
    await this.backend.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const registryFile = arg('registry') ?? process.env.MODEL_REGISTRY;
  const models = arg('models') ?? process.env.INFERENCE_MODELS;
  const providers = arg('providers') ?? process.env.INFERENCE_PROVIDERS;
  const server = await InferenceServer.start({
    host: arg('host') ?? process.env.INFERENCE_HOST ?? '127.0.0.1',
    port: Number(arg('port') ?? process.env.INFERENCE_PORT ?? 8001),
    threads: Number(arg('threads') ?? process.env.INFERENCE_THREADS ?? 2),
    registry: registryFile ? ModelRegistry.load(registryFile) : ModelRegistry.load(),
    models: models ? models.split(',').filter(Boolean) : null,
    executionProviders: providers ? (providers.split(',') as ExecutionProvider[]) : ['cpu'],
  });
  process.stdout.write(`inference-server listening on ${server.address} models=${server.models.join(',')}\n`);
  const stop = () => {
    void server.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`inference-server: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
