// Shadow evaluation through the API (issue 17 item 1): a candidate started on one node is evaluated on
// the signals of every node beside the active policy, enforces nothing, and reports what it would have
// done differently; activation without a fresh shadow report asks for `force`. Both stores: a shared
// MemoryStore, and a real redis-server with two nodes on it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildServer, type Server } from '../../server/app.ts';
import { loadConfig } from '../../server/config.ts';
import { readPolicyDir } from '../../server/policy-store.ts';
import { MemoryStore } from '../../server/store/memory.ts';
import type { ShadowReport } from '../../policies/index.ts';
import type { AuditEntry, Store } from '../../server/store/types.ts';
import { FakeSfu } from '../sfu/fake.ts';
import { signal } from '../policies/helpers.ts';
import { startRedis, type RedisProcess } from './helpers.ts';

interface ReportReply {
  running: boolean;
  freshness: string;
  report?: ShadowReport;
}

interface Node {
  server: Server;
  sfu: FakeSfu;
}

async function until(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!(await predicate())) {
    if (performance.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

function suite(name: string, nodes: () => Promise<[Node, Node]>, closeAll: () => Promise<void>): void {
  describe(`shadow evaluation [${name}]`, () => {
    let one: Node;
    let two: Node;
    let admin: string;
    let reviewer: string;
    before(async () => {
      [one, two] = await nodes();
      admin = await one.server.auth.sign({ role: 'admin', sub: 'policy-owner' });
      reviewer = await one.server.auth.sign({ role: 'reviewer', sub: 'analyst' });
    });
    after(closeAll);
    const req = (node: Node, method: 'GET' | 'POST' | 'DELETE', url: string, token: string, payload?: unknown) =>
      node.server.app.inject({
        method,
        url,
        headers: { authorization: `Bearer ${token}` },
        ...(payload === undefined ? {} : { payload: payload as object }),
      });
    const audit = async (node: Node): Promise<AuditEntry[]> => {
      await node.server.store.flush();
      return node.server.store.readAudit({ limit: 10_000 });
    };

    test('a lower global red threshold in the shadow: the kill it would have made is reported, the stream stays live', async () => {
      assert.equal(
        (
          await req(one, 'POST', '/v1/policies/shadow', reviewer, {
            thresholds: [{ jurisdiction: 'global', category: 'sexual_explicit', red: 0.6 }],
          })
        ).statusCode,
        403,
        'admins only',
      );
      const started = await req(one, 'POST', '/v1/policies/shadow', admin, {
        thresholds: [{ jurisdiction: 'global', category: 'sexual_explicit', red: 0.6 }],
      });
      assert.equal(started.statusCode, 200, started.body);
      const candidate = started.json().version as string;
      assert.ok(started.json().changes.some((c: { path: string }) => c.path === 'global.sexual_explicit.red'));
      assert.equal(started.json().activeVersion, one.server.policies.current.version);
      // the other node evaluates the same candidate (control channel)
      await until(() => two.server.policies.shadow?.version === candidate, 'the second node to start the shadow run');
      assert.equal((await req(two, 'GET', '/v1/policies/shadow', reviewer)).json().shadow.version, candidate);

      // a stream on each node scores 0.75: the active policy blanks (global red 0.90), the candidate would kill
      const streams = [one.sfu.add('sh-one'), two.sfu.add('sh-two')];
      const t0 = Date.now();
      for (let i = 1; i <= 10; i++) {
        one.server.enforcer.onSignal(
          signal(i, { sexual_explicit: 0.75 }, { streamId: 'sh-one', arrivedAt: t0 + i, completedAt: t0 + i }),
        );
        two.server.enforcer.onSignal(
          signal(i, { sexual_explicit: 0.75 }, { streamId: 'sh-two', arrivedAt: t0 + i, completedAt: t0 + i }),
        );
      }
      for (const s of streams) assert.equal(s.closeReason, undefined, `${s.id}: the shadow enforces nothing`);
      assert.equal(one.server.enforcer.verdictOf('sh-one')?.kill, false);

      let report: ReportReply = { running: false, freshness: '' };
      await until(async () => {
        report = (await req(one, 'GET', '/v1/policies/shadow/report', reviewer)).json();
        return report.report?.shadowOnly?.kill === 2;
      }, 'both nodes\u2019 kills in the report');
      assert.equal(report.running, true);
      assert.equal(report.freshness, 'fresh');
      const cell = report.report?.jurisdictions.global?.sexual_explicit;
      assert.equal(cell?.shadowOnly.kill, 2);
      assert.deepEqual(cell?.examples.map((e) => e.streamId).sort(), ['sh-one', 'sh-two']);
      assert.ok(
        cell?.examples.every((e) => e.sampleSeqs.length >= 3 && e.score >= 0.6),
        JSON.stringify(cell?.examples),
      );
      // and the reverse: the blanks the active policy applied that the candidate's kill would have replaced
      assert.ok((report.report?.activeOnly.blank ?? 0) >= 2, JSON.stringify(report.report?.activeOnly));
      assert.ok((report.report?.jurisdictions.default?.sexual_explicit?.activeOnly.blank ?? 0) >= 2);

      const metrics = await one.server.app.inject({ method: 'GET', url: '/metrics' });
      assert.match(
        metrics.body,
        /msfu_shadow_differences_total\{side="shadow_only",outcome="kill"\} 1\b/,
        'this node counts its own stream',
      );
      // more samples of the same do not count the same kill again
      for (let i = 11; i <= 14; i++)
        one.server.enforcer.onSignal(
          signal(i, { sexual_explicit: 0.75 }, { streamId: 'sh-one', arrivedAt: t0 + i, completedAt: t0 + i }),
        );
      await one.server.store.flush();
      assert.equal((await req(one, 'GET', '/v1/policies/shadow/report', reviewer)).json().report.shadowOnly.kill, 2);

      const stopped = await req(one, 'DELETE', '/v1/policies/shadow', admin);
      assert.equal(stopped.statusCode, 200, stopped.body);
      await until(() => two.server.policies.shadow === undefined, 'the second node to stop the shadow run');
      assert.equal((await req(one, 'GET', '/v1/policies/shadow', reviewer)).json().running, false);
      assert.equal((await req(one, 'GET', '/v1/policies/shadow/report', reviewer)).statusCode, 404, 'no current run');
      const kept = (await req(one, 'GET', `/v1/policies/shadow/report?version=${candidate}`, reviewer)).json();
      assert.equal(kept.running, false);
      assert.equal(kept.report.shadowOnly.kill, 2, 'the report of a stopped run stays readable');

      const entries = await audit(one);
      const startedEntry = entries.find(
        (e) => e.body.type === 'policy.shadow_started' && e.body.candidateVersion === candidate,
      );
      assert.equal(startedEntry?.body.by, 'policy-owner');
      assert.ok(entries.some((e) => e.body.type === 'policy.shadow_stopped' && e.body.candidateVersion === candidate));
    });

    test('a node that missed the start or stop message follows the store within a heartbeat', async () => {
      const thresholds = [{ jurisdiction: 'default', category: 'sexual_explicit', red: 0.65 }];
      const checked = one.server.policies.checkShadow({ thresholds });
      assert.ok(checked.ok);
      // written to the store only: no control message
      await one.server.store.setShadowPolicy({
        version: checked.policy.version,
        activeVersion: checked.activeVersion,
        thresholds,
        by: 'another-node',
        at: Date.now(),
      });
      await until(
        () => two.server.policies.shadow?.version === checked.policy.version,
        'the second node to start the run from the store',
      );
      await one.server.store.setShadowPolicy(undefined);
      await until(
        () => two.server.policies.shadow === undefined && one.server.policies.shadow === undefined,
        'both nodes to stop it from the store',
      );
    });

    test('bad candidates are refused: both kinds at once, a rule the policy lacks, broken files', async () => {
      const both = await req(one, 'POST', '/v1/policies/shadow', admin, {
        thresholds: [{ jurisdiction: 'global', category: 'sexual_explicit', red: 0.6 }],
        files: [{ filename: 'a.yaml', text: 'x' }],
      });
      assert.equal(both.statusCode, 400, both.body);
      const missing = await req(one, 'POST', '/v1/policies/shadow', admin, {
        thresholds: [{ jurisdiction: 'global', category: 'profanity', red: 0.5 }],
      });
      assert.equal(missing.statusCode, 400, missing.body);
      assert.equal(missing.json().code, 'POL_ERR_REFERENCE');
      const broken = await req(one, 'POST', '/v1/policies/shadow', admin, {
        files: [{ filename: 'bad.yaml', text: 'kind: nope' }],
      });
      assert.ok(broken.statusCode >= 400 && broken.statusCode < 500, broken.body);
      assert.match(broken.json().code, /^POL_ERR_/);
      assert.equal(one.server.policies.shadow, undefined);
      assert.ok((await audit(one)).some((e) => e.body.type === 'policy.shadow_rejected'));
    });

    test('activation: refused without a shadow report, allowed after one (the run ends), forced and audited as such, stale after the active policy changed', async () => {
      const dir = await readPolicyDir('policies');
      const edit = (tag: string) => dir.map((f, i) => (i === 0 ? { ...f, text: `${f.text}\n# ${tag}\n` } : f));
      const original = one.server.policies.current.version;
      const a = edit('candidate a');
      const refused = await req(one, 'POST', '/v1/policies/activate', admin, { files: a });
      assert.equal(refused.statusCode, 409, refused.body);
      assert.equal(refused.json().code, 'SRV_ERR_SHADOW_REQUIRED');
      assert.match(refused.json().message, /no shadow report/);
      assert.equal(one.server.policies.current.version, original, 'nothing activated');

      const shadowed = await req(one, 'POST', '/v1/policies/shadow', admin, { files: a });
      assert.equal(shadowed.statusCode, 200, shadowed.body);
      const act = await req(one, 'POST', '/v1/policies/activate', admin, { files: a });
      assert.equal(act.statusCode, 200, act.body);
      assert.equal(act.json().forced, false);
      assert.equal(act.json().shadowReport.freshness, 'fresh');
      assert.equal(one.server.policies.shadow, undefined, 'the activated candidate left the shadow');
      await until(
        () => two.server.policies.current.version === act.json().version && two.server.policies.shadow === undefined,
        'the second node to activate it',
      );

      // back to the directory: no shadow report for it -> force
      const forced = await req(one, 'POST', '/v1/policies/activate', admin, { force: true });
      assert.equal(forced.statusCode, 200, forced.body);
      assert.equal(forced.json().version, original);
      assert.equal(forced.json().forced, true);
      const activated = (await audit(one)).filter((e) => e.body.type === 'policy.activated');
      assert.equal(activated.at(-1)?.body.forced, true);
      assert.equal(activated.at(-1)?.body.by, 'policy-owner');

      // a report against another active policy is stale
      const b = edit('candidate b');
      assert.equal((await req(one, 'POST', '/v1/policies/shadow', admin, { files: b })).statusCode, 200);
      assert.equal(
        (await req(one, 'POST', '/v1/policies/activate', admin, { files: edit('candidate c'), force: true }))
          .statusCode,
        200,
      );
      const stale = await req(one, 'POST', '/v1/policies/activate', admin, { files: b });
      assert.equal(stale.statusCode, 409, stale.body);
      assert.match(stale.json().message, /shadow report against/);
      assert.equal((await req(one, 'GET', '/v1/policies/shadow/report', reviewer)).json().freshness, 'stale');
      assert.equal((await req(one, 'POST', '/v1/policies/activate', admin, { force: true })).statusCode, 200);
      assert.equal((await req(one, 'DELETE', '/v1/policies/shadow', admin)).statusCode, 200);
    });
  });
}

const config = (nodeId: string, extra: Record<string, unknown> = {}) =>
  loadConfig({
    env: {},
    overrides: {
      port: 0,
      host: '127.0.0.1',
      logLevel: 'silent',
      authSecret: 's'.repeat(40),
      moderation: false,
      nodeId,
      heartbeatMs: 200,
      ...extra,
    },
  });

{
  const opened: Server[] = [];
  suite(
    'memory',
    async () => {
      const store: Store = new MemoryStore();
      const make = async (id: string): Promise<Node> => {
        const sfu = new FakeSfu();
        const server = await buildServer(config(id), { sfu, store });
        opened.push(server);
        return { server, sfu };
      };
      return [await make('m1'), await make('m2')];
    },
    async () => {
      for (const s of opened) await s.close();
    },
  );
}

{
  const opened: Server[] = [];
  let redis: RedisProcess | undefined;
  const scratch = mkdtempSync(join(tmpdir(), 'msfu-shadow-'));
  suite(
    'redis',
    async () => {
      redis = await startRedis();
      const make = async (id: string): Promise<Node> => {
        const sfu = new FakeSfu();
        const server = await buildServer(config(id, { redisUrl: redis!.url, outboxDir: join(scratch, id) }), { sfu });
        opened.push(server);
        return { server, sfu };
      };
      return [await make('r1'), await make('r2')];
    },
    async () => {
      for (const s of opened) await s.close();
      await redis?.stop();
      rmSync(scratch, { recursive: true, force: true });
    },
  );
}
