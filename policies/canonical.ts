// Canonical JSON (sorted keys, no whitespace) and sha256, for content versions, ids and the audit chain.
import { createHash } from 'node:crypto';

export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortDeep(value));
}

function sortDeep(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortDeep);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = sortDeep(v);
    }
    return out;
  }
  if (typeof value === 'number' && !Number.isFinite(value)) return null;
  return value;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Short deterministic id: prefix + first 20 hex chars of sha256 over the canonical parts. */
export function contentId(prefix: string, parts: unknown): string {
  return `${prefix}_${sha256Hex(canonicalJson(parts)).slice(0, 20)}`;
}
