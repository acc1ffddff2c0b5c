// Synthetic audio for the fingerprint tests and benchmark: seeded melodies over chord sequences with a
// per-recording timbre, so every seed is a different "recording" with music-like spectral structure.

export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const midiHz = (m: number): number => 440 * Math.pow(2, (m - 69) / 12);

function addTone(
  out: Float32Array,
  sr: number,
  t0: number,
  dur: number,
  hz: number,
  amp: number,
  harmonics: number[],
  sustained = false,
): void {
  const start = Math.floor(t0 * sr);
  const n = Math.floor(dur * sr);
  const attack = Math.min(0.02 * sr, n / 4);
  const release = Math.min(0.08 * sr, n / 3);
  for (let i = 0; i < n && start + i < out.length; i++) {
    // plucked/struck: fast attack, exponential decay, short release
    // sustained (organ/pad): flat after the attack, the hard case for peak picking
    const body = sustained ? 1 : Math.exp(-(i - attack) / (0.35 * sr));
    const env = (i < attack ? i / attack : body) * (i > n - release ? (n - i) / release : 1);
    let v = 0;
    for (let h = 0; h < harmonics.length; h++) {
      const f = hz * (h + 1);
      if (f > sr / 2 - 200) break;
      v += harmonics[h] * Math.sin((2 * Math.PI * f * i) / sr);
    }
    out[start + i] += amp * env * v;
  }
}

/** A seeded melody with chords and percussion, mono at sr (default 16 kHz), peak ~0.5; plucked notes unless sustained. */
export function melody(seed: number, seconds: number, sr = 16000, sustained = false): Float32Array {
  const r = rng(seed * 7919 + 17);
  const out = new Float32Array(Math.round(seconds * sr));
  const root = 48 + Math.floor(r() * 12);
  const scale = [0, 2, 4, 5, 7, 9, 11];
  const timbre = [1, 0.3 + r() * 0.5, r() * 0.4, r() * 0.3, r() * 0.2];
  const beat = 0.25 + r() * 0.2;
  // chord sequence: one chord per bar of 4 beats
  for (let t = 0, bar = 0; t < seconds; t += 4 * beat, bar++) {
    const deg = Math.floor(r() * 7);
    for (const k of [0, 2, 4]) {
      const m = root - 12 + scale[(deg + k) % 7] + 12 * Math.floor((deg + k) / 7);
      addTone(out, sr, t, 4 * beat, midiHz(m), 0.08, [1, 0.5, 0.25], sustained);
    }
  }
  // melody: notes of 1/2, 1, 2 beats
  for (let t = 0; t < seconds;) {
    const dur = beat * [0.5, 1, 1, 2][Math.floor(r() * 4)];
    if (r() > 0.12) {
      const deg = Math.floor(r() * 14);
      const m = root + 12 + scale[deg % 7] + 12 * Math.floor(deg / 7);
      addTone(out, sr, t, dur, midiHz(m), 0.2, timbre, sustained);
    }
    t += dur;
  }
  // percussion: short noise bursts on beats
  for (let t = 0; t < seconds; t += beat) {
    if (r() < 0.5) continue;
    const start = Math.floor(t * sr);
    const n = Math.floor(0.03 * sr);
    for (let i = 0; i < n && start + i < out.length; i++) out[start + i] += 0.08 * (r() * 2 - 1) * (1 - i / n);
  }
  let peak = 0;
  for (const v of out) peak = Math.max(peak, Math.abs(v));
  if (peak > 0) for (let i = 0; i < out.length; i++) out[i] *= 0.5 / peak;
  return out;
}

/** White noise at the given amplitude. */
export function noise(seed: number, seconds: number, amp = 0.1, sr = 16000): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(Math.round(seconds * sr));
  for (let i = 0; i < out.length; i++) out[i] = amp * (r() * 2 - 1);
  return out;
}
