// The KServe-v2 gRPC path for real: the inference server as a child process, real models, real tensors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { KServeBackend } from '../../models/backends/kserve/kserve-backend.ts';
import { OnnxRuntimeBackend } from '../../models/backends/onnxruntime/onnxruntime-backend.ts';
import { ModelRegistry } from '../../models/registry.ts';
import { isModelError } from '../../models/errors.ts';
import { now } from '../../models/backends/types.ts';
import { syntheticImage, toUnitFloat, type Pattern } from './synthetic.ts';
import { maxAbsDiff } from './helpers.ts';
import { startInferenceServer, type ServerProcess } from './server-process.ts';

const MODELS = ['nsfw-mobilenet-v2', 'nsfw-inception-v3'];
let server: ServerProcess;

before(async () => {
  server = await startInferenceServer({ models: MODELS });
});
after(async () => {
  await server?.stop();
});

interface Fixture {
  cases: { model: string; pattern: Pattern; width: number; height: number; seed: number; probabilities: number[] }[];
}
const fixture = JSON.parse(
  readFileSync(path.resolve(import.meta.dirname, '..', 'fixtures', 'nsfw-reference.json'), 'utf8'),
) as Fixture;

test('server health and metadata over gRPC', { timeout: 60_000 }, async () => {
  await using client = new KServeBackend({ address: server.address });
  assert.equal(await client.serverLive(), true);
  assert.equal(await client.serverReady(), true);
  assert.equal(await client.modelReady('nsfw-mobilenet-v2'), true);
  const md = await client.modelMetadata('nsfw-inception-v3');
  assert.equal(md.inputs[0]!.name, 'input');
  assert.deepEqual(md.inputs[0]!.shape, [-1, 299, 299, 3]);
  assert.deepEqual(md.outputs[0]!.shape, [-1, 5]);
  assert.deepEqual(md.versions, ['nsfwjs-4.4.0']);
});

test(
  'ModelInfer round trip: nsfwjs reference outputs, single and batched, over raw_input_contents',
  { timeout: 120_000 },
  async () => {
    // No registry: tensor names come from ModelMetadata, as with a foreign Triton server.
    await using client = new KServeBackend({ address: server.address });
    await client.load('nsfw-mobilenet-v2');
    const cases = fixture.cases.filter((c) => c.model === 'MobileNetV2' && c.width === 224 && c.height === 224);
    assert.ok(cases.length >= 4);
    const batch = new Float32Array(cases.length * 224 * 224 * 3);
    for (const [i, c] of cases.entries()) {
      const x = toUnitFloat(syntheticImage(c.pattern, 224, 224, c.seed));
      batch.set(x, i * x.length);
      const out = await client.infer(
        'nsfw-mobilenet-v2',
        { data: x, shape: [1, 224, 224, 3] },
        { deadline: now() + 30_000 },
      );
      assert.deepEqual(out.shape, [1, 5]);
      assert.ok(
        maxAbsDiff(out.data, c.probabilities) <= 1e-5,
        `${c.pattern}: ${maxAbsDiff(out.data, c.probabilities)}`,
      );
    }
    const out = await client.infer(
      'nsfw-mobilenet-v2',
      { data: batch, shape: [cases.length, 224, 224, 3] },
      { deadline: now() + 30_000 },
    );
    assert.deepEqual(out.shape, [cases.length, 5]);
    cases.forEach((c, i) => assert.ok(maxAbsDiff(out.data.subarray(i * 5, i * 5 + 5), c.probabilities) <= 1e-5));

    // The deep model too, and it agrees with in-process onnxruntime on the same tensor.
    const inc = fixture.cases.find((c) => c.model === 'InceptionV3' && c.width === 299 && c.pattern === 'skin')!;
    const x = toUnitFloat(syntheticImage(inc.pattern, 299, 299, inc.seed));
    const remote = await client.infer(
      'nsfw-inception-v3',
      { data: x, shape: [1, 299, 299, 3] },
      { deadline: now() + 60_000 },
    );
    assert.ok(maxAbsDiff(remote.data, inc.probabilities) <= 1e-5);
    await using local = new OnnxRuntimeBackend({ registry: ModelRegistry.load(), intraOpNumThreads: 1 });
    const here = await local.infer('nsfw-inception-v3', { data: x, shape: [1, 299, 299, 3] });
    assert.ok(maxAbsDiff(remote.data, here.data) <= 1e-6);
  },
);

