// The worker-thread helper with real threads: a call that times out rejects THR_ERR_TIMEOUT; a thread
// that crashes rejects what it held THR_ERR_CRASHED, is restarted (crash and restart events) and later
// calls work; a wedged thread is recycled; the queue bound refuses and counts; close() rejects what is
// pending THR_ERR_CLOSED; a closed thread finishes its calls, runs its onClose hooks and ends by itself,
// and only one that outlives the grace is terminated; a thread whose setup fails rejects start THR_ERR_START.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  configureRealtime,
  DECISION_NICE,
  RequestWorker,
  isThreadError,
  type WorkerCrash,
  type WorkerRestart,
} from '../../threads/index.ts';
import type { EchoRequest } from './echo-thread.ts';

const entry = new URL('./echo-thread.ts', import.meta.url);

async function waitFor<T>(what: string, fn: () => T | undefined, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function code(err: unknown): string | undefined {
  return isThreadError(err) ? err.code : undefined;
}

describe('RequestWorker', () => {
  it('answers calls; a call that outlives its timeout rejects THR_ERR_TIMEOUT and later calls still work', async () => {
    await using w = new RequestWorker<EchoRequest, unknown>({ entry, name: 'echo' });
    await w.started();
    assert.deepEqual(await w.call({ op: 'echo', value: { a: [1, 2] } }), { a: [1, 2] });
    const slow = w.call({ op: 'sleep', ms: 5000 }, { timeoutMs: 200 });
    await assert.rejects(slow, (e) => code(e) === 'THR_ERR_TIMEOUT');
    assert.equal(await w.call({ op: 'echo', value: 7 }), 7);
    await assert.rejects(
      w.call({ op: 'throw', message: 'bad input' }),
      (e) => code(e) === 'THR_ERR_REMOTE' && /bad input/.test((e as Error).message),
    );
    assert.equal(w.stats().timeouts, 1);
    assert.equal(w.stats().pending, 0);
  });

  it('a crashed thread rejects its pending calls THR_ERR_CRASHED, is restarted, and serves later calls', async () => {
    const crashes: WorkerCrash[] = [];
    const restarts: WorkerRestart[] = [];
    await using w = new RequestWorker<EchoRequest, unknown>({ entry, name: 'echo', restartDelayMs: 50 });
    w.on('crash', (c) => crashes.push(c));
    w.on('restart', (r) => restarts.push(r));
    await w.started();
    const first = await w.call({ op: 'pid' });
    const inFlight = w.call({ op: 'sleep', ms: 10_000 }, { timeoutMs: 60_000 });
    w.crash();
    await assert.rejects(inFlight, (e) => code(e) === 'THR_ERR_CRASHED');
    assert.equal(crashes.length, 1);
    assert.match(crashes[0]!.error.message, /crash requested/);
    // a call made during the restart waits for the new thread
    const during = w.call({ op: 'pid' }, { timeoutMs: 60_000 });
    const second = await during;
    assert.notEqual(second, first, 'answered by a new thread');
    await waitFor('restart event', () => restarts.length === 1);
    assert.equal(restarts[0]!.generation, 1);
    assert.equal(await w.call({ op: 'echo', value: 'again' }), 'again');

    // a thread that exits by itself is restarted too, with a longer backoff (two crashes in a row)
    await assert.rejects(w.call({ op: 'exit' }), (e) => code(e) === 'THR_ERR_CRASHED');
    await waitFor('second crash', () => crashes.length === 2);
    assert.ok(crashes[1]!.restartInMs > crashes[0]!.restartInMs, `backoff grows: ${crashes.map((c) => c.restartInMs)}`);
    assert.equal(await w.call({ op: 'echo', value: 3 }, { timeoutMs: 60_000 }), 3);
    assert.equal(w.stats().restarts, 2);
  });

  it('a wedged thread (no reply at all) is recycled when recycleUnresponsive is on', async () => {
    const crashes: WorkerCrash[] = [];
    await using w = new RequestWorker<EchoRequest, unknown>({
      entry,
      name: 'echo',
      recycleUnresponsive: true,
      restartDelayMs: 50,
    });
    w.on('crash', (c) => crashes.push(c));
    await w.started();
    const first = await w.call({ op: 'pid' });
    w.hang(60_000);
    await assert.rejects(w.call({ op: 'echo', value: 1 }, { timeoutMs: 300 }), (e) => code(e) === 'THR_ERR_TIMEOUT');
    await waitFor('recycle', () => crashes.length === 1);
    assert.match(crashes[0]!.error.message, /no reply within 300 ms/);
    const second = await w.call({ op: 'pid' }, { timeoutMs: 60_000 });
    assert.notEqual(second, first);
  });

  it('refuses calls beyond maxPending (counted) and close() rejects what is pending THR_ERR_CLOSED', async () => {
    // The sleeps outlast the close grace: the thread is terminated after it.
    const w = new RequestWorker<EchoRequest, unknown>({ entry, name: 'echo', maxPending: 2, closeGraceMs: 300 });
    await w.started();
    const a = w.call({ op: 'sleep', ms: 10_000 }, { timeoutMs: 60_000 });
    const b = w.call({ op: 'sleep', ms: 10_000 }, { timeoutMs: 60_000 });
    await assert.rejects(w.call({ op: 'echo', value: 1 }), (e) => code(e) === 'THR_ERR_QUEUE_FULL');
    assert.equal(w.stats().dropped, 1);
    const closing = w.close();
    await assert.rejects(a, (e) => code(e) === 'THR_ERR_CLOSED');
    await assert.rejects(b, (e) => code(e) === 'THR_ERR_CLOSED');
    await closing;
    await w.close(); // idempotent
    await assert.rejects(w.call({ op: 'echo', value: 1 }), (e) => code(e) === 'THR_ERR_CLOSED');
  });

  it(
    'a thread started with nice runs at that priority, and so do the threads it starts; the process does not',
    { skip: process.platform !== 'linux' && 'nice values per thread are Linux' },
    async () => {
      await using low = new RequestWorker<EchoRequest, { own: number; child: number }>({
        entry,
        name: 'echo',
        nice: 7,
      });
      await using normal = new RequestWorker<EchoRequest, { own: number; child: number }>({ entry, name: 'echo' });
      await Promise.all([low.started(), normal.started()]);
      const before = (await normal.call({ op: 'nice' })).own;
      assert.deepEqual(await low.call({ op: 'nice' }), { own: before + 7, child: before + 7 });
      assert.deepEqual(await normal.call({ op: 'nice' }), { own: before, child: before });
    },
  );

  it(
    'configureRealtime: a thread of the decision class (DECISION_NICE) runs SCHED_RR, and so do the threads it starts; the others keep normal scheduling and their nice value',
    {
      skip:
        (process.platform !== 'linux' || spawnSync('chrt', ['-r', '1', 'true']).status !== 0) &&
        'real-time scheduling (Linux, chrt, CAP_SYS_NICE) is not available here',
    },
    async () => {
      type Sched = { policy: number; rtPriority: number; nice: number; childPolicy: number };
      configureRealtime(3);
      try {
        await using decision = new RequestWorker<EchoRequest, Sched>({ entry, name: 'echo', nice: DECISION_NICE });
        await using background = new RequestWorker<EchoRequest, Sched>({ entry, name: 'echo', nice: 10 });
        await Promise.all([decision.started(), background.started()]);
        const d = await decision.call({ op: 'sched' });
        assert.deepEqual([d.policy, d.rtPriority, d.childPolicy], [2, 3, 2], JSON.stringify(d));
        const b = await background.call({ op: 'sched' });
        assert.deepEqual([b.policy, b.rtPriority, b.childPolicy], [0, 0, 0], JSON.stringify(b));
        assert.ok(b.nice >= 10, `nice ${b.nice}`);
      } finally {
        configureRealtime(0);
      }
    },
  );

  it('close(): the thread finishes the call in progress, runs its onClose hooks and ends by itself', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'msfu-thread-close-'));
    try {
      const closeLog = join(dir, 'log');
      const w = new RequestWorker<EchoRequest, unknown>({ entry, name: 'echo', workerData: { closeLog } });
      await w.started();
      const inProgress = w.call({ op: 'sleep', ms: 300 });
      // The caller learns at once that the worker is closed; the thread still finishes the sleep first.
      const closing = w.close();
      await assert.rejects(inProgress, (e) => code(e) === 'THR_ERR_CLOSED');
      await closing;
      assert.deepEqual(readFileSync(closeLog, 'utf8').trim().split('\n'), ['slept 300', 'onClose']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('close(): a thread that does not end within the grace (a wedged loop) is terminated, its hooks never run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'msfu-thread-close-'));
    try {
      const closeLog = join(dir, 'log');
      const w = new RequestWorker<EchoRequest, unknown>({ entry, name: 'echo', workerData: { closeLog } });
      await w.started();
      w.hang(60_000);
      await w.close({ graceMs: 300 });
      assert.throws(() => readFileSync(closeLog, 'utf8'), /ENOENT/, 'no hook ran in a terminated thread');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a thread whose setup fails rejects start and every call THR_ERR_START', async () => {
    await using w = new RequestWorker<EchoRequest, unknown>({
      entry,
      name: 'echo',
      workerData: { failSetup: 'no models here' },
    });
    await assert.rejects(
      w.started(),
      (e) => code(e) === 'THR_ERR_START' && /no models here/.test((e as Error).message),
    );
    await assert.rejects(w.call({ op: 'echo', value: 1 }), (e) => code(e) === 'THR_ERR_START');
  });
});
