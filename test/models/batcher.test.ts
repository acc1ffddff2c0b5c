// DeadlineBatcher semantics with a controllable test model (an executor whose run time the test sets).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeadlineBatcher, BatchTimeEstimator } from '../../models/deadline-batcher.ts';
import { ModelError } from '../../models/errors.ts';
import { now } from '../../models/backends/types.ts';

/** A test model: doubles its inputs, taking `ms` per batch (or until released by hand). */
function testModel(ms: number) {
  const batches: { items: number[]; at: number }[] = [];
  let gate: Promise<void> | null = null;
  let open: () => void = () => undefined;
  const exec = async (items: number[]) => {
    batches.push({ items, at: now() });
    if (gate) await gate;
    await sleep(ms);
    return { outputs: items.map((x) => x * 2), timings: { inference: ms } };
  };
  return {
    exec,
    batches,
    hold() {
      gate = new Promise((r) => {
        open = r;
      });
    },
    release() {
      gate = null;
      open();
    },
  };
}

test('a full batch goes at once; results come back in order with per-stage timings', async () => {
  const m = testModel(5);
  const b = new DeadlineBatcher(m.exec, { maxBatchSize: 4, maxWaitMs: 10_000 });
  const answers = await Promise.all([1, 2, 3, 4].map((x) => b.submit(x, now() + 30_000)));
  assert.deepEqual(
    answers.map((a) => a.value),
    [2, 4, 6, 8],
  );
  assert.ok(
    answers.every(
      (a) => a.status === 'ok' && a.batchSize === 4 && typeof a.timings.queue === 'number' && a.timings.inference === 5,
    ),
  );
  assert.equal(m.batches.length, 1);
  assert.equal(b.stats().batchSizes[4], 1);
});

test(
  'a partial batch waits for company only while the earliest deadline still allows it',
  { timeout: 30_000 },
  async () => {
    const m = testModel(20);
    const b = new DeadlineBatcher(m.exec, { maxBatchSize: 8, maxWaitMs: 10_000, marginMs: 5 });
    b.estimator.observe(1, 20);
    b.estimator.observe(2, 25);
    const t0 = now();
    const first = b.submit(1, t0 + 400);
    await sleep(100);
    const second = b.submit(2, t0 + 2_000);
    const [a1, a2] = await Promise.all([first, second]);
    // Both rode the same batch, dispatched late enough to have waited, early enough for the first deadline.
    assert.equal(m.batches.length, 1);
    assert.deepEqual(m.batches[0]!.items.sort(), [1, 2]);
    assert.ok(m.batches[0]!.at - t0 >= 100, `dispatched after ${m.batches[0]!.at - t0} ms`);
    assert.equal(a1.status, 'ok');
    assert.equal(a2.status, 'ok');
    assert.ok(a1.timings.queue! >= 100);
  },
);

test('maxWaitMs bounds the wait when deadlines are far', { timeout: 30_000 }, async () => {
  const m = testModel(1);
  const b = new DeadlineBatcher(m.exec, { maxBatchSize: 8, maxWaitMs: 30 });
  const a = await b.submit(1, now() + 60_000);
  assert.equal(a.status, 'ok');
  assert.ok(a.timings.queue! < 5_000);
});

test('a request that cannot make its deadline (nor within lateGraceMs) is answered deadline_missed at once, and counted', async () => {
  const m = testModel(1);
  const b = new DeadlineBatcher(m.exec, { lateGraceMs: 0 });
  b.estimator.observe(1, 100); // the model is known to take 100 ms
  const a = await b.submit(1, now() + 20);
  assert.equal(a.status, 'deadline_missed');
  assert.equal(a.error?.code, 'MOD_ERR_DEADLINE_MISSED');
  assert.equal(m.batches.length, 0);
  const past = await b.submit(2, now() - 1);
  assert.equal(past.status, 'deadline_missed');
  assert.equal(b.stats().deadlineMissed, 2);
  assert.equal(b.stats().missedBeforeRun, 2);
});

test(
  'requests whose deadline passes while the model is busy are answered, never dropped',
  { timeout: 30_000 },
  async () => {
    const m = testModel(1);
    const b = new DeadlineBatcher(m.exec, { maxBatchSize: 1, marginMs: 1, lateGraceMs: 50 });
    b.estimator.observe(1, 5);
    m.hold();
    const busy = b.submit(0, now() + 30_000); // occupies the model
    await sleep(20);
    const doomed = [1, 2, 3].map((x) => b.submit(x, now() + 100));
    const survivor = b.submit(9, now() + 20_000);
    await sleep(400);
    // Answered while the model is still busy, not when it frees up.
    const early = await Promise.race([Promise.all(doomed).then(() => 'answered'), sleep(1).then(() => 'pending')]);
    assert.equal(early, 'answered');
    m.release();
    const answers = await Promise.all([busy, ...doomed, survivor]);
    assert.equal(answers[0]!.status, 'ok');
    assert.deepEqual(
      answers.slice(1, 4).map((a) => a.status),
      ['deadline_missed', 'deadline_missed', 'deadline_missed'],
    );
    assert.equal(answers[4]!.status, 'ok');
    assert.equal(answers[4]!.value, 18);
    const s = b.stats();
    assert.equal(s.submitted, 5);
    assert.equal(s.ok + s.deadlineMissed, 5);
    // Only the two live requests reached the model.
    assert.deepEqual(
      m.batches.map((x) => x.items),
      [[0], [9]],
    );
  },
);