test('coded errors: unknown model, wrong shape, wrong size, not served', { timeout: 60_000 }, async () => {
  await using client = new KServeBackend({ address: server.address });
  const x = new Float32Array(224 * 224 * 3);
  await assert.rejects(client.infer('no-such-model', { data: x, shape: [1, 224, 224, 3] }), (e) =>
    isModelError(e, 'MOD_ERR_UNKNOWN_MODEL'),
  );
  await assert.rejects(client.modelReady('no-such-model'), (e) => isModelError(e, 'MOD_ERR_UNKNOWN_MODEL'));
  // Registered but not served by this server (started with two models only): unknown there.
  await assert.rejects(client.infer('nsfw-mobilenet-v2-mid', { data: x, shape: [1, 224, 224, 3] }), (e) =>
    isModelError(e, 'MOD_ERR_UNKNOWN_MODEL'),
  );
  // 224 input to the 299 model: the server refuses the shape.
  await assert.rejects(
    client.infer('nsfw-inception-v3', { data: x, shape: [1, 224, 224, 3] }),
    (e) => isModelError(e, 'MOD_ERR_BAD_SHAPE') && /shape/.test((e as Error).message),
  );
  // NCHW-ordered shape with the right element count.
  await assert.rejects(client.infer('nsfw-mobilenet-v2', { data: x, shape: [1, 3, 224, 224] }), (e) =>
    isModelError(e, 'MOD_ERR_BAD_SHAPE'),
  );
  // Values and shape disagree: refused before sending.
  await assert.rejects(client.infer('nsfw-mobilenet-v2', { data: x.subarray(1), shape: [1, 224, 224, 3] }), (e) =>
    isModelError(e, 'MOD_ERR_BAD_SHAPE'),
  );
  // The server is still fine afterwards.
  assert.equal((await client.infer('nsfw-mobilenet-v2', { data: x, shape: [1, 224, 224, 3] })).shape[1], 5);
});

test('server down: MOD_ERR_BACKEND_DOWN within the deadline, not a hang', { timeout: 60_000 }, async () => {
  // A port nobody listens on.
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  await using client = new KServeBackend({ address: `127.0.0.1:${port}` });
  const t0 = now();
  await assert.rejects(client.serverLive(now() + 3000), (e) => isModelError(e, 'MOD_ERR_BACKEND_DOWN'));
  await assert.rejects(
    client.infer(
      'nsfw-mobilenet-v2',
      { data: new Float32Array(224 * 224 * 3), shape: [1, 224, 224, 3] },
      { deadline: now() + 3000 },
    ),
    (e) => isModelError(e, 'MOD_ERR_BACKEND_DOWN') || isModelError(e, 'MOD_ERR_TIMEOUT'),
  );
  assert.ok(now() - t0 < 10_000);
  assert.equal(client.status().ready, false);

  // A server that accepts TCP but never answers HTTP/2: the deadline bounds the wait.
  const sockets = new Set<net.Socket>();
  const silent = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  await using stuck = new KServeBackend({ address: `127.0.0.1:${(silent.address() as net.AddressInfo).port}` });
  const t1 = now();
  await assert.rejects(
    stuck.serverLive(now() + 1500),
    (e) => isModelError(e, 'MOD_ERR_TIMEOUT') || isModelError(e, 'MOD_ERR_BACKEND_DOWN'),
  );
  assert.ok(now() - t1 < 10_000);
  await stuck.close();
  for (const sock of sockets) sock.destroy();
  await new Promise<void>((r) => silent.close(() => r()));
});
