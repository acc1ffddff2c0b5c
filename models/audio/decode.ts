// Decode an audio file to mono float PCM at a given rate with node-av (FFmpeg). Synchronous packet
// reading: node-av's async generators need Promise.withResolvers, which Node 20 lacks.

import { Demuxer, Decoder, FilterAPI } from 'node-av/api';
import { ModelError } from '../errors.ts';

export async function decodeAudioFile(path: string, sampleRate = 16000): Promise<Float32Array> {
  let input: Demuxer;
  try {
    input = await Demuxer.open(path);
  } catch (err) {
    throw new ModelError('MOD_ERR_CONFIG', `cannot open audio file ${path}`, { cause: err });
  }
  try {
    const stream = input.audio();
    if (!stream) throw new ModelError('MOD_ERR_CONFIG', `${path}: no audio stream`);
    using dec = await Decoder.create(stream);
    using conv = FilterAPI.create(`aresample=${sampleRate},aformat=sample_fmts=flt:channel_layouts=mono`);
    const chunks: Float32Array[] = [];
    const take = (frames: Iterable<{ toBuffer(): Buffer }>): void => {
      for (const f of frames) {
        const b = f.toBuffer();
        chunks.push(new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)));
      }
    };
    for (const pkt of input.packetsSync(stream.index)) {
      const frames = pkt ? dec.decodeAllSync(pkt) : [...dec.flushFramesSync()];
      for (const f of frames) take(conv.processAllSync(f));
    }
    take(conv.flushFramesSync());
    const out = new Float32Array(chunks.reduce((n, c) => n + c.length, 0));
    let o = 0;
    for (const c of chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  } finally {
    await input.close();
  }
}
