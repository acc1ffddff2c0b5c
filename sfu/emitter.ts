// The SFU objects' typed events: the project's one event system (threads/emitter.ts, which imports
// nothing else of the project). A listener that throws is caught and reported on stderr as the SFU's;
// it never breaks the emitter or the forwarding path.
import { SafeEmitter as ProjectEmitter, type EventMap } from '../threads/emitter.ts';

export type { EventMap };

export class SafeEmitter<E extends EventMap> extends ProjectEmitter<E> {
  protected override onListenerError(event: keyof E, err: unknown): void {
    console.error(`sfu: '${String(event)}' listener threw`, err);
  }
}
