// In-memory Store: the default for one node. Same semantics as RedisStore (shared test suite).
// Every collection is bounded (docs/RETENTION.md): without bounds a node that ran for weeks kept every
// audit entry, decision, statement and review thumbnail (a 320-pixel JPEG data URL: 3.2-3.5 kB for
// the synthetic test scene, more for camera pictures) until it ran out of memory. What goes first is
// what matters least: resolved items' thumbnails, then resolved items, decisions and statements
// nothing open refers to, then the oldest audit entries. Open review work, appeals, blocks and the
// statements that back them are never dropped; every drop is counted.
import type { StatementOfReasons } from '../../policies/types.ts';
import { SrvError, notFound } from '../errors.ts';
import { chainAuditEntry } from '../../policies/audit.ts';
import { compareReviewItems, isClaimActive } from '../../policies/statements.ts';
import { PRIORITY_ESCALATED, type ReviewVote } from '../../policies/review.ts';
import type { ShadowDifference } from '../../policies/shadow.ts';
import { DEFAULT_RETENTION, SHADOW_DIFFERENCES_KEPT, SHADOW_RUNS_KEPT } from './types.ts';
import type {
  ActivePolicyRecord,
  BankEdit,
  BankEditInput,
  ShadowPolicyRecord,
  AuditEntry,
  ControlMessage,
  DecisionRecord,
  LiveStreamRecord,
  PolicyReviewItem,
  PolicyReviewResolution,
  Store,
  StoreCollection,
  StoreDropReason,
  StoreRetention,
  StoreRetentionStats,
  StoredReviewItem,
  StreamBlock,
  Unsubscribe,
} from './types.ts';

const clone = <T>(v: T): T => structuredClone(v);

