// The onnxruntime session thread under supervision (issue 12): a crash of the thread that holds the
// sessions rejects the runs in it MOD_ERR_BACKEND_DOWN (a backend fault, counted by circuit breakers),
// a new thread loads the sessions again by itself, and the next inference gives the same numbers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OnnxRuntimeBackend } from '../../models/backends/onnxruntime/onnxruntime-backend.ts';
import { isModelError } from '../../models/errors.ts';
import type { WorkerEvent } from '../../threads/index.ts';
import { syntheticImage, toUnitFloat } from './synthetic.ts';

test(
  'a crashed session thread is restarted with its sessions; pending runs reject MOD_ERR_BACKEND_DOWN',
  { timeout: 240_000 },
  async () => {
    const events: WorkerEvent[] = [];
    await using backend = new OnnxRuntimeBackend({ intraOpNumThreads: 1, onWorkerEvent: (e) => void events.push(e) });
    const input = { data: toUnitFloat(syntheticImage('rings', 224, 224)), shape: [1, 224, 224, 3] };
    const before = await backend.infer('nsfw-mobilenet-v2', input);
    assert.equal(backend.crashWorkerOf('nsfw-mobilenet-v2'), true);
    await assert.rejects(backend.infer('nsfw-mobilenet-v2', input), (e) => isModelError(e, 'MOD_ERR_BACKEND_DOWN'));
    const after = await backend.infer('nsfw-mobilenet-v2', input);
    assert.deepEqual([...after.data], [...before.data], 'the reloaded session answers the same');
    const until = Date.now() + 60_000;
    while (!events.some((e) => e.type === 'restart') && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(
      events.map((e) => `${e.type}:${e.worker}`),
      ['crash:onnxruntime:nsfw-mobilenet-v2', 'restart:onnxruntime:nsfw-mobilenet-v2'],
    );
    assert.equal(backend.crashWorkerOf('not-loaded'), false);
  },
);
