// KServe v2 gRPC protocol: the loaded service definition and the message shapes (as proto-loader decodes them
// with keepCase, longs as numbers, defaults filled in).
import path from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import type { ServiceDefinition, MethodDefinition } from '@grpc/grpc-js';

export const PROTO_FILE = path.join(import.meta.dirname, 'grpc_inference.proto');
export const SERVICE_NAME = 'inference.GRPCInferenceService';

export interface TensorMetadata {
  name: string;
  datatype: string;
  shape: number[];
}

export interface ModelMetadataResponse {
  name: string;
  versions: string[];
  platform: string;
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
}

export interface InferTensorContents {
  fp32_contents?: number[];
}

export interface InferInputTensor {
  name: string;
  datatype: string;
  shape: number[];
  contents?: InferTensorContents | null;
}

export interface ModelInferRequest {
  model_name: string;
  model_version?: string;
  id?: string;
  inputs: InferInputTensor[];
  outputs?: { name: string }[];
  raw_input_contents?: Buffer[];
}

export interface ModelInferResponse {
  model_name: string;
  model_version: string;
  id: string;
  outputs: InferInputTensor[];
  raw_output_contents: Buffer[];
}

export interface NameVersion {
  name: string;
  version?: string;
}

export type Methods = {
  ServerLive: [Record<string, never>, { live: boolean }];
  ServerReady: [Record<string, never>, { ready: boolean }];
  ModelReady: [NameVersion, { ready: boolean }];
  ModelMetadata: [NameVersion, ModelMetadataResponse];
  ModelInfer: [ModelInferRequest, ModelInferResponse];
};
export type MethodName = keyof Methods;

let cached: ServiceDefinition | null = null;

/** The GRPCInferenceService definition, loaded once from the .proto file. */
export function inferenceService(): ServiceDefinition {
  if (cached) return cached;
  const pkg = protoLoader.loadSync(PROTO_FILE, {
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const svc = pkg[SERVICE_NAME];
  if (!svc || !isServiceDefinition(svc)) throw new Error(`${SERVICE_NAME} missing from ${PROTO_FILE}`);
  cached = svc;
  return svc;
}

function isServiceDefinition(def: object): def is ServiceDefinition {
  const m = (def as Record<string, unknown>).ModelInfer;
  return typeof m === 'object' && m !== null && 'path' in m && 'requestSerialize' in m;
}

export function method<K extends MethodName>(name: K): MethodDefinition<Methods[K][0], Methods[K][1]> {
  const m = inferenceService()[name];
  if (!m) throw new Error(`method ${name} missing`);
  return m as MethodDefinition<Methods[K][0], Methods[K][1]>;
}

/** Message size limit for both ends: a batch of 8 InceptionV3 inputs is 8.6 MB. Default 64 MiB. */
export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** Float32 view of little-endian bytes (copied when unaligned). */
export function floatsFromBytes(buf: Uint8Array): Float32Array {
  if (buf.byteOffset % 4 === 0) return new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const copy = new Uint8Array(buf.byteLength);
  copy.set(buf);
  return new Float32Array(copy.buffer);
}

export function bytesFromFloats(data: Float32Array): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}
