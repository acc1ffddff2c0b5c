// The node's outbox: every enforcement record (statement, decision, block, unblock, audit entry,
// review item) is appended to a local file before the store is asked to keep it, and retried with
// backoff until the store acknowledges it. Before, these writes were fire-and-forget: during a Redis
// outage they were dropped and a kill notice's appeal URL answered 404.
//
// File: one append-only JSON-lines journal per node (`<dir>/<nodeId>.outbox.jsonl`, kept by journal.ts,
// which the webhook queue shares): a header line, then `{"r":record}` when a record is taken and
// `{"ack":n}` when the store has it. write(2) without fsync on each record (a SIGKILLed process
// loses nothing: the kernel has the bytes), fsync once a second (a host crash loses at most that
// second, as Redis' appendfsync everysec). The file is
// rewritten with only what is pending once it grows past `compactBytes`. A node that starts adopts
// the outboxes its directory holds from processes that are gone (a SIGKILLed node comes back under
// a new NODE_ID by default) and delivers their records too.
//
// Order: records are delivered one at a time, oldest first (a block before its unblock, audit
// entries in the order they were taken). A refusal that is not an outage (a full review queue) is
// dropped and counted, never retried for ever. Bounded: beyond `maxRecords` pending a new record is
// refused and counted (the node keeps enforcing; the count says what was lost).
import { mkdirSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { SrvError } from '../errors.ts';
import type { DecisionRecord, PolicyReviewItem, StreamBlock } from './types.ts';
import type { StatementOfReasons } from '../../policies/types.ts';
import { Journal } from './journal.ts';

export type OutboxOp =
  | { kind: 'statement'; value: StatementOfReasons }
  | { kind: 'decision'; value: DecisionRecord }
  | { kind: 'block'; value: StreamBlock }
  | { kind: 'unblock'; streamId: string }
  | { kind: 'audit'; body: Record<string, unknown> }
  | { kind: 'review'; item: PolicyReviewItem; thumbnail?: string };

export interface OutboxRecord {
  /** Position in this node's file. */
  n: number;
  /** Operation id (a UUID): the store's idempotency key where the record has no id of its own. */
  id: string;
  /** When the record was taken (ms since the epoch). */
  at: number;
  op: OutboxOp;
}

export interface OutboxStats {
  /** Records taken and not yet acknowledged. */
  depth: number;
  /** Age of the oldest of them (s); 0 when empty. */
  oldestAgeS: number;
  /** Records the store acknowledged since start. */
  delivered: number;
  /** Records refused: the outbox was full ('full') or the store refused them for good ('refused'). */
  dropped: { full: number; refused: number };
  /** Deliveries that failed and were retried. */
  retries: number;
  /** Records taken over from outboxes of processes that are gone. */
  adopted: number;
}

export interface OutboxOptions {
  /** Directory of the outbox files (one per node; keep it on a volume). */
  dir: string;
  nodeId: string;
  /** Records of other outboxes are adopted only when their header names the same store (e.g. the Redis prefix). */
  storeId: string;
  /** Delivers one record; resolves when the store acknowledged it. Rejections with SRV_ERR_STORE_UNAVAILABLE are retried, others drop the record. */
  deliver: (record: OutboxRecord) => Promise<unknown>;
  /** Most records pending; beyond it new ones are refused and counted. Default 100000. */
  maxRecords?: number;
  /** The file is rewritten with what is pending once it is larger than this (bytes). Default 8 MiB. */
  compactBytes?: number;
  /** First retry delay (ms), doubled per failure up to `maxBackoffMs`. Default 100. */
  minBackoffMs?: number;
  /** Longest retry delay (ms). Default 2000. */
  maxBackoffMs?: number;
  /** Called when a record is dropped (full or refused). */
  onDrop?: (record: OutboxRecord | OutboxOp, why: 'full' | 'refused', err?: unknown) => void;
}

/** The outbox could not hand the record over now; it is kept and retried (the caller need not). */
export class OutboxQueuedError extends SrvError {
  readonly queued = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super('SRV_ERR_STORE_UNAVAILABLE', message, options);
  }
}

interface Pending {
  record: OutboxRecord;
  waiter?: { resolve: (v: unknown) => void; reject: (e: unknown) => void };
}

const HEADER = 'msfu-outbox/1';

function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function fileSafe(id: string): string {
  return id.replace(/[^A-Za-z0-9._-]/g, '_');
}

type OutboxRow = { h?: string; storeId?: string; nodeId?: string; pid?: number; r?: OutboxRecord; ack?: number };

