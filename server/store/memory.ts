// In-memory Store: the default for one node. Same semantics as RedisStore (shared test suite).
import type { StatementOfReasons } from '../../policies/types.ts';
import { SrvError, notFound } from '../errors.ts';
import { chainAuditEntry } from '../../policies/audit.ts';
import type {
  AuditEntry,
  ControlMessage,
  DecisionRecord,
  LiveStreamRecord,
  PolicyReviewItem,
  PolicyReviewResolution,
  Store,
  StoredReviewItem,
  StreamBlock,
  Unsubscribe,
} from './types.ts';

const now = (): number => Date.now();
const clone = <T>(v: T): T => structuredClone(v);

/** Newest-first list bounded to `cap` entries. */
class RecentIndex<T extends { id: string; streamId: string }> {
  readonly #byId = new Map<string, T>();
  readonly #order: string[] = [];
  constructor(private readonly cap: number) {}
  put(value: T): void {
    if (!this.#byId.has(value.id)) {
      this.#order.push(value.id);
      if (this.#order.length > this.cap) this.#byId.delete(this.#order.shift() as string);
    }
    this.#byId.set(value.id, clone(value));
  }
  get(id: string): T | undefined {
    const v = this.#byId.get(id);
    return v && clone(v);
  }
  list(filter: { streamId?: string; limit?: number } = {}): T[] {
    const out: T[] = [];
    const limit = filter.limit ?? 100;
    for (let i = this.#order.length - 1; i >= 0 && out.length < limit; i--) {
      const v = this.#byId.get(this.#order[i]);
      if (v && (filter.streamId === undefined || v.streamId === filter.streamId)) out.push(clone(v));
    }
    return out;
  }
}

/** Queue order shared with RedisStore: priority desc, then oldest (policies' compareReviewItems). */
export function reviewOrder(a: StoredReviewItem, b: StoredReviewItem): number {
  return b.priority - a.priority || a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1);
}

export function claimActive(item: StoredReviewItem, t: number): boolean {
  return item.status === 'claimed' && item.claim !== undefined && item.claim.expiresAt > t;
}

/** A lapsed claim reads as pending (the claim itself stays for the record until re-claimed). */
export function withLapsedClaim(item: StoredReviewItem, t: number): StoredReviewItem {
  if (item.status === 'claimed' && !claimActive(item, t)) item.status = 'pending';
  return item;
}

export interface MemoryStoreOptions {
  /** Most decisions/statements kept. Default 10000. */
  historyCap?: number;
}

export class MemoryStore implements Store {
  readonly kind = 'memory' as const;
  readonly #streams = new Map<string, { record: LiveStreamRecord; expiresAt: number }>();
  readonly #blocks = new Map<string, StreamBlock>();
  readonly #decisions: RecentIndex<DecisionRecord>;
  readonly #statements: RecentIndex<StatementOfReasons>;
  readonly #audit: AuditEntry[] = [];
  readonly #review = new Map<string, StoredReviewItem>();
  readonly #handlers = new Set<(m: ControlMessage) => void>();
  #closed = false;

  constructor(options: MemoryStoreOptions = {}) {
    const cap = options.historyCap ?? 10_000;
    this.#decisions = new RecentIndex(cap);
    this.#statements = new RecentIndex(cap);
  }

  #check(): void {
    if (this.#closed) throw new SrvError('SRV_ERR_STORE_UNAVAILABLE', 'store is closed');
  }

  async putStream(record: LiveStreamRecord, ttlMs: number): Promise<void> {
    this.#check();
    this.#streams.set(record.streamId, { record: clone(record), expiresAt: now() + ttlMs });
  }

  async heartbeat(streamId: string, ttlMs: number, patch: Partial<Omit<LiveStreamRecord, 'streamId'>> = {}): Promise<boolean> {
    this.#check();
    const e = this.#streams.get(streamId);
    if (!e || e.expiresAt <= now()) {
      this.#streams.delete(streamId);
      return false;
    }
    e.record = { ...e.record, ...clone(patch), streamId, heartbeatAt: now() };
    e.expiresAt = now() + ttlMs;
    return true;
  }

  async getStream(streamId: string): Promise<LiveStreamRecord | undefined> {
    this.#check();
    const e = this.#streams.get(streamId);
    if (!e) return undefined;
    if (e.expiresAt <= now()) {
      this.#streams.delete(streamId);
      return undefined;
    }
    return clone(e.record);
  }

  async listStreams(): Promise<LiveStreamRecord[]> {
    this.#check();
    const out: LiveStreamRecord[] = [];
    for (const [id, e] of this.#streams) {
      if (e.expiresAt <= now()) this.#streams.delete(id);
      else out.push(clone(e.record));
    }
    return out.sort((a, b) => a.startedAt - b.startedAt);
  }

  async removeStream(streamId: string): Promise<void> {
    this.#check();
    this.#streams.delete(streamId);
  }

  async setBlock(block: StreamBlock): Promise<void> {
    this.#check();
    this.#blocks.set(block.streamId, clone(block));
  }
  async clearBlock(streamId: string): Promise<boolean> {
    this.#check();
    return this.#blocks.delete(streamId);
  }
  async getBlock(streamId: string): Promise<StreamBlock | undefined> {
    this.#check();
    const b = this.#blocks.get(streamId);
    return b && clone(b);
  }

