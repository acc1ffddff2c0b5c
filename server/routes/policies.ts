// The policy in force: read it, validate files (file:line issues or the diff) and activate them on
// every node (kept in the store and carried by the control channel; audited by the PolicyStore).
// Shadow evaluation (issue 17): a candidate (files, or threshold edits of the active policy) runs on
// every node beside the active one, enforcing nothing; its report says what it would have done
// differently. Activating a policy whose shadow report is missing or stale asks for `force`.
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import {
  diffPolicies,
  loadPolicyBundle,
  PolicyError,
  shadowFreshness,
  shadowReport,
  thresholdChanges,
} from '../../policies/index.ts';
import { SrvError, notFound } from '../errors.ts';
import { readPolicyDir, type PolicyStore } from '../policy-store.ts';
import type { ShadowPolicyRecord, Store } from '../store/types.ts';
import { who, type Guard } from './access.ts';
import { AnyObject, ErrorReply, bearer, doc, errorReplies, useZod, zs } from './schema.ts';

export interface PolicyRoutesOptions {
  guard: Guard;
  store: Store;
  policies: PolicyStore;
  /** Directory reloaded by an activation without files (POLICY_DIR). */
  policyDir: string;
  nodeId: string;
}

const PolicyFiles = z
  .object({
    files: z
      .array(z.object({ filename: z.string().min(1).max(300), text: z.string().max(1_000_000) }).strict())
      .min(1)
      .max(200),
  })
  .strict();
const ActivateBody = z
  .object({
    files: PolicyFiles.shape.files.optional(),
    /** Activate although the candidate has no shadow report against the active policy (audited as forced). */
    force: z.boolean().optional(),
  })
  .strict();
const threshold = z.number().min(0).max(1);
const ThresholdEdits = z
  .array(
    z
      .object({
        jurisdiction: z.string().regex(/^([A-Z]{2}|default|global)$/, "ISO 3166-1 alpha-2, 'default' or 'global'"),
        category: z.string().min(1).max(100),
        amber: threshold.optional(),
        red: threshold.optional(),
      })
      .strict(),
  )
  .min(1)
  .max(500);
const ShadowBody = z
  .object({ files: PolicyFiles.shape.files.optional(), thresholds: ThresholdEdits.optional() })
  .strict()
  .refine((b) => (b.files === undefined) !== (b.thresholds === undefined), 'give either files or thresholds');
const ReportQuery = z.object({ version: z.string().min(1).max(100).optional() }).strict();

/** A shadow record without its file texts (what the API shows of a run). */
function runOf(r: ShadowPolicyRecord): Record<string, unknown> {
  return {
    version: r.version,
    activeVersion: r.activeVersion,
    by: r.by,
    at: r.at,
    files: r.files?.map((f) => f.filename) ?? null,
    thresholds: r.thresholds ?? null,
  };
}

