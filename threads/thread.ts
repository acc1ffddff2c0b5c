// Thread side of SupervisedWorker / RequestWorker. `supervisedPort()` answers the control messages
// every supervised thread understands (the owner's close, the crash and hang test hooks);
// `announceReady()` tells the parent the thread can take work; `onClose()` registers what the thread
// frees when it is closed; `serve()` is the whole thread of a request/reply worker.
//
// A closed thread ends by itself: work in progress finishes, the onClose hooks free the native objects
// (onnxruntime sessions, FFmpeg contexts) on this thread while its environment is alive, the port
// closes and the event loop runs dry. Being terminated instead, inside a native call, aborts the whole
// process (onnxruntime-node: `terminate called after throwing an instance of 'Napi::Error'`).
import { parentPort, workerData } from 'node:worker_threads';
import { isControl, type FromThreadControl, type ToThreadControl } from './protocol.ts';
import type { MessagePort, TransferListItem } from 'node:worker_threads';

let port: MessagePort | undefined;
const closeHooks: (() => void | Promise<void>)[] = [];
/** serve()'s wait for its setup and the calls in progress: it comes before every hook. */
let servedWork: (() => Promise<void>) | undefined;
let closing = false;

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
    } else if (m.__thr === 'close') {
      void closeThread();
    }
  });
  return port;
}

/**
 * Registers what this thread frees when its owner closes it (sessions, decoders). Hooks run once, after
 * serve()'s setup and calls in progress have finished, in the order registered (a hook registered while
 * they run included); one that throws does not stop the others. Then the port closes.
 */
export function onClose(hook: () => void | Promise<void>): void {
  closeHooks.push(hook);
}

async function closeThread(): Promise<void> {
  if (closing) return;
  closing = true;
  await servedWork?.();
  for (let i = 0; i < closeHooks.length; i++) {
    try {
      await closeHooks[i]();
    } catch (err) {
      console.error('thread close hook failed:', err);
    }
  }
  port?.close();
}

export function announceReady(): void {
  supervisedPort().postMessage({ __thr: 'ready' } satisfies FromThreadControl);
}

/** The thread could not set itself up (models missing, ...): the parent's start() rejects with this message. */
export function announceLoadError(err: unknown): void {
  supervisedPort().postMessage({
    __thr: 'load_error',
    message: err instanceof Error ? err.message : String(err),
  } satisfies FromThreadControl);
}

export type RequestHandler<Req, Res> = (req: Req) => Res | Promise<Res>;

export interface ServeOptions<Res> {
  /** Buffers of a reply to transfer instead of copy. */
  transfer?: (res: Res) => TransferListItem[];
}

/**
 * Runs a request/reply thread: `setup` gets the worker's workerData and returns the handler (it may
 * load models first, and register onClose hooks that free them); each call is answered with the
 * handler's result or its error message. Calls are handled as they arrive; a handler that is async may
 * have several in progress. When the thread is closed, setup and the calls in progress finish before
 * the hooks setup registered run; calls that arrive after that are refused.
 */
export function serve<Req, Res>(
  setup: (data: unknown) => RequestHandler<Req, Res> | Promise<RequestHandler<Req, Res>>,
  options: ServeOptions<Res> = {},
): void {
  const p = supervisedPort();
  const inProgress = new Set<Promise<unknown>>();
  const ready = Promise.resolve().then(() => setup(workerData));
  servedWork = async () => {
    await ready.catch(() => undefined);
    while (inProgress.size > 0) await Promise.allSettled([...inProgress]);
  };
  ready.then(
    (handler) => {
      p.on('message', (msg: unknown) => {
        if (!isControl(msg) || (msg as ToThreadControl).__thr !== 'call') return;
        const { id, req } = msg as Extract<ToThreadControl, { __thr: 'call' }>;
        const call = Promise.resolve()
          .then(() => {
            if (closing) throw new Error('thread closing');
            return handler(req as Req);
          })
          .then(
            (res) =>
              p.postMessage(
                { __thr: 'reply', id, ok: true, res } satisfies FromThreadControl,
                options.transfer?.(res) ?? [],
              ),
            (err: unknown) =>
              p.postMessage({
                __thr: 'reply',
                id,
                ok: false,
                message: err instanceof Error ? err.message : String(err),
              } satisfies FromThreadControl),
          );
        inProgress.add(call);
        void call.finally(() => inProgress.delete(call));
      });
      announceReady();
    },
    (err: unknown) => announceLoadError(err),
  );
}
