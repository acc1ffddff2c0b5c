// Converts every nsfwjs model of the registry into the model cache (what first use would do), and prints
// the conversion time of each. `npm run models:prepare [-- --force]`
import { rmSync, existsSync } from 'node:fs';
import { ModelRegistry } from '../models/registry.ts';
import { ModelStore } from '../models/model-store.ts';

const registry = ModelRegistry.load();
const store = new ModelStore({ baseDir: registry.baseDir });
const force = process.argv.includes('--force');
for (const spec of registry.list()) {
  const cached = store.cachedPath(spec);
  if (force && cached && existsSync(cached)) rmSync(cached);
  const fresh = cached !== null && !existsSync(cached);
  const file = await store.path(spec);
  const rec = store.conversionRecord(spec);
  const how = rec
    ? `converted in ${rec.convertMs.toFixed(0)} ms (${(rec.bytes / 1e6).toFixed(1)} MB)${fresh ? '' : ' [cached]'}`
    : 'operator file';
  console.log(`${spec.name.padEnd(24)} ${file}  ${how}`);
}
