// The one state interface the server uses. Two implementations: MemoryStore (default, one node) and
// RedisStore (REDIS_URL; several nodes share it). Both pass test/server/store.test.ts.
import type {
  AuditEntry as PolicyAuditEntry,
  Bucket,
  Evidence,
  EvidenceRef,
  ReviewItem as PolicyReviewItem,
  ReviewResolution as PolicyReviewResolution,
  ReviewDecision as PolicyReviewDecision,
  StatementOfReasons,
} from '../../policies/types.ts';
import type { ShadowDifference, ThresholdEdit } from '../../policies/shadow.ts';
import type { ReviewVote } from '../../policies/review.ts';
import type { FingerprintWire } from '../../models/audio/fingerprint.ts';

export type { PolicyReviewItem, PolicyReviewResolution, PolicyReviewDecision };

export type StreamState = 'live' | 'ended' | 'killed';

/** Current moderation view of a stream, as the ops console shows it. */
export interface StreamVerdictSummary {
  bucket: Bucket;
  /** Category -> latest fused score. */
  categories: Record<string, number>;
  /** Jurisdiction -> bucket, where it differs by jurisdiction. */
  perJurisdiction?: Record<string, Bucket>;
  at: number;
}

export interface LiveStreamRecord {
  streamId: string;
  /** Node that holds the publisher session. */
  nodeId: string;
  state: StreamState;
  startedAt: number;
  heartbeatAt: number;
  viewers: number;
  verdict?: StreamVerdictSummary;
  /** The samples the holder's moderation held at its last heartbeat: what a kill or gate issued on another node cites. */
  evidence?: RegistryEvidence;
  /** Statement id of the kill, when killed. */
  statementId?: string;
}

/** A registry entry's facts: sample numbers, their time range, each category's highest sample score. */
export type RegistryEvidence = Pick<Evidence, 'sampleSeqs' | 'timeRange' | 'scores'>;

/** A stream that may not publish again until resumed (after a kill). */
export interface StreamBlock {
  streamId: string;
  reason: string;
  statementId?: string;
  at: number;
  by: string;
}

export interface DecisionRecord {
  id: string;
  streamId: string;
  at: number;
  /** 'automated' (pipeline/enforcer), 'manual' (admin), 'review' (human reviewer), 'appeal'. */
  source: 'automated' | 'manual' | 'review' | 'appeal';
  bucket: Bucket;
  /** E.g. 'kill_stream', 'blank_video', 'resume', 'uphold', 'reverse'. */
  action: string;
  jurisdictions: string[];
  statementId?: string;
  policyVersion?: string;
  actor?: string;
  note?: string;
  /** Any extra data (verdict, scores). */
  details?: Record<string, unknown>;
}

/** One hash-chained audit entry (policies/audit.ts chainAuditEntry). */
export type AuditEntry = PolicyAuditEntry<Record<string, unknown>>;

/** Where a review item is in its life. Claims live in the item's `claim` (policies/ types). */
export type ReviewStatus = 'pending' | 'claimed' | 'resolved';

/**
 * A review item as stored: policies/' ReviewItem (amber or appeal; built by reviewItemFor /
 * createAppeal, ordered by priority desc then age) plus what the server adds.
 */
export interface StoredReviewItem extends PolicyReviewItem {
  status: ReviewStatus;
  /** Data URL (image/jpeg or png) of a sampled frame, for the console. */
  thumbnail?: string;
  /** Evidence clips of the decision the item is about (server/evidence.ts). */
  clips?: EvidenceRef[];
  resolution?: PolicyReviewResolution;
  /** Decision (ReviewDecision id) that resolved it, and the outcome statement if any. */
  decisionId?: string;
  outcomeStatementId?: string;
  /** Every reviewer's decision on the item (issue 17: items may need N agreeing reviewers). */
  votes?: ReviewVote[];
  /** The reviewers disagreed: the item waits for a senior's decision (priority PRIORITY_ESCALATED). */
  escalated?: boolean;
}

/** The policy activated last in the cluster: every node applies it (at start and each heartbeat), a restart keeps it. */
export interface ActivePolicyRecord {
  /** The bundle's content-hash version (policies/ loadPolicyBundle). */
  version: string;
  files: { filename: string; text: string }[];
  by: string;
  at: number;
}

