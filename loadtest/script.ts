// The ground truth of a run: which stream shows what, when, and what the server is expected to do
// about it. A plan is pure data derived from the command line (and optionally a config file), so a
// run can be repeated and its figures checked against exactly what was scripted.

import { mulberry32 } from './stats.ts';

export type ViolationKind = 'banked_picture' | 'banned_text' | 'protected_audio' | 'regional';
export const VIOLATION_KINDS: readonly ViolationKind[] = [
  'banked_picture',
  'banned_text',
  'protected_audio',
  'regional',
];

/** `kill`, or `blank:SA,TH` / `mute:DE`: which viewers lose video or audio. */
export type ExpectSpec = string;

export interface Expectation {
  action: 'kill' | 'blank' | 'mute';
  /** Jurisdictions the restriction applies to (empty for a kill). */
  jurisdictions: string[];
}

export interface ScriptedViolation {
  /** Seconds after the publisher starts sending. */
  atSec: number;
  kind: ViolationKind;
  expect: ExpectSpec;
}

export interface StreamScript {
  streamId: string;
  violations: ScriptedViolation[];
}

export interface ViewerPlan {
  viewerId: string;
  streamId: string;
  jurisdiction: string;
}

export interface RunPlan {
  seed: number;
  durationSec: number;
  jurisdictions: string[];
  streams: StreamScript[];
  viewers: ViewerPlan[];
}

/**
 * What the shipped policies (policies/default.yaml + jurisdictions/) do with each scripted violation:
 * a known_bad hash match kills everywhere; the on-screen slogan is in DE's banned_text lexicon
 * (blank there); the protected melody is copyright_audio, muted in DE; profanity is blanked in SA.
 */
export const DEFAULT_EXPECT: Record<ViolationKind, ExpectSpec> = {
  banked_picture: 'kill',
  banned_text: 'blank:DE',
  protected_audio: 'mute:DE',
  regional: 'blank:SA',
};

export function parseExpect(spec: ExpectSpec): Expectation {
  const [action, list] = spec.split(':');
  if (action === 'kill') return { action, jurisdictions: [] };
  if ((action === 'blank' || action === 'mute') && list) {
    const jurisdictions = list
      .split(',')
      .map((j) => j.trim().toUpperCase())
      .filter(Boolean);
    if (jurisdictions.length) return { action, jurisdictions };
  }
  throw new RangeError(`bad expectation '${spec}': use kill, blank:XX[,YY] or mute:XX[,YY]`);
}

/** `0.25`, `25%` or a whole count of streams (>= 1 with no fraction) -> number of violating streams. */
export function violatingCount(spec: string | number, streams: number): number {
  const s = String(spec).trim();
  let n: number;
  if (s.endsWith('%')) n = Math.round((Number(s.slice(0, -1)) / 100) * streams);
  else {
    const v = Number(s);
    if (!Number.isFinite(v) || v < 0) throw new RangeError(`bad --violating '${s}'`);
    n = v < 1 || s.includes('.') ? Math.round(v * streams) : v;
  }
  return Math.max(0, Math.min(streams, n));
}

export interface PlanOptions {
  streams: number;
  viewers: number;
  durationSec: number;
  violating: string | number;
  jurisdictions: string[];
  kinds?: ViolationKind[];
  expect?: Partial<Record<ViolationKind, ExpectSpec>>;
  seed?: number;
  /** Prefix of stream ids; a run id keeps runs against a long-lived server apart. */
  prefix?: string;
}

/**
 * Violating streams get one violation each, kinds in rotation, onsets spread over the middle of the
 * run (35-55 % of the duration) so there is clean media before and time to see the reaction after.
 * Viewers are dealt to streams round robin, and within a stream over the jurisdictions round robin,
 * so a regional stream with two or more viewers has both a restricted and an unrestricted one.
 */
export function planRun(o: PlanOptions): RunPlan {
  if (!(o.streams >= 1)) throw new RangeError('--streams must be >= 1');
  if (!(o.viewers >= 0)) throw new RangeError('--viewers must be >= 0');
  if (!(o.durationSec > 0)) throw new RangeError('--duration must be > 0');
  const seed = o.seed ?? 1;
  const rng = mulberry32(seed);
  const kinds = o.kinds?.length ? o.kinds : [...VIOLATION_KINDS];
  const expect = { ...DEFAULT_EXPECT, ...o.expect };
  const jurisdictions = o.jurisdictions.length ? o.jurisdictions.map((j) => j.toUpperCase()) : ['SE'];
  for (const k of kinds) parseExpect(expect[k]);
  const nViolating = violatingCount(o.violating, o.streams);
  const prefix = o.prefix ?? 'lt';
  const streams: StreamScript[] = [];
  for (let i = 0; i < o.streams; i++) {
    const streamId = `${prefix}-${String(i).padStart(3, '0')}`;
    const violations: ScriptedViolation[] = [];
    if (i < nViolating) {
      const kind = kinds[i % kinds.length]!;
      const atSec = Math.round((0.35 + 0.2 * rng()) * o.durationSec * 10) / 10;
      violations.push({ atSec, kind, expect: expect[kind] });
    }
    streams.push({ streamId, violations });
  }
  const viewers: ViewerPlan[] = [];
  const perStream = new Map<string, number>();
  for (let v = 0; v < o.viewers; v++) {
    const s = streams[v % streams.length]!;
    const k = perStream.get(s.streamId) ?? 0;
    perStream.set(s.streamId, k + 1);
    viewers.push({
      viewerId: `${s.streamId}-v${k}`,
      streamId: s.streamId,
      jurisdiction: viewerJurisdiction(s, k, jurisdictions),
    });
  }
  return { seed, durationSec: o.durationSec, jurisdictions, streams, viewers };
}

/** The k-th viewer of a stream: a restricted stream's first viewer sits in a restricted jurisdiction, the second outside it. */
function viewerJurisdiction(s: StreamScript, k: number, all: string[]): string {
  const restricted = s.violations.map((v) => parseExpect(v.expect)).find((e) => e.action !== 'kill');
  if (restricted && all.length > 1) {
    const inside = all.filter((j) => restricted.jurisdictions.includes(j));
    const outside = all.filter((j) => !restricted.jurisdictions.includes(j));
    if (inside.length && outside.length) {
      if (k === 0) return inside[0]!;
      if (k === 1) return outside[0]!;
    }
  }
  return all[k % all.length]!;
}
