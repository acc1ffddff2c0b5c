// Issue 17 item 1, end to end: the real server (werift SFU, store, enforcer, the moderation pipeline's
// hash matching) with a shadow candidate whose red threshold is lower than the active policy's. A
// load-test stream (the banked picture scene over WHIP, watched over WHEP) matches a bank entry at a
// distance the active policy does not act on: the active policy kills nothing (the publisher stays
// live, the viewer keeps the source picture, no kill is decided) while the shadow report lists the
// kill the candidate would have made, with the samples behind it.
//
// The bank entry is the banked picture's PDQ hash with FLIPPED bits flipped, so the measured distance
// is FLIPPED plus what VP8 changes (a few bits): confidence 1 - d/64 is about 0.6-0.75, under the
// active red (0.85) and over the candidate's (0.51, the shipped threshold; PDQ matches up to 31 bits).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { bankedPicture } from '../../loadtest/media/scenes.ts';
import { pdqHash, pdqToHex } from '../../models/pdq/pdq.ts';
import type { ShadowReport } from '../../policies/index.ts';
import type { PolicyFile } from '../../policies/types.ts';
import { readPolicyDir } from '../../server/policy-store.ts';
import { Broadcast, CLIP, Watcher, clip, nowMs, sleep, until, type E2EServer, startE2EServer } from './helpers.ts';

interface ReportReply {
  running: boolean;
  freshness: string;
  report: ShadowReport;
}

const FLIPPED = 20;
const ACTIVE_RED = 0.85;
const CANDIDATE_RED = 0.51;

/** The shipped policy with its two known-bad thresholds (the global kill rule, the default jurisdiction's block) at `red`. */
async function activePolicyFiles(red: number): Promise<PolicyFile[]> {
  const files = await readPolicyDir('policies');
  return files.map((f) => {
    if (!f.filename.endsWith('default.yaml')) return f;
    const text = f.text.replace(/^(\s+)red: 0\.51$/gm, `$1red: ${red}`);
    assert.equal((f.text.match(/red: 0\.51$/gm) ?? []).length, 2, 'the base has two known-bad rules at 0.51');
    assert.ok(!/red: 0\.51$/m.test(text), 'both edited');
    return { ...f, text };
  });
}

