// The fuzz benchmark's short variant (bench/fuzz.ts, a few thousand inputs of every family against
// the real server in a child process, werift engine, moderation on): nothing crashes, no route
// answers 5xx or an uncoded error, nothing hangs, no session outlives its peers, and a real publish
// and view still work afterwards. `npm run fuzz` runs the full 100,000.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FAMILIES, runFuzz, type FuzzReport } from '../../bench/fuzz.ts';

const COUNT = 3000;

describe('fuzz (short variant)', () => {
  let rep: FuzzReport;
  before(
    async () => {
      rep = await runFuzz({ count: COUNT, seed: 12, durationS: 150, engine: 'werift', out: '', log: () => undefined });
    },
    { timeout: 280_000 },
  );

  const failures = (kind: string, keep: (f: FuzzReport['findings'][number]) => boolean = () => true): string =>
    JSON.stringify(rep.findings.filter((f) => f.kind === kind && keep(f)).slice(0, 3), null, 1);

  test('every family sent its share, and the fuzzed RTP reached the samplers', () => {
    assert.ok(rep.inputs >= COUNT * 0.95, `inputs sent: ${rep.inputs}`);
    for (const f of FAMILIES) assert.ok(rep.families[f].sent > 0, `${f} sent ${rep.families[f].sent}`);
    assert.ok(
      rep.families.sdp.accepted > 0,
      'some mutated offers were still accepted (the fuzz reached past the parser)',
    );
    assert.ok(
      rep.samplers.frames + rep.samplers.drops > 0,
      `samplers saw the fuzzed streams: ${JSON.stringify(rep.samplers)}`,
    );
  });

  test('no crash: the server process, its sampler workers and engine workers all lived', () => {
    assert.equal(rep.serverExit, undefined, `the server exited: ${JSON.stringify(rep.serverExit)}`);
    assert.equal(rep.totals.crashes, 0, failures('crash'));
  });

  test('no 5xx outside WHIP/WHEP offers; no uncoded error answer from any route', () => {
    const non5xx = rep.findings.filter((f) => f.kind === '5xx' && f.family !== 'sdp');
    assert.equal(rep.totals.server5xx - rep.families.sdp.server5xx, 0, JSON.stringify(non5xx.slice(0, 3), null, 1));
    assert.equal(rep.totals.uncoded, 0, failures('uncoded'));
  });

  test('no hung request; no session left once its peers are gone and the reap time has passed', () => {
    assert.equal(rep.totals.hungRequests, 0, failures('hung'));
    assert.deepEqual(rep.sessionsLeft, []);
  });

  test('a real publish and view work afterwards', () => {
    assert.ok(rep.afterwards.published, rep.afterwards.error);
    assert.ok(rep.afterwards.viewerVideoPackets > 30);
  });

  test("WHIP/WHEP offers never answer 5xx (what werift cannot apply is the offer's fault: 400)", () => {
    assert.equal(
      rep.families.sdp.server5xx,
      0,
      failures('5xx', (f) => f.family === 'sdp'),
    );
  });
  test('what the HTTP parser refuses is answered with a code too (clientErrorHandler, checkExpectation)', () => {
    assert.equal(rep.totals.uncodedClientError, 0, failures('uncoded_client_error'));
  });
});
