// The whole machine's CPU over a window, from /proc/stat's aggregate `cpu` line: how busy every core
// was and how much time the hypervisor took from this guest (steal). A benchmark on a virtual machine
// reports it beside its latency figures: a step measured while the host took a tenth of the vCPUs'
// time says more about the host than about the code.

import { readFile } from 'node:fs/promises';

/** The aggregate line's counters (USER_HZ ticks since boot), or undefined where /proc/stat is absent. */
export interface HostCpuSample {
  busy: number;
  idle: number;
  steal: number;
}

export interface HostCpuWindow {
  /** Time the cores ran anything (user, nice, system, irq, softirq), % of all cores' time. */
  busyPercent: number;
  /** Time the hypervisor ran something else while this guest had work, % of all cores' time. */
  stealPercent: number;
}

/** Parses /proc/stat's first line: `cpu user nice system idle iowait irq softirq steal guest guest_nice`. */
export function parseProcStat(text: string): HostCpuSample | undefined {
  const line = text.split('\n', 1)[0] ?? '';
  const f = line.trim().split(/\s+/);
  if (f[0] !== 'cpu' || f.length < 9) return undefined;
  const [user, nice, system, idle, iowait, irq, softirq, steal] = f.slice(1, 9).map(Number) as number[];
  if (![user, nice, system, idle, iowait, irq, softirq, steal].every((x) => Number.isFinite(x))) return undefined;
  // guest time is already counted in user (and guest_nice in nice): not added again
  return { busy: user! + nice! + system! + irq! + softirq!, idle: idle! + iowait!, steal: steal! };
}

export async function sampleHostCpu(): Promise<HostCpuSample | undefined> {
  return readFile('/proc/stat', 'utf8').then(parseProcStat, () => undefined);
}

/** The window between two samples, or undefined when either is missing or no tick passed. */
export function hostCpuWindow(
  from: HostCpuSample | undefined,
  to: HostCpuSample | undefined,
): HostCpuWindow | undefined {
  if (!from || !to) return undefined;
  const busy = to.busy - from.busy;
  const steal = to.steal - from.steal;
  const total = busy + (to.idle - from.idle) + steal;
  if (total <= 0) return undefined;
  const pct = (x: number) => Number(((100 * x) / total).toFixed(1));
  return { busyPercent: pct(busy), stealPercent: pct(steal) };
}
