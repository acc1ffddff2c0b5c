// Regenerates test/fixtures/nsfw-reference.json from nsfwjs itself (TF.js CPU backend).
// @tensorflow/tfjs must never enter the project's install: this script installs it, with nsfwjs, into a
// temporary prefix outside the repo and loads both from there.
//   npx tsx scripts/nsfw-reference-model.ts [--prefix /tmp/tfjs-ref]
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PATTERNS, syntheticImage } from '../test/models/synthetic.ts';

const TFJS_VERSION = '4.22.0';
const NSFWJS_VERSION = '4.4.0';
const argIdx = process.argv.indexOf('--prefix');
const prefix = argIdx > 0 ? process.argv[argIdx + 1]! : '/tmp/tfjs-ref';
const out = path.resolve(import.meta.dirname, '..', 'test', 'fixtures', 'nsfw-reference.json');

if (!existsSync(path.join(prefix, 'node_modules', '@tensorflow', 'tfjs'))) {
  execFileSync(
    'npm',
    [
      'install',
      '--prefix',
      prefix,
      '--no-audit',
      '--no-fund',
      '--no-save',
      `@tensorflow/tfjs@${TFJS_VERSION}`,
      `nsfwjs@${NSFWJS_VERSION}`,
      'buffer@6',
    ],
    { stdio: 'inherit' },
  );
}
const req = createRequire(path.join(prefix, 'index.js'));
interface Tensor {
  dispose(): void;
  data(): Promise<Float32Array>;
}
interface Tf {
  setBackend(name: string): Promise<boolean>;
  ready(): Promise<void>;
  tensor3d(values: Uint8Array | Int32Array, shape: [number, number, number], dtype: 'int32'): Tensor;
  version: Record<string, string>;
}
interface Nsfw {
  infer(img: Tensor): Tensor;
  dispose(): void;
}
const tf = req('@tensorflow/tfjs') as Tf;
const nsfwjs = req('nsfwjs') as { load(name: string, opts?: object): Promise<Nsfw> };
await tf.setBackend('cpu');
await tf.ready();

// Pictures at each model's own input size test the converted network alone (nsfwjs skips its resize);
// the odd-sized ones also test the align-corners bilinear resize.
const MODELS = [
  { name: 'MobileNetV2', size: 224 },
  { name: 'MobileNetV2Mid', size: 224 },
  { name: 'InceptionV3', size: 299 },
];
const ODD = [
  { width: 97, height: 61 },
  { width: 320, height: 180 },
];
const cases: {
  model: string;
  pattern: string;
  width: number;
  height: number;
  seed: number;
  probabilities: number[];
}[] = [];
for (const m of MODELS) {
  const model = await nsfwjs.load(m.name);
  const inputs = [
    ...PATTERNS.map((p) => ({ pattern: p, width: m.size, height: m.size })),
    ...ODD.flatMap((d) => (['rings', 'skin'] as const).map((p) => ({ pattern: p, ...d }))),
  ];
  for (const c of inputs) {
    const frame = syntheticImage(c.pattern, c.width, c.height, 7);
    const img = tf.tensor3d(Int32Array.from(frame.rgb), [c.height, c.width, 3], 'int32');
    const probs = model.infer(img);
    const data = Array.from(await probs.data());
    probs.dispose();
    img.dispose();
    cases.push({ model: m.name, ...c, seed: 7, probabilities: data });
    process.stdout.write(`${m.name} ${c.pattern} ${c.width}x${c.height}: ${data.map((v) => v.toFixed(4)).join(' ')}\n`);
  }
  model.dispose();
}
writeFileSync(
  out,
  JSON.stringify(
    {
      generatedBy: 'scripts/nsfw-reference-model.ts',
      nsfwjs: NSFWJS_VERSION,
      tfjs: tf.version['tfjs-core'] ?? TFJS_VERSION,
      backend: 'cpu',
      labels: ['Drawing', 'Hentai', 'Neutral', 'Porn', 'Sexy'],
      cases,
    },
    null,
    1,
  ) + '\n',
);
console.log(`wrote ${cases.length} cases to ${out}`);
