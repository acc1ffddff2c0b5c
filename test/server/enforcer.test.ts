// The enforcer against a fake SFU implementing sfu/types.ts.
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { chainAuditEntry, verifyAuditChain } from '../../policies/audit.ts';
import { createAppeal, resolveReview, statementGaps } from '../../policies/statements.ts';
import type { AuditEntry, ReviewItem, StatementOfReasons } from '../../policies/types.ts';
import { Enforcer, type DecisionLog } from '../../server/enforcer.ts';
import type { EventAudience, EventMessage } from '../../server/events.ts';
import { PolicyStore } from '../../server/policy-store.ts';
import { FakeSfu } from '../sfu/fake.ts';
import { badMatch, musicMatch, shippedPolicy, shippedPolicyFiles, signal } from '../policies/helpers.ts';

class Harness {
  readonly sfu = new FakeSfu();
  readonly audit: AuditEntry[] = [];
  readonly reviews: ReviewItem[] = [];
  readonly events: { audience: EventAudience; message: EventMessage }[] = [];
  readonly statements = new Map<string, StatementOfReasons>();
  readonly decisions: DecisionLog[] = [];
  readonly blocks = new Map<string, string>();
  readonly errors: string[] = [];
  now = 10_000;
  readonly policies: PolicyStore;
  readonly enforcer: Enforcer;

  constructor(mode: 'per_viewer' | 'strictest_intersection' = 'per_viewer') {
    const sink = {
      append: (body: Record<string, unknown>) =>
        void this.audit.push(chainAuditEntry(this.audit.at(-1), body, this.now)),
    };
    this.policies = new PolicyStore({ audit: sink, clock: () => this.now });
    assert.equal(this.policies.load(shippedPolicyFiles(), 'test').ok, true);
    this.enforcer = new Enforcer({
      streams: this.sfu,
      policies: this.policies,
      audit: sink,
      review: { enqueue: (item) => void this.reviews.push(item) },
      events: { emit: (audience, message) => void this.events.push({ audience, message }) },
      records: {
        statement: (s) => void this.statements.set(s.id, s),
        decision: (d) => void this.decisions.push(d),
        block: (id, _reason, statementId) => void this.blocks.set(id, statementId),
        unblock: (id) => void this.blocks.delete(id),
      },
      clock: () => this.now,
      mode,
      onError: (e, ctx) => void this.errors.push(`${ctx}: ${String(e)}`),
    });
  }

  /** A live stream with viewers, attached to the enforcer the way the server does it. */
  live(id: string, viewers: [string, string | undefined][]) {
    const stream = this.sfu.add(id);
    this.enforcer.attachStream(stream);
    const v = Object.fromEntries(
      viewers.map(([vid, j]) => [vid, stream.addViewer(vid, j, this.enforcer.gateForNewViewer(id, j))]),
    );
    return { stream, v };
  }

  feed(streamId: string, seqs: number[], scores: Record<string, number>, extra: Parameters<typeof signal>[2] = {}) {
    for (const seq of seqs) {
      this.now = 1_000 + seq * 500 + 25;
      this.enforcer.onSignal(signal(seq, scores, { streamId, ...extra }));
    }
  }

  eventsOf(type: EventMessage['type']) {
    return this.events.filter((e) => e.message.type === type);
  }
}

