// Worker-thread side of OcrWorker: hosts one Ocr and answers read requests. Closed, it finishes the
// reads in progress and releases the Ocr's two onnxruntime sessions before the thread ends.
import { onClose, serve } from '../../threads/thread.ts';
import { Ocr, type OcrOptions } from './ocr.ts';

export type OcrRequest = { width: number; height: number; rgb: ArrayBuffer; detLimitSide?: number };
export type OcrReply = {
  lines: { text: string; score: number; box: [number, number, number, number] }[];
  timings: Record<string, number>;
};

serve<OcrRequest, OcrReply>(async (data) => {
  const ocr = await Ocr.load((data ?? {}) as Partial<OcrOptions>);
  onClose(() => ocr.close());
  return async (req) => {
    const r = await ocr.read(
      { width: req.width, height: req.height, rgb: new Uint8Array(req.rgb) },
      req.detLimitSide !== undefined ? { detLimitSide: req.detLimitSide } : {},
    );
    return { lines: r.lines, timings: r.timings };
  };
});
