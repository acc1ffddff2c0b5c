// The dependency rule of DESIGN.md, checked on every import (static and dynamic) of the product's
// folders: sfu/ imports none of samplers/models/policies/server/loadtest; samplers/ and models/ none
// of sfu/ or policies/; policies/ is pure (none of the others); media/, threads/ and errors/ (the one
// error factory, which every folder uses) import nothing else of the project; loadtest/ talks to the
// server only through its public protocols (it uses media/).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');

/** Folder -> the project folders it must not import. */
const FORBIDDEN: Record<string, readonly string[]> = {
  sfu: ['samplers', 'models', 'policies', 'server', 'loadtest'],
  samplers: ['sfu', 'policies', 'server', 'loadtest'],
  models: ['sfu', 'policies', 'server', 'loadtest'],
  policies: ['sfu', 'samplers', 'models', 'server', 'loadtest', 'media', 'threads'],
  media: ['sfu', 'samplers', 'models', 'policies', 'server', 'loadtest', 'threads'],
  threads: ['sfu', 'samplers', 'models', 'policies', 'server', 'loadtest', 'media'],
  errors: ['sfu', 'samplers', 'models', 'policies', 'server', 'loadtest', 'media', 'threads'],
  // The composition root wires everything but the load tester (a client of its public protocols).
  server: ['loadtest'],
  loadtest: ['sfu', 'samplers', 'models', 'policies', 'server'],
};

/** Imports that break a rule on purpose, each with its reason. (The load tester used to hash its banked
 * picture with models/pdq; it now posts the picture: POST /v1/banks/:bank/pictures.) */
const EXCEPTIONS: Record<string, string> = {
  // --demo: the path of the demo client the server spawns as a child process (it is not imported; the
  // child talks to the server over HTTP, WHIP and WHEP only).
  'server/main.ts -> loadtest/demo.ts': 'spawned as a child process, reached only through public protocols',
};

function* sources(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (name !== 'node_modules') yield* sources(p);
    } else if (p.endsWith('.ts')) yield p;
  }
}

function importsOf(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\s)(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/g)) out.push(m[1]!);
  for (const m of text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)) out.push(m[1]!);
  for (const m of text.matchAll(/new URL\(\s*['"](\.[^'"]+\.ts)['"]\s*,\s*import\.meta\.url\s*\)/g)) out.push(m[1]!);
  return out;
}

test('every import of the product folders keeps the dependency rule', () => {
  const broken: string[] = [];
  let checked = 0;
  for (const [folder, forbidden] of Object.entries(FORBIDDEN)) {
    for (const file of sources(join(ROOT, folder))) {
      const rel = relative(ROOT, file).split(sep).join('/');
      for (const spec of importsOf(readFileSync(file, 'utf8'))) {
        if (!spec.startsWith('.')) continue;
        checked++;
        const target = relative(ROOT, resolve(dirname(file), spec))
          .split(sep)
          .join('/');
        const top = target.split('/')[0]!;
        if (!forbidden.includes(top)) continue;
        if (EXCEPTIONS[`${rel} -> ${target}`]) continue;
        broken.push(`${rel} imports ${target}`);
      }
    }
  }
  assert.ok(checked > 100, `the test read the imports (${checked})`);
  assert.deepEqual(broken, [], `dependency rule broken:\n  ${broken.join('\n  ')}`);
});
