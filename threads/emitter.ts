// The project's one small typed event system (threads/, samplers/, models/; sfu/emitter.ts extends it):
// a listener that throws is caught and handed to onListenerError (stderr by default); it never breaks
// the emitter or whoever emitted.

export type EventMap = Record<string, unknown[]>;

export class SafeEmitter<E extends EventMap> {
  #listeners: { [K in keyof E]?: Array<(...args: E[K]) => void> } = {};

  on<K extends keyof E>(event: K, listener: (...args: E[K]) => void): this {
    (this.#listeners[event] ??= []).push(listener);
    return this;
  }

  off<K extends keyof E>(event: K, listener: (...args: E[K]) => void): this {
    const list = this.#listeners[event];
    if (list) this.#listeners[event] = list.filter((l) => l !== listener);
    return this;
  }

  protected emit<K extends keyof E>(event: K, ...args: E[K]): void {
    const list = this.#listeners[event];
    if (!list) return;
    for (const l of [...list]) {
      try {
        l(...args);
      } catch (err) {
        this.onListenerError(event, err);
      }
    }
  }

  /** Where a throwing listener is reported. Subclasses route it to their own warning channel. */
  protected onListenerError(event: keyof E, err: unknown): void {
    console.error(`'${String(event)}' listener threw`, err);
  }

  protected removeAllListeners(): void {
    this.#listeners = {};
  }
}
