// The one place that starts a worker thread on a TypeScript module. Workers do not inherit tsx's
// loader from `--import tsx`, so the thread first registers tsx and then imports its entry module.
import { Worker, type WorkerOptions } from 'node:worker_threads';

export function spawnThread(entry: URL, options: Omit<WorkerOptions, 'eval'> = {}): Worker {
  if (entry.pathname.endsWith('.ts')) {
    const tsxApi = import.meta.resolve('tsx/esm/api');
    const bootstrap = `import(${JSON.stringify(tsxApi)}).then((api) => { api.register(); return import(${JSON.stringify(entry.href)}); });`;
    return new Worker(bootstrap, { ...options, eval: true });
  }
  return new Worker(entry, options);
}
