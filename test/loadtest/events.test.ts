import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyEvent, decisionsOf } from '../../loadtest/events.ts';
import type { StreamRecord } from '../../loadtest/analyze.ts';

test('decision events from the enforcer become kill/blank/mute records with the server latency', () => {
  const e = {
    type: 'decision',
    receivedAt: 1000,
    decision: {
      id: 'd1',
      streamId: 's',
      at: 990,
      kill: false,
      restrictions: [
        { action: 'blank_video', jurisdictions: ['sa'], statementId: 'x' },
        { action: 'mute_audio', jurisdictions: ['DE'], statementId: 'y' },
      ],
      latency: { fromArrivedMs: 42, fromCompletedMs: 3 },
    },
  };
  assert.deepEqual(
    decisionsOf(e).map((d) => [d.action, d.jurisdictions, d.serverLatencyMs]),
    [
      ['blank', ['SA'], 42],
      ['mute', ['DE'], 42],
    ],
  );
  const kill = {
    type: 'decision',
    receivedAt: 5,
    decision: { kill: true, restrictions: [{ action: 'kill_stream', jurisdictions: [] }] },
  };
  assert.deepEqual(
    decisionsOf(kill).map((d) => d.action),
    ['kill'],
  );
  assert.deepEqual(decisionsOf({ type: 'moderation.status', receivedAt: 1 }), []);
});

test('stream.killed marks the stream killed once, at the first sighting', () => {
  const rec: StreamRecord = { streamId: 's', onsets: [], decisions: [] };
  applyEvent(rec, { type: 'stream.killed', streamId: 's', receivedAt: 200 });
  applyEvent(rec, { type: 'stream.status', streamId: 's', state: 'killed', receivedAt: 150 });
  applyEvent(rec, { type: 'stream.killed', streamId: 's', receivedAt: 300 });
  assert.equal(rec.killedAt, 150);
  assert.equal(rec.decisions.filter((d) => d.action === 'kill').length, 1, 'duplicates within 2 s collapse');
});
