import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SileroVad } from '../../models/vad/vad.ts';
import { VadWorker } from '../../models/vad/vad-worker.ts';
import { isModelError } from '../../models/errors.ts';
import { decodeAudioFile } from '../../models/audio/decode.ts';
import { noise } from './synth.ts';
import { opusRoundTrip } from './media.ts';

const SR = 16000;

function hasEspeak(): boolean {
  try {
    execFileSync('espeak-ng', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Real (synthesised) speech from espeak-ng, decoded and resampled to 16 kHz by node-av. */
async function speech(text: string): Promise<Float32Array> {
  const dir = mkdtempSync(join(tmpdir(), 'vad-'));
  try {
    execFileSync('espeak-ng', ['-v', 'en', '-s', '150', '-w', join(dir, 's.wav'), text]);
    return await decodeAudioFile(join(dir, 's.wav'), SR);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const frames of [undefined, { frameSamples: 512, minSpeechFrames: 3 }])
  test(
    `silero VAD marks speech windows and leaves silence and noise unmarked (${frames ? `${frames.frameSamples}-sample frames` : 'default frames'})`,
    { skip: hasEspeak() ? false : 'espeak-ng is not installed (CI installs it: apt-get install espeak-ng)' },
    async () => {
      await using vad = await SileroVad.load(frames ?? {});
      const talk = await speech(
        'Hello everyone, welcome to the stream. Today we are testing voice activity detection on live audio.',
      );
      assert.ok(talk.length > 3 * SR);
      // a stream of 1 s windows: 2 s silence, speech, 2 s low noise
      const timeline = new Float32Array(2 * SR + talk.length + 2 * SR);
      timeline.set(talk, 2 * SR);
      timeline.set(noise(3, 2, 0.02), 2 * SR + talk.length);
      const heard = await opusRoundTrip(timeline, 32);
      const s = vad.stream();
      const marks: boolean[] = [];
      for (let w = 0; (w + 1) * SR <= heard.length; w++)
        marks.push((await s.push({ sampleRate: SR, pcm: heard.slice(w * SR, (w + 1) * SR) })).speech);
      const speechWindows = Math.floor(talk.length / SR);
      assert.deepEqual(marks.slice(0, 2), [false, false], `silence: ${marks}`);
      const during = marks.slice(3, 2 + speechWindows);
      assert.ok(during.filter(Boolean).length >= during.length - 1, `speech: ${marks}`);
      assert.equal(marks[marks.length - 1], false, `noise: ${marks}`);

      const r = await vad.detect({ sampleRate: SR, pcm: talk.slice(0, 2 * SR) });
      assert.ok(r.speechRatio > 0.3 && r.segments.length >= 1, JSON.stringify(r.segments));
      assert.equal(await vad.hasSpeech({ sampleRate: SR, pcm: noise(9, 1, 0.3) }), false);
      assert.equal(await vad.hasSpeech({ sampleRate: SR, pcm: new Float32Array(SR) }), false);
      await assert.rejects(vad.detect({ sampleRate: 48000, pcm: new Float32Array(480) }), /16000/);
    },
  );

test(
  'the VAD worker (the stack runs silero off the event loop) answers as the model does inline; a crash rejects MOD_ERR_BACKEND_DOWN and the thread comes back',
  {
    skip: hasEspeak() ? false : 'espeak-ng is not installed (CI installs it: apt-get install espeak-ng)',
    timeout: 120_000,
  },
  async () => {
    await using inline = await SileroVad.load();
    const events: string[] = [];
    const worker = await VadWorker.load({ restartDelayMs: 50, onWorkerEvent: (e) => void events.push(e.type) });
    try {
      const talk = await speech('Hello everyone, welcome to the stream.');
      const windows = [talk.slice(0, SR), new Float32Array(SR), noise(9, 1, 0.3)].map((pcm) => ({
        sampleRate: SR,
        pcm,
      }));
      const expected = [];
      for (const w of windows) expected.push(await inline.hasSpeech(w));
      assert.deepEqual(expected, [true, false, false]);
      const got = [];
      for (const w of windows) got.push(await worker.hasSpeech(w));
      assert.deepEqual(got, expected);
      await assert.rejects(worker.hasSpeech({ sampleRate: 48000, pcm: new Float32Array(480) }), /16000/);

      worker.worker.crash();
      await assert.rejects(worker.hasSpeech(windows[0]!), (e) => isModelError(e, 'MOD_ERR_BACKEND_DOWN'));
      assert.equal(await worker.hasSpeech(windows[0]!), true, 'answered by the restarted thread');
      assert.deepEqual(events.slice(0, 2), ['crash', 'restart']);
    } finally {
      await worker.close();
    }
  },
);

test(
  'a VAD worker whose model cannot be loaded fails to load with MOD_ERR_CONFIG (the thread is closed)',
  { timeout: 60_000 },
  async () => {
    await assert.rejects(
      VadWorker.load({ modelPath: '/nonexistent/silero_vad.onnx' }),
      (e) => isModelError(e, 'MOD_ERR_CONFIG') && /cannot load silero VAD/.test(e.message),
    );
  },
);
