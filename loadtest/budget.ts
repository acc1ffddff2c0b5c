// Budgets given on the command line (`--budget decision_p99=100,kill_p99=150`) and their check
// against a run's figures. Every figure is "lower is better"; a budget on a figure the run could not
// measure counts as missed, so a release gate never passes by accident.

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
  for (const part of spec.split(',').map((p) => p.trim()).filter(Boolean)) {
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
