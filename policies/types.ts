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
  categories: { category: string; score: number; bucket: Bucket; clause: string; action?: Action }[];
  /** Every action in force for this jurisdiction (e.g. blank_video and mute_audio together); `action` is the strictest. */
  actions: Action[];
  /** Set while signals are unavailable long enough for the fail mode to apply. */
  failMode?: FailMode;
}

export interface Verdict {
  streamId: string;
  at: number;
  policyVersion: string;
  kill: boolean;
  perJurisdiction: Record<string, JurisdictionVerdict>;
  /** Amber somewhere and the policy sends amber to humans. */
  review: boolean;
  /** Categories whose global rule is red (why `kill`). */
  killCategories: { category: string; score: number; clause: string }[];
  /** Track kinds whose signals are currently unavailable past the policy's failAfter. */
  degraded: ('audio' | 'video')[];
  /** Facts behind the non-green categories (window samples, matches, text, time range). */
  evidence: Evidence;
  /** The same, per non-green category (statements cite only their own categories' facts). */
  evidenceByCategory: Record<string, Evidence>;
}

/**
 * What a decision followed (DSA Art. 17(3)(b)): a notice (Art. 16: a user's or trusted flagger's
 * report, cited by its id) or the provider's own initiative (automated detection, an operator's
 * own finding).
 */
export type StatementBasis =
  | {
      kind: 'notice';
      noticeId: string;
      /** Who sent it, only where strictly necessary (Art. 17(3)(b)). */
      notifier?: string;
      /** Sent by a trusted flagger (Art. 22). */
      trustedFlagger?: boolean;
      /** When it was received (ms since the epoch). */
      receivedAt?: number;
    }
  | { kind: 'own_initiative' };

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
  /** Notice or own initiative (Art. 17(3)(b)). */
  basis: StatementBasis;
  automated: { detection: boolean; decision: boolean };
  ground: { type: 'terms_of_service' | 'law'; clause: string; policyVersion: string; explanation: string };
  redress: { appealUrl: string; options: string[] };
  /** Media kept around the decision (evidence clips, issue 19), added by the server when it keeps them. */
  clips?: EvidenceRef[];
}

/** A stored piece of evidence a statement or review item cites: plain data, the server fills it in. */
export interface EvidenceRef {
  id: string;
  kind: 'clip';
  /** Where an admin fetches it (relative to the server). */
  url: string;
  /** Jurisdiction whose storage and retention hold it ('default' = the default location). */
  jurisdiction: string;
  /** Media time covered (server clock ms). */
  from: number;
  to: number;
  /** Deleted after this (server clock ms). */
  expiresAt: number;
}

// ---------------------------------------------------------------------------------------------
// Additions (issue 6). Everything below is plain data; the functions live beside it in policies/.

/**
 * Optional extras a caller may put on a SignalInput (models' Signals carry `trackId`; the server
 * may attach a thumbnail reference for review evidence). Kept off SignalInput itself so the base
 * contract stays what models hand out.
 */
export interface SignalExtras {
  trackId?: string;
  /** Reference to a stored thumbnail of the sampled frame (a store key or URL), for reviewers. */
  thumbnailRef?: string;
  /** Full OCR/chat text around a hit (models' TextHit.text), for reviewers. */
  textContext?: string[];
}
export type SignalLike = SignalInput & SignalExtras;

export type MediaKindP = 'audio' | 'video';
export type GroundType = 'terms_of_service' | 'law';

/** Which signals feed a category. */
export interface CategorySignals {
  /** Model score keys (Signals.scores); the category's sample score is the max over them. */
  scores: string[];
  /** Hash/fingerprint bank names whose matches feed the category (match confidence is the score). */
  banks: string[];
  /** Text lexicon categories (TextHit.category) whose hits feed the category (a hit scores 1). */
  text: string[];
}

export interface FusionParams {
  /** M: samples kept per stream and category. */
  window: number;
  /** N: samples of the window that must reach a threshold for the bucket to be entered. */
  enter: number;
  /** Consecutive samples below (threshold - hysteresis) before a bucket is left. */
  exit: number;
  /** Score margin below a threshold that a sample must reach to count towards leaving. */
  hysteresis: number;
}

export interface CategoryDef {
  name: string;
  description: string;
  /** Track kinds whose samples feed the category; samples of other kinds leave it untouched. */
  kinds: MediaKindP[];
  ground: GroundType;
  /** Default policy clause cited in statements (jurisdictions may cite their own). */
  clause: string;
  signals: CategorySignals;
  fusion: FusionParams;
  /** Agreeing reviewers a review item of this category needs (e.g. 3 for labels exported for calibration). Default 1. */
  reviewers?: number;
}

export interface CategoryRule {
  amber: number;
  red: number;
  actions: { amber: Action; red: Action };
  /** A bank match on this category is red at once, without N-of-M. */
  immediateOnMatch: boolean;
  clause: string;
  ground: GroundType;
}

