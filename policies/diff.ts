// What changed between two policies (for audited activation): leaf paths with old and new values.
import type { Policy, PolicyChange } from './types.ts';

const IGNORED = new Set(['version', 'files', 'source']);

export function diffPolicies(from: Policy | undefined, to: Policy): PolicyChange[] {
  const changes: PolicyChange[] = [];
  walk(from ?? {}, to, '', changes);
  return changes;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function walk(a: unknown, b: unknown, path: string, out: PolicyChange[]): void {
  if (isObject(a) && isObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    for (const k of keys) {
      if (IGNORED.has(k)) continue;
      walk(a[k], b[k], path ? `${path}.${k}` : k, out);
    }
    return;
  }
  if (JSON.stringify(a) !== JSON.stringify(b)) out.push({ path, from: a, to: b });
}

/** Only threshold and action edits (what reviewers of a policy change look at first). */
export function thresholdChanges(changes: readonly PolicyChange[]): PolicyChange[] {
  return changes.filter(
    (c) => /\.(amber|red|actions\.(amber|red)|failMode|reviewAmber)$/.test(c.path) || /^global\./.test(c.path),
  );
}
