// The capability every inference backend offers. Adapters live in their own folders
// (backends/onnxruntime, backends/kserve); callers never see which one they talk to.

/** One tensor: row-major float32 values and their shape (batch first). */
export interface Tensor {
  data: Float32Array;
  shape: number[];
}

export interface InferOptions {
  /** Server clock (performance.timeOrigin + performance.now(), ms) after which the answer is useless. */
  deadline?: number;
  /** The caller gives the input's buffer up: a backend in another thread may move it there instead of copying it. */
  transferInput?: boolean;
}

export interface InferOutput extends Tensor {
  /** Time the backend spent on the call (ms), as seen by the caller. */
  inferMs: number;
  /** Of that, the model's run itself (ms), where the backend can tell (onnxruntime: on its session thread). */
  runMs?: number;
}

export interface BackendStatus {
  backend: string;
  /** False while the backend cannot serve (closed, server down). */
  ready: boolean;
  /** Models loaded (onnxruntime) or known ready on the server (kserve). */
  models: string[];
  detail?: string;
}

export interface Backend {
  /** Short name for metrics and logs, e.g. 'onnxruntime' or 'kserve:127.0.0.1:8001'. */
  readonly name: string;
  /** Makes `model` ready to serve (loads a session, checks the server). MOD_ERR_UNKNOWN_MODEL if unknown. */
  load(model: string): Promise<void>;
  /** Runs one batch. Rejects with a ModelError (MOD_ERR_*), never hangs past `deadline` (+ a small grace). */
  infer(model: string, input: Tensor, opts?: InferOptions): Promise<InferOutput>;
  status(): BackendStatus;
  /** Idempotent; pending calls are rejected with MOD_ERR_CLOSED. */
  close(): Promise<void>;
}

export function now(): number {
  return performance.timeOrigin + performance.now();
}

export function shapeSize(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