describe('Enforcer', () => {
  it('kills a stream on a known-bad match: publisher closed, every viewer cut, told why, blocked from republishing', () => {
    const h = new Harness();
    const { stream, v } = h.live('s1', [
      ['a', 'SE'],
      ['b', 'SA'],
      ['c', undefined],
    ]);
    h.feed('s1', [1], { 'nsfw.porn': 0.01 });
    assert.equal(stream.closed, false);
    h.feed('s1', [2], {}, { matches: [badMatch] });
    assert.equal(stream.closed, true);
    assert.equal(stream.closeReason?.code, 'killed');
    const statementId = stream.closeReason?.statementId;
    assert.ok(statementId);
    for (const viewer of Object.values(v)) {
      assert.equal(viewer.closed, true);
      assert.equal(viewer.closeReason?.statementId, statementId);
    }
    const statement = h.statements.get(statementId);
    assert.ok(statement);
    assert.deepEqual(statementGaps(statement), []);
    assert.equal(statement.restriction.action, 'kill_stream');
    const killed = h.eventsOf('stream.killed');
    assert.equal(killed.length, 1);
    assert.deepEqual(killed[0]!.audience.roles, ['streamer', 'viewer', 'ops']);
    assert.equal(
      killed[0]!.message.type === 'stream.killed' && killed[0]!.message.appealUrl,
      `/v1/appeals/${statementId}`,
    );
    assert.equal(h.blocks.get('s1'), statementId);
    assert.equal(h.enforcer.isBlocked('s1')?.statementId, statementId);
    const admission = h.enforcer.admitViewer('s1', 'SE');
    assert.equal(admission.allowed, false);
    assert.equal(admission.statementId, statementId);
    // Latency recorded from the sample's arrival.
    const lat = h.decisions.at(-1)?.latency;
    assert.ok(lat);
    assert.equal(lat.kill, true);
    assert.equal(lat.fromArrivedMs, 25);
    assert.equal(lat.fromCompletedMs, 5);
    // Statement, decision and policy activation are in a verifiable audit chain.
    const types = h.audit.map((e) => (e.body as { type: string }).type);
    assert.deepEqual(types, ['policy.activated', 'statement', 'decision']);
    assert.deepEqual(verifyAuditChain(h.audit), { ok: true });
    // Late signals of the killed session change nothing.
    h.feed('s1', [3], {}, { matches: [badMatch] });
    assert.equal(h.statements.size, 1);
    assert.deepEqual(h.errors, []);
  });

  it('blanks SA viewers while SE viewers keep the picture, then reopens on green', () => {
    const h = new Harness();
    const { v } = h.live('s1', [
      ['se', 'SE'],
      ['sa', 'SA'],
      ['us', 'US'],
    ]);
    h.feed('s1', [1, 2], { 'nsfw.sexy': 0.6 });
    assert.equal(v.sa!.gate.video, 'forward', 'two of six samples are not enough');
    h.feed('s1', [3], { 'nsfw.sexy': 0.6 });
    assert.deepEqual(v.sa!.gate, { video: 'blank', audio: 'forward' });
    assert.deepEqual(v.se!.gate, { video: 'forward', audio: 'forward' });
    assert.deepEqual(v.us!.gate, { video: 'forward', audio: 'forward' });
    assert.deepEqual(v.se!.calls, []);
    const filtered = h.eventsOf('viewer.filtered');
    assert.equal(filtered.length, 1);
    assert.equal(filtered[0]!.audience.viewerId, 'sa');
    const statementId = filtered[0]!.message.type === 'viewer.filtered' ? filtered[0]!.message.statementId : undefined;
    assert.ok(statementId);
    const st = h.statements.get(statementId);
    assert.deepEqual(st?.restriction.jurisdictions, ['SA']);
    assert.deepEqual(statementGaps(st!), []);
    // Amber in the default band went to review, once.
    assert.equal(h.reviews.length, 1);
    assert.equal(h.reviews[0]!.type, 'amber');

    // Back to green: hysteresis holds for a while, then the gate reopens.
    h.feed('s1', [4, 5, 6], { 'nsfw.sexy': 0.05 });
    assert.equal(v.sa!.gate.video, 'blank');
    h.feed('s1', [7, 8], { 'nsfw.sexy': 0.05 });
    assert.equal(v.sa!.gate.video, 'forward');
    assert.deepEqual(v.sa!.calls, ['video:blank', 'video:forward']);
    const lifted = h.decisions.filter((d) => d.lifted.length > 0);
    assert.equal(lifted.length, 1);
    assert.equal(lifted[0]!.lifted[0]!.statementId, statementId);
    assert.equal(h.reviews.length, 1, 'no second review item while it stayed amber');
  });

  it('mutes copyrighted music for DE viewers only', () => {
    const h = new Harness();
    const { v } = h.live('s1', [
      ['de', 'DE'],
      ['se', 'SE'],
      ['us', 'US'],
      ['x', undefined],
    ]);
    h.feed('s1', [1, 2], {}, { kind: 'audio', matches: [musicMatch] });
    assert.deepEqual(v.de!.gate, { video: 'forward', audio: 'mute' });
    for (const k of ['se', 'us', 'x']) assert.deepEqual(v[k]!.gate, { video: 'forward', audio: 'forward' }, k);
    const st = [...h.statements.values()];
    assert.equal(st.length, 1);
    assert.equal(st[0]!.restriction.action, 'mute_audio');
    assert.match(st[0]!.ground.clause, /UrhDaG/);
    assert.equal(st[0]!.ground.type, 'law');
  });

  it('a viewer joining later is filtered from the first frame', () => {
    const h = new Harness();
    h.live('s1', [['se', 'SE']]);
    h.feed('s1', [1, 2, 3], { 'nsfw.sexy': 0.6 });
    h.feed('s1', [4, 5], {}, { kind: 'audio', matches: [musicMatch] });
    assert.deepEqual(h.enforcer.gateForNewViewer('s1', 'SA'), { video: 'blank', audio: 'forward' });
    assert.deepEqual(h.enforcer.gateForNewViewer('s1', 'DE'), { video: 'forward', audio: 'mute' });
    assert.deepEqual(h.enforcer.gateForNewViewer('s1', 'SE'), { video: 'forward', audio: 'forward' });
    assert.deepEqual(h.enforcer.gateForNewViewer('unknown-stream', 'SA'), { video: 'forward', audio: 'forward' });
    const stream = h.sfu.getStream('s1')!;
    const late = stream.addViewer('late-sa', 'SA', h.enforcer.gateForNewViewer('s1', 'SA'));
    assert.deepEqual(late.calls, [], 'started blanked: no gate call was needed');
    assert.equal(late.gate.video, 'blank');
    const ev = h.eventsOf('viewer.filtered').filter((e) => e.audience.viewerId === 'late-sa');
    assert.equal(ev.length, 1, 'the late joiner is told why');
    // A viewer created without initialGate (a route that forgot it) is gated on join.
    const careless = stream.addViewer('careless-sa', 'SA');
    assert.deepEqual(careless.calls, ['video:blank']);
  });

  it('quarantine: while models are down, new DE viewers are blanked and watching ones are not', () => {
    const h = new Harness();
    const { v } = h.live('s1', [['de', 'DE']]);
    h.feed('s1', [1, 2, 3], {}, { status: 'unavailable' });
    assert.equal(v.de!.gate.video, 'forward');
    const stream = h.sfu.getStream('s1')!;
    const joined = stream.addViewer('de2', 'DE', h.enforcer.gateForNewViewer('s1', 'DE'));
    assert.equal(joined.gate.video, 'blank');
    const told = h.eventsOf('viewer.filtered').find((e) => e.audience.viewerId === 'de2');
    const sid = told?.message.type === 'viewer.filtered' ? told.message.statementId : undefined;
    assert.ok(sid, 'the quarantined viewer is pointed at a statement');
    assert.match(h.statements.get(sid)?.ground.explanation ?? '', /viewers joining in DE/);
    assert.equal(stream.addViewer('se', 'SE', h.enforcer.gateForNewViewer('s1', 'SE')).gate.video, 'forward');
    // Another unavailable sample does not release the quarantined viewer.
    h.feed('s1', [4], {}, { status: 'deadline_missed' });
    assert.equal(joined.gate.video, 'blank');
    // Recovery takes as many good samples as the outage took (failAfter), so the gate does not flap.
    h.feed('s1', [5], { 'nsfw.sexy': 0.01 });
    h.feed('s1', [6], { 'nsfw.sexy': 0.01 });
    assert.equal(joined.gate.video, 'blank', 'two good samples are not yet a recovery');
    h.feed('s1', [7], { 'nsfw.sexy': 0.01 });
    assert.equal(joined.gate.video, 'forward', 'released when signals recover');
    assert.equal(v.de!.gate.video, 'forward');
  });

  it('strictest-intersection mode: an SA viewer joining blanks the SE viewer too, and leaving restores it', () => {
    const h = new Harness('strictest_intersection');
    const { v, stream } = h.live('s1', [['se', 'SE']]);
    h.feed('s1', [1, 2, 3], { 'nsfw.sexy': 0.6 });
    assert.equal(v.se!.gate.video, 'forward');
    const sa = stream.addViewer('sa', 'SA', h.enforcer.gateForNewViewer('s1', 'SA'));
    assert.equal(sa.gate.video, 'blank');
    assert.equal(v.se!.gate.video, 'blank');
    sa.close({ code: 'viewer_left', message: 'bye' });
    assert.equal(v.se!.gate.video, 'forward');
  });

  it('a reviewer upholding amber restricts for the session; an overturned kill lets the streamer publish again', () => {
    const h = new Harness();
    const { v } = h.live('s1', [
      ['us', 'US'],
      ['se', 'SE'],
    ]);
    h.feed('s1', [1, 2, 3], { 'nsfw.porn': 0.5 });
    assert.equal(v.us!.gate.video, 'forward');
    const item = h.reviews.find((r) => r.jurisdictions.includes('US'));
    assert.ok(item);
    const decision = resolveReview(item, { outcome: 'uphold', reviewer: 'alice', at: h.now }, shippedPolicy());
    h.enforcer.applyReviewDecision(decision);
    assert.equal(v.us!.gate.video, 'blank');
    assert.equal(v.se!.gate.video, 'forward');
    assert.ok(decision.statement && h.statements.has(decision.statement.id));
    // Scores drop to green: the human decision holds.
    h.feed('s1', [4, 5, 6, 7, 8, 9], { 'nsfw.porn': 0.01 });
    assert.equal(v.us!.gate.video, 'blank');

    h.feed('s1', [10], {}, { matches: [badMatch] });
    const block = h.enforcer.isBlocked('s1');
    assert.ok(block);
    const killStatement = h.statements.get(block.statementId)!;
    const appeal = createAppeal(killStatement, { appellant: 's1-owner', grounds: 'false match', at: h.now });
    const outcome = resolveReview(appeal, { outcome: 'overturn', reviewer: 'carol', at: h.now + 1 }, shippedPolicy());
    h.enforcer.applyReviewDecision(outcome);
    assert.equal(h.enforcer.isBlocked('s1'), undefined);
    assert.equal(h.blocks.has('s1'), false);
    assert.ok(h.statements.has(outcome.statement!.id));
    assert.deepEqual(verifyAuditChain(h.audit), { ok: true });
    assert.ok(h.audit.some((e) => (e.body as { type: string }).type === 'stream.unblocked'));
  });

  it('a failing port is reported and does not stop enforcement', () => {
    const sfu = new FakeSfu();
    const errors: string[] = [];
    const policies = new PolicyStore({ initial: shippedPolicy() });
    const enforcer = new Enforcer({
      streams: sfu,
      policies,
      audit: { append: () => Promise.reject(new Error('redis down')) },
      events: {
        emit: () => {
          throw new Error('hub down');
        },
      },
      onError: (e, ctx) => void errors.push(ctx),
    });
    const stream = sfu.add('s1');
    enforcer.attachStream(stream);
    const sa = stream.addViewer('sa', 'SA');
    for (const seq of [1, 2, 3]) enforcer.onSignal(signal(seq, { 'nsfw.sexy': 0.6 }));
    assert.equal(sa.gate.video, 'blank');
    assert.ok(errors.includes('event emit'));
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        assert.ok(errors.includes('audit append'), errors.join(','));
        resolve();
      }),
    );
  });
});

