// The policy in force: read it, validate files (file:line issues or the diff) and activate them on
// every node (kept in the store and carried by the control channel; audited by the PolicyStore).
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { diffPolicies, loadPolicyBundle, PolicyError } from '../../policies/index.ts';
import { readPolicyDir, type PolicyStore } from '../policy-store.ts';
import type { Store } from '../store/types.ts';
import { who, type Guard } from './access.ts';
import { AnyObject, bearer, doc, errorReplies, useZod, zs } from './schema.ts';

export interface PolicyRoutesOptions {
  guard: Guard;
  store: Store;
  policies: PolicyStore;
  /** Directory reloaded by an activation without files (POLICY_DIR). */
  policyDir: string;
  nodeId: string;
}

const PolicyFiles = z.object({ files: z.array(z.object({ filename: z.string().min(1).max(300), text: z.string().max(1_000_000) }).strict()).min(1).max(200) }).strict();
const ActivateBody = z.object({ files: PolicyFiles.shape.files.optional() }).strict();

export const policyRoutes: FastifyPluginAsync<PolicyRoutesOptions> = async (app, opts) => {
  useZod(app);
  const { store, policies } = opts;
  const admin = opts.guard(['admin']);

  app.get('/v1/policies', { onRequest: opts.guard(['reviewer']), schema: { tags: ['policies'], summary: 'The active policy', security: bearer, response: { 200: doc(AnyObject), ...errorReplies } } }, async () => {
    if (!policies.loaded) return { loaded: false };
    const p = policies.current;
    return { loaded: true, version: p.version, name: p.name, files: p.files, appealUrl: p.appealUrl, categories: Object.keys(p.taxonomy), jurisdictions: Object.keys(p.jurisdictions), policy: p };
  });

  const validate = (files: { filename: string; text: string }[]) => {
    try {
      const policy = loadPolicyBundle(files);
      return { ok: true as const, version: policy.version, changes: diffPolicies(policies.loaded ? policies.current : undefined, policy) };
    } catch (err) {
      if (err instanceof PolicyError) return { ok: false as const, code: err.code, message: err.message, issues: err.issues };
      throw err;
    }
  };

  app.post(
    '/v1/policies/validate',
    { onRequest: admin, schema: { tags: ['policies'], summary: 'Check policy files without activating them (file:line issues, or the diff)', security: bearer, body: zs(PolicyFiles), response: { 200: doc(AnyObject), ...errorReplies } } },
    async (req) => validate((req.body as z.output<typeof PolicyFiles>).files),
  );

  app.post(
    '/v1/policies/activate',
    { onRequest: admin, schema: { tags: ['policies'], summary: 'Activate policy files (or reload the policy directory) on every node (audited)', security: bearer, body: zs(ActivateBody), response: { 200: doc(AnyObject), ...errorReplies } } },
    async (req) => {
      const body = (req.body ?? {}) as z.output<typeof ActivateBody>;
      const files = body.files ?? (await readPolicyDir(opts.policyDir));
      const r = policies.load(files, who(req));
      if (!r.ok) throw r.error;
      // kept in the store: a restarted node, and one that misses the message, apply it too (control.ts)
      await store.setActivePolicy({ version: r.policy.version, files, by: who(req), at: Date.now() });
      await store.publishControl({ type: 'policy', files, by: who(req), origin: opts.nodeId, at: Date.now() });
      return { version: r.policy.version, previousVersion: r.previousVersion ?? null, changes: r.changes };
    },
  );
};