/** Pending records of an outbox file, in order (records without their ack line). */
export function readOutboxFile(path: string): {
  header: { storeId?: string; nodeId?: string; pid?: number } | undefined;
  pending: OutboxRecord[];
} {
  const records = new Map<number, OutboxRecord>();
  let header: { storeId?: string; nodeId?: string; pid?: number } | undefined;
  for (const row of Journal.read<OutboxRow>(path)) {
    if (row.h === HEADER) header = { storeId: row.storeId, nodeId: row.nodeId, pid: row.pid };
    else if (row.r) records.set(row.r.n, row.r);
    else if (typeof row.ack === 'number') records.delete(row.ack);
  }
  return { header, pending: [...records.values()].sort((a, b) => a.n - b.n) };
}

export class Outbox {
  readonly #o: Required<Omit<OutboxOptions, 'onDrop'>> & Pick<OutboxOptions, 'onDrop'>;
  readonly #journal: Journal;
  #n = 0;
  readonly #queue: Pending[] = [];
  /** The delivery loop runs (set and cleared synchronously, so a record taken as it ends is never left behind). */
  #running = false;
  /** The last delivery failed with an outage: new records are not waited on. */
  #failing = false;
  #failures = 0;
  #wake: (() => void) | undefined;
  /** Acks written since the file was last rewritten. */
  #acked = 0;
  #closed = false;
  readonly #stats = { delivered: 0, retries: 0, adopted: 0, full: 0, refused: 0 };

