// Circuit breaker transitions: unit-level with a fake clock, then for real with the inference server killed
// and restarted mid-run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { CircuitBreaker, GuardedBackend, type BreakerState } from '../../models/circuit-breaker.ts';
import { ModelError, isModelError } from '../../models/errors.ts';
import { KServeBackend } from '../../models/backends/kserve/kserve-backend.ts';
import { NsfwCascade } from '../../models/nsfw-cascade.ts';
import { ModelRegistry } from '../../models/registry.ts';
import { now, type Backend } from '../../models/backends/types.ts';
import { syntheticImage } from './synthetic.ts';
import { loadPreprocess } from './helpers.ts';
import { startInferenceServer } from './server-process.ts';

test('closed -> open after N consecutive faults -> half_open after openMs -> open on a failed probe -> closed on success', async () => {
  let clock = 0;
  const b = new CircuitBreaker('t', { failureThreshold: 3, openMs: 1000, now: () => clock });
  const seen: BreakerState[] = [];
  b.onStateChange((s) => seen.push(s));
  b.onStateChange(() => {
    throw new Error('a bad listener is ignored');
  });
  const down = () => Promise.reject(new ModelError('MOD_ERR_BACKEND_DOWN', 'down'));
  let calls = 0;
  const ok = async () => {
    calls++;
    return 'ok';
  };

  // Non-fault errors (the request's own fault) do not count.
  await assert.rejects(b.run(() => Promise.reject(new ModelError('MOD_ERR_BAD_SHAPE', 'x'))));
  await assert.rejects(b.run(down));
  await assert.rejects(b.run(down));
  assert.equal(b.state, 'closed');
  await b.run(ok); // a success resets the count
  for (let i = 0; i < 3; i++) await assert.rejects(b.run(down));
  assert.equal(b.state, 'open');
  // Open: answered unavailable without calling.
  await assert.rejects(b.run(ok), (e) => isModelError(e, 'MOD_ERR_UNAVAILABLE'));
  assert.equal(calls, 1);
  clock += 999;
  assert.equal(b.state, 'open');
  clock += 1;
  assert.equal(b.state, 'half_open');
  await assert.rejects(b.run(down)); // failed probe
  assert.equal(b.state, 'open');
  clock += 1000;
  assert.equal(await b.run(ok), 'ok');
  assert.equal(b.state, 'closed');
  assert.deepEqual(seen, ['open', 'half_open', 'open', 'half_open', 'closed']);
  const s = b.stats();
  assert.equal(s.opened, 2);
  assert.equal(s.rejected, 1);
});

test('half-open lets one probe through at a time', async () => {
  let clock = 0;
  const b = new CircuitBreaker('t', { failureThreshold: 1, openMs: 10, now: () => clock });
  await assert.rejects(b.run(() => Promise.reject(new ModelError('MOD_ERR_TIMEOUT', 't'))));
  clock = 10;
  let release: (v: string) => void = () => undefined;
  const probe = b.run(
    () =>
      new Promise<string>((r) => {
        release = r;
      }),
  );
  await assert.rejects(
    b.run(async () => 'second'),
    (e) => isModelError(e, 'MOD_ERR_UNAVAILABLE'),
  );
  release('done');
  assert.equal(await probe, 'done');
  assert.equal(b.state, 'closed');
});

test(
  'inference server killed and restarted mid-run: breaker opens, callers get unavailable at once, then it closes',
  { timeout: 240_000 },
  async (t) => {
    const models = ['nsfw-mobilenet-v2', 'nsfw-inception-v3'];
    let server = await startInferenceServer({ models });
    const port = server.port;
    const registry = ModelRegistry.load();
    const kserve = new KServeBackend({ address: server.address, registry, defaultTimeoutMs: 3000 });
    let innerCalls = 0;
    const counting: Backend = {
      name: kserve.name,
      load: (m) => kserve.load(m),
      infer: (m, x, o) => {
        innerCalls++;
        return kserve.infer(m, x, o);
      },
      status: () => kserve.status(),
      close: () => kserve.close(),
    };
    const guarded = new GuardedBackend(counting, { failureThreshold: 3, openMs: 500 });
    const transitions: string[] = [];
    guarded.breaker.onStateChange((to, from) => transitions.push(`${from}->${to}`));
    const { fn: preprocess } = await loadPreprocess();
    await using cascade = await NsfwCascade.load({ preprocess, backend: guarded, registry });
    const frame = syntheticImage('skin', 320, 180, 3);
    try {
      for (let i = 0; i < 3; i++) {
        const r = await cascade.classify(frame, { deadline: now() + 30_000 });
        assert.equal(r.status, 'ok');
      }
      assert.equal(guarded.breaker.state, 'closed');

      await server.kill();
      // Faults until the breaker opens.
      const statuses: string[] = [];
      for (let i = 0; i < 10 && guarded.breaker.stats().state !== 'open'; i++) {
        const res = await cascade.classify(frame, { deadline: now() + 5_000 });
        statuses.push(`${res.status}:${res.error?.code}:${res.error?.message.slice(0, 80)}`);
      }
      assert.equal(guarded.breaker.state, 'open', `statuses while down: ${statuses}`);
      assert.ok(
        statuses.every((s) => s.startsWith('unavailable:') || s.startsWith('deadline_missed:')),
        `statuses: ${statuses}`,
      );
      // Open: the backend is not even tried.
      const before = innerCalls;
      const r = await cascade.classify(frame, { deadline: now() + 5_000 });
      assert.equal(r.status, 'unavailable');
      assert.equal(r.error?.code, 'MOD_ERR_UNAVAILABLE');
      assert.equal(innerCalls, before);

      // Probes while still down re-open it.
      await sleep(600);
      assert.equal(guarded.breaker.state, 'half_open');
      assert.equal((await cascade.classify(frame, { deadline: now() + 5_000 })).status, 'unavailable');
      assert.equal(guarded.breaker.state, 'open');

      server = await startInferenceServer({ models, port });
      let recovered = false;
      for (let i = 0; i < 120 && !recovered; i++) {
        await sleep(600);
        const res = await cascade.classify(frame, { deadline: now() + 10_000 });
        recovered = res.status === 'ok';
      }
      assert.ok(recovered, `never recovered; transitions ${transitions}`);
      assert.equal(guarded.breaker.state, 'closed');
      t.diagnostic(`transitions: ${transitions.join(', ')}`);
      assert.deepEqual(transitions.slice(0, 4), [
        'closed->open',
        'open->half_open',
        'half_open->open',
        'open->half_open',
      ]);
      assert.equal(transitions.at(-1), 'half_open->closed');
      assert.ok(cascade.stats().breaker.opened >= 2);
    } finally {
      await cascade.close();
      await kserve.close();
      await server.stop();
    }
  },
);
