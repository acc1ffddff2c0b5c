// From a verdict to what one viewer receives. Two modes:
//  - per_viewer (default): each viewer gets its own jurisdiction's actions;
//  - strictest_intersection: the stream must pass every jurisdiction its current viewers are in,
//    so every viewer gets the union of those jurisdictions' actions.
import type { Action, FilterMode, GateDecision, Verdict } from './types.ts';

function keyOf(verdict: Verdict, jurisdiction: string | undefined): string {
  const j = jurisdiction?.toUpperCase();
  return j !== undefined && verdict.perJurisdiction[j] ? j : 'default';
}

/** The gate for a viewer already watching. */
export function gateFor(
  verdict: Verdict | undefined,
  jurisdiction: string | undefined,
  mode: FilterMode = 'per_viewer',
  viewerJurisdictions: Iterable<string | undefined> = [],
): GateDecision {
  const gate: GateDecision = { video: 'forward', audio: 'forward', closed: false, reasons: [] };
  if (!verdict) return gate;
  if (verdict.kill) {
    gate.video = 'blank';
    gate.audio = 'mute';
    gate.closed = true;
    for (const k of verdict.killCategories)
      gate.reasons.push({ jurisdiction: 'global', category: k.category, action: 'kill_stream', clause: k.clause });
    return gate;
  }
  const keys = new Set<string>([keyOf(verdict, jurisdiction)]);
  if (mode === 'strictest_intersection') for (const j of viewerJurisdictions) keys.add(keyOf(verdict, j));
  for (const key of keys) {
    const jv = verdict.perJurisdiction[key];
    if (!jv) continue;
    for (const action of jv.actions) {
      applyAction(gate, action);
      const cat = jv.categories.find((c) => c.action === action);
      if (cat) gate.reasons.push({ jurisdiction: key, category: cat.category, action, clause: cat.clause });
      else
        gate.reasons.push({
          jurisdiction: key,
          category: 'signals_unavailable',
          action,
          clause: `fail mode ${jv.failMode ?? 'fail_closed'}`,
        });
    }
  }
  return gate;
}

/** What one action does to a viewer's gate (a block or kill closes it). */
export function applyAction(gate: GateDecision, action: Action): void {
  if (action === 'blank_video') gate.video = 'blank';
  else if (action === 'mute_audio') gate.audio = 'mute';
  else if (action === 'block' || action === 'kill_stream') {
    gate.video = 'blank';
    gate.audio = 'mute';
    gate.closed = true;
  }
}

/**
 * The gate for a viewer joining now: like gateFor, plus quarantine (a jurisdiction whose fail mode
 * is `quarantine` blanks new viewers while signals are unavailable; viewers already watching keep
 * their gate).
 */
export function initialGateFor(
  verdict: Verdict | undefined,
  jurisdiction: string | undefined,
  mode: FilterMode = 'per_viewer',
  viewerJurisdictions: Iterable<string | undefined> = [],
): GateDecision {
  const list = [...viewerJurisdictions];
  const gate = gateFor(verdict, jurisdiction, mode, list);
  if (!verdict || gate.closed) return gate;
  const keys = new Set<string>([keyOf(verdict, jurisdiction)]);
  if (mode === 'strictest_intersection') for (const j of list) keys.add(keyOf(verdict, j));
  for (const key of keys) {
    if (verdict.perJurisdiction[key]?.failMode !== 'quarantine') continue;
    if (verdict.degraded.includes('video') && gate.video !== 'blank') {
      gate.video = 'blank';
      gate.reasons.push({
        jurisdiction: key,
        category: 'signals_unavailable',
        action: 'blank_video',
        clause: 'fail mode quarantine',
      });
    }
    if (verdict.degraded.includes('audio') && gate.audio !== 'mute') {
      gate.audio = 'mute';
      gate.reasons.push({
        jurisdiction: key,
        category: 'signals_unavailable',
        action: 'mute_audio',
        clause: 'fail mode quarantine',
      });
    }
  }
  return gate;
}
