// Run by supervised-workers.test.ts in a process of its own (an abort would take the test runner with it):
// closes an OCR worker while its thread is reading a frame, inside onnxruntime, once per round, and prints
// one JSON line per round. Terminating that thread aborted the whole process (issue 18).
import { setTimeout as sleep } from 'node:timers/promises';
import { OcrWorker } from '../../models/ocr/ocr-worker.ts';
import { drawText, solidFrame } from './media.ts';

const delaysMs = [0, 50, 100, 200];
const frame = drawText(solidFrame(640, 480, 235, 235, 235), [
  { text: 'FREE CRYPTO GIVEAWAY', x: 30, y: 80, size: 36 },
  { text: 'visit scam-site.example now', x: 30, y: 240, size: 30 },
]);
for (const [round, delayMs] of delaysMs.entries()) {
  const ocr = await OcrWorker.load();
  const read = ocr.read(frame).then(
    () => 'answered',
    (e: unknown) => (e as { code?: string }).code ?? String(e),
  );
  await sleep(delayMs);
  await ocr.close();
  console.log(JSON.stringify({ round, delayMs, read: await read }));
}