/** A PDQ hash bank entry as the cluster keeps it: the hash as hex, the id the bank files it under. */
export interface BankHashEntry {
  hash: string;
  id: string;
  category?: string;
  source?: string;
  meta?: Record<string, string>;
}

/**
 * One change to a known-content bank (hash or audio), numbered in the order the cluster made it (seq from 1).
 * Every node applies the edits it has not seen (at start and each heartbeat), so an entry added or
 * removed through any node's API is on every node, also after a restart.
 */
/** What a bank edit changes. */
export type BankChange =
  | { kind: 'hashes_added'; bank: string; entries: BankHashEntry[] }
  | { kind: 'hash_removed'; bank: string; id: string }
  | { kind: 'recording_added'; bank: string; recording: BankRecording }
  | { kind: 'recording_removed'; bank: string; id: string };
/** A bank edit as a node appends it: the change, who made it, on which node, when. */
export type BankEditInput = BankChange & { by: string; origin: string; at: number };

/** A protected recording as the cluster keeps it: its fingerprint (never the audio), as the registering node computed it. */
export interface BankRecording {
  id: string;
  category?: string;
  source?: string;
  title?: string;
  durationSec: number;
  fingerprint: FingerprintWire;
}
export type BankEdit = BankEditInput & { seq: number };

/**
 * A candidate policy evaluated in the shadow of the active one (issue 17): its files, or threshold
 * edits of the active policy. The one in the shadow now is the store's current; every run is kept by
 * its version, so an activation can ask whether the candidate it activates had one.
 */
export interface ShadowPolicyRecord {
  /** The candidate's version (a bundle's content hash, or withThresholds' id). */
  version: string;
  /** Active version when the run started: the report compares the candidate with it. */
  activeVersion: string;
  files?: { filename: string; text: string }[];
  thresholds?: ThresholdEdit[];
  by: string;
  at: number;
}

/** Cross-node control messages: a kill or gate change issued on one node reaches the others. */
export type ControlMessage =
  | { type: 'kill'; streamId: string; reason: string; statementId?: string; origin: string; at: number }
  | { type: 'resume'; streamId: string; origin: string; at: number }
  | {
      type: 'gate';
      streamId: string;
      /** Jurisdiction the gate applies to; 'default' = viewers without an entry; '*' = all. */
      jurisdiction: string;
      video?: 'forward' | 'blank';
      audio?: 'forward' | 'mute';
      reason: string;
      statementId?: string;
      origin: string;
      at: number;
    }
  | { type: 'event'; audience: EventAudienceWire; message: Record<string, unknown>; origin: string; at: number }
  /** A policy activated on one node: every node loads the same files. */
  | { type: 'policy'; files: { filename: string; text: string }[]; by: string; origin: string; at: number }
  /** A reviewer's decision (policies' ReviewDecision) for the node that holds the stream (and, for a lifted kill, every node). */
  | { type: 'review'; decision: PolicyReviewDecision; origin: string; at: number }
  /** A shadow candidate started (record) or stopped (null) on one node: every node evaluates the same. */
  | { type: 'shadow'; record: ShadowPolicyRecord | null; origin: string; at: number };

/** Serializable form of an events audience (see events.ts). */
export interface EventAudienceWire {
  roles?: ('streamer' | 'viewer' | 'ops')[];
  streamId?: string;
  viewerId?: string;
  jurisdiction?: string;
  jurisdictions?: string[];
  exceptJurisdictions?: string[];
}

export type Unsubscribe = () => void;

/** What a store holds, for retention accounting (docs/RETENTION.md). */
export type StoreCollection =
  'audit' | 'decisions' | 'statements' | 'review_open' | 'review_resolved' | 'thumbnails' | 'blocks' | 'streams';

/** Why an entry left the store: over its count bound, past its age, over the thumbnail byte bound, or refused at a full queue. */
export type StoreDropReason = 'count' | 'age' | 'bytes' | 'queue_full';

