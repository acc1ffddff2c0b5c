// Thread side of SupervisedWorker / RequestWorker. `supervisedPort()` answers the control messages
// every supervised thread understands (the crash and hang test hooks); `announceReady()` tells the
// parent the thread can take work; `serve()` is the whole thread of a request/reply worker.
import { parentPort, workerData } from 'node:worker_threads';
import { isControl, type FromThreadControl, type ToThreadControl } from './protocol.ts';
import type { MessagePort, TransferListItem } from 'node:worker_threads';

let port: MessagePort | undefined;

/** The parent port, with the control hooks installed once. Throws outside a worker thread. */
export function supervisedPort(): MessagePort {
  if (port) return port;
  if (!parentPort) throw new Error('this module runs as a worker thread');
  port = parentPort;
  port.on('message', (msg: unknown) => {
    if (!isControl(msg)) return;
    const m = msg as ToThreadControl;
    if (m.__thr === 'crash') {
      // Thrown from the listener itself: an uncaught exception in message order, so whatever the parent
      // posted after it is pending in a dying thread (what tests of "pending calls are rejected" need).
      throw new Error('crash requested (test hook)');
    } else if (m.__thr === 'hang') {
      const until = Date.now() + m.ms;
      while (Date.now() < until) {
        // Blocks the thread on purpose: nothing else runs, as with a wedged native call.
      }
    }
  });
  return port;
}

export function announceReady(): void {
  supervisedPort().postMessage({ __thr: 'ready' } satisfies FromThreadControl);
}

/** The thread could not set itself up (models missing, ...): the parent's start() rejects with this message. */
export function announceLoadError(err: unknown): void {
  supervisedPort().postMessage({ __thr: 'load_error', message: err instanceof Error ? err.message : String(err) } satisfies FromThreadControl);
}

export type RequestHandler<Req, Res> = (req: Req) => Res | Promise<Res>;

export interface ServeOptions<Res> {
  /** Buffers of a reply to transfer instead of copy. */
  transfer?: (res: Res) => TransferListItem[];
}

/**
 * Runs a request/reply thread: `setup` gets the worker's workerData and returns the handler (it may
 * load models first); each call is answered with the handler's result or its error message. Calls
 * are handled as they arrive; a handler that is async may have several in progress.
 */
export function serve<Req, Res>(setup: (data: unknown) => RequestHandler<Req, Res> | Promise<RequestHandler<Req, Res>>, options: ServeOptions<Res> = {}): void {
  const p = supervisedPort();
  Promise.resolve()
    .then(() => setup(workerData))
    .then(
      (handler) => {
        p.on('message', (msg: unknown) => {
          if (!isControl(msg) || (msg as ToThreadControl).__thr !== 'call') return;
          const { id, req } = msg as Extract<ToThreadControl, { __thr: 'call' }>;
          Promise.resolve()
            .then(() => handler(req as Req))
            .then(
              (res) => p.postMessage({ __thr: 'reply', id, ok: true, res } satisfies FromThreadControl, options.transfer?.(res) ?? []),
              (err: unknown) => p.postMessage({ __thr: 'reply', id, ok: false, message: err instanceof Error ? err.message : String(err) } satisfies FromThreadControl),
            );
        });
        announceReady();
      },
      (err: unknown) => announceLoadError(err),
    );
}
