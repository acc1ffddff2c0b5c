import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AudioFingerprintBank } from '../../models/audio/bank.ts';
import { AudioStreamMatcher } from '../../models/audio/stream.ts';
import { FingerprintWorker } from '../../models/audio/fingerprint-worker.ts';
import {
  FINGERPRINT_DEFAULTS,
  fingerprint,
  spectrogram,
  StreamingFingerprinter,
} from '../../models/audio/fingerprint.ts';
import { encodeWav } from '../../media/wav.ts';
import { melody, noise, rng } from './synth.ts';
import { opusRoundTrip } from './media.ts';

const SR = 16000;
const RECORDINGS = 6;
const LENGTH_SEC = 30;

const songs = Array.from({ length: RECORDINGS }, (_, i) => melody(i, LENGTH_SEC));
const bank = new AudioFingerprintBank();
for (let i = 0; i < RECORDINGS; i++) bank.register(`song${i}`, songs[i], { source: 'label-x' });

test('the spectrogram (a real frame as a half-size complex FFT) is the log power of the windowed DFT', () => {
  const o = FINGERPRINT_DEFAULTS;
  const pcm = noise(7, 0.3);
  const spec = spectrogram(pcm);
  const n = o.fftSize;
  for (const f of [0, 3, spec.frames - 1]) {
    for (let b = 0; b < spec.bins; b += 7) {
      const k = b + spec.firstBin;
      let re = 0;
      let im = 0;
      for (let i = 0; i < n; i++) {
        const x = pcm[f * o.hop + i]! * (0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n));
        re += x * Math.cos((2 * Math.PI * k * i) / n);
        im -= x * Math.sin((2 * Math.PI * k * i) / n);
      }
      const expected = Math.log(re * re + im * im + 1e-10);
      const got = spec.data[f * spec.bins + b]!;
      assert.ok(Math.abs(got - expected) < 1e-4, `frame ${f} bin ${k}: ${got} vs the DFT's ${expected}`);
    }
  }
});

test('excerpts of registered recordings are identified after Opus 32 kbit/s, with the right offset', async () => {
  const r = rng(5);
  for (let q = 0; q < 12; q++) {
    const id = q % RECORDINGS;
    const off = 1 + r() * (LENGTH_SEC - 6);
    const excerpt = songs[id].slice(Math.round(off * SR), Math.round((off + 4) * SR));
    const heard = await opusRoundTrip(excerpt, 32);
    const m = bank.match(heard);
    assert.ok(m.length >= 1, `excerpt ${q} of song${id} at ${off.toFixed(2)} s: no match`);
    assert.equal(m[0].entryId, `song${id}`);
    assert.equal(m[0].kind, 'audio_fingerprint');
    assert.equal(m[0].category, 'copyright_audio');
    assert.equal(m[0].source, 'label-x');
    assert.ok(Math.abs((m[0].offsetSec ?? -1) - off) < 0.1, `offset ${m[0].offsetSec} vs ${off}`);
    assert.ok(m[0].confidence > 0.5 && m[0].confidence <= 1);
    assert.equal(m.length, 1, `extra matches: ${JSON.stringify(m.slice(1))}`);
  }
});

test('recordings of sustained (organ/pad) notes are identified too', async () => {
  const pads = new AudioFingerprintBank();
  const tracks = [0, 1, 2].map((i) => melody(300 + i, 20, SR, true));
  tracks.forEach((t, i) => pads.register(`pad${i}`, t));
  for (let q = 0; q < 6; q++) {
    const off = 2 + q * 2.3;
    const m = pads.match(
      await opusRoundTrip(tracks[q % 3].slice(Math.round(off * SR), Math.round((off + 4) * SR)), 32),
    );
    assert.equal(m[0]?.entryId, `pad${q % 3}`, `excerpt ${q}: ${JSON.stringify(m)}`);
    assert.ok(Math.abs((m[0].offsetSec ?? -1) - off) < 0.1);
  }
  assert.deepEqual(pads.match(await opusRoundTrip(melody(399, 5, SR, true), 32)), []);
});

test('unregistered music, noise and silence produce no match', async () => {
  for (let q = 0; q < 6; q++) {
    const audio = q < 4 ? melody(1000 + q, 5) : q === 4 ? noise(q, 5, 0.2) : new Float32Array(5 * SR);
    const heard = await opusRoundTrip(audio, 32);
    assert.deepEqual(bank.match(heard), [], `query ${q}`);
  }
});

test('a streaming matcher names the song within a few 1 s windows and follows its position', async () => {
  const start = 7.3;
  const live = await opusRoundTrip(songs[2].slice(Math.round(start * SR), Math.round((start + 8) * SR)), 32);
  const s = new AudioStreamMatcher(bank, { historySec: 5, minSec: 3 });
  let firstAt = -1;
  for (let w = 0; w < 8; w++) {
    const m = s.push({ sampleRate: SR, pcm: live.slice(w * SR, (w + 1) * SR) });
    if (m.length > 0) {
      assert.equal(m[0].entryId, 'song2');
      const nowInRecording = (m[0].offsetSec ?? 0) + s.historySeconds;
      assert.ok(Math.abs(nowInRecording - (start + w + 1)) < 0.15, `window ${w}: ${nowInRecording}`);
      if (firstAt < 0) firstAt = w + 1;
    } else {
      assert.ok(w < 3, `lost the match at window ${w}`);
    }
  }
  assert.equal(firstAt, 3, 'named once 3 s of audio are in');
  const quiet = new AudioStreamMatcher(bank);
  for (let w = 0; w < 5; w++) assert.deepEqual(quiet.push({ sampleRate: SR, pcm: melody(77, 1) }), []);
});

