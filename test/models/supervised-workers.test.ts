// The moderation threads under supervision (issue 12), with real work in them: the audio-fingerprint
// worker and the OCR worker are crashed through their test hook (the thread throws, as a bug would);
// calls pending in the dying thread reject with the coded error, the thread is restarted (reported
// once as a crash and once as a restart) and later calls give the same answers as before. A wedged
// fingerprint thread times out MOD_ERR_TIMEOUT and is recycled. An OCR worker closed while its thread
// is inside onnxruntime lets the read finish and ends cleanly (the process used to abort). A VAD model
// call that never returns times out and does not hold up the windows behind it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { AudioFingerprintBank } from '../../models/audio/bank.ts';
import { FingerprintWorker } from '../../models/audio/fingerprint-worker.ts';
import { fingerprint } from '../../models/audio/fingerprint.ts';
import { isModelError } from '../../models/errors.ts';
import { OcrWorker } from '../../models/ocr/ocr-worker.ts';
import { pdqHash, pdqToHex } from '../../models/pdq/pdq.ts';
import { PdqWorker } from '../../models/pdq/pdq-worker.ts';
import { bankedPicture } from '../../loadtest/media/scenes.ts';
import { SileroVad } from '../../models/vad/vad.ts';
import type { WorkerEvent } from '../../threads/index.ts';
import { drawText, solidFrame } from './media.ts';
import { melody, noise } from './synth.ts';

const SR = 16000;

