// The audit chain seen from outside the store: a walk over the whole log that verifies every entry
// (streaming, a page at a time, so memory stays bounded whatever the log's length), and checkpoints
// (seq, hash) of the chain head kept in a file of the node's outbox directory, so a store that was
// rewritten, or restarted empty, is detectable from outside it. /v1/audit/verify and
// `npm run audit:verify` walk; the DurableStore writes checkpoints and checks the head against them.
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { verifyAuditChain } from '../../policies/audit.ts';
import type { AuditEntry, Store } from './types.ts';

export interface AuditCheckpoint {
  seq: number;
  hash: string;
  /** When it was taken (ms since the epoch). */
  at: number;
  nodeId: string;
}

export interface AuditWalkResult {
  ok: boolean;
  /** Entries walked. */
  entries: number;
  firstSeq?: number;
  lastSeq?: number;
  /** Seq of the first entry that does not verify. */
  brokenAt?: number;
  reason?: string;
  /** Set when the log's start was trimmed (docs/RETENTION.md): the chain is verified from this seq on. */
  verifiedFromSeq?: number;
  /** Checkpoints compared with the log (those still inside it), and the first that disagreed. */
  checkpoints?: { checked: number; mismatch?: AuditCheckpoint & { found: string | null } };
}

/**
 * Reads the whole log in pages of `pageSize` and verifies it against `key`, each page anchored on
 * the last entry of the one before. Holds one page at a time. Checkpoints given are checked too: an
 * entry at a checkpoint's seq must carry its hash, and the log must reach its seq.
 */
export async function walkAuditChain(
  store: Pick<Store, 'readAudit'>,
  key: string | undefined,
  options: { pageSize?: number; checkpoints?: readonly AuditCheckpoint[] } = {},
): Promise<AuditWalkResult> {
  const pageSize = options.pageSize ?? 1000;
  const wanted = new Map<number, AuditCheckpoint>();
  for (const c of options.checkpoints ?? []) wanted.set(c.seq, c);
  let checked = 0;
  let mismatch: (AuditCheckpoint & { found: string | null }) | undefined;
  let anchor: AuditEntry | undefined;
  let entries = 0;
  let firstSeq: number | undefined;
  let verifiedFromSeq: number | undefined;
  let afterSeq = 0;
  for (;;) {
    const page = await store.readAudit({ afterSeq, limit: pageSize });
    if (page.length === 0) break;
    if (firstSeq === undefined) {
      firstSeq = page[0]!.seq;
      // trimmed start: the first kept entry names its predecessor's hash
      if (firstSeq > 1) {
        anchor = { ...page[0]!, seq: firstSeq - 1, hash: page[0]!.prevHash };
        verifiedFromSeq = firstSeq;
      }
    }
    const v = verifyAuditChain(page, anchor, key);
    for (const e of page) {
      const c = wanted.get(e.seq);
      if (!c) continue;
      checked++;
      if (c.hash !== e.hash && !mismatch) mismatch = { ...c, found: e.hash };
    }
    if (!v.ok) {
      const upTo = page.findIndex((e) => e.seq === v.brokenAt);
      return {
        ok: false,
        entries: entries + Math.max(0, upTo),
        firstSeq,
        lastSeq: anchor?.seq,
        brokenAt: v.brokenAt,
        reason: v.reason,
        ...(verifiedFromSeq ? { verifiedFromSeq } : {}),
      };
    }
    entries += page.length;
    anchor = page.at(-1)!;
    afterSeq = anchor.seq;
    if (page.length < pageSize) break;
  }
  const lastSeq = anchor?.seq;
  // a checkpoint past the log's end: the log went backwards (restarted empty, or cut)
  for (const c of wanted.values()) {
    if (lastSeq === undefined || c.seq > lastSeq) {
      checked++;
      mismatch ??= { ...c, found: null };
    }
  }
  const base: AuditWalkResult = {
    ok: mismatch === undefined,
    entries,
    firstSeq,
    lastSeq,
    ...(verifiedFromSeq ? { verifiedFromSeq } : {}),
  };
  if (options.checkpoints) base.checkpoints = { checked, ...(mismatch ? { mismatch } : {}) };
  if (mismatch) {
    base.brokenAt = mismatch.found === null ? mismatch.seq : mismatch.seq;
    base.reason =
      mismatch.found === null
        ? `checkpoint seq ${mismatch.seq} (taken ${new Date(mismatch.at).toISOString()} by ${mismatch.nodeId}) is past the log's end (${lastSeq ?? 'empty'}): the log went backwards`
        : `entry ${mismatch.seq} differs from the checkpoint taken ${new Date(mismatch.at).toISOString()} by ${mismatch.nodeId}: the log was rewritten`;
  }
  return base;
}

/** Most bytes of the checkpoint file before it is cut to its newest `keep` lines. */
const CHECKPOINT_FILE_BYTES = 1024 * 1024;

/** Names a Redis store (host, database, key prefix): outboxes and checkpoints belong to one store. */
export function storeIdOf(redisUrl: string, prefix = 'msfu:'): string {
  const u = new URL(redisUrl);
  return `${u.host}${u.pathname}|${prefix}`;
}

/**
 * Checkpoints of the chain head, one JSON line each, in `<dir>/audit-checkpoints-<store>.jsonl`
 * (outside the store; `<store>` is a short hash of storeIdOf, so another Redis or prefix has its own).
 */
export class AuditCheckpointFile {
  readonly path: string;
  readonly #keep: number;

  constructor(dir: string, storeId: string, options: { keep?: number } = {}) {
    mkdirSync(dir, { recursive: true });
    this.path = join(dir, `audit-checkpoints-${createHash('sha256').update(storeId).digest('hex').slice(0, 12)}.jsonl`);
    this.#keep = options.keep ?? 1000;
  }

  /** All checkpoints held (oldest first). */
  list(): AuditCheckpoint[] {
    if (!existsSync(this.path)) return [];
    const out: AuditCheckpoint[] = [];
    for (const line of readFileSync(this.path, 'utf8').split('\n')) {
      if (!line) continue;
      try {
        const c = JSON.parse(line) as AuditCheckpoint;
        if (typeof c.seq === 'number' && typeof c.hash === 'string') out.push(c);
      } catch {
        // a line cut by a crash
      }
    }
    return out;
  }

  /** The checkpoint with the highest seq (several nodes may share the directory). */
  head(): AuditCheckpoint | undefined {
    let best: AuditCheckpoint | undefined;
    for (const c of this.list()) if (!best || c.seq >= best.seq) best = c;
    return best;
  }

  write(c: AuditCheckpoint): void {
    appendFileSync(this.path, JSON.stringify(c) + '\n');
    if (statSync(this.path).size > CHECKPOINT_FILE_BYTES) {
      const kept = this.list().slice(-this.#keep);
      writeFileSync(`${this.path}.tmp`, kept.map((k) => JSON.stringify(k)).join('\n') + '\n');
      renameSync(`${this.path}.tmp`, this.path);
    }
  }

  /**
   * After an alarm: the checkpoints of the chain that went backwards are moved aside (kept as the
   * evidence, `audit-checkpoints-<store>.<ms>.superseded.jsonl`) and the store's chain as it is now is the
   * reference from here on. Returns the file they went to.
   */
  supersede(now: number): string | undefined {
    if (!existsSync(this.path)) return undefined;
    const to = this.path.replace(/\.jsonl$/, `.${now}.superseded.jsonl`);
    renameSync(this.path, to);
    return to;
  }
}
