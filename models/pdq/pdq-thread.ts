// Worker-thread side of PdqWorker: the PDQ hash of the picture it is handed (RGB or luminance).
import { serve } from '../../threads/thread.ts';
import { pdqHash } from './pdq.ts';

export type PdqRequest =
  { width: number; height: number; rgb: ArrayBuffer } | { width: number; height: number; luma: ArrayBuffer };
export interface PdqReply {
  hash: Uint8Array;
  quality: number;
}

serve<PdqRequest, PdqReply>(
  () => (req) =>
    'rgb' in req
      ? pdqHash({ width: req.width, height: req.height, rgb: new Uint8Array(req.rgb) })
      : pdqHash({ width: req.width, height: req.height, luma: new Float64Array(req.luma) }),
  { transfer: (r) => [r.hash.buffer as ArrayBuffer] },
);