  constructor(options: OutboxOptions) {
    this.#o = {
      maxRecords: 100_000,
      compactBytes: 8 * 1024 * 1024,
      minBackoffMs: 100,
      maxBackoffMs: 2000,
      onDrop: undefined,
      ...options,
    };
    mkdirSync(options.dir, { recursive: true });
    this.#journal = new Journal(join(options.dir, `${fileSafe(options.nodeId)}.outbox.jsonl`), { syncMs: 1000 });
    const own = readOutboxFile(this.#journal.path).pending;
    const adopted = this.#adoptOthers();
    this.#rewrite([...own, ...adopted]);
    this.#stats.adopted = adopted.length;
    if (this.#queue.length) this.#kick();
  }

  /** The file this node writes. */
  get path(): string {
    return this.#journal.path;
  }

  stats(): OutboxStats {
    const oldest = this.#queue[0]?.record.at;
    return {
      depth: this.#queue.length,
      oldestAgeS: oldest === undefined ? 0 : Math.max(0, (Date.now() - oldest) / 1000),
      delivered: this.#stats.delivered,
      dropped: { full: this.#stats.full, refused: this.#stats.refused },
      retries: this.#stats.retries,
      adopted: this.#stats.adopted,
    };
  }

  /**
   * Takes a record: on disk before this returns. The promise settles with the store's first answer:
   * its result, or (store away, or already failing) an OutboxQueuedError: the record stays and is retried.
   */
  push(op: OutboxOp): Promise<unknown> {
    if (this.#closed) return Promise.reject(new SrvError('SRV_ERR_STORE_UNAVAILABLE', 'outbox is closed'));
    if (this.#queue.length >= this.#o.maxRecords) {
      this.#stats.full++;
      this.#o.onDrop?.(op, 'full');
      return Promise.reject(
        new SrvError(
          'SRV_ERR_STORE_UNAVAILABLE',
          `outbox full (${this.#queue.length} records pending, outboxMaxRecords ${this.#o.maxRecords}): ${op.kind} not kept`,
        ),
      );
    }
    const record: OutboxRecord = { n: ++this.#n, id: randomUUID(), at: Date.now(), op };
    this.#journal.append({ r: record });
    const p: Pending = { record };
    this.#queue.push(p);
    let result: Promise<unknown>;
    if (this.#failing)
      result = Promise.reject(
        new OutboxQueuedError(
          `store unavailable: ${op.kind} kept in the outbox (${this.#queue.length} pending), delivered when the store is back`,
        ),
      );
    else result = new Promise((resolve, reject) => (p.waiter = { resolve, reject }));
    this.#kick();
    return result;
  }

  /** Resolves once everything pending is delivered, or after `timeoutMs`; returns the depth left. */
  async drain(timeoutMs: number): Promise<number> {
    const until = Date.now() + timeoutMs;
    while (this.#queue.length > 0 && Date.now() < until && !this.#closed) {
      this.#wake?.();
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.#queue.length;
  }

  /** Stops delivering; the file stays (what is pending is delivered by the next start) unless empty. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#wake?.();
    for (const p of this.#queue)
      p.waiter?.reject(new OutboxQueuedError('outbox closed: the record stays in the file for the next start'));
    if (this.#queue.length === 0) this.#journal.remove();
    else this.#journal.close();
  }

  /** Writes a fresh file with the header and `records` (renumbered), atomically. */
  #rewrite(records: OutboxRecord[]): void {
    const rows: OutboxRow[] = [{ h: HEADER, storeId: this.#o.storeId, nodeId: this.#o.nodeId, pid: process.pid }];
    this.#queue.length = 0;
    for (const r of records) {
      const record = { ...r, n: ++this.#n };
      rows.push({ r: record });
      this.#queue.push({ record });
    }
    this.#journal.rewrite(rows);
    this.#acked = 0;
  }

  #compact(): void {
    const waiters = new Map(this.#queue.map((p) => [p.record.id, p.waiter]));
    this.#rewrite(this.#queue.map((p) => p.record));
    for (const p of this.#queue) p.waiter = waiters.get(p.record.id);
  }

  /** Pending records of other outbox files in the directory whose process is gone (their files removed). */
  #adoptOthers(): OutboxRecord[] {
    const out: OutboxRecord[] = [];
    for (const name of readdirSync(this.#o.dir)) {
      const path = join(this.#o.dir, name);
      if (!name.endsWith('.outbox.jsonl') || path === this.#journal.path) continue;
      let read: ReturnType<typeof readOutboxFile>;
      try {
        if (!statSync(path).isFile()) continue;
        read = readOutboxFile(path);
      } catch {
        continue;
      }
      if (read.header?.storeId !== this.#o.storeId) continue;
      if (read.header.pid !== undefined && read.header.pid !== process.pid && pidAlive(read.header.pid)) continue;
      out.push(...read.pending);
      unlinkSync(path);
    }
    return out.sort((a, b) => a.at - b.at);
  }

  #kick(): void {
    if (this.#running) {
      // a new record while waiting out a backoff delay is not a reason to hammer a failing store
      if (!this.#failing) this.#wake?.();
      return;
    }
    this.#running = true;
    // a journal write that fails (a full disk) ends this loop; the records stay queued and the next one restarts it
    this.#loop().catch((err: unknown) =>
      console.error('outbox: the delivery loop stopped on an error; the next record restarts it', err),
    );
  }

  async #loop(): Promise<void> {
    try {
      await this.#deliverAll();
    } finally {
      this.#running = false;
    }
  }

  async #deliverAll(): Promise<void> {
    // the flag is cleared in the same turn as the last emptiness check: a record pushed after it starts a new loop
    for (;;) {
      if (this.#queue.length === 0 || this.#closed) {
        this.#running = false;
        return;
      }
      const p = this.#queue[0]!;
      try {
        const value = await this.#o.deliver(p.record);
        this.#stats.delivered++;
        p.waiter?.resolve(value);
      } catch (err) {
        if (err instanceof SrvError && err.code === 'SRV_ERR_STORE_UNAVAILABLE') {
          this.#failing = true;
          this.#failures++;
          this.#stats.retries++;
          const w = p.waiter;
          p.waiter = undefined;
          w?.reject(
            new OutboxQueuedError(
              `store unavailable (${err.message}): ${p.record.op.kind} kept in the outbox, delivered when the store is back`,
              { cause: err },
            ),
          );
          // later records are not waited on either while the store is away
          for (const q of this.#queue) {
            if (!q.waiter) continue;
            const qw = q.waiter;
            q.waiter = undefined;
            qw.reject(new OutboxQueuedError(`store unavailable: ${q.record.op.kind} kept in the outbox`));
          }
          const delay = Math.min(this.#o.maxBackoffMs, this.#o.minBackoffMs * 2 ** Math.min(this.#failures - 1, 16));
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, delay);
            this.#wake = () => (clearTimeout(t), resolve());
          });
          this.#wake = undefined;
          continue;
        }
        // refused for good (e.g. a full review queue): retrying would block every later record
        this.#stats.refused++;
        this.#o.onDrop?.(p.record, 'refused', err);
        p.waiter?.reject(err);
      }
      this.#queue.shift();
      this.#failing = false;
      this.#failures = 0;
      if (this.#closed) break;
      this.#journal.append({ ack: p.record.n });
      // rewritten once more has been acknowledged than is pending, so a rewrite costs O(acks)
      if (++this.#acked > this.#queue.length && this.#journal.bytes > this.#o.compactBytes) this.#compact();
    }
  }
}
