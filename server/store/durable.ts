// A Store whose enforcement records survive a store outage and a node crash: statements, decisions,
// blocks, unblocks, audit entries and review items go through the node's outbox (outbox.ts: on disk
// first, delivered in order, retried until acknowledged, idempotent in the store); reads and the
// rest go straight to the inner store. The enforcer and the routes keep calling the Store interface;
// enforcement never waits on the outbox (the enforcer's ports are not awaited, and a write made while
// the store is away settles at once with an OutboxQueuedError instead of hanging).
//
// It also watches the audit chain's head against checkpoints it keeps outside the store
// (audit-chain.ts): at start, every `headCheckMs` and whenever an append lands below the head it
// knew, a head behind the last checkpoint (Redis restarted empty, or without its AOF) or an entry
// that no longer carries its checkpoint's hash raises an alarm instead of the chain restarting at
// seq 1 unnoticed.
import type { StatementOfReasons } from '../../policies/types.ts';
import type { ShadowDifference } from '../../policies/shadow.ts';
import type { ReviewVote } from '../../policies/review.ts';
import { AuditCheckpointFile, type AuditCheckpoint } from './audit-chain.ts';
import { Outbox, OutboxQueuedError, type OutboxOp, type OutboxRecord, type OutboxStats } from './outbox.ts';
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
  StoreRetentionStats,
  StoredReviewItem,
  StreamBlock,
  Unsubscribe,
} from './types.ts';

export { OutboxQueuedError };
export type { OutboxStats };

/** The chain went backwards (its head is behind a checkpoint) or an entry was rewritten. */
export interface AuditChainAlarm {
  kind: 'backwards' | 'rewritten';
  message: string;
  /** The checkpoint (or head seen before) it was checked against. */
  expected: { seq: number; hash: string };
  /** The store's head now (seq 0 = empty), or the entry found at the expected seq. */
  found: { seq: number; hash: string | null };
  /** Where the checkpoints of the old chain were moved. */
  supersededFile?: string;
}

export interface DurableStoreOptions {
  inner: Store;
  /** Outbox directory (OUTBOX_DIR): one per node or host, on a volume. */
  dir: string;
  nodeId: string;
  /** Names the store, so only outboxes of the same store are adopted (the Redis URL's host and the prefix). */
  storeId: string;
  /** Most records pending in the outbox. Default 100000. */
  maxRecords?: number;
  /** A checkpoint of the chain head every this many audit entries this node appends. Default 100. */
  checkpointEvery?: number;
  /** How often the store's chain head is checked against what this node knew (ms); 0 = only at start and on appends. Default 5000. */
  headCheckMs?: number;
  onAlarm?: (alarm: AuditChainAlarm) => void;
  onCheckpoint?: (checkpoint: AuditCheckpoint) => void;
  /** A record the outbox could not keep (full) or the store refused for good. */
  onDrop?: (what: string, why: 'full' | 'refused', err?: unknown) => void;
}