export interface JurisdictionPolicy {
  /** ISO 3166-1 alpha-2 code, or 'default' for viewers whose jurisdiction has no entry. */
  code: string;
  name: string;
  failMode: FailMode;
  /** Amber goes to the human review queue. */
  reviewAmber: boolean;
  categories: Record<string, CategoryRule>;
  /** Text lexicon: lexicon category -> terms (lower case), added to the global lexicon. */
  lexicon: Record<string, string[]>;
  source: { file: string; line: number };
}

/** A stream-wide rule: red here kills the stream for everyone. */
export interface GlobalRule {
  red: number;
  immediateOnMatch: boolean;
  action: 'kill_stream';
  clause: string;
  ground: GroundType;
}

export interface Policy {
  /** Content hash of the files (sha256 hex, first 16 chars) — the version cited in statements. */
  version: string;
  name: string;
  files: { file: string; version: string }[];
  /** Base URL of the appeal route; statements cite `${appealUrl}/${statementId}`. */
  appealUrl: string;
  /** Consecutive unavailable/late samples of a kind before the fail mode applies. */
  failAfter: number;
  /** Review dead zone (documentation of the default amber band; jurisdictions carry their own). */
  reviewDeadZone: [number, number];
  /** Time from a review item's creation to its due time (ms), by type (base `review.*DueMinutes`; 60 min / 4 h by default). */
  reviewDue?: { amberMs: number; appealMs: number };
  taxonomy: Record<string, CategoryDef>;
  global: Record<string, GlobalRule>;
  /** Global lexicon: lexicon category -> terms (lower case). */
  lexicon: Record<string, string[]>;
  /** Always has 'default'. */
  jurisdictions: Record<string, JurisdictionPolicy>;
}

/** One policy file handed to the loader by the caller (policies/ reads no files). */
export interface PolicyFile {
  filename: string;
  text: string;
}

/** A changed leaf between two policies. */
export interface PolicyChange {
  path: string;
  from: unknown;
  to: unknown;
}

export type FilterMode = 'per_viewer' | 'strictest_intersection';

/** What one viewer should receive. */
export interface GateDecision {
  video: 'forward' | 'blank';
  audio: 'forward' | 'mute';
  /** Viewer must be closed (block) or the stream is killed. */
  closed: boolean;
  /** The jurisdiction whose rules produced the restriction (the viewer's own, or another in intersection mode). */
  reasons: { jurisdiction: string; category: string; action: Action; clause: string }[];
}

/** Facts a statement or review item relies on, gathered by fusion from the window. */
export interface Evidence {
  sampleSeqs: number[];
  timeRange: { from: number; to: number };
  scores: { category: string; score: number }[];
  matches: SignalInput['matches'];
  text: SignalInput['text'];
  textContext: string[];
  thumbnailRefs: string[];
}

export interface ReviewItem {
  id: string;
  streamId: string;
  type: 'amber' | 'appeal';
  /** Higher first. Appeals 10, amber 1. */
  priority: number;
  createdAt: number;
  policyVersion: string;
  jurisdictions: string[];
  categories: { category: string; score: number; bucket: Bucket }[];
  evidence: Evidence;
  /** The restriction under appeal (appeals), or the action that upholding would apply (amber). */
  proposedAction?: Action;
  statementId?: string;
  appeal?: { appellant: string; grounds: string; submittedAt: number };
  /** Appeals: what the appealed statement said, so the outcome's statement cites the same ground, scope, basis and detection. */
  appealed?: Pick<StatementOfReasons, 'basis' | 'automated' | 'ground' | 'restriction'>;
  claim?: { reviewer: string; claimedAt: number; expiresAt: number };
  /** When a decision is due (server ms; policies/ withDueAt from the policy's review deadlines). */
  dueAt?: number;
}

export interface ReviewResolution {
  outcome: 'uphold' | 'overturn';
  reviewer: string;
  at: number;
  note?: string;
}

/** What a human decided: the enforcer applies it, the store keeps it. */
export interface ReviewDecision {
  id: string;
  itemId: string;
  streamId: string;
  type: ReviewItem['type'];
  outcome: ReviewResolution['outcome'];
  reviewer: string;
  at: number;
  /** Restriction to apply (amber upheld), or lifted (kill/restriction overturned). */
  effect:
    | { kind: 'restrict'; action: Action; jurisdictions: string[] }
    | { kind: 'lift'; action: Action; jurisdictions: string[] }
    | { kind: 'none' };
  statement?: StatementOfReasons;
}

/** One entry of the append-only, hash-chained audit log. */
export interface AuditEntry<B = unknown> {
  seq: number;
  at: number;
  prevHash: string;
  hash: string;
  body: B;
}
