// Reads nsfwjs's bundled TF.js model files. nsfwjs's `exports` map blocks deep imports, so the files are
// located by absolute path next to the resolved package entry. They are UMD bundles: model.min.js exports
// the model.json object, group1-shardXofN.min.js export base64 weight bytes.
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ModelError } from '../errors.ts';
import type { TfjsModelJson } from './tfjs-to-onnx.ts';

const require = createRequire(import.meta.url);

export interface NsfwjsPackage {
  version: string;
  modelsDir: string;
}

export function locateNsfwjs(): NsfwjsPackage {
  let entry: string;
  try {
    entry = require.resolve('nsfwjs');
  } catch (err) {
    throw new ModelError('MOD_ERR_CONFIG', 'nsfwjs is not installed', { cause: err });
  }
  // .../nsfwjs/dist/cjs/index.js -> .../nsfwjs
  let root = path.dirname(entry);
  while (!existsSync(path.join(root, 'package.json')) || !isNsfwjsRoot(root)) {
    const up = path.dirname(root);
    if (up === root) throw new ModelError('MOD_ERR_CONFIG', `nsfwjs package root not found from ${entry}`);
    root = up;
  }
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
  return { version: pkg.version, modelsDir: path.join(root, 'dist', 'models') };
}

function isNsfwjsRoot(dir: string): boolean {
  try {
    return (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string }).name === 'nsfwjs';
  } catch {
    return false;
  }
}

/** Loads one bundled model (e.g. 'mobilenet_v2'): its model.json and the concatenated weight bytes. */
export function readNsfwjsModel(modelDir: string): { json: TfjsModelJson; weights: Uint8Array } {
  const dir = path.join(locateNsfwjs().modelsDir, modelDir);
  const file = path.join(dir, 'model.min.js');
  if (!existsSync(file)) throw new ModelError('MOD_ERR_CONFIG', `nsfwjs model file ${file} not found`);
  const json = loadUmd(file) as TfjsModelJson;
  const parts: Buffer[] = [];
  for (const group of json.weightsManifest) {
    for (const p of group.paths) {
      const shard = loadUmd(path.join(dir, `${p}.min.js`));
      if (typeof shard !== 'string') throw new ModelError('MOD_ERR_CONVERSION', `${p}: not a base64 string`);
      parts.push(Buffer.from(shard, 'base64'));
    }
  }
  return { json, weights: new Uint8Array(Buffer.concat(parts)) };
}

function loadUmd(file: string): unknown {
  try {
    return require(file) as unknown;
  } finally {
    // The shards are tens of MB of base64: do not keep them in the module cache.
    delete require.cache[file];
  }
}
