// Worker-thread side of OcrWorker: hosts one Ocr and answers read requests in order.
import { parentPort, workerData } from 'node:worker_threads';
import { Ocr, type OcrOptions } from './ocr.ts';

export type OcrRequest = { id: number; width: number; height: number; rgb: ArrayBuffer };
export type OcrReply =
  | { t: 'ready' }
  | { t: 'load_error'; message: string }
  | { t: 'result'; id: number; lines: { text: string; score: number; box: [number, number, number, number] }[]; timings: Record<string, number> }
  | { t: 'error'; id: number; message: string };

const port = parentPort;
if (!port) throw new Error('ocr-thread.ts runs as a worker thread');

const options = (workerData ?? {}) as Partial<OcrOptions>;
Ocr.load(options).then(
  (ocr) => {
    port.on('message', (req: OcrRequest) => {
      ocr.read({ width: req.width, height: req.height, rgb: new Uint8Array(req.rgb) }).then(
        (r) => port.postMessage({ t: 'result', id: req.id, lines: r.lines, timings: r.timings } satisfies OcrReply),
        (err: unknown) => port.postMessage({ t: 'error', id: req.id, message: err instanceof Error ? err.message : String(err) } satisfies OcrReply),
      );
    });
    port.postMessage({ t: 'ready' } satisfies OcrReply);
  },
  (err: unknown) => port.postMessage({ t: 'load_error', message: err instanceof Error ? err.message : String(err) } satisfies OcrReply),
);
