// Worker threads for models/ and samplers/: spawning (tsx bootstrap), supervision with restarts, and
// typed request/reply. Imports nothing else of the project (like media/), so both may use it.
import { RequestWorker } from './request-worker.ts';
import { SupervisedWorker } from './supervised-worker.ts';

export { SafeEmitter, type EventMap } from './emitter.ts';
export { ThreadError, isThreadError, type ThreadErrorCode } from './errors.ts';
export { DECISION_NICE, MODERATION_NICE, configureRealtime, realtimeSelf, spawnThread } from './spawn.ts';
export {
  SupervisedWorker,
  DEFAULT_SUPERVISION,
  type SupervisedWorkerOptions,
  type SupervisionOptions,
  type SupervisedWorkerEvents,
  type SupervisedState,
  type WorkerCrash,
  type WorkerRestart,
} from './supervised-worker.ts';
export {
  RequestWorker,
  type RequestWorkerOptions,
  type RequestWorkerStats,
  type RequestWorkerEvents,
  type CallOptions,
} from './request-worker.ts';

/** What an owner of worker threads reports to the server (metrics, warning events). */
export type WorkerEvent =
  | { type: 'crash'; worker: string; message: string; restartInMs: number; consecutive: number }
  | { type: 'restart'; worker: string; restarts: number }
  | { type: 'timeout'; worker: string; timeoutMs: number };

export type WorkerEventListener = (event: WorkerEvent) => void;

/** Forwards a worker's crash / restart / timeout events to one listener, as WorkerEvents. */
export function reportWorkerEvents(
  source: SupervisedWorker | RequestWorker<never, unknown>,
  listener: WorkerEventListener | undefined,
): void {
  if (!listener) return;
  const s = source as SupervisedWorker;
  s.on('crash', (c) =>
    listener({
      type: 'crash',
      worker: c.worker,
      message: c.error.message,
      restartInMs: c.restartInMs,
      consecutive: c.consecutive,
    }),
  );
  s.on('restart', (r) => listener({ type: 'restart', worker: r.worker, restarts: r.restarts }));
  if (source instanceof RequestWorker)
    source.on('timeout', (t) => listener({ type: 'timeout', worker: t.worker, timeoutMs: t.timeoutMs }));
}