/** Sizes and drops of a store's bounded collections (read by /metrics). */
export interface StoreRetentionStats {
  /** Entries held now, per collection (thumbnails: review items that carry one). */
  entries: Partial<Record<StoreCollection, number>>;
  /** Bytes of thumbnail data URLs held now. */
  thumbnailBytes: number;
  /** Entries dropped (or, for 'queue_full', refused) since this store started, per collection and reason. */
  dropped: { collection: StoreCollection; reason: StoreDropReason; count: number }[];
  /** Seq of the oldest audit entry still held (1 until the audit log is trimmed). */
  auditFirstSeq: number;
}

/** How long a store keeps what (docs/RETENTION.md gives the drop order). All counts are per collection. */
export interface StoreRetention {
  /** Most audit entries held; the oldest go first and only by count, never by age. Default 100000. */
  maxAudit: number;
  /** Most decisions and most statements of reasons held (each); the oldest go first, never a statement an open review item or a block references. Default 10000. */
  maxRecords: number;
  /** Most resolved review items held; the earliest resolved go first. Default 2000. */
  maxResolvedReview: number;
  /** Most open (pending or claimed) amber items; beyond it a new amber item is refused (SRV_ERR_UNAVAILABLE, 503, counted as queue_full). Appeals are always taken. Default 5000. */
  maxOpenReview: number;
  /** Most bytes of thumbnails held; over it resolved items' thumbnails go first, then the oldest open amber items' (the item stays). Default 67108864 (64 MiB). */
  maxThumbnailBytes: number;
  /** A resolved item's thumbnail is dropped this long after its resolution (ms). Default 3600000 (1 h). */
  thumbnailRetentionMs: number;
  /** Decisions, unreferenced statements and resolved review items older than this are dropped (ms); 0 = bounded by count only. Default 604800000 (7 days). */
  retentionMs: number;
}

/** Differences kept per shadow candidate; shadow runs kept (the oldest go first). */
export const SHADOW_DIFFERENCES_KEPT = 10_000;
export const SHADOW_RUNS_KEPT = 50;

export const DEFAULT_RETENTION: Readonly<StoreRetention> = Object.freeze({
  maxAudit: 100_000,
  maxRecords: 10_000,
  maxResolvedReview: 2_000,
  maxOpenReview: 5_000,
  maxThumbnailBytes: 64 * 1024 * 1024,
  thumbnailRetentionMs: 3_600_000,
  retentionMs: 7 * 86_400_000,
});

export interface Store {
  readonly kind: 'memory' | 'redis';

  // live-stream registry (entries expire ttlMs after the last heartbeat)
  putStream(record: LiveStreamRecord, ttlMs: number): Promise<void>;
  /** Refreshes heartbeatAt and the expiry, merging `patch`. Returns false when the entry is gone. */
  heartbeat(streamId: string, ttlMs: number, patch?: Partial<Omit<LiveStreamRecord, 'streamId'>>): Promise<boolean>;
  getStream(streamId: string): Promise<LiveStreamRecord | undefined>;
  listStreams(): Promise<LiveStreamRecord[]>;
  removeStream(streamId: string): Promise<void>;

  // publish blocks after a kill
  setBlock(block: StreamBlock): Promise<void>;
  clearBlock(streamId: string): Promise<boolean>;
  getBlock(streamId: string): Promise<StreamBlock | undefined>;

  // decisions and statements of reasons (by id; newest first in lists). A put of an id already held
  // changes nothing (records are append-only; an outbox retry must not overwrite)
  putDecision(decision: DecisionRecord): Promise<void>;
  getDecision(id: string): Promise<DecisionRecord | undefined>;
  listDecisions(filter?: { streamId?: string; limit?: number }): Promise<DecisionRecord[]>;
  putStatement(statement: StatementOfReasons): Promise<void>;
  getStatement(id: string): Promise<StatementOfReasons | undefined>;
  listStatements(filter?: { streamId?: string; limit?: number }): Promise<StatementOfReasons[]>;

