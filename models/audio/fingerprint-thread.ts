// Worker-thread side of FingerprintWorker: computes landmark fingerprints of PCM it is handed, and
// keeps the spectrogram rings of live streams (StreamingFingerprinter) so that each second of a
// stream's audio is transformed once. A stream's ring is dropped once it has had no window for
// STREAM_IDLE_MS (its matcher is gone: a stream that ended, or one released); a restarted thread
// starts every ring empty.
import { serve } from '../../threads/thread.ts';
import { fingerprint, StreamingFingerprinter, type Fingerprint, type FingerprintOptions } from './fingerprint.ts';

export type FingerprintRequest =
  | { pcm: ArrayBuffer }
  /** The next window of a live stream: landmarks over the stream's last historySec. */
  | { stream: string; historySec: number; pcm: ArrayBuffer };
export type FingerprintReply = Fingerprint;

const STREAM_IDLE_MS = 30_000;

serve<FingerprintRequest, FingerprintReply>(
  (data) => {
    const options = (data ?? {}) as Partial<FingerprintOptions>;
    const streams = new Map<string, { fp: StreamingFingerprinter; usedAt: number }>();
    let sweptAt = 0;
    return (req) => {
      if (!('stream' in req)) return fingerprint(new Float32Array(req.pcm), options);
      const now = performance.now();
      if (now - sweptAt > STREAM_IDLE_MS / 4) {
        sweptAt = now;
        for (const [key, s] of streams) if (now - s.usedAt > STREAM_IDLE_MS) streams.delete(key);
      }
      let s = streams.get(req.stream);
      if (!s) streams.set(req.stream, (s = { fp: new StreamingFingerprinter(req.historySec, options), usedAt: now }));
      s.usedAt = now;
      s.fp.push(new Float32Array(req.pcm));
      return s.fp.fingerprint();
    };
  },
  { transfer: (fp) => [fp.hashes.buffer as ArrayBuffer, fp.frames.buffer as ArrayBuffer] },
);
