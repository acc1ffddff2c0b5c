// Shared fixtures for the policy tests: the shipped policy bundle and signal builders (the fake SFU
// is test/sfu/fake.ts).
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPolicyBundle } from '../../policies/loader.ts';
import type { Policy, PolicyFile, SignalLike } from '../../policies/types.ts';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const POLICY_DIR = join(REPO, 'policies');

export function shippedPolicyFiles(): PolicyFile[] {
  const out: PolicyFile[] = [];
  const walk = (dir: string, rel: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (e.isDirectory()) walk(join(dir, e.name), `${rel}/${e.name}`);
      else if (/\.ya?ml$/.test(e.name))
        out.push({ filename: `${rel}/${e.name}`, text: readFileSync(join(dir, e.name), 'utf8') });
    }
  };
  walk(POLICY_DIR, 'policies');
  return out;
}

export function shippedPolicy(): Policy {
  return loadPolicyBundle(shippedPolicyFiles());
}

/** A signal for one sample; `at` is both arrival and (minus 20 ms) completion. */
export function signal(seq: number, scores: Record<string, number> = {}, extra: Partial<SignalLike> = {}): SignalLike {
  const at = extra.arrivedAt ?? 1_000 + seq * 500;
  return {
    streamId: 's1',
    kind: 'video',
    sampleSeq: seq,
    rtpTimestamp: seq * 45_000,
    arrivedAt: at,
    completedAt: at + 20,
    status: 'ok',
    scores,
    matches: [],
    text: [],
    uncertain: false,
    models: [{ name: 'nsfw-mobilenetv2', version: 'test' }],
    ...extra,
  };
}

export const badMatch = {
  category: 'known_bad_match',
  kind: 'pdq',
  bank: 'known_bad',
  entryId: 'kb-1',
  distance: 8,
  confidence: 1 - 8 / 64,
};
export const musicMatch = {
  category: 'copyright_audio',
  kind: 'audio_fingerprint',
  bank: 'protected_music',
  entryId: 'track-42',
  confidence: 0.9,
};