test('fingerprinting in a worker thread gives the same landmarks and the same streaming matches', async () => {
  const worker = new FingerprintWorker(bank.fingerprintOptions);
  try {
    const start = 11.1;
    const live = await opusRoundTrip(songs[4].slice(Math.round(start * SR), Math.round((start + 6) * SR)), 32);
    const inline = fingerprint(live);
    const off = await worker.fingerprint(live);
    assert.deepEqual([...off.hashes], [...inline.hashes]);
    assert.deepEqual([...off.frames], [...inline.frames]);
    const a = new AudioStreamMatcher(bank, { historySec: 5, minSec: 3 });
    const b = new AudioStreamMatcher(bank, { historySec: 5, minSec: 3 });
    // windows pushed back to back without waiting: each call matches the history it saw when pushed
    const pending: Promise<unknown>[] = [];
    for (let w = 0; w < 6; w++) {
      const win = { sampleRate: SR, pcm: live.slice(w * SR, (w + 1) * SR) };
      const sync = a.push(win);
      pending.push(b.pushAsync(win, worker).then((m) => assert.deepEqual(m, sync, `window ${w}`)));
    }
    await Promise.all(pending);
    assert.ok(a.push({ sampleRate: SR, pcm: live.slice(5 * SR) }).some((m) => m.entryId === 'song4'));
  } finally {
    await worker.close();
  }
  await assert.rejects(worker.fingerprint(new Float32Array(SR)), /closed/);
});

test('incremental fingerprints: each window transformed once, the same songs named at the same positions as re-fingerprinting the history', async () => {
  const start = 4.6;
  const live = await opusRoundTrip(songs[3].slice(Math.round(start * SR), Math.round((start + 9) * SR)), 32);
  const whole = new AudioStreamMatcher(bank, { historySec: 5, minSec: 3, incremental: false });
  const incremental = new AudioStreamMatcher(bank, { historySec: 5, minSec: 3 });
  const rings = new StreamingFingerprinter(5, bank.fingerprintOptions);
  for (let w = 0; w < 9; w++) {
    const win = { sampleRate: SR, pcm: live.slice(w * SR, (w + 1) * SR) };
    rings.push(win.pcm);
    const a = whole.push(win);
    const b = incremental.push(win);
    assert.deepEqual(
      b.map((m) => m.entryId),
      a.map((m) => m.entryId),
      `window ${w}`,
    );
    if (w >= 2)
      assert.deepEqual(
        b.map((m) => m.entryId),
        ['song3'],
        `window ${w}`,
      );
    for (const [i, m] of b.entries()) {
      assert.ok(
        Math.abs((m.offsetSec ?? 0) + incremental.historySeconds - ((a[i]!.offsetSec ?? 0) + whole.historySeconds)) <
          0.05,
        `window ${w}: position in the recording`,
      );
      assert.ok(
        Math.abs((m.offsetSec ?? 0) + incremental.historySeconds - (start + w + 1)) < 0.15,
        `window ${w}: ${(m.offsetSec ?? 0) + incremental.historySeconds}`,
      );
    }
  }
  // 9 s of audio: every frame of the stream transformed once (re-fingerprinting 5 s per window ran ~5x as many FFTs)
  assert.equal(rings.transformedFrames, Math.floor((9 * SR - 1024) / 256) + 1);
  // unregistered music stays unmatched
  const quiet = new AudioStreamMatcher(bank);
  for (let w = 0; w < 6; w++) assert.deepEqual(quiet.push({ sampleRate: SR, pcm: melody(78, 1) }), []);
});

test('incremental fingerprints in the worker thread: each stream keeps its own ring there, matches equal the inline ones', async () => {
  const worker = new FingerprintWorker(bank.fingerprintOptions);
  try {
    const clips = await Promise.all([1, 5].map((id) => opusRoundTrip(songs[id].slice(3 * SR, 10 * SR), 32)));
    const inline = clips.map(() => new AudioStreamMatcher(bank));
    const remote = clips.map(() => new AudioStreamMatcher(bank));
    const named: (string | undefined)[] = [];
    for (let w = 0; w < 7; w++) {
      // two streams interleaved window by window through one thread
      const pending = clips.map((clip, s) => {
        const win = { sampleRate: SR, pcm: clip.slice(w * SR, (w + 1) * SR) };
        const sync = inline[s]!.push(win);
        return remote[s]!.pushAsync(win, worker).then((m) => {
          assert.deepEqual(m, sync, `stream ${s} window ${w}`);
          assert.ok(
            Math.abs(remote[s]!.historySeconds - inline[s]!.historySeconds) < 1e-9,
            `stream ${s} window ${w}: history ${remote[s]!.historySeconds} vs ${inline[s]!.historySeconds}`,
          );
          named[s] = m[0]?.entryId;
        });
      });
      await Promise.all(pending);
    }
    assert.deepEqual(named, ['song1', 'song5'], 'each stream named its own song at the end');
  } finally {
    await worker.close();
  }
});

test('register from a file (decoded by node-av), unregister, and sample-rate checks', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'audio-bank-'));
  try {
    const other = new AudioFingerprintBank({ name: 'protected_audio' });
    const extra = melody(500, 20);
    writeFileSync(join(dir, 'extra.wav'), encodeWav(extra, SR));
    const rec = await other.registerFile('extra', join(dir, 'extra.wav'), { category: 'copyright_audio' });
    assert.ok(Math.abs(rec.durationSec - 20) < 0.05);
    const heard = await opusRoundTrip(extra.slice(5 * SR, 9 * SR), 32);
    assert.equal(other.match(heard)[0]?.entryId, 'extra');
    assert.ok(other.unregister('extra'));
    assert.deepEqual(other.match(heard), []);
    assert.throws(() => other.register('x', { sampleRate: 48000, pcm: new Float32Array(48000) }), /16000/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
