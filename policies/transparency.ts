// Transparency report (issue 17 item 4; DSA Art. 15/24 style figures): per jurisdiction and category,
// restrictions by type, automated vs human decisions, median and p95 time to action, escalation
// rates against their targets, appeals and the share overturned, review deadlines met. Built from
// audit entries only (the statements of reasons are in them), so it cannot disagree with the audit
// trail. Pure: the caller reads the entries and gives the range.
import type { Action, StatementOfReasons } from './types.ts';

/** An audit entry as the report reads it (policies/ AuditEntry fits). */
export interface AuditLike {
  seq: number;
  at: number;
  body: Record<string, unknown>;
}

export interface Percentiles {
  n: number;
  median: number | null;
  p95: number | null;
}

export type RestrictionCounts = Record<Exclude<Action, 'allow'>, number>;

export interface TransparencyCell {
  /** Statements of reasons issued, by restriction. */
  restrictions: RestrictionCounts;
  /** Restrictive statements whose decision was automated / taken by a person. */
  automated: number;
  human: number;
  /** Automated: first sample of the facts -> statement; human: review item created -> decision (ms). */
  timeToActionMs: { automated: Percentiles; human: Percentiles };
  /** Items sent to human review (amber). */
  reviewItems: number;
  appeals: { filed: number; decided: number; overturned: number; overturnedShare: number | null };
  /** Review items and appeals decided within their due time (those that had one). */
  deadlines: { due: number; met: number; metShare: number | null };
}

export interface EscalationRate {
  rate: number | null;
  target: number;
  /** rate <= target (null without data). */
  met: boolean | null;
}

export interface TransparencyReport {
  from: number;
  to: number;
  /** Audit entries read in the range, and the statements among them. */
  source: { auditEntries: number; firstSeq: number | null; lastSeq: number | null; statements: number };
  totals: TransparencyCell;
  /** Jurisdiction ('global' for kills) -> category -> figures. */
  jurisdictions: Record<string, Record<string, TransparencyCell>>;
  escalation: {
    /** Share of moderation outcomes (automated restrictions + review items) that went to a human. */
    toHumanReview: EscalationRate;
    /** Share of voted review items whose reviewers disagreed (escalated to a senior). */
    reviewerDisagreement: EscalationRate;
  };
}

export const ESCALATION_TARGETS = { toHumanReview: 0.03, reviewerDisagreement: 0.01 } as const;

const emptyCell = (): TransparencyCell => ({
  restrictions: { kill_stream: 0, block: 0, blank_video: 0, mute_audio: 0 },
  automated: 0,
  human: 0,
  timeToActionMs: { automated: { n: 0, median: null, p95: null }, human: { n: 0, median: null, p95: null } },
  reviewItems: 0,
  appeals: { filed: 0, decided: 0, overturned: 0, overturnedShare: null },
  deadlines: { due: 0, met: 0, metShare: null },
});

/** Nearest-rank percentile of sorted values. */
function rank(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? null;
}

function percentiles(values: readonly number[]): Percentiles {
  const s = [...values].sort((a, b) => a - b);
  return { n: s.length, median: rank(s, 0.5), p95: rank(s, 0.95) };
}

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** A statement as the audit entries carry it (the fields the report reads are checked). */
function isStatement(v: unknown): v is StatementOfReasons {
  return (
    isRecord(v) &&
    typeof v.id === 'string' &&
    typeof v.issuedAt === 'number' &&
    isRecord(v.restriction) &&
    isRecord(v.facts) &&
    isRecord(v.automated)
  );
}

function asStatement(v: unknown): StatementOfReasons | undefined {
  return isStatement(v) ? v : undefined;
}

/** (jurisdiction, category) pairs a statement is about; a stream-wide restriction is 'global'. */
function cellsOf(
  jurisdictions: readonly string[],
  categories: readonly string[],
  scopeStream: boolean,
): [string, string][] {
  const js = scopeStream || jurisdictions.length === 0 ? ['global'] : jurisdictions;
  const cs = categories.length > 0 ? categories : ['unspecified'];
  return js.flatMap((j) => cs.map((c) => [j, c] as [string, string]));
}

/**
 * The report over audit entries with `from <= at < to`. A review item's or appeal's decision counts
 * in the range of its decision; its time to action needs its creation in the entries read.
 */