describe('PolicyStore reload', () => {
  it('refuses a broken file with file, line and reason; the running policy keeps enforcing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'policies-'));
    try {
      const root = join(dir, 'policies');
      await mkdir(join(root, 'jurisdictions'), { recursive: true });
      for (const f of shippedPolicyFiles()) await writeFile(join(dir, f.filename), f.text);
      const h = new Harness();
      const first = await h.policies.loadDir(root, 'ops:alice');
      assert.equal(first.ok, true);
      const good = h.policies.current.version;

      const de = shippedPolicyFiles().find((f) => f.filename.endsWith('DE.yaml'))!;
      const broken = de.text.replace('red: mute_audio', 'red: mute_audioo');
      await writeFile(join(root, 'jurisdictions', 'DE.yaml'), broken);
      const r = await h.policies.loadDir(root, 'ops:bob');
      assert.equal(r.ok, false);
      if (r.ok) return;
      assert.equal(r.error.code, 'POL_ERR_SCHEMA');
      assert.equal(r.error.file, 'policies/jurisdictions/DE.yaml');
      assert.equal(r.error.line, broken.slice(0, broken.indexOf('mute_audioo')).split('\n').length);
      assert.equal(r.activeVersion, good);
      assert.equal(h.policies.current.version, good);
      const rejected = h.audit.at(-1)!.body as { type: string; by: string; issues: { line: number }[] };
      assert.equal(rejected.type, 'policy.rejected');
      assert.equal(rejected.by, 'ops:bob');

      // The last good policy still mutes DE.
      const { v } = h.live('s1', [['de', 'DE']]);
      h.feed('s1', [1, 2], {}, { kind: 'audio', matches: [musicMatch] });
      assert.equal(v.de!.gate.audio, 'mute');

      // A valid edit activates with an audited diff.
      await writeFile(join(root, 'jurisdictions', 'DE.yaml'), de.text.replace('red: 0.60', 'red: 0.95'));
      const ok = await h.policies.loadDir(root, 'ops:carol');
      assert.equal(ok.ok, true);
      if (!ok.ok) return;
      assert.deepEqual(
        ok.changes.map((c) => [c.path, c.from, c.to]),
        [['jurisdictions.DE.categories.copyright_audio.red', 0.6, 0.95]],
      );
      const activated = [...h.audit].reverse().find((e) => (e.body as { type: string }).type === 'policy.activated')!
        .body as { by: string; fromVersion: string; toVersion: string };
      assert.equal(activated.by, 'ops:carol');
      assert.equal(activated.fromVersion, good);
      assert.equal(activated.toVersion, h.policies.current.version);
      assert.deepEqual(verifyAuditChain(h.audit), { ok: true });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
