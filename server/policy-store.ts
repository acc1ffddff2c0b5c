// The policy in force on this node: validated activation (a broken bundle is refused with file:line
// and the last good policy stays), every activation and refusal audited, listeners told of changes
// (the moderation stack, the enforcer). Policy files come from POLICY_DIR (readPolicyDir) or the admin
// API; policies/ parses and checks them (pure), this store holds the one that applies.
import { readdir, readFile } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { diffPolicies, loadPolicyBundle, PolicyError, withThresholds, type ThresholdEdit } from '../policies/index.ts';
import type { Policy, PolicyChange, PolicyFile } from '../policies/types.ts';
import { badRequest } from './errors.ts';

/** Append-only audit log (the store's appendAudit fits). */
export interface AuditSink {
  append(body: Record<string, unknown>): unknown;
}

export interface PolicyStoreOptions {
  audit?: AuditSink;
  /** Server clock (ms) for the audit entries. Default performance.timeOrigin + performance.now(). */
  clock?: () => number;
  /** Policy in force before any load. */
  initial?: Policy;
  /** Failures of the audit port and of listeners (never thrown to the caller). */
  onError?: (error: unknown, context: string) => void;
}

export type PolicyLoadResult =
  | { ok: true; policy: Policy; previousVersion: string | undefined; changes: PolicyChange[] }
  | { ok: false; error: PolicyError; activeVersion: string | undefined };

/** A shadow candidate: policy files, or threshold edits of the active policy (exactly one of them). */
export interface ShadowCandidate {
  files?: readonly PolicyFile[];
  thresholds?: readonly ThresholdEdit[];
}

export type ShadowStartResult =
  { ok: true; policy: Policy; activeVersion: string; changes: PolicyChange[] } | { ok: false; error: PolicyError };

export class PolicyStore {
  #current: Policy | undefined;
  #shadow: Policy | undefined;
  readonly #audit: AuditSink | undefined;
  readonly #clock: () => number;
  readonly #onError: (error: unknown, context: string) => void;
  readonly #listeners = new Set<(policy: Policy, changes: PolicyChange[]) => void>();

  constructor(options: PolicyStoreOptions = {}) {
    this.#audit = options.audit;
    this.#clock = options.clock ?? (() => performance.timeOrigin + performance.now());
    this.#current = options.initial;
    this.#onError = options.onError ?? (() => undefined);
  }