export function transparencyReport(entries: readonly AuditLike[], from: number, to: number): TransparencyReport {
  const inRange = entries.filter((e) => e.at >= from && e.at < to);
  const jurisdictions: Record<string, Record<string, TransparencyCell>> = {};
  const totals = emptyCell();
  const cell = (j: string, c: string): TransparencyCell => ((jurisdictions[j] ??= {})[c] ??= emptyCell());
  const times = new Map<TransparencyCell, { automated: number[]; human: number[] }>();
  const timesOf = (c: TransparencyCell) => {
    let t = times.get(c);
    if (!t) times.set(c, (t = { automated: [], human: [] }));
    return t;
  };
  const each = (pairs: [string, string][], fn: (c: TransparencyCell) => void): void => {
    for (const [j, c] of pairs) fn(cell(j, c));
    fn(totals);
  };

  // what the items were about (creation may precede the range: read every entry given)
  const items = new Map<string, { at: number; pairs: [string, string][]; dueAt?: number; type: 'amber' | 'appeal' }>();
  const statements = new Map<string, StatementOfReasons>();
  for (const e of entries) {
    const b = e.body;
    const st = asStatement(b.statement);
    if (st) statements.set(st.id, st);
  }
  for (const e of entries) {
    const b = e.body;
    if (b.type === 'review.enqueued' && typeof b.itemId === 'string') {
      const js = Array.isArray(b.jurisdictions)
        ? b.jurisdictions.filter((x): x is string => typeof x === 'string')
        : [];
      const cs = Array.isArray(b.categories)
        ? b.categories.flatMap((c) => (isRecord(c) && typeof c.category === 'string' ? [c.category] : []))
        : [];
      items.set(b.itemId, { at: num(b.at) ?? e.at, pairs: cellsOf(js, cs, false), dueAt: num(b.dueAt), type: 'amber' });
    } else if (b.type === 'appeal.filed' && typeof b.itemId === 'string') {
      const st = statements.get(str(b.statementId) ?? '');
      const pairs = st
        ? cellsOf(
            st.restriction.jurisdictions,
            st.facts.categories.map((c) => c.category),
            st.restriction.scope === 'stream',
          )
        : [['global', 'unspecified'] as [string, string]];
      items.set(b.itemId, { at: num(b.at) ?? e.at, pairs, dueAt: num(b.dueAt), type: 'appeal' });
    }
  }

  let automatedRestrictions = 0;
  let amberItems = 0;
  const voted = new Set<string>();
  const escalated = new Set<string>();
  const counted = new Set<string>();
  for (const e of inRange) {
    const b = e.body;
    const st = asStatement(b.statement);
    if (st && !counted.has(st.id) && st.restriction.action !== 'allow') {
      counted.add(st.id);
      const pairs = cellsOf(
        st.restriction.jurisdictions,
        st.facts.categories.map((c) => c.category),
        st.restriction.scope === 'stream',
      );
      const automated = st.automated.decision === true;
      if (automated) automatedRestrictions++;
      const delay = automated && st.facts.timeRange.from > 0 ? st.issuedAt - st.facts.timeRange.from : undefined;
      each(pairs, (c) => {
        c.restrictions[st.restriction.action as Exclude<Action, 'allow'>]++;
        if (automated) c.automated++;
        else c.human++;
        if (delay !== undefined && delay >= 0) timesOf(c).automated.push(delay);
      });
    }
    if (b.type === 'review.enqueued' && typeof b.itemId === 'string') {
      amberItems++;
      each(items.get(b.itemId)?.pairs ?? [], (c) => c.reviewItems++);
    } else if (b.type === 'appeal.filed' && typeof b.itemId === 'string') {
      each(items.get(b.itemId)?.pairs ?? [], (c) => c.appeals.filed++);
    } else if (b.type === 'review.vote' && typeof b.itemId === 'string') {
      voted.add(b.itemId);
    } else if (b.type === 'review.escalated' && typeof b.itemId === 'string') {
      escalated.add(b.itemId);
    } else if (b.type === 'review.decision' && isRecord(b.decision)) {
      const d = b.decision;
      const item = items.get(str(d.itemId) ?? '');
      const at = num(d.at) ?? e.at;
      const pairs = item?.pairs ?? [];
      each(pairs, (c) => {
        if (item) timesOf(c).human.push(at - item.at);
        if (item?.dueAt !== undefined) {
          c.deadlines.due++;
          if (at <= item.dueAt) c.deadlines.met++;
        }
        if (d.type === 'appeal') {
          c.appeals.decided++;
          if (d.outcome === 'overturn') c.appeals.overturned++;
        }
      });
    }
  }
  for (const [c, t] of times) c.timeToActionMs = { automated: percentiles(t.automated), human: percentiles(t.human) };
  for (const c of [totals, ...Object.values(jurisdictions).flatMap((x) => Object.values(x))]) {
    c.appeals.overturnedShare = c.appeals.decided > 0 ? c.appeals.overturned / c.appeals.decided : null;
    c.deadlines.metShare = c.deadlines.due > 0 ? c.deadlines.met / c.deadlines.due : null;
  }
  const rate = (n: number, d: number, target: number): EscalationRate => {
    const r = d > 0 ? n / d : null;
    return { rate: r, target, met: r === null ? null : r <= target };
  };
  return {
    from,
    to,
    source: {
      auditEntries: inRange.length,
      firstSeq: inRange[0]?.seq ?? null,
      lastSeq: inRange.at(-1)?.seq ?? null,
      statements: counted.size,
    },
    totals,
    jurisdictions,
    escalation: {
      toHumanReview: rate(amberItems, amberItems + automatedRestrictions, ESCALATION_TARGETS.toHumanReview),
      reviewerDisagreement: rate(escalated.size, voted.size, ESCALATION_TARGETS.reviewerDisagreement),
    },
  };
}
