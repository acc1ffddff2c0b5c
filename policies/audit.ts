// Append-only audit log entries, hash-chained: hash = HMAC-SHA256(key, canonical JSON of {seq, at,
// prevHash, body}) when a key is given (the server always gives one: AUDIT_HMAC_KEY, docs/CONFIG.md),
// else plain sha256 (tests, tools without the key). Changing, dropping or reordering any entry breaks
// every hash after it; with a key, whoever can write the store but does not hold the key cannot
// re-chain a rewritten log so that it verifies.
import { createHmac } from 'node:crypto';
import { canonicalJson, sha256Hex } from './canonical.ts';
import type { AuditEntry } from './types.ts';

export const GENESIS_HASH = '0'.repeat(64);

export function auditHash(seq: number, at: number, prevHash: string, body: unknown, key?: string | Buffer): string {
  const text = canonicalJson({ seq, at, prevHash, body });
  return key === undefined ? sha256Hex(text) : createHmac('sha256', key).update(text).digest('hex');
}

export function chainAuditEntry<B>(
  prev: AuditEntry<unknown> | undefined,
  body: B,
  at: number,
  key?: string | Buffer,
): AuditEntry<B> {
  const seq = prev ? prev.seq + 1 : 1;
  const prevHash = prev ? prev.hash : GENESIS_HASH;
  return { seq, at, prevHash, hash: auditHash(seq, at, prevHash, body, key), body };
}

/**
 * Verifies a chain (or a contiguous slice of one, given the entry before it as `anchor`).
 * `brokenAt` is the seq of the first entry that does not verify. `key` as given to chainAuditEntry.
 */
export function verifyAuditChain(
  entries: readonly AuditEntry<unknown>[],
  anchor?: AuditEntry<unknown>,
  key?: string | Buffer,
): { ok: boolean; brokenAt?: number; reason?: string } {
  let prev = anchor;
  for (const e of entries) {
    const expectedSeq = prev ? prev.seq + 1 : 1;
    const expectedPrev = prev ? prev.hash : GENESIS_HASH;
    if (e.seq !== expectedSeq) return { ok: false, brokenAt: e.seq, reason: `seq ${e.seq}, expected ${expectedSeq}` };
    if (e.prevHash !== expectedPrev)
      return { ok: false, brokenAt: e.seq, reason: 'prevHash does not match the previous entry' };
    if (auditHash(e.seq, e.at, e.prevHash, e.body, key) !== e.hash)
      return { ok: false, brokenAt: e.seq, reason: 'hash does not match the content' };
    prev = e;
  }
  return { ok: true };
}
