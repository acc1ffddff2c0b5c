// Public contract of the pure policy layer. No imports from the other folders: signals arrive as
// plain data (models' Signals fit structurally), decisions leave as plain data for the enforcer.

export type Bucket = 'green' | 'amber' | 'red';
/** What happens to a jurisdiction's viewers (or the whole stream) in a bucket. */
export type Action = 'allow' | 'blank_video' | 'mute_audio' | 'block' | 'kill_stream';
export type FailMode = 'fail_open' | 'quarantine' | 'fail_closed';

export interface SignalInput {
  streamId: string;
  kind: 'audio' | 'video';
  sampleSeq: number;
  rtpTimestamp: number;
  arrivedAt: number;
  completedAt: number;
  status: 'ok' | 'unavailable' | 'deadline_missed' | 'error';
  scores: Record<string, number>;
  matches: { category: string; kind: string; bank: string; entryId: string; distance?: number; confidence: number }[];
  text: { category: string; term: string; source: string }[];
  uncertain: boolean;
  models: { name: string; version: string }[];
}

/** Per jurisdiction outcome. 'default' is the key for viewers whose jurisdiction has no entry. */
export interface JurisdictionVerdict {
  bucket: Bucket;
  action: Action;
  /** Categories that drove the bucket, with their fused scores. */
  categories: { category: string; score: number; bucket: Bucket; clause: string }[];
}

export interface Verdict {
  streamId: string;
  at: number;
  policyVersion: string;
  kill: boolean;
  perJurisdiction: Record<string, JurisdictionVerdict>;
  /** Amber somewhere and the policy sends amber to humans. */
  review: boolean;
}

/** EU DSA Art. 17(3) statement of reasons. */
export interface StatementOfReasons {
  id: string;
  streamId: string;
  issuedAt: number;
  restriction: { action: Action; scope: 'stream' | 'jurisdictions'; jurisdictions: string[]; duration: string };
  facts: {
    categories: { category: string; score: number }[];
    matches: SignalInput['matches'];
    text: SignalInput['text'];
    sampleSeqs: number[];
    timeRange: { from: number; to: number };
  };
  automated: { detection: boolean; decision: boolean };
  ground: { type: 'terms_of_service' | 'law'; clause: string; policyVersion: string; explanation: string };
  redress: { appealUrl: string; options: string[] };
}
