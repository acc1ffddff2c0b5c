// Budgets given on the command line (`--budget decision_p99=100,kill_p99=150`) and their check
// against a run's figures. Every figure is "lower is better"; a budget on a figure the run could not
// measure counts as missed, so a release gate never passes by accident. The ground truth is a budget
// that every moderated run carries whether or not one was given: a run that missed a scripted
// violation or restricted a clean stream or viewer fails (it used to print PASS without --budget).

export type Budget = Record<string, number>;

export interface BudgetCheck {
  name: string;
  limit: number;
  value: number | null;
  ok: boolean;
}

export function parseBudget(spec: string | undefined): Budget {
  const out: Budget = {};
  if (!spec) return out;
  for (const part of spec
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const m = /^([a-z0-9_]+)\s*(?:=|<=)\s*(-?[0-9.]+)$/i.exec(part);
    if (!m) throw new RangeError(`bad budget '${part}': use name=number, e.g. decision_p99=100`);
    out[m[1]!.toLowerCase()] = Number(m[2]);
  }
  return out;
}

export function checkBudget(budget: Budget, figures: Record<string, number | null>): BudgetCheck[] {
  return Object.entries(budget).map(([name, limit]) => {
    const value = figures[name] ?? null;
    return { name, limit, value, ok: value !== null && value <= limit };
  });
}

/** What a moderated run must get right, budgets or not: these limits override any given ones. */
export const GROUND_TRUTH: Readonly<Budget> = Object.freeze({
  missed: 0,
  false_kills: 0,
  false_blanks: 0,
  false_mutes: 0,
  // a clean stream's restrictive decision fails the run even when no viewer of it saw the slate
  false_restrictions: 0,
  overblocked: 0,
});

/**
 * The checks a run is judged by: the given budget plus, with moderation on, the ground truth (a
 * limit given for a ground-truth figure cannot relax it). With moderation off nothing is expected
 * to be caught, so only the given budget applies.
 */
export function runChecks(
  budget: Budget,
  figures: Record<string, number | null>,
  moderation: 'on' | 'off',
): BudgetCheck[] {
  return checkBudget(moderation === 'on' ? { ...budget, ...GROUND_TRUTH } : budget, figures);
}