  async putDecision(decision: DecisionRecord): Promise<void> {
    this.#check();
    this.#decisions.put(decision);
  }
  async getDecision(id: string): Promise<DecisionRecord | undefined> {
    this.#check();
    return this.#decisions.get(id);
  }
  async listDecisions(filter?: { streamId?: string; limit?: number }): Promise<DecisionRecord[]> {
    this.#check();
    return this.#decisions.list(filter);
  }
  async putStatement(statement: StatementOfReasons): Promise<void> {
    this.#check();
    this.#statements.put(statement);
  }
  async getStatement(id: string): Promise<StatementOfReasons | undefined> {
    this.#check();
    return this.#statements.get(id);
  }
  async listStatements(filter?: { streamId?: string; limit?: number }): Promise<StatementOfReasons[]> {
    this.#check();
    return this.#statements.list(filter);
  }

  async appendAudit(body: Record<string, unknown>): Promise<AuditEntry> {
    this.#check();
    const entry = chainAuditEntry(this.#audit.at(-1), clone(body), now());
    this.#audit.push(entry);
    return clone(entry);
  }
  async readAudit(options: { afterSeq?: number; limit?: number } = {}): Promise<AuditEntry[]> {
    this.#check();
    const after = options.afterSeq ?? 0;
    return clone(this.#audit.filter((e) => e.seq > after).slice(0, options.limit ?? 1000));
  }

  async enqueueReview(item: PolicyReviewItem, extra: { thumbnail?: string } = {}): Promise<StoredReviewItem> {
    this.#check();
    const existing = this.#review.get(item.id);
    if (existing) return clone(existing);
    const stored: StoredReviewItem = { ...clone(item), ...clone(extra), status: 'pending' };
    delete stored.claim;
    this.#review.set(stored.id, stored);
    return clone(stored);
  }

  #ordered(): StoredReviewItem[] {
    return [...this.#review.values()].sort(reviewOrder);
  }

  async claimReview(reviewer: string, claimMs: number, itemId?: string): Promise<StoredReviewItem | undefined> {
    this.#check();
    const t = now();
    let item: StoredReviewItem | undefined;
    if (itemId !== undefined) {
      item = this.#review.get(itemId);
      if (!item) throw notFound(`review item ${itemId} not found`);
      if (item.status === 'resolved') throw new SrvError('SRV_ERR_CONFLICT', `review item ${itemId} is resolved`);
      if (claimActive(item, t) && item.claim?.reviewer !== reviewer)
        throw new SrvError('SRV_ERR_CONFLICT', `review item ${itemId} is claimed by ${item.claim?.reviewer}`);
    } else {
      item = this.#ordered().find((i) => i.status !== 'resolved' && !claimActive(i, t));
      if (!item) return undefined;
    }
    item.status = 'claimed';
    item.claim = { reviewer, claimedAt: t, expiresAt: t + claimMs };
    return clone(item);
  }

  async resolveReview(
    itemId: string,
    reviewer: string,
    resolution: PolicyReviewResolution,
    extra: { decisionId?: string; outcomeStatementId?: string } = {},
  ): Promise<StoredReviewItem> {
    this.#check();
    const item = this.#review.get(itemId);
    if (!item) throw notFound(`review item ${itemId} not found`);
    if (item.status === 'resolved') throw new SrvError('SRV_ERR_CONFLICT', `review item ${itemId} is already resolved`);
    if (!claimActive(item, now()) || item.claim?.reviewer !== reviewer)
      throw new SrvError('SRV_ERR_CLAIM_EXPIRED', `review item ${itemId} is not claimed by ${reviewer} (claim missing, lapsed or held by another)`);
    item.status = 'resolved';
    item.resolution = clone(resolution);
    Object.assign(item, clone(extra));
    return clone(item);
  }

  async getReview(itemId: string): Promise<StoredReviewItem | undefined> {
    this.#check();
    const i = this.#review.get(itemId);
    return i && withLapsedClaim(clone(i), now());
  }

  async listReview(options: { includeResolved?: boolean; type?: 'amber' | 'appeal'; streamId?: string; limit?: number } = {}): Promise<StoredReviewItem[]> {
    this.#check();
    const t = now();
    return this.#ordered()
      .filter(
        (i) =>
          (options.includeResolved || i.status !== 'resolved') &&
          (options.type === undefined || i.type === options.type) &&
          (options.streamId === undefined || i.streamId === options.streamId),
      )
      .slice(0, options.limit ?? 200)
      .map((i) => withLapsedClaim(clone(i), t));
  }

  async reviewDepth(): Promise<number> {
    this.#check();
    let n = 0;
    for (const i of this.#review.values()) if (i.status !== 'resolved') n++;
    return n;
  }

  async publishControl(message: ControlMessage): Promise<void> {
    this.#check();
    const copy = clone(message);
    // Delivered asynchronously, as Redis pub/sub would.
    setImmediate(() => {
      for (const h of [...this.#handlers]) {
        try {
          h(clone(copy));
        } catch {
          // a failing handler must not stop delivery to the others; app.ts logs inside its handler
        }
      }
    });
  }

  onControl(handler: (message: ControlMessage) => void): Unsubscribe {
    this.#handlers.add(handler);
    return () => this.#handlers.delete(handler);
  }

  async ping(): Promise<boolean> {
    return !this.#closed;
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {
    this.#closed = true;
    this.#handlers.clear();
  }
}