/** Drops per collection and reason since start (one owner for both stores' figures). */
export class DropCounts {
  readonly #counts = new Map<string, { collection: StoreCollection; reason: StoreDropReason; count: number }>();
  add(collection: StoreCollection, reason: StoreDropReason, n = 1): void {
    if (n <= 0) return;
    const key = `${collection}:${reason}`;
    const e = this.#counts.get(key);
    if (e) e.count += n;
    else this.#counts.set(key, { collection, reason, count: n });
  }
  list(): StoreRetentionStats['dropped'] {
    return [...this.#counts.values()].map((e) => ({ ...e }));
  }
}

/** Retention with defaults filled in and bounds made sane (at least one entry of each kind). */
export function retentionOf(over: Partial<StoreRetention> = {}): StoreRetention {
  const r = {
    ...DEFAULT_RETENTION,
    ...Object.fromEntries(Object.entries(over).filter(([, v]) => v !== undefined)),
  } as StoreRetention;
  for (const k of ['maxAudit', 'maxRecords', 'maxResolvedReview', 'maxOpenReview'] as const)
    r[k] = Math.max(1, Math.floor(r[k]));
  return r;
}

/** Records by id in insertion order (oldest first), listed newest first. */
class RecentIndex<T extends { id: string; streamId: string }> {
  readonly #byId = new Map<string, { value: T; storedAt: number }>();
  get size(): number {
    return this.#byId.size;
  }
  put(value: T, at: number): void {
    // first write wins, as Redis' SET NX: a retried put never overwrites
    if (!this.#byId.has(value.id)) this.#byId.set(value.id, { value: clone(value), storedAt: at });
  }
  get(id: string): T | undefined {
    const e = this.#byId.get(id);
    return e && clone(e.value);
  }
  list(filter: { streamId?: string; limit?: number } = {}): T[] {
    const out: T[] = [];
    const limit = filter.limit ?? 100;
    const all = [...this.#byId.values()];
    for (let i = all.length - 1; i >= 0 && out.length < limit; i--) {
      const v = all[i].value;
      if (filter.streamId === undefined || v.streamId === filter.streamId) out.push(clone(v));
    }
    return out;
  }
  /** Drops the oldest entries beyond `cap` or stored before `cutoff`, never one `keep` names. */
  prune(cap: number, cutoff: number, keep?: (id: string) => boolean): Record<'count' | 'age', number> {
    const dropped = { count: 0, age: 0 };
    let over = this.#byId.size - cap;
    for (const [id, e] of this.#byId) {
      const old = e.storedAt < cutoff;
      // insertion order is storage order: past the excess, the first young entry ends the scan
      if (over <= 0 && !old) break;
      if (keep?.(id)) continue;
      this.#byId.delete(id);
      over--;
      dropped[old ? 'age' : 'count']++;
    }
    return dropped;
  }
}

/** A claim holds while the item is claimed and its claim has not lapsed (policies' isClaimActive). */
export function claimActive(item: StoredReviewItem, t: number): boolean {
  return item.status === 'claimed' && isClaimActive(item, t);
}

/** A lapsed claim reads as pending (the claim itself stays for the record until re-claimed). */
export function withLapsedClaim(item: StoredReviewItem, t: number): StoredReviewItem {
  if (item.status === 'claimed' && !claimActive(item, t)) item.status = 'pending';
  return item;
}

export interface MemoryStoreOptions {
  /** Retention bounds (docs/RETENTION.md). Default DEFAULT_RETENTION (server/store/types.ts). */
  retention?: Partial<StoreRetention>;
  /** How often age-based retention and expired registry entries are swept (ms); 0 = only when writes cross a bound. Default 60000. */
  pruneIntervalMs?: number;
  /** Clock (ms since the epoch). Default Date.now; tests pass their own. */
  now?: () => number;
  /** HMAC key of the audit chain (policies/audit.ts). Default none (plain sha256). */
  auditKey?: string;
}

/** Audit operation ids remembered for idempotent appends (the newest this many). */
const AUDIT_OPS_KEPT = 10_000;

export class MemoryStore implements Store {
  readonly kind = 'memory' as const;
  readonly #streams = new Map<string, { record: LiveStreamRecord; expiresAt: number }>();
  readonly #blocks = new Map<string, StreamBlock>();
  readonly #decisions = new RecentIndex<DecisionRecord>();
  readonly #statements = new RecentIndex<StatementOfReasons>();
  #audit: AuditEntry[] = [];
  /** The last audit entry trimmed away: the chain continues from it. */
  #auditAnchor: AuditEntry | undefined;
  /** Insertion order = creation order, which the thumbnail trim walks oldest first. */
  readonly #review = new Map<string, StoredReviewItem>();
  /** Resolved item id -> when it was resolved, in resolution order. */
  readonly #resolvedAt = new Map<string, number>();
  #openAmber = 0;
  #thumbnailBytes = 0;
  readonly #dropped = new DropCounts();
  readonly #handlers = new Set<(m: ControlMessage) => void>();
  readonly #retention: StoreRetention;
  readonly #now: () => number;
  readonly #timer: NodeJS.Timeout | undefined;
  readonly #auditKey: string | undefined;
  readonly #auditOps = new Map<string, number>();
  #activePolicy: ActivePolicyRecord | undefined;
  readonly #bankEdits: BankEdit[] = [];
  #shadow: ShadowPolicyRecord | undefined;
  /** Insertion order = run order (a re-run moves to the end). */
  readonly #shadowRuns = new Map<string, ShadowPolicyRecord>();
  readonly #shadowDifferences = new Map<string, ShadowDifference[]>();
  #closed = false;

  constructor(options: MemoryStoreOptions = {}) {
    this.#retention = retentionOf(options.retention);
    this.#auditKey = options.auditKey;
    this.#now = options.now ?? Date.now;
    const every = options.pruneIntervalMs ?? 60_000;
    if (every > 0) {
      this.#timer = setInterval(() => this.prune(), every);
      this.#timer.unref();
    }
  }

  get retention(): Readonly<StoreRetention> {
    return this.#retention;
  }

  #check(): void {
    if (this.#closed) throw new SrvError('SRV_ERR_STORE_UNAVAILABLE', 'store is closed');
  }

  async putStream(record: LiveStreamRecord, ttlMs: number): Promise<void> {
    this.#check();
    this.#streams.set(record.streamId, { record: clone(record), expiresAt: this.#now() + ttlMs });
  }

  async heartbeat(
    streamId: string,
    ttlMs: number,
    patch: Partial<Omit<LiveStreamRecord, 'streamId'>> = {},
  ): Promise<boolean> {
    this.#check();
    const t = this.#now();
    const e = this.#streams.get(streamId);
    if (!e || e.expiresAt <= t) {
      this.#streams.delete(streamId);
      return false;
    }
    e.record = { ...e.record, ...clone(patch), streamId, heartbeatAt: t };
    e.expiresAt = t + ttlMs;
    return true;
  }

  async getStream(streamId: string): Promise<LiveStreamRecord | undefined> {
    this.#check();
    const e = this.#streams.get(streamId);
    if (!e) return undefined;
    if (e.expiresAt <= this.#now()) {
      this.#streams.delete(streamId);
      return undefined;
    }
    return clone(e.record);
  }

  async listStreams(): Promise<LiveStreamRecord[]> {
    this.#check();
    this.#sweepStreams();
    return [...this.#streams.values()].map((e) => clone(e.record)).sort((a, b) => a.startedAt - b.startedAt);
  }

  #sweepStreams(): void {
    const t = this.#now();
    for (const [id, e] of this.#streams) if (e.expiresAt <= t) this.#streams.delete(id);
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
    this.#decisions.put(decision, this.#now());
    if (this.#decisions.size > this.#retention.maxRecords) this.#pruneDecisions();
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
    this.#statements.put(statement, this.#now());
    if (this.#statements.size > this.#retention.maxRecords) this.#pruneStatements();
  }
  async getStatement(id: string): Promise<StatementOfReasons | undefined> {
    this.#check();
    return this.#statements.get(id);
  }
  async listStatements(filter?: { streamId?: string; limit?: number }): Promise<StatementOfReasons[]> {
    this.#check();
    return this.#statements.list(filter);
  }

  #cutoff(): number {
    return this.#retention.retentionMs > 0 ? this.#now() - this.#retention.retentionMs : -Infinity;
  }

  #pruneDecisions(): void {
    const d = this.#decisions.prune(this.#retention.maxRecords, this.#cutoff());
    this.#dropped.add('decisions', 'count', d.count);
    this.#dropped.add('decisions', 'age', d.age);
  }

  #pruneStatements(): void {
    // a statement an open item (an appeal of it, an amber item citing it) or a block refers to backs
    // work or a restriction still in force: it stays whatever its age
    let pinned: Set<string> | undefined;
    const keep = (id: string): boolean => {
      if (!pinned) {
        pinned = new Set();
        for (const i of this.#review.values()) if (i.status !== 'resolved' && i.statementId) pinned.add(i.statementId);
        for (const b of this.#blocks.values()) if (b.statementId) pinned.add(b.statementId);
      }
      return pinned.has(id);
    };
    const d = this.#statements.prune(this.#retention.maxRecords, this.#cutoff(), keep);
    this.#dropped.add('statements', 'count', d.count);
    this.#dropped.add('statements', 'age', d.age);
  }

  async appendAudit(body: Record<string, unknown>, options: { id?: string } = {}): Promise<AuditEntry> {
    this.#check();
    const done = options.id === undefined ? undefined : this.#auditOps.get(options.id);
    if (done !== undefined) {
      const first = this.#audit[0]?.seq ?? 1;
      const e = this.#audit[done - first];
      if (e) return clone(e);
    }
    const entry = chainAuditEntry(this.#audit.at(-1) ?? this.#auditAnchor, clone(body), this.#now(), this.#auditKey);
    this.#audit.push(entry);
    if (options.id !== undefined) {
      this.#auditOps.set(options.id, entry.seq);
      if (this.#auditOps.size > AUDIT_OPS_KEPT) this.#auditOps.delete(this.#auditOps.keys().next().value!);
    }
    if (this.#audit.length > this.#retention.maxAudit) {
      // the oldest 1 % at once, so trimming costs one copy per 1 % of appends, not one per append
      const n = this.#audit.length - this.#retention.maxAudit + Math.floor(this.#retention.maxAudit / 100);
      this.#auditAnchor = this.#audit[n - 1];
      this.#audit = this.#audit.slice(n);
      this.#dropped.add('audit', 'count', n);
    }
    return clone(entry);
  }
  async auditHead(): Promise<AuditEntry | undefined> {
    this.#check();
    const e = this.#audit.at(-1) ?? this.#auditAnchor;
    return e && clone(e);
  }
  async readAudit(options: { afterSeq?: number; limit?: number } = {}): Promise<AuditEntry[]> {
    this.#check();
    const first = this.#audit[0]?.seq ?? 1;
    const from = Math.max(0, (options.afterSeq ?? 0) - first + 1);
    return clone(this.#audit.slice(from, from + (options.limit ?? 1000)));
  }

  async enqueueReview(
    item: PolicyReviewItem,
    extra: { thumbnail?: string; clips?: StoredReviewItem['clips'] } = {},
  ): Promise<StoredReviewItem> {
    this.#check();
    const existing = this.#review.get(item.id);
    if (existing) return clone(existing);
    if (item.type === 'amber' && this.#openAmber >= this.#retention.maxOpenReview) {
      this.#dropped.add('review_open', 'queue_full');
      throw new SrvError(
        'SRV_ERR_UNAVAILABLE',
        `review queue full: ${this.#openAmber} open amber items (storeMaxOpenReview ${this.#retention.maxOpenReview}); item ${item.id} of stream ${item.streamId} refused`,
      );
    }
    const stored: StoredReviewItem = { ...clone(item), ...clone(extra), status: 'pending' };
    delete stored.claim;
    if (stored.thumbnail === undefined) delete stored.thumbnail;
    this.#review.set(stored.id, stored);
    if (stored.type === 'amber') this.#openAmber++;
    this.#thumbnailBytes += stored.thumbnail?.length ?? 0;
    if (this.#thumbnailBytes > this.#retention.maxThumbnailBytes) this.#trimThumbnails();
    return clone(stored);
  }

  #ordered(): StoredReviewItem[] {
    return [...this.#review.values()].sort(compareReviewItems);
  }

  async claimReview(reviewer: string, claimMs: number, itemId?: string): Promise<StoredReviewItem | undefined> {
    this.#check();
    const t = this.#now();
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
    if (!claimActive(item, this.#now()) || item.claim?.reviewer !== reviewer)
      throw new SrvError(
        'SRV_ERR_CLAIM_EXPIRED',
        `review item ${itemId} is not claimed by ${reviewer} (claim missing, lapsed or held by another)`,
      );
    item.status = 'resolved';
    item.resolution = clone(resolution);
    Object.assign(item, clone(extra));
    this.#resolvedAt.set(itemId, this.#now());
    if (item.type === 'amber') this.#openAmber--;
    const out = clone(item);
    if (this.#resolvedAt.size > this.#retention.maxResolvedReview) this.#pruneResolved();
    return out;
  }

  async voteReview(
    itemId: string,
    reviewer: string,
    votes: readonly ReviewVote[],
    options: { release: boolean; escalate: boolean },
  ): Promise<StoredReviewItem> {
    this.#check();
    const item = this.#review.get(itemId);
    if (!item) throw notFound(`review item ${itemId} not found`);
    if (item.status === 'resolved') throw new SrvError('SRV_ERR_CONFLICT', `review item ${itemId} is already resolved`);
    if (!claimActive(item, this.#now()) || item.claim?.reviewer !== reviewer)
      throw new SrvError(
        'SRV_ERR_CLAIM_EXPIRED',
        `review item ${itemId} is not claimed by ${reviewer} (claim missing, lapsed or held by another)`,
      );
    item.votes = clone([...votes]);
    if (options.escalate) {
      item.escalated = true;
      item.priority = PRIORITY_ESCALATED;
    }
    if (options.release) {
      delete item.claim;
      item.status = 'pending';
    }
    return clone(item);
  }

  #dropThumbnail(item: StoredReviewItem, reason: StoreDropReason): void {
    if (item.thumbnail === undefined) return;
    this.#thumbnailBytes -= item.thumbnail.length;
    delete item.thumbnail;
    this.#dropped.add('thumbnails', reason);
  }

  /** Resolved items' thumbnails past their retention, then (over the byte bound) resolved items' and the oldest open amber items'. */
  #trimThumbnails(): void {
    const r = this.#retention;
    const stale = this.#now() - r.thumbnailRetentionMs;
    for (const [id, at] of this.#resolvedAt) {
      const item = this.#review.get(id);
      if (!item) continue;
      if (at < stale) this.#dropThumbnail(item, 'age');
      else if (this.#thumbnailBytes > r.maxThumbnailBytes) this.#dropThumbnail(item, 'bytes');
      else if (item.thumbnail !== undefined) break;
    }
    if (this.#thumbnailBytes <= r.maxThumbnailBytes) return;
    // an appeal's evidence is what the appellant disputes: its thumbnail stays
    for (const item of this.#review.values()) {
      if (this.#thumbnailBytes <= r.maxThumbnailBytes) break;
      if (item.status !== 'resolved' && item.type === 'amber') this.#dropThumbnail(item, 'bytes');
    }
  }

  /** Resolved items beyond the count bound or past the retention, earliest resolved first. */
  #pruneResolved(): void {
    const cutoff = this.#cutoff();
    let over = this.#resolvedAt.size - this.#retention.maxResolvedReview;
    for (const [id, at] of this.#resolvedAt) {
      const old = at < cutoff;
      if (over <= 0 && !old) break;
      const item = this.#review.get(id);
      if (item?.thumbnail !== undefined) this.#dropThumbnail(item, old ? 'age' : 'count');
      this.#review.delete(id);
      this.#resolvedAt.delete(id);
      over--;
      this.#dropped.add('review_resolved', old ? 'age' : 'count');
    }
  }

  /** Applies every bound now (the timer calls it; tests call it after moving their clock). */
  prune(): void {
    if (this.#closed) return;
    this.#sweepStreams();
    this.#trimThumbnails();
    this.#pruneResolved();
    this.#pruneDecisions();
    this.#pruneStatements();
  }

  async retentionStats(): Promise<StoreRetentionStats> {
    this.#check();
    let thumbnails = 0;
    for (const i of this.#review.values()) if (i.thumbnail !== undefined) thumbnails++;
    return {
      entries: {
        audit: this.#audit.length,
        decisions: this.#decisions.size,
        statements: this.#statements.size,
        review_open: this.#review.size - this.#resolvedAt.size,
        review_resolved: this.#resolvedAt.size,
        thumbnails,
        blocks: this.#blocks.size,
        streams: this.#streams.size,
      },
      thumbnailBytes: this.#thumbnailBytes,
      dropped: this.#dropped.list(),
      auditFirstSeq: this.#audit[0]?.seq ?? (this.#auditAnchor ? this.#auditAnchor.seq + 1 : 1),
    };
  }

  async getReview(itemId: string): Promise<StoredReviewItem | undefined> {
    this.#check();
    const i = this.#review.get(itemId);
    return i && withLapsedClaim(clone(i), this.#now());
  }

  async listReview(
    options: { includeResolved?: boolean; type?: 'amber' | 'appeal'; streamId?: string; limit?: number } = {},
  ): Promise<StoredReviewItem[]> {
    this.#check();
    const t = this.#now();
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
    return this.#review.size - this.#resolvedAt.size;
  }

  async appendBankEdit(edit: BankEditInput): Promise<BankEdit> {
    const stored = { ...edit, seq: this.#bankEdits.length + 1 } as BankEdit;
    this.#bankEdits.push(structuredClone(stored));
    return stored;
  }

  async listBankEdits(after: number, limit = 1000): Promise<BankEdit[]> {
    return this.#bankEdits.slice(Math.max(0, after), Math.max(0, after) + limit).map((e) => structuredClone(e));
  }

  async setActivePolicy(record: ActivePolicyRecord): Promise<void> {
    this.#check();
    this.#activePolicy = clone(record);
  }
  async getActivePolicy(): Promise<ActivePolicyRecord | undefined> {
    this.#check();
    return this.#activePolicy && clone(this.#activePolicy);
  }

  async setShadowPolicy(record: ShadowPolicyRecord | undefined): Promise<void> {
    this.#check();
    this.#shadow = record && clone(record);
    if (!record) return;
    this.#shadowRuns.delete(record.version);
    this.#shadowRuns.set(record.version, clone(record));
    for (const version of this.#shadowRuns.keys()) {
      if (this.#shadowRuns.size <= SHADOW_RUNS_KEPT) break;
      this.#shadowRuns.delete(version);
      this.#shadowDifferences.delete(version);
    }
  }
  async getShadowPolicy(): Promise<ShadowPolicyRecord | undefined> {
    this.#check();
    return this.#shadow && clone(this.#shadow);
  }
  async getShadowRun(version: string): Promise<ShadowPolicyRecord | undefined> {
    this.#check();
    const r = this.#shadowRuns.get(version);
    return r && clone(r);
  }
  async appendShadowDifferences(differences: readonly ShadowDifference[]): Promise<void> {
    this.#check();
    for (const d of differences) {
      const list = this.#shadowDifferences.get(d.candidateVersion) ?? [];
      list.push(clone(d));
      if (list.length > SHADOW_DIFFERENCES_KEPT) list.splice(0, list.length - SHADOW_DIFFERENCES_KEPT);
      this.#shadowDifferences.set(d.candidateVersion, list);
    }
  }
  async listShadowDifferences(candidateVersion: string): Promise<ShadowDifference[]> {
    this.#check();
    return clone(this.#shadowDifferences.get(candidateVersion) ?? []);
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
    if (this.#timer) clearInterval(this.#timer);
    this.#handlers.clear();
  }
}