  // append-only, hash-chained audit log (HMAC with the store's audit key, policies/audit.ts)
  /** Appends an entry; `id` names the operation so a retry of it returns the entry it made instead of appending again. */
  appendAudit(body: Record<string, unknown>, options?: { id?: string }): Promise<AuditEntry>;
  /** The newest entry; undefined when the log is empty. */
  auditHead(): Promise<AuditEntry | undefined>;
  readAudit(options?: { afterSeq?: number; limit?: number }): Promise<AuditEntry[]>;

  // review queue (priority desc, then oldest; claims expire)
  /** Adds an item built by policies/ (reviewItemFor, createAppeal). Idempotent on `id`. */
  enqueueReview(
    item: PolicyReviewItem,
    extra?: { thumbnail?: string; clips?: EvidenceRef[] },
  ): Promise<StoredReviewItem>;
  /** Claims `itemId`, or the first claimable item. Undefined when nothing is claimable. SRV_ERR_CONFLICT when held by another. */
  claimReview(reviewer: string, claimMs: number, itemId?: string): Promise<StoredReviewItem | undefined>;
  /** Resolves an item the reviewer holds an active claim on; SRV_ERR_CLAIM_EXPIRED otherwise. */
  resolveReview(
    itemId: string,
    reviewer: string,
    resolution: PolicyReviewResolution,
    extra?: { decisionId?: string; outcomeStatementId?: string },
  ): Promise<StoredReviewItem>;
  /**
   * Keeps the votes of an item the reviewer holds an active claim on (SRV_ERR_CLAIM_EXPIRED otherwise;
   * SRV_ERR_CONFLICT when resolved). `release` frees the claim for the next reviewer; `escalate` marks
   * the item escalated and raises it to PRIORITY_ESCALATED.
   */
  voteReview(
    itemId: string,
    reviewer: string,
    votes: readonly ReviewVote[],
    options: { release: boolean; escalate: boolean },
  ): Promise<StoredReviewItem>;
  getReview(itemId: string): Promise<StoredReviewItem | undefined>;
  listReview(options?: {
    includeResolved?: boolean;
    type?: 'amber' | 'appeal';
    streamId?: string;
    limit?: number;
  }): Promise<StoredReviewItem[]>;
  /** Items not yet resolved. */
  reviewDepth(): Promise<number>;

  // the cluster's active policy (policy activations outlive a restart and reach nodes that missed the message)
  setActivePolicy(record: ActivePolicyRecord): Promise<void>;
  getActivePolicy(): Promise<ActivePolicyRecord | undefined>;

  // known-content bank edits, in the cluster's order (every node applies them; a restart replays them)
  /** Appends an edit; returns it with its seq (1, 2, ...). */
  appendBankEdit(edit: BankEditInput): Promise<BankEdit>;
  /** Edits with seq > `after`, oldest first, at most `limit` (default 1000). */
  listBankEdits(after: number, limit?: number): Promise<BankEdit[]>;

  // shadow evaluation (issue 17): the candidate in the shadow now, every run by version, and what each would have done differently
  /** Sets (or, with undefined, stops) the candidate in the shadow; a record is also kept as its version's run. */
  setShadowPolicy(record: ShadowPolicyRecord | undefined): Promise<void>;
  getShadowPolicy(): Promise<ShadowPolicyRecord | undefined>;
  /** The run of a candidate version (the latest, if it was shadowed more than once). */
  getShadowRun(version: string): Promise<ShadowPolicyRecord | undefined>;
  /** Keeps differences (policies/ compareShadow), the newest SHADOW_DIFFERENCES_KEPT per candidate. */
  appendShadowDifferences(differences: readonly ShadowDifference[]): Promise<void>;
  /** A candidate's differences, oldest first. */
  listShadowDifferences(candidateVersion: string): Promise<ShadowDifference[]>;

  // cross-node control: every handler receives every message, its own node's included (filter on `origin`)
  publishControl(message: ControlMessage): Promise<void>;
  onControl(handler: (message: ControlMessage) => void): Unsubscribe;

  /** Round-trip to the backend; false when unreachable. */
  ping(): Promise<boolean>;
  /** Sizes and drops of the bounded collections (docs/RETENTION.md). */
  retentionStats?(): Promise<StoreRetentionStats>;
  /** Waits for writes in flight (audit included). */
  flush(): Promise<void>;
  close(): Promise<void>;
}
