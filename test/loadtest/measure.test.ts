// The load test's measurements through the real SFU, against actions applied at known times: a kill,
// a per-jurisdiction blank and a per-jurisdiction mute, with clean streams alongside.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULTS, runOnce, type LoadTestOptions } from '../../loadtest/run.ts';
import { startSfuFixture } from './sfu-fixture.ts';
import { parseExpect } from '../../loadtest/script.ts';

test(
  'kills, blanks and mutes applied through the SFU are measured against the script; clean streams stay clean',
  { timeout: 180_000 },
  async () => {
    const fx = await startSfuFixture();
    try {
      const pending: NodeJS.Timeout[] = [];
      const o: LoadTestOptions = {
        ...DEFAULTS,
        streams: 5,
        viewers: 10,
        durationSec: 8,
        violating: '3',
        jurisdictions: ['SE', 'SA', 'DE'],
        kinds: ['banked_picture', 'protected_audio', 'regional'],
        expect: { banked_picture: 'kill', protected_audio: 'mute:DE', regional: 'blank:SA' },
        server: fx.baseUrl,
        scene: { width: 320, height: 180, fps: 15, seconds: 4 },
        quiet: true,
        command: 'test',
        hooks: {
          // the "moderator": acts 150 ms after each violation goes on air
          onOnset(streamId, v) {
            const e = parseExpect(v.expect);
            pending.push(
              setTimeout(() => {
                if (e.action === 'kill') fx.kill(streamId);
                else
                  for (const j of e.jurisdictions)
                    fx.gate(streamId, j, e.action === 'blank' ? { video: 'blank' } : { audio: 'mute' });
              }, 150),
            );
          },
        },
      };
      const lines: string[] = [];
      const out = await runOnce(o, 'on', (line) => lines.push(line));
      pending.forEach(clearTimeout);
      const r = out.result;
      const detail = JSON.stringify(
        {
          counts: r.counts,
          violations: r.violations,
          clean: r.clean,
          notes: out.notes,
          log: lines.filter((l) => !l.startsWith('[')),
        },
        null,
        1,
      );
      assert.equal(r.counts.streamErrors, 0, detail);
      assert.equal(r.counts.viewerErrors, 0, detail);
      assert.equal(r.counts.violations, 3);
      assert.equal(r.counts.detected, 3, detail);
      assert.equal(r.counts.falseKills, 0, detail);
      assert.equal(r.counts.falseBlanks, 0, detail);
      assert.equal(r.counts.overblocked, 0, detail);
      const kill = r.violations.find((v) => v.kind === 'banked_picture')!;
      assert.ok(kill.killLatencyMs! >= 100 && kill.killLatencyMs! < 3000, `kill latency ${kill.killLatencyMs}`);
      assert.ok(kill.exposureMs! >= 100 && kill.exposureMs! < 3000, `exposure ${kill.exposureMs}`);
      const blank = r.violations.find((v) => v.kind === 'regional')!;
      assert.deepEqual(blank.viewers.map((v) => [v.jurisdiction, v.observed]).sort(), [
        ['SA', 'blank'],
        ['SE', 'forward'],
      ]);
      assert.ok(r.forwarding.latencyMs.n > 1000, `latency samples ${r.forwarding.latencyMs.n}`);
      assert.ok(
        r.forwarding.latencyMs.p50 > 0 && r.forwarding.latencyMs.p50 < 200,
        `fwd p50 ${r.forwarding.latencyMs.p50}`,
      );
      assert.ok(r.forwarding.foreignPackets > 0, 'the slate reached the SA viewer');
      assert.ok(r.server.points > 0);
    } finally {
      await fx.close();
    }
  },
);
