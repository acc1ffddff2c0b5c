// Decode a picture file (any still-image format FFmpeg reads: PNG, JPEG, PPM, BMP, WebP...) to
// packed RGB with node-av, for hashing uploads with PDQ. Synchronous packet reading, as in
// models/audio/decode.ts (node-av's async generators need Promise.withResolvers, absent in Node 20).
import { Decoder, Demuxer, FilterAPI } from 'node-av/api';
import { ModelError } from '../errors.ts';
import type { ImageFrame } from '../types.ts';

export async function decodePictureFile(path: string): Promise<ImageFrame> {
  let input: Demuxer;
  try {
    input = await Demuxer.open(path);
  } catch (err) {
    throw new ModelError('MOD_ERR_CONFIG', `cannot open picture ${path}`, { cause: err });
  }
  try {
    const stream = input.video();
    if (!stream) throw new ModelError('MOD_ERR_CONFIG', `${path}: no picture`);
    using dec = await Decoder.create(stream);
    using conv = FilterAPI.create('format=rgb24');
    for (const pkt of input.packetsSync(stream.index)) {
      const frames = pkt ? dec.decodeAllSync(pkt) : [...dec.flushFramesSync()];
      for (const f of frames) {
        for (const out of [...conv.processAllSync(f), ...conv.flushFramesSync()]) {
          const plane = out.data?.[0];
          if (!plane) continue;
          const { width, height } = out;
          const stride = out.linesize[0]!;
          const rgb = new Uint8Array(width * height * 3);
          for (let r = 0; r < height; r++) rgb.set(plane.subarray(r * stride, r * stride + width * 3), r * width * 3);
          return { width, height, rgb };
        }
      }
    }
    throw new ModelError('MOD_ERR_CONFIG', `${path}: no decodable picture`);
  } finally {
    await input.close();
  }
}
