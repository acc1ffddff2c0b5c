// Verdict summaries: the one place that ranks buckets and says what a verdict amounts to for the
// registry, the ops console and the moderation.status event. Before, three summaries (control.ts,
// enforcer.ts, app.ts) each ranked buckets their own way and disagreed on whether a kill's
// categories count: here they always do.
import type { Bucket, Verdict } from './types.ts';

/** Severity order of the buckets. */
export const BUCKET_RANK: Readonly<Record<Bucket, number>> = { green: 0, amber: 1, red: 2 };

/** The worst of `buckets`, starting from `from` (default green). */
export function worstBucket(buckets: Iterable<Bucket>, from: Bucket = 'green'): Bucket {
  let worst = from;
  for (const b of buckets) if (BUCKET_RANK[b] > BUCKET_RANK[worst]) worst = b;
  return worst;
}

export interface VerdictSummary {
  /** Worst bucket over the jurisdictions; red when the verdict kills. */
  bucket: Bucket;
  /** Category -> highest fused score over the jurisdictions and the kill's categories. */
  categories: Record<string, number>;
  /** Jurisdiction -> bucket. */
  perJurisdiction: Record<string, Bucket>;
  at: number;
}

export function summarizeVerdict(verdict: Verdict): VerdictSummary {
  const categories: Record<string, number> = {};
  const perJurisdiction: Record<string, Bucket> = {};
  for (const [code, jv] of Object.entries(verdict.perJurisdiction)) {
    perJurisdiction[code] = jv.bucket;
    for (const c of jv.categories) categories[c.category] = Math.max(categories[c.category] ?? 0, c.score);
  }
  for (const k of verdict.killCategories) categories[k.category] = Math.max(categories[k.category] ?? 0, k.score);
  const bucket = verdict.kill ? 'red' : worstBucket(Object.values(perJurisdiction));
  return { bucket, categories, perJurisdiction, at: verdict.at };
}

/** Jurisdiction -> bucket for the jurisdictions not green, plus `global: red` for a kill (a decision's buckets). */
export function restrictedBuckets(verdict: Verdict | undefined): Record<string, Bucket> {
  const out: Record<string, Bucket> = {};
  if (!verdict) return out;
  for (const [code, jv] of Object.entries(verdict.perJurisdiction)) if (jv.bucket !== 'green') out[code] = jv.bucket;
  if (verdict.kill) out.global = 'red';
  return out;
}
