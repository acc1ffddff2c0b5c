// Worker-thread side of FingerprintWorker: computes landmark fingerprints of PCM it is handed.
import { serve } from '../../threads/thread.ts';
import { fingerprint, type Fingerprint, type FingerprintOptions } from './fingerprint.ts';

export type FingerprintRequest = { pcm: ArrayBuffer };
export type FingerprintReply = Fingerprint;

serve<FingerprintRequest, FingerprintReply>(
  (data) => {
    const options = (data ?? {}) as Partial<FingerprintOptions>;
    return (req) => fingerprint(new Float32Array(req.pcm), options);
  },
  { transfer: (fp) => [fp.hashes.buffer as ArrayBuffer, fp.frames.buffer as ArrayBuffer] },
);
