// Public surface of the pure policy layer.
export * from './types.ts';
export { PolicyError, type PolicyErrorCode, type PolicyIssue } from './errors.ts';
export { parsePolicy, loadPolicyBundle, lexiconFor, jurisdictionKey } from './loader.ts';
export {
  createFusionState,
  fuse,
  decisionKey,
  evidenceFor,
  windowEvidence,
  strictestAction,
  ACTION_SEVERITY,
  GLOBAL_KEY,
  SIGNALS_UNAVAILABLE,
  type FusionState,
  type FusionResult,
} from './fusion.ts';
export { applyAction, gateFor, initialGateFor } from './gate.ts';
export { BUCKET_RANK, worstBucket, summarizeVerdict, restrictedBuckets, type VerdictSummary } from './summary.ts';
export {
  restrictionsOf,
  restrictionKey,
  buildStatement,
  operatorStatement,
  type OperatorAction,
  OPERATOR_REPORT,
  statementGaps,
  reviewItemFor,
  createAppeal,
  compareReviewItems,
  claimReview,
  isClaimActive,
  resolveReview,
  PRIORITY_AMBER,
  PRIORITY_APPEAL,
  type Restriction,
  type StatementInput,
} from './statements.ts';
export { chainAuditEntry, verifyAuditChain, auditHash, GENESIS_HASH } from './audit.ts';
export { diffPolicies, thresholdChanges } from './diff.ts';
export { canonicalJson, sha256Hex } from './canonical.ts';
export { chatVisibility, type ChatHit, type ChatRestriction, type ChatVisibility } from './chat.ts';
export {
  outcomesOf,
  compareShadow,
  shadowReport,
  withThresholds,
  shadowFreshness,
  EMPTY_SHADOW_TRACK,
  SHADOW_OUTCOMES,
  type ShadowOutcome,
  type OutcomeOf,
  type ShadowDifference,
  type ShadowTrack,
  type ShadowCell,
  type ShadowReport,
  type ShadowRun,
  type ThresholdEdit,
  type OutcomeCounts,
} from './shadow.ts';
export {
  mayJudge,
  mayVote,
  reviewQueueStats,
  requiredReviewers,
  tallyVotes,
  castVote,
  agreedLabel,
  withDueAt,
  isOverdue,
  effectivePriority,
  compareByUrgency,
  PRIORITY_OVERDUE_BOOST,
  PRIORITY_ESCALATED,
  type ReviewerScope,
  type QueueStats,
  type ReviewVote,
  type Tally,
  type AgreedLabel,
} from './review.ts';
export {
  transparencyReport,
  ESCALATION_TARGETS,
  type AuditLike,
  type TransparencyReport,
  type TransparencyCell,
  type EscalationRate,
  type Percentiles,
  type RestrictionCounts,
} from './transparency.ts';
