// Worker thread that owns the onnxruntime sessions. onnxruntime-node's session.run() blocks the calling
// thread for the whole inference (measured: 140 ms event-loop gaps during InceptionV3 batches), so the
// backend runs it here and the main loop only posts messages.
import { parentPort } from 'node:worker_threads';
import ort from 'onnxruntime-node';

export type ToOrtWorker =
  | { t: 'load'; id: number; model: string; file: string; options: ort.InferenceSession.SessionOptions }
  | { t: 'run'; id: number; model: string; inputName: string; outputName: string; data: Float32Array; shape: number[] }
  | { t: 'release'; id: number };

export type FromOrtWorker =
  | { t: 'ok'; id: number }
  | { t: 'result'; id: number; data: Float32Array; dims: number[]; runMs: number }
  | { t: 'error'; id: number; message: string; kind: 'load' | 'run' };

const sessions = new Map<string, ort.InferenceSession>();
/** Runs in progress: session.run() is asynchronous, so a release could otherwise free a session mid-run
 * (onnxruntime then throws from native code and the process aborts, seen when a backend closed while its
 * deep model was still busy). */
const running = new Set<Promise<unknown>>();
const port = parentPort!;

function reply(msg: FromOrtWorker, transfer: ArrayBuffer[] = []): void {
  port.postMessage(msg, transfer);
}

port.on('message', (msg: ToOrtWorker) => {
  void handle(msg);
});

async function handle(msg: ToOrtWorker): Promise<void> {
  try {
    switch (msg.t) {
      case 'load': {
        if (!sessions.has(msg.model)) sessions.set(msg.model, await ort.InferenceSession.create(msg.file, msg.options));
        reply({ t: 'ok', id: msg.id });
        return;
      }
      case 'run': {
        const session = sessions.get(msg.model);
        if (!session) throw new Error(`model ${msg.model} not loaded in worker`);
        const t0 = performance.now();
        const run = session.run({ [msg.inputName]: new ort.Tensor('float32', msg.data, msg.shape) }, [msg.outputName]);
        running.add(run);
        const out = await run.finally(() => running.delete(run));
        const tensor = out[msg.outputName];
        if (!tensor || tensor.type !== 'float32') throw new Error(`no float32 output ${msg.outputName}`);
        const data = new Float32Array(tensor.data as Float32Array);
        reply({ t: 'result', id: msg.id, data, dims: tensor.dims.map(Number), runMs: performance.now() - t0 }, [data.buffer]);
        return;
      }
      case 'release': {
        const all = [...sessions.values()];
        sessions.clear();
        await Promise.allSettled([...running]);
        await Promise.allSettled(all.map((s) => s.release()));
        reply({ t: 'ok', id: msg.id });
        return;
      }
    }
  } catch (err) {
    reply({ t: 'error', id: msg.id, message: (err as Error).message ?? String(err), kind: msg.t === 'load' ? 'load' : 'run' });
  }
}
