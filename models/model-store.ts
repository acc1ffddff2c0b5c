// Where a registry entry's ONNX file lives. nsfwjs models are converted on first use into a cache keyed by the
// nsfwjs package version (.cache/models/nsfwjs-<version>/ in the repo, or $MODEL_CACHE_DIR); operator models
// are used in place.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ModelError } from './errors.ts';
import { locateNsfwjs, readNsfwjsModel } from './convert/nsfwjs-files.ts';
import { convertTfjs } from './convert/tfjs-to-onnx.ts';
import type { ModelSpec } from './registry.ts';

export const DEFAULT_CACHE_DIR = path.resolve(import.meta.dirname, '..', '.cache', 'models');

export interface ConversionRecord {
  model: string;
  nsfwjsVersion: string;
  /** Wall time to read, dequantize and convert (ms). */
  convertMs: number;
  bytes: number;
  at: string;
}

export interface ModelStoreOptions {
  /** Cache folder. Default $MODEL_CACHE_DIR or <repo>/.cache/models. */
  cacheDir: string;
  /** Folder that relative operator paths resolve against (the registry file's folder). */
  baseDir: string;
}

export class ModelStore {
  readonly cacheDir: string;
  readonly baseDir: string;
  readonly #pending = new Map<string, Promise<string>>();

  constructor(opts: Partial<ModelStoreOptions> = {}) {
    this.cacheDir = opts.cacheDir ?? process.env.MODEL_CACHE_DIR ?? DEFAULT_CACHE_DIR;
    this.baseDir = opts.baseDir ?? import.meta.dirname;
  }

  /** Absolute path of the model's ONNX file, converting it first if the cache lacks it. */
  async path(spec: ModelSpec): Promise<string> {
    const src = spec.source;
    if (src.kind === 'onnx') {
      const p = path.resolve(this.baseDir, src.path);
      if (!existsSync(p)) throw new ModelError('MOD_ERR_CONFIG', `model ${spec.name}: ONNX file ${p} not found`);
      return p;
    }
    const { version } = locateNsfwjs();
    const dir = path.join(this.cacheDir, `nsfwjs-${version}`);
    const file = this.cachedPath(spec)!;
    if (existsSync(file)) return file;
    let p = this.#pending.get(file);
    if (!p) {
      p = Promise.resolve().then(() => this.#convert(src.model, version, dir, file));
      this.#pending.set(file, p);
      p.finally(() => this.#pending.delete(file)).catch(() => undefined);
    }
    return p;
  }

  /** Where a converted nsfwjs model lives (or will), without converting; null for operator files. */
  cachedPath(spec: ModelSpec): string | null {
    if (spec.source.kind !== 'nsfwjs') return null;
    return path.join(this.cacheDir, `nsfwjs-${locateNsfwjs().version}`, `${spec.source.model}.onnx`);
  }

  /** The conversion record written next to a converted model, if any. */
  conversionRecord(spec: ModelSpec): ConversionRecord | null {
    if (spec.source.kind !== 'nsfwjs') return null;
    const { version } = locateNsfwjs();
    const f = path.join(this.cacheDir, `nsfwjs-${version}`, `${spec.source.model}.json`);
    return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as ConversionRecord) : null;
  }

  #convert(model: string, version: string, dir: string, file: string): string {
    const t0 = performance.now();
    const { json, weights } = readNsfwjsModel(model);
    const converted = convertTfjs(json, weights);
    const convertMs = performance.now() - t0;
    mkdirSync(dir, { recursive: true });
    // Write-then-rename: a concurrent reader (another process) never sees a half-written model.
    const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
    writeFileSync(tmp, converted.onnx);
    renameSync(tmp, file);
    const record: ConversionRecord = {
      model,
      nsfwjsVersion: version,
      convertMs,
      bytes: converted.onnx.length,
      at: new Date().toISOString(),
    };
    writeFileSync(path.join(dir, `${model}.json`), JSON.stringify(record, null, 1));
    return file;
  }
}
