// Normalises the server's WebSocket events into the load test's decision records. The ops stream's
// `decision` payload follows policies/types.ts (a Verdict: `kill`, `perJurisdiction[j].action`); the
// reader is tolerant of where the verdict sits, so it keeps working while the payload grows.

import type { DecisionRecord, StreamRecord } from './analyze.ts';
import type { ServerEvent } from './server.ts';

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => x !== null && typeof x === 'object' && !Array.isArray(x);
const num = (x: unknown): number | undefined => (typeof x === 'number' && Number.isFinite(x) ? x : undefined);

function verdictOf(e: Obj): Obj {
  for (const k of ['verdict', 'decision']) if (isObj(e[k])) return verdictOf(e[k] as Obj);
  return e;
}

/** Latency the server reports for a decision, ms: an explicit field, or applied/decided minus arrival. */
function serverLatency(e: Obj, v: Obj): number | undefined {
  for (const o of [e, v]) {
    for (const k of ['decisionLatencyMs', 'latencyMs', 'budgetMs']) if (num(o[k]) !== undefined) return num(o[k]);
    const lat = o.latency;
    if (isObj(lat) && num(lat.fromArrivedMs) !== undefined) return num(lat.fromArrivedMs);
    const timings = o.timings;
    if (isObj(timings))
      for (const k of ['decision', 'total', 'endToEnd']) if (num(timings[k]) !== undefined) return num(timings[k]);
    const arrived = num(o.arrivedAt) ?? num(o.frameArrivedAt);
    const applied = num(o.appliedAt) ?? num(o.decidedAt);
    if (arrived !== undefined && applied !== undefined && applied >= arrived) return applied - arrived;
  }
  return undefined;
}

/** Restrictive decisions contained in one event (none for green or informational ones). */
export function decisionsOf(e: ServerEvent): DecisionRecord[] {
  const out: DecisionRecord[] = [];
  const latency = () => serverLatency(e, verdictOf(e));
  if (e.type === 'stream.killed') {
    out.push({
      at: e.receivedAt,
      action: 'kill',
      jurisdictions: [],
      source: 'streamer_ws',
      statementIds: typeof e.statementId === 'string' ? [e.statementId] : undefined,
    });
  } else if (e.type === 'decision') {
    const v = verdictOf(e);
    if (v.kill === true || v.action === 'kill_stream')
      out.push({ at: e.receivedAt, action: 'kill', jurisdictions: [], serverLatencyMs: latency(), source: 'ops_ws' });
    // server/enforcer.ts DecisionLog: restrictions [{ action, jurisdictions }]
    if (Array.isArray(v.restrictions)) {
      for (const r of v.restrictions) {
        if (!isObj(r)) continue;
        const js = Array.isArray(r.jurisdictions) ? r.jurisdictions.map((j) => String(j).toUpperCase()) : [];
        const action =
          r.action === 'kill_stream'
            ? 'kill'
            : r.action === 'blank_video' || r.action === 'block'
              ? 'blank'
              : r.action === 'mute_audio'
                ? 'mute'
                : undefined;
        if (action === 'kill' && out.some((d) => d.action === 'kill')) continue;
        const statementIds = typeof r.statementId === 'string' ? [r.statementId] : undefined;
        if (action)
          out.push({
            at: e.receivedAt,
            action,
            jurisdictions: action === 'kill' ? [] : js,
            serverLatencyMs: latency(),
            source: 'ops_ws',
            statementIds,
          });
      }
      return out;
    }
    const per = isObj(v.perJurisdiction) ? v.perJurisdiction : isObj(v.actions) ? v.actions : undefined;
    if (per) {
      const blank: string[] = [];
      const mute: string[] = [];
      for (const [j, jv] of Object.entries(per)) {
        const action = isObj(jv) ? jv.action : jv;
        const actions = Array.isArray(action) ? action : [action];
        if (actions.some((a) => a === 'blank_video' || a === 'block')) blank.push(j.toUpperCase());
        if (actions.some((a) => a === 'mute_audio' || a === 'block')) mute.push(j.toUpperCase());
        if (actions.includes('kill_stream') && !out.some((d) => d.action === 'kill'))
          out.push({
            at: e.receivedAt,
            action: 'kill',
            jurisdictions: [],
            serverLatencyMs: latency(),
            source: 'ops_ws',
          });
      }
      if (blank.length)
        out.push({
          at: e.receivedAt,
          action: 'blank',
          jurisdictions: blank,
          serverLatencyMs: latency(),
          source: 'ops_ws',
        });
      if (mute.length)
        out.push({
          at: e.receivedAt,
          action: 'mute',
          jurisdictions: mute,
          serverLatencyMs: latency(),
          source: 'ops_ws',
        });
    }
  } else if (e.type === 'viewer.filtered') {
    const j = typeof e.jurisdiction === 'string' ? [e.jurisdiction.toUpperCase()] : [];
    if (e.video === 'blank') out.push({ at: e.receivedAt, action: 'blank', jurisdictions: j, source: 'viewer_ws' });
    if (e.audio === 'mute') out.push({ at: e.receivedAt, action: 'mute', jurisdictions: j, source: 'viewer_ws' });
  }
  return out;
}

/** Applies one event to the stream it names. */
export function applyEvent(rec: StreamRecord, e: ServerEvent): void {
  if (e.type === 'stream.killed' || (e.type === 'stream.status' && e.state === 'killed')) {
    if (rec.killedAt === undefined || e.receivedAt < rec.killedAt) {
      rec.killedAt = e.receivedAt;
      rec.killVia = e.type;
    }
  }
  for (const d of decisionsOf(e)) {
    // the same decision can arrive on several channels; keep the first sighting per action
    const dup = rec.decisions.find(
      (x) => x.action === d.action && Math.abs(x.at - d.at) < 2000 && x.jurisdictions.join() === d.jurisdictions.join(),
    );
    if (!dup) rec.decisions.push(d);
    else {
      if (dup.serverLatencyMs === undefined && d.serverLatencyMs !== undefined) dup.serverLatencyMs = d.serverLatencyMs;
      if (d.statementIds) dup.statementIds = [...new Set([...(dup.statementIds ?? []), ...d.statementIds])];
    }
  }
}

/** One line per statement of reasons: the restriction and the facts the server relied on. */
export function summarizeStatement(st: unknown): string {
  if (!isObj(st)) return 'statement unavailable';
  const r = isObj(st.restriction) ? st.restriction : {};
  const f = isObj(st.facts) ? st.facts : {};
  const cats = Array.isArray(f.categories)
    ? f.categories
        .filter(isObj)
        .map((c) => `${String(c.category)} ${typeof c.score === 'number' ? c.score.toFixed(2) : String(c.score)}`)
    : [];
  const text = Array.isArray(f.text)
    ? f.text.filter(isObj).map((t) => `"${String(t.term)}" (${String(t.source)})`)
    : [];
  const matches = Array.isArray(f.matches)
    ? f.matches
        .filter(isObj)
        .map((m) => `${String(m.bank)}:${String(m.entryId)}${typeof m.distance === 'number' ? ` d=${m.distance}` : ''}`)
    : [];
  const juris = Array.isArray(r.jurisdictions) ? r.jurisdictions.join(',') : '';
  return [
    `${String(r.action)}${juris ? ` [${juris}]` : ''}`,
    cats.length ? `categories ${cats.join(', ')}` : '',
    text.length ? `text ${text.join(', ')}` : '',
    matches.length ? `matches ${matches.join(', ')}` : '',
  ]
    .filter(Boolean)
    .join('; ');
}