describe(
  'shadow evaluation end to end: a lower red threshold reports the kill it would have made, the active policy kills nothing',
  { timeout: 300_000 },
  () => {
    let e2e: E2EServer;
    const open: { close(): Promise<void> }[] = [];
    const admin = (method: string, path: string, body?: unknown): Promise<Response> =>
      fetch(`${e2e.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${e2e.adminToken}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });

    before(async () => {
      await clip('banked_picture');
      // hash matching only: the classifier, OCR and VAD stay off so the run fits a shared 2-core machine
      e2e = await startE2EServer({ OCR: 'false', VAD: 'false', INFERENCE_BACKEND: 'none' });
    });
    after(async () => {
      for (const o of open.reverse()) await o.close();
      await e2e?.close();
    });

    test('banked picture at ~20 bits: shadow kill reported with its samples; publisher live, viewer on the source, no kill decided', async () => {
      const activated = await admin('POST', '/v1/policies/activate', {
        files: await activePolicyFiles(ACTIVE_RED),
        force: true,
      });
      assert.equal(activated.status, 200, await activated.clone().text());
      const activeVersion = ((await activated.json()) as { version: string }).version;

      const hash = pdqHash({
        width: CLIP.width,
        height: CLIP.height,
        rgb: bankedPicture(CLIP.width, CLIP.height),
      }).hash;
      const near = Uint8Array.from(hash);
      for (let i = 0; i < FLIPPED; i++) near[(i * 12) >> 3]! ^= 1 << ((i * 12) & 7);
      const added = await admin('POST', '/v1/banks/known_bad/hashes', {
        hash: pdqToHex(near),
        id: 'near-banked',
        category: 'known_bad_match',
        source: 'e2e-shadow',
      });
      assert.equal(added.status, 201, await added.clone().text());

      const shadow = await admin('POST', '/v1/policies/shadow', {
        thresholds: [
          { jurisdiction: 'global', category: 'known_bad_match', red: CANDIDATE_RED },
          { jurisdiction: 'default', category: 'known_bad_match', red: CANDIDATE_RED },
        ],
      });
      assert.equal(shadow.status, 200, await shadow.clone().text());
      const candidate = (await shadow.json()) as { version: string; activeVersion: string };
      assert.equal(candidate.activeVersion, activeVersion);

      const streamId = 'shadow-banked';
      const publishedAt = nowMs();
      const broadcast = await Broadcast.start(
        e2e.url,
        streamId,
        await e2e.token({ role: 'publisher', sub: 'streamer-shadow', streamId }),
        await clip('banked_picture'),
      );
      open.push({ close: () => broadcast.stop() });
      const watcher = await Watcher.connect(
        e2e.url,
        streamId,
        await e2e.token({ role: 'viewer', sub: 'viewer-shadow', streamId, jurisdiction: 'SE' }),
        'SE',
      );
      open.push(watcher);

      // read the report as an analyst would, until it lists the kill
      let report: ReportReply | undefined;
      const deadline = performance.now() + 60_000;
      for (;;) {
        const r = await admin('GET', '/v1/policies/shadow/report');
        assert.equal(r.status, 200, await r.clone().text());
        report = (await r.json()) as ReportReply;
        if (report.report.shadowOnly.kill >= 1) break;
        if (performance.now() > deadline)
          throw new Error(
            `timed out after 60 s waiting for the shadow report to list a kill; verdict (default) ${JSON.stringify(e2e.server.enforcer.verdictOf(streamId)?.perJurisdiction.default)}; report ${JSON.stringify(report)}`,
          );
        await sleep(250);
      }
      const reportedAt = nowMs();
      assert.ok(report);
      assert.equal(report.running, true);
      assert.equal(report.freshness, 'fresh');
      const cell = report.report.jurisdictions.global?.known_bad_match;
      assert.equal(cell?.shadowOnly.kill, 1, JSON.stringify(report.report));
      const example = cell?.examples[0];
      assert.equal(example?.streamId, streamId);
      assert.ok((example?.sampleSeqs.length ?? 0) >= 1, 'the kill cites its samples');
      assert.ok(
        example && example.score >= CANDIDATE_RED && example.score < ACTIVE_RED,
        `match confidence ${example?.score} between the two thresholds`,
      );

      // meanwhile the active policy killed nothing: the stream is live, its viewer keeps the source picture
      const after = nowMs();
      await until(
        () => watcher.count('source', after) >= 3,
        30_000,
        'source pictures at the viewer after the shadow kill',
      );
      assert.equal(broadcast.endedAt, undefined, 'the publisher is still live');
      assert.equal(watcher.endedAt, undefined);
      assert.equal(e2e.server.enforcer.verdictOf(streamId)?.kill, false);
      assert.equal(e2e.server.enforcer.isBlocked(streamId), undefined);
      await e2e.server.store.flush();
      const decisions = await e2e.server.store.listDecisions({ streamId, limit: 1000 });
      assert.ok(!decisions.some((d) => d.action === 'kill_stream'), JSON.stringify(decisions.map((d) => d.action)));
      const stream = await e2e.server.store.getStream(streamId);
      assert.equal(stream?.state, 'live');
      console.log(
        `shadow e2e: candidate ${candidate.version} vs active ${activeVersion}: ${report.report.shadowOnly.kill} kill, match confidence ${example.score} (about ${Math.round((1 - example.score) * 64)} bits), ` +
          `first difference ${Math.round(example.at - publishedAt)} ms after the publisher's POST, report read ${Math.round(reportedAt - publishedAt)} ms after it`,
      );
    });
  },
);
