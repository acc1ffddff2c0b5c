// npm run loadtest:capacity -- --vary streams|viewers [--from 1] [--to 64] [--factor 2]
//   [--budget decision_p99=100 | eventloop_p99=10] [any loadtest flag: --duration, --viewers, ...]
//
// Capacity search: repeats the load test with a growing number of streams (or viewers) until a
// budget is missed, then bisects between the last pass and the first miss. Each step starts a fresh
// server, so steps do not share state. Prints one line per step and the answer with its command line.

import { join, resolve } from 'node:path';
import { serverOnlyStreams } from './report.ts';
import { parseArgs, runLoadTest, writeReport, type LoadTestOptions } from './run.ts';

interface Step {
  n: number;
  passed: boolean;
  /** Streams the server process alone would carry at this step's server CPU per stream. */
  serverOnly: number | undefined;
  figures: Record<string, number | null>;
  command: string;
}

function take(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const v = argv[i + 1];
  argv.splice(i, 2);
  return v;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const vary = (take(argv, 'vary') ?? 'streams') as 'streams' | 'viewers';
  if (vary !== 'streams' && vary !== 'viewers') throw new RangeError('--vary streams|viewers');
  const from = Number(take(argv, 'from') ?? 1);
  const to = Number(take(argv, 'to') ?? 64);
  const factor = Number(take(argv, 'factor') ?? 2);
  const budgetSpec = take(argv, 'budget') ?? (vary === 'streams' ? 'decision_p99=100' : 'eventloop_p99=10');
  const base = await parseArgs([...argv, '--budget', budgetSpec, '--quiet']);
  const steps: Step[] = [];
  const deadline = Date.now() + Number(process.env.CAPACITY_MAX_SEC ?? 900) * 1000;

  const attempt = async (n: number): Promise<Step> => {
    const o: LoadTestOptions = { ...base, [vary]: n };
    if (vary === 'streams' && !argv.includes('--viewers')) o.viewers = n; // one viewer per stream unless told
    o.command = `npm run loadtest -- ${[...argv, '--budget', budgetSpec, `--${vary}`, String(n), ...(vary === 'streams' && !argv.includes('--viewers') ? ['--viewers', String(n)] : [])].join(' ')}`;
    const report = await runLoadTest(o, () => undefined);
    const out = resolve(
      join('loadtest', 'reports', `capacity-${vary}-${n}-${report.generatedAt.replace(/[:.]/g, '-')}`),
    );
    await writeReport(report, out);
    const step = {
      n,
      passed: report.passed,
      serverOnly: serverOnlyStreams(report),
      figures: report.result.figures,
      command: o.command,
    };
    const shown = Object.keys(base.budget)
      .map((k) => `${k}=${step.figures[k]?.toFixed(2) ?? '-'}`)
      .join(' ');
    console.log(
      `${vary}=${n}: ${step.passed ? 'pass' : 'MISS'}  ${shown}  fwd_p50=${step.figures.fwd_p50?.toFixed(2)} cpu=${step.figures.cpu_percent?.toFixed(0)}% (${step.figures.server_cpu_per_stream?.toFixed(1) ?? '-'}%/stream) generator_cpu=${step.figures.generator_cpu_percent?.toFixed(0) ?? '-'}% server_alone~${step.serverOnly?.toFixed(1) ?? '-'} decision_p50=${step.figures.decision_p50?.toFixed(1) ?? '-'} eventloop_p99=${step.figures.eventloop_p99?.toFixed(1) ?? '-'} decision_e2e_p99=${step.figures.decision_e2e_p99?.toFixed(0) ?? '-'} host_steal=${step.figures.host_steal_percent?.toFixed(1) ?? '-'}%  (${out})`,
    );
    steps.push(step);
    return step;
  };

  let lo: Step | undefined;
  let hi: Step | undefined;
  for (let n = from; n <= to && Date.now() < deadline; n = Math.max(n + 1, Math.round(n * factor))) {
    const s = await attempt(n);
    if (s.passed) lo = s;
    else {
      hi = s;
      break;
    }
  }
  while (lo && hi && hi.n - lo.n > 1 && Date.now() < deadline) {
    const s = await attempt(Math.floor((lo.n + hi.n) / 2));
    if (s.passed) lo = s;
    else hi = s;
  }
  console.log(
    lo
      ? `capacity: ${vary} = ${lo.n} within ${budgetSpec}${hi ? ` (${hi.n} missed)` : ' (upper end of the search)'}\n  command: ${lo.command}`
      : `capacity: even ${vary} = ${from} missed ${budgetSpec}`,
  );
  // The synthetic clients run in this process, on the same cores: the measured figure is for server +
  // generator; the server's own CPU per stream says what the server alone would carry.
  const last = lo ?? hi;
  if (vary === 'streams' && last?.serverOnly !== undefined)
    console.log(
      `  server alone (its CPU per stream at ${vary} = ${last.n}, this host's cores): ~${last.serverOnly.toFixed(1)} streams; load generator CPU ${last.figures.generator_cpu_percent?.toFixed(0) ?? '-'}% at that step`,
    );
}

main().then(
  () => setTimeout(() => process.exit(0), 200).unref(),
  (err: unknown) => {
    console.error((err as Error).message);
    setTimeout(() => process.exit(2), 200).unref();
  },
);
