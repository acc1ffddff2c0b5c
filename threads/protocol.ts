// Control messages between a supervised worker and its thread. They carry a `__thr` tag so they can
// share the port with a worker's own messages (the sampler pool streams packets and samples).

export type ToThreadControl =
  | { __thr: 'call'; id: number; req: unknown }
  /** Test and chaos hook: the thread throws an uncaught exception, as a real bug would. */
  | { __thr: 'crash' }
  /** Test hook: the thread's event loop is blocked this long (ms), as a wedged native call would. */
  | { __thr: 'hang'; ms: number }
  /**
   * The owner closes the thread: it finishes the work in progress, runs its onClose hooks (which free its
   * native objects: sessions, decoders) and closes its port, so it ends by itself (threads/thread.ts).
   */
  | { __thr: 'close' };

export type FromThreadControl =
  | { __thr: 'ready' }
  | { __thr: 'load_error'; message: string }
  | { __thr: 'reply'; id: number; ok: true; res: unknown }
  | { __thr: 'reply'; id: number; ok: false; message: string };

export function isControl(msg: unknown): msg is { __thr: string } {
  return typeof msg === 'object' && msg !== null && typeof (msg as { __thr?: unknown }).__thr === 'string';
}
