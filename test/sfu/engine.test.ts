// SFU_ENGINE: auto takes mediasoup when a worker binary is present and werift otherwise (so `npm
// install && npm start` works anywhere), says which in the summary, and an explicit mediasoup
// without a worker is a coded error rather than a silent werift.
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createSfu } from '../../sfu/engine.ts';
import { isSfuError } from '../../sfu/errors.ts';
import { mediasoupWorkerBin } from '../../sfu/mediasoup/worker-bin.ts';
import { ENGINES } from './helpers.ts';

const saved = process.env.MEDIASOUP_WORKER_BIN;
afterEach(() => {
  if (saved === undefined) delete process.env.MEDIASOUP_WORKER_BIN;
  else process.env.MEDIASOUP_WORKER_BIN = saved;
});

test('auto without a worker binary runs werift and says how to get mediasoup', async () => {
  process.env.MEDIASOUP_WORKER_BIN = '/nonexistent/mediasoup-worker';
  const { sfu, summary } = await createSfu({ engine: 'auto' });
  try {
    assert.equal(sfu.engine, 'werift');
    assert.match(summary, /werift \(no mediasoup worker: `npm run mediasoup:worker`/);
  } finally {
    await sfu.close();
  }
});

test('SFU_ENGINE=mediasoup without a worker binary is SFU_ERR_NO_WORKER (503)', async () => {
  process.env.MEDIASOUP_WORKER_BIN = '/nonexistent/mediasoup-worker';
  await assert.rejects(
    createSfu({ engine: 'mediasoup' }),
    (err: unknown) => isSfuError(err) && err.code === 'SFU_ERR_NO_WORKER' && err.statusCode === 503,
  );
});

test('SFU_ENGINE=werift runs werift even where a worker exists', async () => {
  const { sfu, summary } = await createSfu({ engine: 'werift' });
  try {
    assert.equal(sfu.engine, 'werift');
    assert.equal(summary, 'werift (SFU_ENGINE=werift)');
  } finally {
    await sfu.close();
  }
});

test(
  'auto with a worker binary runs mediasoup, one worker per core unless told',
  { skip: ENGINES.includes('mediasoup') ? false : 'no mediasoup worker (MEDIASOUP_WORKER_OPTIONAL=1)' },
  async () => {
    const bin = mediasoupWorkerBin();
    assert.ok(bin, 'npm run mediasoup:worker');
    const { sfu, summary } = await createSfu({ engine: 'auto', mediasoupWorkers: 1, announcedAddress: '127.0.0.1' });
    try {
      assert.equal(sfu.engine, 'mediasoup');
      // how the workers are scheduled: SCHED_RR 10 (with the guard's nice -10) where the process may
      // raise priority, else nice 0
      const told = ['SCHED_RR 10 (nice -10 while above 75 % of a core)', 'nice 0'].map(
        (how) => `mediasoup, 1 worker at ${how} (${bin})`,
      );
      assert.ok(told.includes(summary), summary);
      const stats = await sfu.engineStats();
      assert.equal(stats.workers, 1);
    } finally {
      await sfu.close();
    }
  },
);

test(
  'MEDIASOUP_REALTIME_PRIORITY reaches the workers, and the summary says how they are scheduled',
  { skip: ENGINES.includes('mediasoup') ? false : 'no mediasoup worker (MEDIASOUP_WORKER_OPTIONAL=1)' },
  async () => {
    const bin = mediasoupWorkerBin()!;
    const { sfu, summary } = await createSfu({
      engine: 'mediasoup',
      mediasoupWorkers: 1,
      mediasoupRealtimePriority: 3,
    });
    try {
      // without CAP_SYS_NICE (bit 23 of the effective capabilities) the kernel refuses both: nice 0
      const capEff = /^CapEff:\s*([0-9a-f]+)/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]!;
      const mayRaise = ((BigInt(`0x${capEff}`) >> 23n) & 1n) === 1n;
      assert.equal(
        summary,
        `mediasoup, 1 worker at ${mayRaise ? 'SCHED_RR 3 (nice -10 while above 75 % of a core)' : 'nice 0'} (${bin})`,
      );
    } finally {
      await sfu.close();
    }
  },
);
