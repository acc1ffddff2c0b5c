// The model registry: which models exist, where their weights come from, how their input is prepared and
// how their output labels map to policy categories. Loaded from models/models.yaml (or a file an operator
// names), schema-checked with zod.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ModelError } from './errors.ts';
import type { Category, ModelRef } from './types.ts';

const Normalize = z.union([
  z.literal('unit'),
  z.literal('minus1to1'),
  z.object({ mean: z.array(z.number()).length(3), std: z.array(z.number().positive()).length(3) }),
]);

const Source = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('nsfwjs'), model: z.enum(['mobilenet_v2', 'mobilenet_v2_mid', 'inception_v3']) }),
  z.object({ kind: z.literal('onnx'), path: z.string().min(1) }),
]);

export const ModelSpecSchema = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/i),
  version: z.string().min(1),
  source: Source,
  input: z.object({
    name: z.string().default('input'),
    size: z.number().int().min(8).max(4096),
    layout: z.enum(['NHWC', 'NCHW']).default('NHWC'),
    channels: z.literal(3).default(3),
    normalize: Normalize.default('unit'),
  }),
  output: z.object({
    name: z.string().default('probabilities'),
    /** 'softmax' when the model emits logits. */
    activation: z.enum(['none', 'softmax', 'sigmoid']).default('none'),
  }),
  labels: z.array(z.string().min(1)).min(1),
  categories: z.record(z.string(), z.string()).default({}),
  /** Largest batch the backend is asked to run at once. Default 8. */
  maxBatchSize: z.number().int().min(1).max(256).default(8),
});

export const RegistryFileSchema = z.object({ models: z.array(ModelSpecSchema).min(1) });

export type ModelSpec = z.infer<typeof ModelSpecSchema>;
export type ModelSource = z.infer<typeof Source>;

export const DEFAULT_REGISTRY_FILE = path.join(import.meta.dirname, 'models.yaml');

export class ModelRegistry {
  readonly #byName = new Map<string, ModelSpec>();

  constructor(
    specs: ModelSpec[],
    readonly baseDir: string = import.meta.dirname,
  ) {
    for (const s of specs) {
      if (this.#byName.has(s.name)) throw new ModelError('MOD_ERR_CONFIG', `model ${s.name} listed twice`);
      for (const label of Object.keys(s.categories)) {
        if (!s.labels.includes(label))
          throw new ModelError('MOD_ERR_CONFIG', `model ${s.name}: category for unknown label ${label}`);
      }
      this.#byName.set(s.name, s);
    }
  }

  /** Loads and validates a registry file (YAML or JSON). Default: models/models.yaml. */
  static load(file: string = process.env.MODEL_REGISTRY ?? DEFAULT_REGISTRY_FILE): ModelRegistry {
    let raw: unknown;
    try {
      raw = parseYaml(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new ModelError('MOD_ERR_CONFIG', `cannot read model registry ${file}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    return ModelRegistry.fromObject(raw, path.dirname(file));
  }

  static fromObject(raw: unknown, baseDir: string = import.meta.dirname): ModelRegistry {
    const parsed = RegistryFileSchema.safeParse(raw);
    if (!parsed.success) {
      throw new ModelError('MOD_ERR_CONFIG', `invalid model registry: ${z.prettifyError(parsed.error)}`);
    }
    // Operator paths are relative to the registry file: make them absolute so merged registries keep them right.
    const models = parsed.data.models.map((m) =>
      m.source.kind === 'onnx' ? { ...m, source: { ...m.source, path: path.resolve(baseDir, m.source.path) } } : m,
    );
    return new ModelRegistry(models, baseDir);
  }

  /** The spec of `name`; MOD_ERR_UNKNOWN_MODEL when there is none. */
  get(name: string): ModelSpec {
    const s = this.#byName.get(name);
    if (!s) throw new ModelError('MOD_ERR_UNKNOWN_MODEL', `unknown model '${name}'`);
    return s;
  }

  has(name: string): boolean {
    return this.#byName.has(name);
  }

  list(): ModelSpec[] {
    return [...this.#byName.values()];
  }

  /** With another registry's entries added (operator files extend the defaults). */
  merge(other: ModelRegistry): ModelRegistry {
    const merged = new Map(this.#byName);
    for (const s of other.list()) merged.set(s.name, s);
    return new ModelRegistry([...merged.values()], this.baseDir);
  }
}

export function modelRef(spec: ModelSpec): ModelRef {
  return { name: spec.name, version: spec.version };
}

/** Input tensor shape for a batch of `n`. */
export function inputShape(spec: ModelSpec, n: number): number[] {
  const { size, channels, layout } = spec.input;
  return layout === 'NHWC' ? [n, size, size, channels] : [n, channels, size, size];
}

/**
 * Turns one row of model output into label probabilities and category scores (max over the labels that
 * map to a category).
 */
export function postprocess(
  spec: ModelSpec,
  row: Float32Array,
): { labels: Record<string, number>; scores: Record<Category, number> } {
  const values = Array.from(row);
  let probs = values;
  if (spec.output.activation === 'softmax') {
    const max = Math.max(...values);
    const exps = values.map((v) => Math.exp(v - max));
    const sum = exps.reduce((a, b) => a + b, 0);
    probs = exps.map((v) => v / sum);
  } else if (spec.output.activation === 'sigmoid') {
    probs = values.map((v) => 1 / (1 + Math.exp(-v)));
  }
  const labels: Record<string, number> = {};
  const scores: Record<Category, number> = {};
  spec.labels.forEach((label, i) => {
    const p = probs[i] ?? 0;
    labels[label] = p;
    const cat = spec.categories[label];
    if (cat !== undefined) scores[cat] = Math.max(scores[cat] ?? 0, p);
  });
  return { labels, scores };
}

/**
 * Applies the spec's normalization to a batch that is already resized to NHWC floats in [0,1], and
 * transposes to NCHW where the model wants it. Returns a new array (or the input, when nothing changes).
 */
export function normalizeInput(spec: ModelSpec, unit: Float32Array, n: number): Float32Array {
  const { normalize, layout, size } = spec.input;
  let x = unit;
  if (normalize === 'minus1to1') {
    x = new Float32Array(unit.length);
    for (let i = 0; i < x.length; i++) x[i] = unit[i]! * 2 - 1;
  } else if (typeof normalize === 'object') {
    x = new Float32Array(unit.length);
    for (let i = 0; i < x.length; i++) {
      const c = i % 3;
      x[i] = (unit[i]! - normalize.mean[c]!) / normalize.std[c]!;
    }
  }
  if (layout === 'NCHW') {
    const plane = size * size;
    const out = new Float32Array(x.length);
    for (let b = 0; b < n; b++) {
      const base = b * plane * 3;
      for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) out[base + c * plane + p] = x[base + p * 3 + c]!;
    }
    x = out;
  }
  return x;
}
