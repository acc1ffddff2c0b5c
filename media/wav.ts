// 16-bit PCM WAV (RIFF, one `fmt ` and one `data` chunk): the one writer of WAV in the project, for
// files an API takes (audio-bank registrations) and for evidence (the audio windows a statement
// cites, kept as the samplers handed them: mono, 16 kHz by default).

/** Mono float PCM in [-1, 1] as a 16-bit PCM WAV file (values outside the range clip). */
export function encodeWav(pcm: Float32Array, sampleRate: number): Buffer {
  const data = Buffer.alloc(pcm.length * 2);
  for (let i = 0; i < pcm.length; i++)
    data.writeInt16LE(Math.max(-32768, Math.min(32767, Math.round(pcm[i]! * 32767))), i * 2);
  const h = Buffer.alloc(44);
  h.write('RIFF', 0);
  h.writeUInt32LE(36 + data.length, 4);
  h.write('WAVE', 8);
  h.write('fmt ', 12);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20); // PCM
  h.writeUInt16LE(1, 22); // mono
  h.writeUInt32LE(sampleRate, 24);
  h.writeUInt32LE(sampleRate * 2, 28); // byte rate
  h.writeUInt16LE(2, 32); // block align
  h.writeUInt16LE(16, 34); // bits per sample
  h.write('data', 36);
  h.writeUInt32LE(data.length, 40);
  return Buffer.concat([h, data]);
}