export const policyRoutes: FastifyPluginAsync<PolicyRoutesOptions> = async (app, opts) => {
  useZod(app);
  const { store, policies } = opts;
  const admin = opts.guard(['admin']);

  app.get(
    '/v1/policies',
    {
      onRequest: opts.guard(['reviewer']),
      schema: {
        tags: ['policies'],
        summary: 'The active policy',
        security: bearer,
        response: { 200: doc(AnyObject), ...errorReplies },
      },
    },
    async () => {
      if (!policies.loaded) return { loaded: false };
      const p = policies.current;
      return {
        loaded: true,
        version: p.version,
        name: p.name,
        files: p.files,
        appealUrl: p.appealUrl,
        categories: Object.keys(p.taxonomy),
        jurisdictions: Object.keys(p.jurisdictions),
        policy: p,
      };
    },
  );

  const validate = (files: { filename: string; text: string }[]) => {
    try {
      const policy = loadPolicyBundle(files);
      return {
        ok: true as const,
        version: policy.version,
        changes: diffPolicies(policies.loaded ? policies.current : undefined, policy),
      };
    } catch (err) {
      if (err instanceof PolicyError)
        return { ok: false as const, code: err.code, message: err.message, issues: err.issues };
      throw err;
    }
  };

  app.post(
    '/v1/policies/validate',
    {
      onRequest: admin,
      schema: {
        tags: ['policies'],
        summary: 'Check policy files without activating them (file:line issues, or the diff)',
        security: bearer,
        body: zs(PolicyFiles),
        response: { 200: doc(AnyObject), ...errorReplies },
      },
    },
    async (req) => validate((req.body as z.output<typeof PolicyFiles>).files),
  );

  app.post(
    '/v1/policies/activate',
    {
      onRequest: admin,
      schema: {
        tags: ['policies'],
        summary: 'Activate policy files (or reload the policy directory) on every node (audited)',
        security: bearer,
        body: zs(ActivateBody),
        response: { 200: doc(AnyObject), ...errorReplies },
      },
    },
    async (req) => {
      const body = (req.body ?? {}) as z.output<typeof ActivateBody>;
      const files = body.files ?? (await readPolicyDir(opts.policyDir));
      // A change of version needs the candidate's shadow report against the policy it replaces (or force).
      // A bundle that does not load goes on to policies.load, which refuses it (audited) as before.
      let version: string | undefined;
      try {
        version = loadPolicyBundle(files).version;
      } catch (err) {
        if (!(err instanceof PolicyError)) throw err;
      }
      const activeVersion = policies.loaded ? policies.current.version : undefined;
      let shadow: Record<string, unknown> = {};
      if (version !== undefined && activeVersion !== undefined && version !== activeVersion) {
        const run = await store.getShadowRun(version);
        const freshness = shadowFreshness(
          run && { candidateVersion: run.version, activeVersion: run.activeVersion, startedAt: run.at },
          version,
          activeVersion,
        );
        if (freshness !== 'fresh' && body.force !== true)
          throw new SrvError(
            'SRV_ERR_SHADOW_REQUIRED',
            `policy ${version} has ${freshness === 'missing' ? 'no shadow report' : `a shadow report against ${run?.activeVersion}, not the active ${activeVersion}`}: run it in the shadow first (POST /v1/policies/shadow) or activate with force: true`,
          );
        const differences = run ? (await store.listShadowDifferences(version)).length : 0;
        shadow = {
          shadowReport: { freshness, differences, startedAt: run?.at ?? null },
          forced: freshness !== 'fresh',
        };
      }
      const r = policies.load(files, who(req), shadow);
      if (!r.ok) throw r.error;
      // kept in the store: a restarted node, and one that misses the message, apply it too (control.ts)
      await store.setActivePolicy({ version: r.policy.version, files, by: who(req), at: Date.now() });
      await store.publishControl({ type: 'policy', files, by: who(req), origin: opts.nodeId, at: Date.now() });
      // the candidate became the active policy: its shadow run has nothing left to compare
      if (policies.shadow?.version === r.policy.version) await stopShadow(who(req), 'activated');
      return { version: r.policy.version, previousVersion: r.previousVersion ?? null, changes: r.changes, ...shadow };
    },
  );

  // The store is written before this node changes its own run: a heartbeat's syncShadow (control.ts)
  // in between then agrees with what this node is about to do instead of undoing it.
  const stopShadow = async (by: string, reason: string): Promise<boolean> => {
    await store.setShadowPolicy(undefined);
    const stopped = policies.stopShadow(by, reason);
    await store.publishControl({ type: 'shadow', record: null, origin: opts.nodeId, at: Date.now() });
    return stopped;
  };

  app.post(
    '/v1/policies/shadow',
    {
      onRequest: admin,
      schema: {
        tags: ['policies'],
        summary:
          'Evaluate a candidate policy (files, or threshold edits of the active policy) beside the active one on every node, enforcing nothing (audited)',
        security: bearer,
        body: zs(ShadowBody),
        response: { 200: doc(AnyObject), 422: doc(ErrorReply), ...errorReplies },
      },
    },
    async (req) => {
      const body = req.body as z.output<typeof ShadowBody>;
      const candidate = body.files ? { files: body.files } : { thresholds: body.thresholds };
      const checked = policies.checkShadow(candidate);
      // a candidate that does not load is refused by startShadow, which audits the refusal
      if (!checked.ok) {
        const refused = policies.startShadow(candidate, who(req));
        throw refused.ok ? checked.error : refused.error;
      }
      const record: ShadowPolicyRecord = {
        version: checked.policy.version,
        activeVersion: checked.activeVersion,
        ...candidate,
        by: who(req),
        at: Date.now(),
      };
      // kept in the store (the run outlives the candidate, for the activation check), then run here and on every node
      await store.setShadowPolicy(record);
      const r = policies.startShadow(candidate, who(req));
      if (!r.ok) throw r.error;
      await store.publishControl({ type: 'shadow', record, origin: opts.nodeId, at: Date.now() });
      return { ...runOf(record), changes: thresholdChanges(r.changes), allChanges: r.changes.length };
    },
  );

  app.get(
    '/v1/policies/shadow',
    {
      onRequest: opts.guard(['reviewer']),
      schema: {
        tags: ['policies'],
        summary: 'The candidate in the shadow now',
        security: bearer,
        response: { 200: doc(AnyObject), ...errorReplies },
      },
    },
    async () => {
      const record = await store.getShadowPolicy();
      return { running: record !== undefined, shadow: record ? runOf(record) : null };
    },
  );

  app.delete(
    '/v1/policies/shadow',
    {
      onRequest: admin,
      schema: {
        tags: ['policies'],
        summary: 'Stop the shadow run on every node (its report stays readable; audited)',
        security: bearer,
        response: { 200: doc(AnyObject), ...errorReplies },
      },
    },
    async (req) => {
      const record = await store.getShadowPolicy();
      const stopped = await stopShadow(who(req), 'stopped');
      return { stopped: stopped || record !== undefined, version: record?.version ?? null };
    },
  );

  app.get(
    '/v1/policies/shadow/report',
    {
      onRequest: opts.guard(['reviewer']),
      schema: {
        tags: ['policies'],
        summary:
          'What the candidate (the current one, or ?version=) would have done differently from the active policy, per jurisdiction and category, with sample references',
        security: bearer,
        querystring: zs(ReportQuery),
        response: { 200: doc(AnyObject), ...errorReplies },
      },
    },
    async (req) => {
      const q = req.query as z.output<typeof ReportQuery>;
      const current = await store.getShadowPolicy();
      const version = q.version ?? current?.version;
      if (!version) throw notFound('no shadow run: start one with POST /v1/policies/shadow');
      const run = await store.getShadowRun(version);
      if (!run) throw notFound(`no shadow run of policy ${version}`);
      const report = shadowReport(version, await store.listShadowDifferences(version));
      const activeVersion = policies.loaded ? policies.current.version : undefined;
      return {
        run: runOf(run),
        running: current?.version === version,
        freshness: shadowFreshness(
          { candidateVersion: run.version, activeVersion: run.activeVersion, startedAt: run.at },
          version,
          activeVersion,
        ),
        generatedAt: Date.now(),
        report,
      };
    },
  );
};
