// The one place that starts a worker thread on a TypeScript module. Workers do not inherit tsx's
// loader from `--import tsx`, so the thread first registers tsx and then imports its entry module.
// It is also where a thread's scheduling priority is set (`nice`), before its module loads, so that
// every thread the module starts in turn (onnxruntime's intra-op pool, FFmpeg's decoder threads)
// inherits it: moderation then yields the cores to forwarding and the event loop when they are scarce.
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

export interface SpawnOptions extends Omit<WorkerOptions, 'eval'> {
  /**
   * Nice value (Linux, 1-19) for the thread and the threads it starts; 0 or absent leaves the
   * priority alone. Raising one's own nice value needs no privilege; where it fails the thread runs at
   * normal priority. Linux keeps nice values per thread, so the rest of the process is untouched.
   */
  nice?: number;
}

/** Statement run first in the thread: its own nice value, by thread id (a valid setpriority target on Linux). */
function prioritySource(nice: number | undefined): string {
  if (!nice || nice <= 0 || process.platform !== 'linux') return '';
  return `try { require('node:os').setPriority(Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop()), ${Math.min(19, Math.floor(nice))}); } catch {}\n`;
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
