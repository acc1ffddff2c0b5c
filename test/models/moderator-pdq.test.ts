// PDQ off the event loop (issue 16): with a hasher (the stack's PdqWorker) the moderator hashes in that
// thread, beside the classifier's run, and the fast-path signals carry the same bank matches as when it
// hashes inline; a frame the hasher cannot hash loses only its match signal (counted), not the
// classifier's answer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HashBankSet } from '../../models/hashbank/bank.ts';
import {
  SampleModerator,
  type FrameClassifier,
  type PictureHasher,
  type VideoSampleIn,
} from '../../models/moderator.ts';
import { ModelError } from '../../models/errors.ts';
import { pdqHash } from '../../models/pdq/pdq.ts';
import { PdqWorker } from '../../models/pdq/pdq-worker.ts';
import type { Signals } from '../../models/types.ts';
import { bankedPicture } from '../../loadtest/media/scenes.ts';

const W = 320;
const H = 180;

function sample(seq: number, rgb: Uint8Array): VideoSampleIn {
  return {
    kind: 'video',
    streamId: 's',
    trackId: 'v',
    seq,
    rtpTimestamp: seq * 45000,
    reason: 'first',
    width: W,
    height: H,
    rgb,
    timings: { arrivedAt: performance.timeOrigin + performance.now() },
  };
}

const classifier: FrameClassifier = {
  classify: async () => ({
    status: 'ok',
    scores: { sexual_explicit: 0.01 },
    escalated: false,
    uncertain: false,
    models: [{ name: 'fake', version: '1' }],
    timings: { inference: 1 },
  }),
};

async function signalsOf(m: SampleModerator, s: VideoSampleIn): Promise<Signals> {
  const out: Signals[] = [];
  await m.moderate(s, (x) => out.push(x));
  assert.equal(out.length, 1);
  return out[0]!;
}

test(
  'with a PDQ worker the fast path carries the same bank matches as inline hashing',
  { timeout: 60_000 },
  async () => {
    const picture = bankedPicture(W, H);
    const banks = new HashBankSet();
    banks
      .bank('known_bad')
      .add({ hash: pdqHash({ width: W, height: H, rgb: picture }).hash, id: 'b1', category: 'csam' });
    const hasher = new PdqWorker();
    try {
      const inThread = new SampleModerator({ classifier, hashBanks: banks, hasher });
      const inline = new SampleModerator({ classifier, hashBanks: banks });
      const a = await signalsOf(inThread, sample(0, picture));
      const b = await signalsOf(inline, sample(0, picture));
      assert.deepEqual(
        a.matches.map((m) => [m.entryId, m.distance]),
        [['b1', 0]],
      );
      assert.deepEqual(a.matches, b.matches);
      assert.deepEqual(a.scores, { sexual_explicit: 0.01 });
      assert.ok(a.timings.hash !== undefined);
    } finally {
      await hasher.close();
    }
  },
);

test('a frame the hasher cannot hash keeps the classifier answer and is counted', async () => {
  const broken: PictureHasher = {
    hash: () => Promise.reject(new ModelError('MOD_ERR_BACKEND_DOWN', 'pdq thread gone')),
  };
  const banks = new HashBankSet();
  banks.bank('known_bad').add({ hash: new Uint8Array(32), id: 'z', category: 'csam' });
  const m = new SampleModerator({ classifier, hashBanks: banks, hasher: broken });
  const s = await signalsOf(m, sample(0, new Uint8Array(W * H * 3)));
  assert.equal(s.status, 'ok');
  assert.deepEqual(s.matches, []);
  assert.deepEqual(s.scores, { sexual_explicit: 0.01 });
  assert.equal(m.stats().pdqErrors, 1);
  assert.equal(m.stats().pdqHashes, 0);
});