test(
  'past its deadline a request is still run within lateGraceMs, after the ones still in time, and answered late with its value',
  { timeout: 30_000 },
  async () => {
    const m = testModel(30);
    const b = new DeadlineBatcher(m.exec, { maxBatchSize: 1, marginMs: 1, lateGraceMs: 2_000 });
    b.estimator.observe(1, 30);
    m.hold();
    const busy = b.submit(0, now() + 30_000); // occupies the model
    await sleep(10);
    const late = b.submit(1, now() + 40); // its deadline passes while it waits
    const hopeless = b.submit(2, now() - 2_100); // past even the grace: never run
    const inTime = b.submit(3, now() + 10_000);
    await sleep(100);
    m.release();
    const [, l, h, t] = await Promise.all([busy, late, hopeless, inTime]);
    assert.equal(l.status, 'deadline_missed');
    assert.equal(l.value, 2, 'the late answer carries its value');
    assert.equal(h.status, 'deadline_missed');
    assert.equal(h.value, undefined);
    assert.equal(t.status, 'ok');
    // the request still in time went before the late one, though its deadline is later
    assert.deepEqual(
      m.batches.map((x) => x.items),
      [[0], [3], [1]],
    );
    const s = b.stats();
    assert.equal(s.missedBeforeRun, 1);
    assert.equal(s.missedLate, 1);
  },
);

test(
  'a batch holds no more requests than the earliest deadline allows; the rest go in the next batch',
  { timeout: 30_000 },
  async () => {
    const m = testModel(1);
    const b = new DeadlineBatcher(m.exec, { maxBatchSize: 8, marginMs: 1, maxWaitMs: 1 });
    for (let i = 0; i < 5; i++) {
      b.estimator.observe(1, 20);
      b.estimator.observe(2, 40);
      b.estimator.observe(4, 80);
    }
    m.hold();
    const busy = b.submit(0, now() + 30_000);
    await sleep(5);
    // four requests due in ~60 ms once the model frees up: only two fit one batch in time
    const t0 = now();
    const four = [1, 2, 3, 4].map((x) => b.submit(x, t0 + 60));
    m.release();
    await Promise.all([busy, ...four]);
    assert.ok(m.batches[1]!.items.length <= 2, `first batch after the busy one held ${m.batches[1]!.items.length}`);
  },
);

test(
  'a result that arrives after the deadline is deadline_missed (late), with the value attached',
  { timeout: 30_000 },
  async () => {
    const m = testModel(300);
    const b = new DeadlineBatcher(m.exec, { marginMs: 1 });
    const a = await b.submit(21, now() + 100);
    assert.equal(a.status, 'deadline_missed');
    assert.equal(a.value, 42);
    assert.equal(b.stats().missedLate, 1);
  },
);

test('bounded queue: beyond maxQueue requests are answered unavailable (queue full)', { timeout: 30_000 }, async () => {
  const m = testModel(1);
  const b = new DeadlineBatcher(m.exec, { maxBatchSize: 1, maxQueue: 2 });
  m.hold();
  const running = b.submit(0, now() + 30_000);
  await sleep(10);
  const q = [1, 2, 3].map((x) => b.submit(x, now() + 30_000));
  const third = await q[2]!;
  assert.equal(third.status, 'unavailable');
  assert.equal(third.error?.code, 'MOD_ERR_QUEUE_FULL');
  m.release();
  assert.deepEqual(
    (await Promise.all([running, q[0]!, q[1]!])).map((a) => a.status),
    ['ok', 'ok', 'ok'],
  );
  assert.equal(b.stats().queueFull, 1);
});

test('executor failures map to statuses; close answers what is queued', { timeout: 30_000 }, async () => {
  const down = new DeadlineBatcher<number, number>(async () => {
    throw new ModelError('MOD_ERR_UNAVAILABLE', 'circuit open');
  }, {});
  assert.equal((await down.submit(1, now() + 10_000)).status, 'unavailable');
  const broken = new DeadlineBatcher<number, number>(async () => {
    throw new Error('boom');
  }, {});
  const e = await broken.submit(1, now() + 10_000);
  assert.equal(e.status, 'error');
  assert.equal(e.error?.code, 'MOD_ERR_INFERENCE');
  const m = testModel(1);
  const b = new DeadlineBatcher(m.exec, { maxWaitMs: 10_000, maxBatchSize: 8 });
  const pending = b.submit(1, now() + 60_000);
  b.close();
  assert.equal((await pending).status, 'unavailable');
  assert.equal((await b.submit(2, now() + 60_000)).status, 'unavailable');
});

test('the batch-time estimate learns from observed runs', () => {
  const e = new BatchTimeEstimator({ fixedMs: 2, perItemMs: 5 });
  assert.equal(e.estimate(4), 22); // the prior
  for (let i = 0; i < 30; i++) e.observe(4, 40);
  assert.ok(Math.abs(e.estimate(4) - 40) < 2);
  assert.ok(e.estimate(8) >= 80); // scaled from the nearest observed size
  for (let i = 0; i < 30; i++) e.observe(4, 10);
  assert.ok(e.estimate(4) < 15);
});

test(
  'a pessimistic estimate does not refuse forever: refusals relax it until a run re-teaches it',
  { timeout: 30_000 },
  async () => {
    const m = testModel(5);
    const b = new DeadlineBatcher(m.exec, { marginMs: 1, maxWaitMs: 1, lateGraceMs: 0 });
    b.estimator.observe(1, 500); // e.g. a slow first run
    const answers = [];
    for (let i = 0; i < 40 && m.batches.length === 0; i++) answers.push(await b.submit(i, now() + 200));
    assert.equal(answers[0]!.status, 'deadline_missed');
    assert.equal(m.batches.length, 1, 'a request got through once the estimate relaxed');
    assert.equal(answers.at(-1)!.status, 'ok');
    assert.ok(b.estimator.estimate(1) < 300);
  },
);
