// Review deadlines (issue 17 item 3): every item carries its due time (policies/ withDueAt); this
// watch finds the open items that passed it, tells ops once per item (a `warning` event) and audits
// `review.overdue`. Overdue items rise in the queue by themselves (policies/ compareByUrgency) and
// are counted in /metrics from the queue figures; this watch only announces.
import { isOverdue } from '../policies/index.ts';
import type { EventHub } from './events.ts';
import type { Store } from './store/types.ts';

export interface ReviewDeadlineWatchOptions {
  store: Store;
  events: Pick<EventHub, 'emit'>;
  /** How often the open items are checked (ms). Default 5000. */
  everyMs?: number;
  onError?: (error: unknown) => void;
}

/** Items announced, remembered until they leave the queue (bounded by the store's open-item bound). */
export class ReviewDeadlineWatch {
  readonly #o: ReviewDeadlineWatchOptions;
  readonly #announced = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #running = false;

  constructor(options: ReviewDeadlineWatchOptions) {
    this.#o = options;
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.check(), this.#o.everyMs ?? 5000);
    this.#timer.unref();
  }

  /** One pass: announces the items overdue since the last pass. Returns how many it announced. */
  async check(now = Date.now()): Promise<number> {
    if (this.#running) return 0;
    this.#running = true;
    try {
      const open = await this.#o.store.listReview({ limit: 5000 });
      const ids = new Set(open.map((i) => i.id));
      for (const id of this.#announced) if (!ids.has(id)) this.#announced.delete(id);
      let n = 0;
      for (const item of open) {
        if (!isOverdue(item, now) || this.#announced.has(item.id)) continue;
        this.#announced.add(item.id);
        n++;
        const late = Math.round((now - (item.dueAt ?? now)) / 1000);
        const message = `review ${item.type} ${item.id} (${item.jurisdictions.join(', ') || 'default'}) of stream ${item.streamId} is overdue by ${late} s`;
        this.#o.events.emit({ roles: ['ops'] }, { type: 'warning', streamId: item.streamId, message, at: now });
        await this.#o.store.appendAudit({
          type: 'review.overdue',
          itemId: item.id,
          streamId: item.streamId,
          reviewType: item.type,
          jurisdictions: item.jurisdictions,
          dueAt: item.dueAt ?? null,
          at: now,
        });
      }
      return n;
    } catch (error) {
      this.#o.onError?.(error);
      return 0;
    } finally {
      this.#running = false;
    }
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
