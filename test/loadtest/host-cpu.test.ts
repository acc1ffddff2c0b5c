import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostCpuWindow, parseProcStat, sampleHostCpu } from '../../loadtest/host-cpu.ts';

test("/proc/stat's aggregate line: busy, idle and steal; guest time not counted twice", () => {
  const a = parseProcStat('cpu  100 10 20 800 5 1 4 60 30 0\ncpu0 50 5 10 400 2 0 2 30 15 0\n');
  assert.deepEqual(a, { busy: 135, idle: 805, steal: 60 });
  const b = parseProcStat('cpu  200 10 40 1500 5 1 4 160 90 0\n');
  // 120 busy + 700 idle + 100 steal ticks in the window
  assert.deepEqual(hostCpuWindow(a, b), { busyPercent: 13, stealPercent: 10.9 });
  assert.equal(parseProcStat('intr 1 2 3'), undefined, 'not a cpu line');
  assert.equal(parseProcStat('cpu 1 2 3'), undefined, 'too few fields');
  assert.equal(hostCpuWindow(a, a), undefined, 'no tick passed');
  assert.equal(hostCpuWindow(undefined, b), undefined);
});

test('this machine: a window of busy work reads as busy, percentages within 0-100', async () => {
  const from = await sampleHostCpu();
  if (!from) return; // not Linux
  const until = Date.now() + 300;
  while (Date.now() < until); // one core busy for 0.3 s
  const w = hostCpuWindow(from, await sampleHostCpu());
  assert.ok(w, 'ticks passed');
  assert.ok(w.busyPercent > 0 && w.busyPercent <= 100, `busy ${w.busyPercent} %`);
  assert.ok(w.stealPercent >= 0 && w.stealPercent <= 100, `steal ${w.stealPercent} %`);
});
