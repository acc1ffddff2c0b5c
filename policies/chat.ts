// Where a chat message may be shown. A chat message is one text sample: each lexicon hit scores 1
// for the categories its lexicon feeds (as on-screen text does in fusion), without a window, because
// a message is shown once or not at all. Thresholds are at most 1, so a hit is always in the red
// bucket: a jurisdiction whose red action for the category is anything but `allow` does not get the
// message, and a global (stream-wide) rule on the category withholds it everywhere.
import { GLOBAL_KEY, termCounts } from './fusion.ts';
import type { Action, Policy } from './types.ts';

/** A text moderator hit: lexicon category (TextHit.category) and the matched term. */
export interface ChatHit {
  category: string;
  term: string;
}

/** Why a message is withheld from one jurisdiction. */
export interface ChatRestriction {
  /** Policy jurisdiction key ('default' for viewers whose jurisdiction has no entry). */
  jurisdiction: string;
  /** Taxonomy category whose rule restricted it. */
  category: string;
  term: string;
  action: Action;
  clause: string;
}

export interface ChatVisibility {
  /** Jurisdiction keys (the policy's codes and 'default') where the message may be shown, sorted. */
  allowed: string[];
  /** Jurisdiction keys where it may not, sorted. */
  withheld: string[];
  /** Every restriction behind `withheld` (one per jurisdiction, category and term). */
  restrictions: ChatRestriction[];
}

/** Which of the policy's jurisdictions may show a message with these hits. No hits: everywhere. */
export function chatVisibility(policy: Policy, hits: readonly ChatHit[]): ChatVisibility {
  const codes = Object.keys(policy.jurisdictions).sort();
  const restrictions: ChatRestriction[] = [];
  const seen = new Set<string>();
  const restrict = (r: ChatRestriction): void => {
    const key = `${r.jurisdiction}\u0000${r.category}\u0000${r.term}`;
    if (seen.has(key)) return;
    seen.add(key);
    restrictions.push(r);
  };
  for (const hit of hits) {
    const term = hit.term.toLowerCase();
    for (const [name, def] of Object.entries(policy.taxonomy)) {
      if (!def.signals.text.includes(hit.category)) continue;
      const global = policy.global[name];
      if (global && termCounts(policy, GLOBAL_KEY, hit.category, term)) {
        for (const j of codes)
          restrict({ jurisdiction: j, category: name, term, action: global.action, clause: global.clause });
        continue;
      }
      for (const j of codes) {
        if (!termCounts(policy, j, hit.category, term)) continue;
        const rule = policy.jurisdictions[j]?.categories[name];
        if (rule && rule.actions.red !== 'allow')
          restrict({ jurisdiction: j, category: name, term, action: rule.actions.red, clause: rule.clause });
      }
    }
  }
  const withheld = codes.filter((j) => restrictions.some((r) => r.jurisdiction === j));
  return { allowed: codes.filter((j) => !withheld.includes(j)), withheld, restrictions };
}