async function waitFor(what: string, fn: () => boolean, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test(
  'PDQ worker: the same hashes as inline, pixels copied at the call; a crash rejects MOD_ERR_BACKEND_DOWN and the thread comes back',
  { timeout: 120_000 },
  async () => {
    const events: WorkerEvent[] = [];
    const worker = new PdqWorker({ restartDelayMs: 50, onWorkerEvent: (e) => void events.push(e) });
    try {
      const frame = { width: 320, height: 180, rgb: bankedPicture(320, 180) };
      const inline = pdqHash(frame);
      const luma = { width: 64, height: 48, luma: Float64Array.from({ length: 64 * 48 }, (_, i) => (i * 37) % 255) };
      const asked = worker.hash(frame);
      frame.rgb.fill(0); // the worker has its own copy already
      const got = await asked;
      assert.equal(pdqToHex(got.hash), pdqToHex(inline.hash));
      assert.equal(got.quality, inline.quality);
      assert.equal(pdqToHex((await worker.hash(luma)).hash), pdqToHex(pdqHash(luma).hash));

      worker.worker.crash();
      const pending = worker.hash(luma);
      await assert.rejects(pending, (e) => isModelError(e, 'MOD_ERR_BACKEND_DOWN'));
      assert.equal(pdqToHex((await worker.hash(luma)).hash), pdqToHex(pdqHash(luma).hash));
      await waitFor('the restart event', () => events.some((e) => e.type === 'restart'));
      assert.deepEqual(
        events.map((e) => `${e.type}:${e.worker}`),
        ['crash:pdq', 'restart:pdq'],
      );
    } finally {
      await worker.close();
    }
    await assert.rejects(worker.hash({ width: 8, height: 8, rgb: new Uint8Array(192) }), (e) =>
      isModelError(e, 'MOD_ERR_CLOSED'),
    );
  },
);

test(
  'audio fingerprint worker: a crash rejects pending windows MOD_ERR_BACKEND_DOWN, the thread comes back, answers match',
  { timeout: 120_000 },
  async () => {
    const bank = new AudioFingerprintBank();
    const events: WorkerEvent[] = [];
    const worker = new FingerprintWorker(bank.fingerprintOptions, {
      restartDelayMs: 50,
      onWorkerEvent: (e) => void events.push(e),
    });
    try {
      const pcm = melody(3, 3);
      const inline = fingerprint(pcm, bank.fingerprintOptions);
      assert.deepEqual([...(await worker.fingerprint(pcm)).hashes], [...inline.hashes]);

      worker.worker.crash();
      const pending = [worker.fingerprint(pcm), worker.fingerprint(pcm)];
      for (const p of pending) await assert.rejects(p, (e) => isModelError(e, 'MOD_ERR_BACKEND_DOWN'));
      // the next call waits for the restarted thread and is answered by it
      const again = await worker.fingerprint(pcm);
      assert.deepEqual([...again.hashes], [...inline.hashes]);
      await waitFor('the restart event', () => events.some((e) => e.type === 'restart'));
      assert.deepEqual(
        events.map((e) => `${e.type}:${e.worker}`),
        ['crash:audio-fingerprint', 'restart:audio-fingerprint'],
      );
      assert.equal(worker.queued, 0, 'nothing left pending');
    } finally {
      await worker.close();
    }
    await assert.rejects(worker.fingerprint(new Float32Array(SR)), (e) => isModelError(e, 'MOD_ERR_CLOSED'));
  },
);

test(
  'audio fingerprint worker: a wedged thread times out MOD_ERR_TIMEOUT, is recycled, and later windows are answered',
  { timeout: 120_000 },
  async () => {
    const bank = new AudioFingerprintBank();
    const events: WorkerEvent[] = [];
    const worker = new FingerprintWorker(bank.fingerprintOptions, {
      timeoutMs: 500,
      restartDelayMs: 50,
      onWorkerEvent: (e) => void events.push(e),
    });
    try {
      // The timeout counts from the call, so start-up (tsx in a fresh thread: about a second) comes first.
      await worker.ready();
      const pcm = noise(5, 1);
      const first = await worker.fingerprint(pcm);
      worker.worker.hang(120_000);
      await assert.rejects(worker.fingerprint(pcm), (e) => isModelError(e, 'MOD_ERR_TIMEOUT'));
      await waitFor('the wedged thread recycled and restarted', () => events.some((e) => e.type === 'restart'));
      assert.ok(
        events.some((e) => e.type === 'crash' && /no reply within 500 ms/.test(e.message)),
        JSON.stringify(events),
      );
      assert.deepEqual([...(await worker.fingerprint(pcm)).hashes], [...first.hashes], 'the new thread answers');
    } finally {
      await worker.close();
    }
  },
);

test(
  'OCR worker: a crash rejects the pending read MOD_ERR_BACKEND_DOWN; the restarted thread reloads the models and reads the same text',
  { timeout: 300_000 },
  async () => {
    const events: WorkerEvent[] = [];
    await using ocr = await OcrWorker.load({
      restartDelayMs: 50,
      timeoutMs: 60_000,
      onWorkerEvent: (e) => void events.push(e),
    });
    const frame = drawText(solidFrame(480, 200, 235, 235, 235), [
      { text: 'FREE CRYPTO GIVEAWAY', x: 30, y: 80, size: 36 },
    ]);
    const before = (await ocr.read(frame)).lines.map((l) => l.text);
    assert.ok(before.length > 0, 'reads the text at all');
    ocr.worker.crash();
    await assert.rejects(ocr.read(frame), (e) => isModelError(e, 'MOD_ERR_BACKEND_DOWN'));
    const after = (await ocr.read(frame)).lines.map((l) => l.text);
    assert.deepEqual(after, before);
    await waitFor('the restart event', () => events.some((e) => e.type === 'restart'));
    assert.deepEqual(
      events.map((e) => `${e.type}:${e.worker}`),
      ['crash:ocr', 'restart:ocr'],
    );
  },
);

test(
  'OCR worker closed while its thread reads a frame: the read finishes inside the thread, the process exits 0 (no native abort)',
  { timeout: 300_000 },
  async () => {
    // Before issue 18 close() terminated the thread in the middle of the onnxruntime run: the process
    // aborted (`terminate called after throwing an instance of 'Napi::Error'`, exit 134) in the first or
    // second round, on Node 20 and 24.
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', new URL('./close-ocr-while-reading.ts', import.meta.url).pathname],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const kill = setTimeout(() => child.kill('SIGKILL'), 240_000);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
      child.once('exit', (c, s) => resolve([c, s])),
    );
    clearTimeout(kill);
    assert.equal(code, 0, `exit ${code} ${signal ?? ''}:\n${out}`);
    const rounds = out
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { round: number; read: string });
    assert.equal(rounds.length, 4, out);
    // The caller is told at once that the worker closed (or had its answer already); the thread finished the read.
    for (const r of rounds) assert.ok(r.read === 'MOD_ERR_CLOSED' || r.read === 'answered', JSON.stringify(r));
  },
);

test(
  'VAD: a model call that never returns times out MOD_ERR_TIMEOUT and the windows behind it still get answers',
  { timeout: 120_000 },
  async () => {
    await using vad = await SileroVad.load({ timeoutMs: 500 });
    const window = { sampleRate: SR, pcm: noise(9, 1, 0.01) };
    assert.equal(await vad.hasSpeech(window), false);
    // The injected fault: the real session's run() never settles (a wedged native call).
    const session = (vad as unknown as { session: { run: (...a: unknown[]) => Promise<unknown> } }).session;
    const realRun = session.run.bind(session);
    session.run = () => new Promise(() => undefined);
    const stuck = vad.hasSpeech(window);
    const behind = vad.hasSpeech(window);
    await assert.rejects(stuck, (e) => isModelError(e, 'MOD_ERR_TIMEOUT'));
    await assert.rejects(
      behind,
      (e) => isModelError(e, 'MOD_ERR_TIMEOUT'),
      'a queued call is bounded by its own timeout too',
    );
    session.run = realRun;
    assert.equal(await vad.hasSpeech(window), false, 'later windows are answered');
    assert.equal(vad.stats().timeouts, 2);
    assert.equal(vad.stats().pending, 0);
  },
);
