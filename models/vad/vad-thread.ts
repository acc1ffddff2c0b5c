// Worker-thread side of VadWorker: hosts one SileroVad (its onnxruntime session runs on this thread)
// and answers whether a window holds speech. Closed, it finishes the windows in progress and releases
// the session before the thread ends.
import { onClose, serve } from '../../threads/thread.ts';
import { SileroVad, type VadOptions } from './vad.ts';

export type VadRequest = { sampleRate: number; pcm: ArrayBuffer };
export type VadReply = { speech: boolean };

serve<VadRequest, VadReply>(async (data) => {
  const vad = await SileroVad.load((data ?? {}) as Partial<VadOptions>);
  onClose(() => vad.close());
  return async (req) => ({
    speech: await vad.hasSpeech({ sampleRate: req.sampleRate, pcm: new Float32Array(req.pcm) }),
  });
});
