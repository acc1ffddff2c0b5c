// Worker-thread side of FingerprintWorker: computes landmark fingerprints of PCM it is handed, in order.
import { parentPort, workerData } from 'node:worker_threads';
import { fingerprint, type FingerprintOptions } from './fingerprint.ts';

export type FingerprintRequest = { id: number; pcm: ArrayBuffer };
export type FingerprintReply =
  | { t: 'ready' }
  | { t: 'result'; id: number; hashes: Uint32Array; frames: Uint32Array; frameCount: number; frameSec: number }
  | { t: 'error'; id: number; message: string };

const port = parentPort;
if (!port) throw new Error('fingerprint-thread.ts runs as a worker thread');
const options = (workerData ?? {}) as Partial<FingerprintOptions>;

port.on('message', (req: FingerprintRequest) => {
  try {
    const fp = fingerprint(new Float32Array(req.pcm), options);
    port.postMessage({ t: 'result', id: req.id, ...fp } satisfies FingerprintReply, [fp.hashes.buffer as ArrayBuffer, fp.frames.buffer as ArrayBuffer]);
  } catch (err) {
    port.postMessage({ t: 'error', id: req.id, message: err instanceof Error ? err.message : String(err) } satisfies FingerprintReply);
  }
});
port.postMessage({ t: 'ready' } satisfies FingerprintReply);
