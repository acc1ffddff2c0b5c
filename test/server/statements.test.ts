// Statements of reasons for the decisions people take (issue 13 item 5), through the real server
// (routes, control, enforcer, store) with a fake SFU and real verdicts from signals: an operator's
// gate and kill, a review that clears, appeals upheld and granted. Each statement is as complete as
// an automated one (statementGaps), says whether it followed a notice, cites the samples the
// stream's moderation held (the holder's, through the registry, when another node acts), and answers
// at its appeal URL; a review decision taken on one node is recorded once, applied where the stream is.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { statementGaps } from '../../policies/statements.ts';
import type { StatementOfReasons } from '../../policies/types.ts';
import { buildServer } from '../../server/app.ts';
import { loadConfig } from '../../server/config.ts';
import type { PolicyReviewItem } from '../../server/store/types.ts';
import { signal } from '../policies/helpers.ts';
import { FakeSfu, type FakeStream } from '../sfu/fake.ts';
import { startRedis } from './helpers.ts';

const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n';

async function makeServer(overrides: Record<string, unknown> = {}) {
  const sfu = new FakeSfu();
  const config = loadConfig({
    env: {},
    overrides: {
      port: 0,
      host: '127.0.0.1',
      logLevel: 'silent',
      authSecret: 'x'.repeat(40),
      moderation: false,
      ...overrides,
    },
  });
  const server = await buildServer(config, { sfu });
  const inject = async (method: 'GET' | 'POST', url: string, token: string, payload?: unknown, sdp = false) =>
    server.app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${token}`, ...(sdp ? { 'content-type': 'application/sdp' } : {}) },
      ...(payload !== undefined ? { payload: payload as string } : {}),
    });
  return { server, sfu, inject, [Symbol.asyncDispose]: () => server.close() };
}

type Harness = Awaited<ReturnType<typeof makeServer>>;

/** The statement answers at its appeal URL (the streamer's token), identical to the stored one, and is complete. */
async function atAppealUrl(h: Harness, st: StatementOfReasons, pub: string): Promise<void> {
  assert.deepEqual(statementGaps(st), [], JSON.stringify(st));
  const path = new URL(st.redress.appealUrl, 'http://x').pathname;
  assert.equal(path, `/v1/appeals/${st.id}`);
  const r = await h.inject('GET', path, pub);
  assert.equal(r.statusCode, 200, r.body);
  assert.deepEqual(r.json().statement, st);
}

async function resolve(h: Harness, itemId: string, reviewer: string, outcome: 'uphold' | 'overturn') {
  assert.equal((await h.inject('POST', '/v1/review/claim', reviewer, { itemId })).statusCode, 200);
  const r = await h.inject('POST', `/v1/review/${itemId}/resolve`, reviewer, { outcome });
  assert.equal(r.statusCode, 200, r.body);
  return r.json().decision as { id: string; effect: { kind: string; action?: string }; statement: StatementOfReasons };
}

test('an operator gate after a notice, its appeal granted; a kill on own initiative, its appeal rejected; a review that clears: every one a complete statement', async () => {
  await using h = await makeServer();
  const pub = await h.server.auth.sign({ role: 'publisher', streamId: 's1', sub: 'streamer-1' });
  const admin = await h.server.auth.sign({ role: 'admin', sub: 'root' });
  const reviewer = await h.server.auth.sign({ role: 'reviewer', sub: 'alice' });
  assert.equal((await h.inject('POST', '/whip/s1', pub, SDP, true)).statusCode, 201);
  for (const j of ['DE', 'SE']) {
    const t = await h.server.auth.sign({ role: 'viewer', jurisdiction: j, viewerId: `v-${j}` });
    assert.equal((await h.inject('POST', '/whep/s1', t, SDP, true)).statusCode, 201);
  }
  const stream = h.sfu.getStream('s1') as FakeStream;
  // the stream is scored (green): the operator's statements cite these samples
  for (const seq of [1, 2, 3]) h.server.enforcer.onSignal(signal(seq, { 'nsfw.sexy': 0.05 }, { streamId: 's1' }));

  // validation: a notice needs its id; a category must be the policy's
  const noId = await h.inject('POST', '/v1/streams/s1/gate', admin, {
    jurisdiction: 'DE',
    video: 'blank',
    reason: 'x',
    basis: { kind: 'notice' },
  });
  assert.equal(noId.statusCode, 400, noId.body);
  const unknown = await h.inject('POST', '/v1/streams/s1/gate', admin, {
    jurisdiction: 'DE',
    video: 'blank',
    reason: 'x',
    category: 'no_such_category',
  });
  assert.equal(unknown.statusCode, 400, unknown.body);
  assert.match(unknown.json().message, /no_such_category is not in the policy/);
  assert.equal(stream.viewers.get('v-DE')?.gate.video, 'forward', 'a refused gate changes nothing');

  // manual gate following a trusted flagger's notice: one statement per restriction
  const gate = await h.inject('POST', '/v1/streams/s1/gate', admin, {
    jurisdiction: 'DE',
    video: 'blank',
    audio: 'mute',
    reason: 'rights holder report',
    category: 'copyright_audio',
    basis: { kind: 'notice', noticeId: 'ntc-1', notifier: 'label-x', trustedFlagger: true },
  });
  assert.equal(gate.statusCode, 200, gate.body);
  const [blank, mute] = gate.json().statements as StatementOfReasons[];
  assert.ok(blank && mute);
  assert.deepEqual([blank.restriction.action, mute.restriction.action], ['blank_video', 'mute_audio']);
  for (const st of [blank, mute]) {
    await atAppealUrl(h, st, pub);
    assert.deepEqual(st.restriction.jurisdictions, ['DE']);
    assert.deepEqual(st.basis, { kind: 'notice', noticeId: 'ntc-1', notifier: 'label-x', trustedFlagger: true });
    assert.deepEqual(st.automated, { detection: false, decision: false });
    assert.match(st.ground.clause, /ToS 6\.1/, "the cited category's clause");
    assert.deepEqual(st.facts.sampleSeqs, [1, 2, 3]);
  }
  assert.deepEqual(stream.viewers.get('v-DE')?.gate, { video: 'blank', audio: 'mute' });
  const audit = (await h.inject('GET', '/v1/audit?limit=1000', admin)).json().entries as {
    body: { type: string; statementIds?: string[] };
  }[];
  assert.deepEqual(audit.find((e) => e.body.type === 'gate.manual')?.body.statementIds, [blank.id, mute.id]);

  // the streamer appeals the blank; granted: the DE video comes back, the mute stays
  const ap = await h.inject('POST', `/v1/appeals/${blank.id}`, pub, { grounds: 'the video has no music in it' });
  assert.equal(ap.statusCode, 201, ap.body);
  const granted = await resolve(h, ap.json().id as string, reviewer, 'overturn');
  assert.deepEqual([granted.effect.kind, granted.effect.action], ['lift', 'blank_video']);
  await atAppealUrl(h, granted.statement, pub);
  assert.equal(granted.statement.restriction.action, 'allow');
  assert.deepEqual(granted.statement.basis, blank.basis, 'the outcome says what the decision followed');
  assert.deepEqual(
    stream.viewers.get('v-DE')?.gate,
    { video: 'forward', audio: 'mute' },
    'the granted appeal lifted the manual blank only',
  );
  assert.deepEqual(stream.viewers.get('v-SE')?.gate, { video: 'forward', audio: 'forward' });

  // an amber review that clears: the streamer is told why nothing was restricted
  const item: PolicyReviewItem = {
    id: 'rev_clear_1',
    streamId: 's1',
    type: 'amber',
    priority: 1,
    createdAt: Date.now(),
    policyVersion: h.server.policies.current.version,
    jurisdictions: ['DE'],
    categories: [{ category: 'sexual_suggestive', score: 0.55, bucket: 'amber' }],
    evidence: {
      sampleSeqs: [3],
      timeRange: { from: 1, to: 2 },
      scores: [{ category: 'sexual_suggestive', score: 0.55 }],
      matches: [],
      text: [],
      textContext: [],
      thumbnailRefs: [],
    },
    proposedAction: 'blank_video',
  };
  await h.server.control.enqueueReview(item);
  const cleared = await resolve(h, item.id, reviewer, 'overturn');
  assert.equal(cleared.effect.kind, 'none');
  await atAppealUrl(h, cleared.statement, pub);
  assert.equal(cleared.statement.restriction.action, 'allow');
  assert.equal(stream.viewers.get('v-DE')?.gate.video, 'forward');

  // manual kill on own initiative; the appeal is rejected: the remaining redress is external
  const kill = await h.inject('POST', '/v1/streams/s1/kill', admin, { reason: 'threats on camera', clause: 'ToS 3.1' });
  assert.equal(kill.statusCode, 202, kill.body);
  const killSt = kill.json().statement as StatementOfReasons;
  await atAppealUrl(h, killSt, pub);
  assert.deepEqual([killSt.restriction.scope, killSt.restriction.jurisdictions], ['stream', ['global']]);
  assert.deepEqual(killSt.basis, { kind: 'own_initiative' });
  assert.deepEqual(killSt.facts.sampleSeqs, [1, 2, 3]);
  assert.equal(stream.closed, true);
  const ap2 = await h.inject('POST', `/v1/appeals/${killSt.id}`, pub, { grounds: 'it was a film scene' });
  assert.equal(ap2.statusCode, 201, ap2.body);
  const rejected = await resolve(h, ap2.json().id as string, reviewer, 'uphold');
  await atAppealUrl(h, rejected.statement, pub);
  assert.equal(rejected.statement.restriction.action, 'kill_stream');
  assert.equal(rejected.statement.ground.clause, 'ToS 3.1', 'the outcome cites the clause of the appealed statement');
  assert.ok(rejected.statement.redress.options.every((o) => !/internal complaint/.test(o)));
  assert.equal((await h.inject('POST', '/whip/s1', pub, SDP, true)).statusCode, 403, 'still blocked');

  // the operator resumes: the streamer is told why the kill ended, with the kill's facts
  const resume = await h.inject('POST', '/v1/streams/s1/resume', admin, { note: 'threat was a quote from a film' });
  assert.equal(resume.statusCode, 200, resume.body);
  const lift = resume.json().statement as StatementOfReasons;
  await atAppealUrl(h, lift, pub);
  assert.deepEqual([lift.restriction.action, lift.restriction.duration], ['allow', 'lifted with immediate effect']);
  assert.equal(lift.ground.clause, 'ToS 3.1');
  assert.deepEqual(lift.facts.sampleSeqs, killSt.facts.sampleSeqs);
  assert.equal(resume.json().decision.statementId, lift.id);
  assert.equal((await h.inject('POST', '/whip/s1', pub, SDP, true)).statusCode, 201);
  const nothing = await h.inject('POST', '/v1/streams/s1/resume', admin, {});
  assert.equal(nothing.json().statement, undefined, 'nothing lifted, no statement');
});

test('a kill issued on the node that does not hold the stream cites the samples the holder reported at its heartbeat (real Redis, two servers)', async () => {
  const redis = await startRedis();
  const dir = mkdtempSync(join(tmpdir(), 'msfu-stm-'));
  const common = {
    redisUrl: redis.url,
    redisPrefix: `stm${process.pid}:`,
    heartbeatMs: 200,
    evidence: false,
    webhookDir: join(dir, 'wh'),
  };
  try {
    await using holder = await makeServer({ ...common, nodeId: 'node-a', outboxDir: join(dir, 'a') });
    await using other = await makeServer({ ...common, nodeId: 'node-b', outboxDir: join(dir, 'b') });
    const pub = await holder.server.auth.sign({ role: 'publisher', streamId: 'r1', sub: 'streamer-r1' });
    const admin = await holder.server.auth.sign({ role: 'admin', sub: 'root' });
    assert.equal((await holder.inject('POST', '/whip/r1', pub, SDP, true)).statusCode, 201);
    for (const seq of [4, 5, 6])
      holder.server.enforcer.onSignal(signal(seq, { 'nsfw.sexy': 0.05 }, { streamId: 'r1' }));
    const until = Date.now() + 15_000;
    for (;;) {
      const r = (await other.inject('GET', '/v1/streams/r1', admin)).json() as {
        local?: boolean;
        evidence?: { sampleSeqs: number[] };
      };
      if (r.local === false && r.evidence?.sampleSeqs.length === 3) break;
      if (Date.now() > until)
        throw new Error(`timed out waiting for the holder's heartbeat to report its samples: ${JSON.stringify(r)}`);
      await sleep(50);
    }
    const kill = await other.inject('POST', '/v1/streams/r1/kill', admin, {
      reason: 'reported by a viewer',
      basis: { kind: 'notice', noticeId: 'ntc-r1' },
    });
    assert.equal(kill.statusCode, 202, kill.body);
    const st = kill.json().statement as StatementOfReasons;
    assert.deepEqual(statementGaps(st), [], JSON.stringify(st));
    assert.deepEqual(st.facts.sampleSeqs, [4, 5, 6]);
    assert.deepEqual(st.basis, { kind: 'notice', noticeId: 'ntc-r1' });
    const stream = holder.sfu.getStream('r1') as FakeStream;
    for (let i = 0; i < 300 && !stream.closed; i++) await sleep(50);
    assert.equal(stream.closed, true, 'the holder ended the stream');
    // the statement answers at its appeal URL on either node (the store's)
    for (const h of [holder, other]) await atAppealUrl(h, st, pub);
  } finally {
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a granted appeal decided on one node lifts the manual gate on the node holding the stream, and is recorded once (real Redis, two servers)', async () => {
  const redis = await startRedis();
  const dir = mkdtempSync(join(tmpdir(), 'msfu-stm-'));
  const common = {
    redisUrl: redis.url,
    redisPrefix: `stm2${process.pid}:`,
    heartbeatMs: 200,
    evidence: false,
    webhookDir: join(dir, 'wh'),
  };
  try {
    await using holder = await makeServer({ ...common, nodeId: 'node-a', outboxDir: join(dir, 'a') });
    await using other = await makeServer({ ...common, nodeId: 'node-b', outboxDir: join(dir, 'b') });
    const pub = await holder.server.auth.sign({ role: 'publisher', streamId: 'g2', sub: 'streamer-g2' });
    const admin = await holder.server.auth.sign({ role: 'admin', sub: 'root' });
    const reviewer = await holder.server.auth.sign({ role: 'reviewer', sub: 'rita' });
    assert.equal((await holder.inject('POST', '/whip/g2', pub, SDP, true)).statusCode, 201);
    const de = await holder.server.auth.sign({ role: 'viewer', jurisdiction: 'DE', viewerId: 'v-de' });
    assert.equal((await holder.inject('POST', '/whep/g2', de, SDP, true)).statusCode, 201);
    const viewer = (holder.sfu.getStream('g2') as FakeStream).viewers.get('v-de');
    assert.ok(viewer);
    const waitFor = async (what: string, pred: () => boolean | Promise<boolean>) => {
      const until = Date.now() + 15_000;
      while (!(await pred())) {
        if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
        await sleep(25);
      }
    };
    for (const seq of [1, 2]) holder.server.enforcer.onSignal(signal(seq, { 'nsfw.sexy': 0.05 }, { streamId: 'g2' }));
    await waitFor(
      "the holder's heartbeat to report its samples",
      async () =>
        ((await other.inject('GET', '/v1/streams/g2', admin)).json() as { evidence?: { sampleSeqs: number[] } })
          .evidence?.sampleSeqs.length === 2,
    );
    const gate = await other.inject('POST', '/v1/streams/g2/gate', admin, {
      jurisdiction: 'DE',
      video: 'blank',
      reason: 'court order',
      basis: { kind: 'notice', noticeId: 'ntc-g2' },
    });
    assert.equal(gate.statusCode, 200, gate.body);
    const [blank] = gate.json().statements as StatementOfReasons[];
    assert.ok(blank);
    await waitFor('the gate on the holder', () => viewer.gate.video === 'blank');
    const ap = await other.inject('POST', `/v1/appeals/${blank.id}`, pub, { grounds: 'the order was lifted' });
    assert.equal(ap.statusCode, 201, ap.body);
    const granted = await resolve(other, ap.json().id as string, reviewer, 'overturn');
    assert.deepEqual(statementGaps(granted.statement), []);
    await waitFor('the holder to lift the blank', () => viewer.gate.video === 'forward');
    // both nodes have applied it; the decision's audit entry and statement were written by the deciding node only
    await sleep(300);
    const entries = (await other.inject('GET', '/v1/audit?limit=1000', admin)).json().entries as {
      body: { type: string; decision?: { id: string } };
    }[];
    const ofDecision = entries.filter((e) => e.body.type === 'review.decision' && e.body.decision?.id === granted.id);
    assert.equal(ofDecision.length, 1, 'one review.decision audit entry for the decision');
    for (const h of [holder, other]) await atAppealUrl(h, granted.statement, pub);
  } finally {
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