export class DurableStore implements Store {
  readonly #inner: Store;
  readonly #outbox: Outbox;
  readonly #checkpoints: AuditCheckpointFile;
  readonly #o: DurableStoreOptions;
  /** The highest chain head this node has seen (its own appends, the store's head at each check). */
  #known: { seq: number; hash: string } | undefined;
  #sinceCheckpoint = 0;
  #checking: Promise<void> | undefined;
  readonly #timer: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(options: DurableStoreOptions) {
    this.#o = options;
    this.#inner = options.inner;
    this.#checkpoints = new AuditCheckpointFile(options.dir, options.storeId);
    const head = this.#checkpoints.head();
    if (head) this.#known = { seq: head.seq, hash: head.hash };
    this.#outbox = new Outbox({
      dir: options.dir,
      nodeId: options.nodeId,
      storeId: options.storeId,
      maxRecords: options.maxRecords,
      deliver: (r) => this.#deliver(r),
      onDrop: (r, why, err) => options.onDrop?.('op' in r ? r.op.kind : r.kind, why, err),
    });
    const every = options.headCheckMs ?? 5000;
    if (every > 0) {
      this.#timer = setInterval(() => void this.checkHead(), every);
      this.#timer.unref();
    }
  }

  /** Opens the outbox (adopting what dead processes left in the directory) and checks the chain head once. */
  static async open(options: DurableStoreOptions): Promise<DurableStore> {
    const store = new DurableStore(options);
    await store.checkHead({ atStart: true });
    return store;
  }

  get kind(): Store['kind'] {
    return this.#inner.kind;
  }

  /** The store it writes to. */
  get inner(): Store {
    return this.#inner;
  }

  get outboxPath(): string {
    return this.#outbox.path;
  }

  get checkpointFile(): AuditCheckpointFile {
    return this.#checkpoints;
  }

  outboxStats(): OutboxStats {
    return this.#outbox.stats();
  }

  async #deliver(r: OutboxRecord): Promise<unknown> {
    const op = r.op;
    switch (op.kind) {
      case 'statement':
        return this.#inner.putStatement(op.value);
      case 'decision':
        return this.#inner.putDecision(op.value);
      case 'block':
        return this.#inner.setBlock(op.value);
      case 'unblock':
        return this.#inner.clearBlock(op.streamId);
      case 'review':
        return this.#inner.enqueueReview(op.item, op.thumbnail === undefined ? {} : { thumbnail: op.thumbnail });
      case 'audit': {
        const entry = await this.#inner.appendAudit(op.body, { id: r.id });
        this.#onAppended(entry);
        return entry;
      }
    }
  }

  #push<T>(op: OutboxOp): Promise<T> {
    return this.#outbox.push(op) as Promise<T>;
  }

  #onAppended(entry: AuditEntry): void {
    const known = this.#known;
    if (known && entry.seq < known.seq) {
      // below the head this node knew: a retried append (its answer was lost) returns its older
      // entry, which is fine; a store that went backwards is not. The head says which.
      void this.checkHead();
      return;
    }
    this.#known = { seq: entry.seq, hash: entry.hash };
    if (++this.#sinceCheckpoint >= (this.#o.checkpointEvery ?? 100)) this.checkpoint();
  }

  /** Writes a checkpoint of the head this node knows (to the checkpoint file, and tells onCheckpoint). */
  checkpoint(): AuditCheckpoint | undefined {
    const k = this.#known;
    if (!k) return undefined;
    this.#sinceCheckpoint = 0;
    const c: AuditCheckpoint = { seq: k.seq, hash: k.hash, at: Date.now(), nodeId: this.#o.nodeId };
    const last = this.#checkpoints.head();
    if (last && last.seq === c.seq && last.hash === c.hash) return last;
    this.#checkpoints.write(c);
    this.#o.onCheckpoint?.(c);
    return c;
  }

  /** Compares the store's chain head with what this node knew; raises the alarm when it went backwards or was rewritten. */
  checkHead(options: { atStart?: boolean } = {}): Promise<void> {
    return (this.#checking ??= this.#checkHead(options.atStart === true).finally(() => (this.#checking = undefined)));
  }

  async #checkHead(atStart: boolean): Promise<void> {
    if (this.#closed) return;
    let head: AuditEntry | undefined;
    try {
      head = await this.#inner.auditHead();
    } catch {
      return; // store away: checked again once it is back
    }
    const known = this.#known;
    if (known) {
      const headSeq = head?.seq ?? 0;
      if (headSeq < known.seq) {
        this.#alarm(
          {
            kind: 'backwards',
            message: `audit chain went backwards: the store's head is seq ${headSeq}, this node knew seq ${known.seq} (${atStart ? 'checkpoint before this start' : 'seen while running'}); the store lost entries (restarted empty or without its append-only file?)`,
            expected: known,
            found: { seq: headSeq, hash: head?.hash ?? null },
          },
          head,
        );
        return;
      }
      if (atStart) {
        let at: AuditEntry | undefined;
        try {
          at = (await this.#inner.readAudit({ afterSeq: known.seq - 1, limit: 1 }))[0];
        } catch {
          return;
        }
        // trimmed past it is fine (docs/RETENTION.md); present with another hash is a rewrite
        if (at && at.seq === known.seq && at.hash !== known.hash) {
          this.#alarm(
            {
              kind: 'rewritten',
              message: `audit entry seq ${known.seq} no longer carries the hash checkpointed before this start (${known.hash.slice(0, 16)}..., found ${at.hash.slice(0, 16)}...): the log was rewritten`,
              expected: known,
              found: { seq: at.seq, hash: at.hash },
            },
            head,
          );
          return;
        }
      }
    }
    if (head && (!known || head.seq > known.seq)) this.#known = { seq: head.seq, hash: head.hash };
  }

  #alarm(alarm: AuditChainAlarm, head: AuditEntry | undefined): void {
    alarm.supersededFile = this.#checkpoints.supersede(Date.now());
    // the chain as the store has it now is the reference from here on (one alarm per incident)
    this.#known = head ? { seq: head.seq, hash: head.hash } : undefined;
    this.#sinceCheckpoint = 0;
    if (head) this.checkpoint();
    this.#o.onAlarm?.(alarm);
  }

  // ---- writes through the outbox

  putStatement(statement: StatementOfReasons): Promise<void> {
    return this.#push({ kind: 'statement', value: statement });
  }
  putDecision(decision: DecisionRecord): Promise<void> {
    return this.#push({ kind: 'decision', value: decision });
  }
  setBlock(block: StreamBlock): Promise<void> {
    return this.#push({ kind: 'block', value: block });
  }
  clearBlock(streamId: string): Promise<boolean> {
    return this.#push({ kind: 'unblock', streamId });
  }
  appendAudit(body: Record<string, unknown>): Promise<AuditEntry> {
    return this.#push({ kind: 'audit', body });
  }
  enqueueReview(item: PolicyReviewItem, extra: { thumbnail?: string } = {}): Promise<StoredReviewItem> {
    return this.#push({
      kind: 'review',
      item,
      ...(extra.thumbnail === undefined ? {} : { thumbnail: extra.thumbnail }),
    });
  }

  // ---- the rest: straight to the inner store

  putStream(record: LiveStreamRecord, ttlMs: number): Promise<void> {
    return this.#inner.putStream(record, ttlMs);
  }
  heartbeat(streamId: string, ttlMs: number, patch?: Partial<Omit<LiveStreamRecord, 'streamId'>>): Promise<boolean> {
    return this.#inner.heartbeat(streamId, ttlMs, patch);
  }
  getStream(streamId: string): Promise<LiveStreamRecord | undefined> {
    return this.#inner.getStream(streamId);
  }
  listStreams(): Promise<LiveStreamRecord[]> {
    return this.#inner.listStreams();
  }
  removeStream(streamId: string): Promise<void> {
    return this.#inner.removeStream(streamId);
  }
  getBlock(streamId: string): Promise<StreamBlock | undefined> {
    return this.#inner.getBlock(streamId);
  }
  getDecision(id: string): Promise<DecisionRecord | undefined> {
    return this.#inner.getDecision(id);
  }
  listDecisions(filter?: { streamId?: string; limit?: number }): Promise<DecisionRecord[]> {
    return this.#inner.listDecisions(filter);
  }
  getStatement(id: string): Promise<StatementOfReasons | undefined> {
    return this.#inner.getStatement(id);
  }
  listStatements(filter?: { streamId?: string; limit?: number }): Promise<StatementOfReasons[]> {
    return this.#inner.listStatements(filter);
  }
  readAudit(options?: { afterSeq?: number; limit?: number }): Promise<AuditEntry[]> {
    return this.#inner.readAudit(options);
  }
  auditHead(): Promise<AuditEntry | undefined> {
    return this.#inner.auditHead();
  }
  claimReview(reviewer: string, claimMs: number, itemId?: string): Promise<StoredReviewItem | undefined> {
    return this.#inner.claimReview(reviewer, claimMs, itemId);
  }
  resolveReview(
    itemId: string,
    reviewer: string,
    resolution: PolicyReviewResolution,
    extra?: { decisionId?: string; outcomeStatementId?: string },
  ): Promise<StoredReviewItem> {
    return this.#inner.resolveReview(itemId, reviewer, resolution, extra);
  }
  voteReview(
    itemId: string,
    reviewer: string,
    votes: readonly ReviewVote[],
    options: { release: boolean; escalate: boolean },
  ): Promise<StoredReviewItem> {
    return this.#inner.voteReview(itemId, reviewer, votes, options);
  }
  getReview(itemId: string): Promise<StoredReviewItem | undefined> {
    return this.#inner.getReview(itemId);
  }
  listReview(options?: {
    includeResolved?: boolean;
    type?: 'amber' | 'appeal';
    streamId?: string;
    limit?: number;
  }): Promise<StoredReviewItem[]> {
    return this.#inner.listReview(options);
  }
  reviewDepth(): Promise<number> {
    return this.#inner.reviewDepth();
  }
  // a bank edit is the caller's to retry: the route answers 503 and applies nothing when the store is away
  appendBankEdit(edit: BankEditInput): Promise<BankEdit> {
    return this.#inner.appendBankEdit(edit);
  }
  listBankEdits(after: number, limit?: number): Promise<BankEdit[]> {
    return this.#inner.listBankEdits(after, limit);
  }
  setActivePolicy(record: ActivePolicyRecord): Promise<void> {
    return this.#inner.setActivePolicy(record);
  }
  getActivePolicy(): Promise<ActivePolicyRecord | undefined> {
    return this.#inner.getActivePolicy();
  }
  setShadowPolicy(record: ShadowPolicyRecord | undefined): Promise<void> {
    return this.#inner.setShadowPolicy(record);
  }
  getShadowPolicy(): Promise<ShadowPolicyRecord | undefined> {
    return this.#inner.getShadowPolicy();
  }
  getShadowRun(version: string): Promise<ShadowPolicyRecord | undefined> {
    return this.#inner.getShadowRun(version);
  }
  appendShadowDifferences(differences: readonly ShadowDifference[]): Promise<void> {
    return this.#inner.appendShadowDifferences(differences);
  }
  listShadowDifferences(candidateVersion: string): Promise<ShadowDifference[]> {
    return this.#inner.listShadowDifferences(candidateVersion);
  }
  publishControl(message: ControlMessage): Promise<void> {
    return this.#inner.publishControl(message);
  }
  onControl(handler: (message: ControlMessage) => void): Unsubscribe {
    return this.#inner.onControl(handler);
  }
  ping(): Promise<boolean> {
    return this.#inner.ping();
  }
  async retentionStats(): Promise<StoreRetentionStats> {
    if (!this.#inner.retentionStats) throw new Error('the inner store keeps no retention figures');
    return this.#inner.retentionStats();
  }

  /** Waits for the outbox to empty (up to `timeoutMs`, default 5000) and the inner store's writes; returns the depth left. */
  async drain(timeoutMs = 5000): Promise<number> {
    const left = await this.#outbox.drain(timeoutMs);
    await this.#inner.flush();
    return left;
  }

  async flush(): Promise<void> {
    await this.drain();
  }

  /** Delivers what it can (up to 3 s), checkpoints the head, closes the outbox (what is left stays on disk) and the inner store. */
  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#timer) clearInterval(this.#timer);
    await this.#outbox.drain(3000);
    await this.#checking;
    this.#closed = true;
    this.checkpoint();
    this.#outbox.close();
    await this.#inner.close();
  }
}
