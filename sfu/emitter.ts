// One small typed event system for the SFU objects. A listener that throws is caught and reported on
// stderr; it never breaks the emitter or the forwarding path.

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
        console.error(`sfu: '${String(event)}' listener threw`, err);
      }
    }
  }

  protected removeAllListeners(): void {
    this.#listeners = {};
  }
}
