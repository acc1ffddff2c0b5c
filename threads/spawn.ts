// The one place that starts a worker thread on a TypeScript module. Workers do not inherit tsx's
// loader from `--import tsx`, so the thread first registers tsx and then imports its entry module.
// It is also where a thread's scheduling priority is set (`nice`), before its module loads, so that
// every thread the module starts in turn (onnxruntime's intra-op pool, FFmpeg's decoder threads)
// inherits it: moderation then yields the cores to forwarding and the event loop when they are scarce.
import { execFileSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/** The nice value of this project's moderation threads off the budgeted path (OCR, the deep model, fingerprints). */
export const MODERATION_NICE = 10;

/**
 * The nice value of the moderation threads on the budgeted fast path: the decoders, the fast classifier
 * and PDQ, whose answers make the 100 ms decision and the kill. Still below forwarding and the event
 * loop (nice 0, mediasoup's workers -10), but above the rest of moderation, so that when the cores are
 * scarce a sampled frame is not queued behind an OCR pass or a deep-model run (issue 16: at equal
 * priority the fast model's single-image runs took 10-107 ms of wall time for ~11 ms of CPU).
 */
export const DECISION_NICE = 5;

/**
 * Real-time priority (Linux SCHED_RR, needs CAP_SYS_NICE) of the decision class, 0 = off, set by the
 * process (configureRealtime, from MODERATION_REALTIME_PRIORITY): threads spawned at DECISION_NICE, the
 * budgeted path's class, then run at it instead of their nice value, and the threads they start
 * (onnxruntime's, FFmpeg's) inherit it. The main thread then runs at a real-time priority too, which
 * new threads would inherit, so every other thread first goes back to normal scheduling before taking
 * its nice value.
 */
let decisionRealtime = 0;

export function configureRealtime(decisionPriority: number): void {
  decisionRealtime = Math.max(0, Math.min(99, Math.floor(decisionPriority)));
}

/**
 * Puts the calling thread on SCHED_RR at `priority` (util-linux's chrt; needs CAP_SYS_NICE). Returns
 * undefined when it worked, else why not. The threads it starts afterwards inherit the policy (libuv's
 * pool, once started, does not change).
 */
export function realtimeSelf(priority: number): string | undefined {
  if (process.platform !== 'linux') return 'real-time priority is set on Linux only';
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    execFileSync('chrt', ['-r', '-p', String(priority), String(tid)], { stdio: ['ignore', 'ignore', 'pipe'] });
    return undefined;
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    return stderr || (err as Error).message;
  }
}

export interface SpawnOptions extends Omit<WorkerOptions, 'eval'> {
  /**
   * Nice value (Linux, 1-19) for the thread and the threads it starts; 0 or absent leaves the
   * priority alone. Raising one's own nice value needs no privilege; where it fails the thread runs at
   * normal priority. Linux keeps nice values per thread, so the rest of the process is untouched.
   */
  nice?: number;
}

/**
 * Statement run first in the thread: its scheduling, by thread id (a valid setpriority and
 * sched_setscheduler target on Linux): real-time for the decision class when configured (util-linux's
 * chrt, as for mediasoup's workers), else back to normal scheduling where the parent's real-time
 * policy would be inherited, then its nice value. A failure leaves the thread as it was.
 */
function prioritySource(nice: number | undefined): string {
  if (process.platform !== 'linux') return '';
  const tid = `Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop())`;
  const chrt = (args: string): string =>
    `try { require('node:child_process').execFileSync('chrt', [${args}, String(${tid})], { stdio: 'ignore' }); } catch {}\n`;
  if (decisionRealtime > 0 && nice === DECISION_NICE) return chrt(`'-r', '-p', '${decisionRealtime}'`);
  const reset = decisionRealtime > 0 ? chrt(`'-o', '-p', '0'`) : '';
  const renice =
    nice && nice > 0
      ? `try { require('node:os').setPriority(${tid}, ${Math.min(19, Math.floor(nice))}); } catch {}\n`
      : '';
  return reset + renice;
}

export function spawnThread(entry: URL, options: SpawnOptions = {}): Worker {
  const { nice, ...workerOptions } = options;
  const priority = prioritySource(nice);
  if (entry.pathname.endsWith('.ts')) {
    const tsxApi = import.meta.resolve('tsx/esm/api');
    const bootstrap = `${priority}import(${JSON.stringify(tsxApi)}).then((api) => { api.register(); return import(${JSON.stringify(entry.href)}); });`;
    return new Worker(bootstrap, { ...workerOptions, eval: true });
  }
  if (priority)
    return new Worker(`${priority}import(${JSON.stringify(entry.href)});`, { ...workerOptions, eval: true });
  return new Worker(entry, workerOptions);
}