  /** The active policy. Throws POL_ERR_NO_BASE before the first successful load. */
  get current(): Policy {
    if (!this.#current)
      throw new PolicyError(
        'POL_ERR_NO_BASE',
        [{ file: '', line: 0, column: 0, path: '', reason: 'no policy loaded yet' }],
        503,
      );
    return this.#current;
  }

  get loaded(): boolean {
    return this.#current !== undefined;
  }

  onChange(listener: (policy: Policy, changes: PolicyChange[]) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Validates and activates a bundle. A broken bundle is refused (the error names file, line and
   * reason) and the active policy stays. Both outcomes are audited with who and when.
   */
  load(files: readonly PolicyFile[], by: string, auditExtra: Record<string, unknown> = {}): PolicyLoadResult {
    const at = this.#clock();
    let policy: Policy;
    try {
      policy = loadPolicyBundle(files);
    } catch (error) {
      if (!(error instanceof PolicyError)) throw error;
      this.#append({
        type: 'policy.rejected',
        by,
        at,
        activeVersion: this.#current?.version ?? null,
        code: error.code,
        issues: error.issues,
      });
      return { ok: false, error, activeVersion: this.#current?.version };
    }
    const previous = this.#current;
    if (previous && previous.version === policy.version)
      return { ok: true, policy: previous, previousVersion: previous.version, changes: [] };
    const changes = diffPolicies(previous, policy);
    this.#current = policy;
    this.#append({
      type: 'policy.activated',
      by,
      at,
      fromVersion: previous?.version ?? null,
      toVersion: policy.version,
      files: policy.files,
      changes: previous ? changes : [],
      ...auditExtra,
    });
    for (const l of this.#listeners) {
      try {
        l(policy, changes);
      } catch (error) {
        this.#onError(error, 'policy change listener');
      }
    }
    return { ok: true, policy, previousVersion: previous?.version, changes };
  }

  /** The candidate evaluated in the shadow of the active policy (issue 17); it enforces nothing. */
  get shadow(): Policy | undefined {
    return this.#shadow;
  }

  /**
   * Starts evaluating a candidate beside the active policy (replacing any candidate before it). A
   * candidate that does not load is refused and the one before stays. Audited either way.
   */
  startShadow(candidate: ShadowCandidate, by: string): ShadowStartResult {
    const at = this.#clock();
    const active = this.current;
    const checked = this.checkShadow(candidate);
    if (!checked.ok) {
      const error = checked.error;
      this.#append({
        type: 'policy.shadow_rejected',
        by,
        at,
        activeVersion: active.version,
        code: error.code,
        issues: error.issues,
      });
      return checked;
    }
    const { policy, changes } = checked;
    const previous = this.#shadow?.version ?? null;
    this.#shadow = policy;
    this.#append({
      type: 'policy.shadow_started',
      by,
      at,
      candidateVersion: policy.version,
      activeVersion: active.version,
      previousCandidate: previous,
      files: candidate.files ? policy.files : null,
      thresholds: candidate.thresholds ?? null,
      changes,
    });
    return { ok: true, policy, activeVersion: active.version, changes };
  }

  /** Loads a candidate against the active policy without running it or auditing anything. */
  checkShadow(candidate: ShadowCandidate): ShadowStartResult {
    const active = this.current;
    if ((candidate.files === undefined) === (candidate.thresholds === undefined))
      throw badRequest('a shadow candidate is either policy files or threshold edits');
    try {
      const policy = candidate.files
        ? loadPolicyBundle(candidate.files)
        : withThresholds(active, candidate.thresholds ?? []);
      return { ok: true, policy, activeVersion: active.version, changes: diffPolicies(active, policy) };
    } catch (error) {
      if (!(error instanceof PolicyError)) throw error;
      return { ok: false, error };
    }
  }

  /** Stops the shadow run (audited); false when none ran. */
  stopShadow(by: string, reason = 'stopped'): boolean {
    const candidate = this.#shadow;
    if (!candidate) return false;
    this.#shadow = undefined;
    this.#append({ type: 'policy.shadow_stopped', by, at: this.#clock(), candidateVersion: candidate.version, reason });
    return true;
  }

  /** Reads every *.yaml / *.yml under `dir` (recursively) and loads them as one bundle. */
  async loadDir(dir: string, by: string): Promise<PolicyLoadResult> {
    return this.load(await readPolicyDir(dir), by);
  }

  #append(body: Record<string, unknown>): void {
    if (!this.#audit) return;
    try {
      const r = this.#audit.append(body);
      if (r instanceof Promise) r.then(undefined, (e: unknown) => this.#onError(e, 'audit append (policy)'));
    } catch (error) {
      this.#onError(error, 'audit append (policy)');
    }
  }
}

/** Policy files of a directory, named `<dir name>/<relative path>` (e.g. policies/jurisdictions/DE.yaml). */
export async function readPolicyDir(dir: string): Promise<PolicyFile[]> {
  const out: PolicyFile[] = [];
  const walk = async (d: string): Promise<void> => {
    const entries = await readdir(d, { withFileTypes: true });
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const full = join(d, e.name);
      if (e.isDirectory()) await walk(full);
      else if (e.isFile() && /\.ya?ml$/.test(e.name))
        out.push({ filename: join(basename(dir), relative(dir, full)), text: await readFile(full, 'utf8') });
    }
  };
  await walk(dir);
  return out;
}
