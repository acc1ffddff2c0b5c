// Worker thread that owns the onnxruntime sessions. onnxruntime-node's session.run() blocks the calling
// thread for the whole inference (measured: 140 ms event-loop gaps during InceptionV3 batches), so the
// backend runs it here and the main loop only posts messages (threads/ serve: one reply per request).
import ort from 'onnxruntime-node';
import { onClose, serve } from '../../../threads/thread.ts';

export type ToOrtWorker =
  | { t: 'load'; model: string; file: string; options: ort.InferenceSession.SessionOptions }
  | { t: 'run'; model: string; inputName: string; outputName: string; data: Float32Array; shape: number[] };

export type FromOrtWorker = { t: 'ok' } | { t: 'result'; data: Float32Array; dims: number[]; runMs: number };

const sessions = new Map<string, ort.InferenceSession>();

async function handle(msg: ToOrtWorker): Promise<FromOrtWorker> {
  switch (msg.t) {
    case 'load': {
      if (!sessions.has(msg.model)) sessions.set(msg.model, await ort.InferenceSession.create(msg.file, msg.options));
      return { t: 'ok' };
    }
    case 'run': {
      const session = sessions.get(msg.model);
      if (!session) throw new Error(`model ${msg.model} not loaded in worker`);
      const t0 = performance.now();
      const out = await session.run({ [msg.inputName]: new ort.Tensor('float32', msg.data, msg.shape) }, [
        msg.outputName,
      ]);
      const tensor = out[msg.outputName];
      if (!tensor || tensor.type !== 'float32') throw new Error(`no float32 output ${msg.outputName}`);
      const data = new Float32Array(tensor.data as Float32Array);
      return { t: 'result', data, dims: tensor.dims.map(Number), runMs: performance.now() - t0 };
    }
  }
}

// Closing the thread: serve() lets the loads and runs in progress finish (a session released mid-run
// makes onnxruntime throw from native code and the process abort, seen when a backend closed while its
// deep model was busy), then the sessions are released here, on their own thread.
onClose(async () => {
  const all = [...sessions.values()];
  sessions.clear();
  await Promise.allSettled(all.map((s) => s.release()));
});

serve<ToOrtWorker, FromOrtWorker>(() => handle, {
  transfer: (r) => (r.t === 'result' ? [r.data.buffer as ArrayBuffer] : []),
});
