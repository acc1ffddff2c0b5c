// One file-naming convention (issue 14 item 8): every TypeScript file of the project is kebab-case
// (`deadline-batcher.ts`, `sfu-fixture.ts`, `pool.test.ts`); the names of fixtures and the vendored
// mediasoup-worker build are not ours to choose.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const LEFT_OUT = new Set(['node_modules', '.git', 'test/fixtures', 'scripts/mediasoup-worker']);
const KEBAB = /^[a-z0-9]+(-[a-z0-9]+)*(\.[a-z0-9]+(-[a-z0-9]+)*)*\.ts$/;

function* sources(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (LEFT_OUT.has(relative(ROOT, p)) || name.startsWith('.')) continue;
    if (statSync(p).isDirectory()) yield* sources(p);
    else if (name.endsWith('.ts')) yield relative(ROOT, p);
  }
}

test('every TypeScript file name is kebab-case', () => {
  const files = [...sources(ROOT)];
  assert.ok(files.length > 100, `only ${files.length} files found under ${ROOT}`);
  const bad = files.filter((f) => !KEBAB.test(f.slice(f.lastIndexOf('/') + 1)));
  assert.deepEqual(bad, [], `not kebab-case: ${bad.join(', ')}`);
});
