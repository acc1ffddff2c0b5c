// Public surface of models/ (image classification side). Matching (pdq, hashbank, audio, ocr, text, vad)
// has its own entry points in those folders.
export { ModelError, isModelError, isBackendFault, type ModelErrorCode } from './errors.ts';
export {
  ModelRegistry,
  modelRef,
  inputShape,
  postprocess,
  normalizeInput,
  DEFAULT_REGISTRY_FILE,
  type ModelSpec,
} from './registry.ts';
export { ModelStore, DEFAULT_CACHE_DIR, type ConversionRecord } from './model-store.ts';
export type { Backend, BackendStatus, InferOptions, InferOutput, Tensor } from './backends/types.ts';
export {
  OnnxRuntimeBackend,
  type OnnxRuntimeBackendOptions,
  type ExecutionProvider,
} from './backends/onnxruntime/onnxruntime-backend.ts';
export {
  CircuitBreaker,
  GuardedBackend,
  type BreakerState,
  type BreakerStats,
  type CircuitBreakerOptions,
} from './circuit-breaker.ts';
export {
  DeadlineBatcher,
  BatchTimeEstimator,
  type BatchAnswer,
  type BatcherStats,
  type DeadlineBatcherOptions,
  type BatchExecutor,
} from './deadline-batcher.ts';
export { ImageClassifier, type Classification, type PreprocessFn } from './image-classifier.ts';
export { NsfwCascade, type CascadeResult, type NsfwCascadeOptions, type ClassifyOptions } from './nsfw-cascade.ts';
export { KServeBackend, mapGrpcError, type KServeBackendOptions } from './backends/kserve/kserve-backend.ts';
export { InferenceServer, type InferenceServerOptions } from './inference-server.ts';
