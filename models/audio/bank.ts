// A bank of protected recordings, indexed by landmark hash, and the matcher that names the recording an
// excerpt comes from: landmarks of the excerpt vote for (recording, time offset) pairs, and a true match
// piles its votes onto one offset while chance coincidences scatter.

import type { AudioWindow, Category, ContentMatch } from '../types.ts';
import { ModelError } from '../errors.ts';
import { FINGERPRINT_DEFAULTS, fingerprint, type Fingerprint, type FingerprintOptions } from './fingerprint.ts';
import { decodeAudioFile } from './decode.ts';

export interface AudioRecording {
  id: string;
  category: Category;
  source?: string;
  title?: string;
  durationSec: number;
  landmarkCount: number;
}

export interface AudioBankOptions {
  /** Bank name, reported as ContentMatch.bank. Default 'protected_audio'. */
  name: string;
  /** Category of recordings that name none. Default 'copyright_audio'. */
  defaultCategory: Category;
  /** Aligned landmark votes needed for a match. Default 20. */
  minAligned: number;
  /** Aligned votes as a share of the excerpt's landmarks needed for a match. Default 0.04. */
  minRatio: number;
  fingerprint: Partial<FingerprintOptions>;
}

export const AUDIO_BANK_DEFAULTS: Readonly<AudioBankOptions> = Object.freeze({
  name: 'protected_audio',
  defaultCategory: 'copyright_audio',
  minAligned: 20,
  minRatio: 0.04,
  fingerprint: {},
});

export interface AudioMatchDetail {
  match: ContentMatch;
  /** Votes at the best offset (+-1 frame). */
  aligned: number;
  /** Landmarks in the excerpt. */
  queryLandmarks: number;
}

export class AudioFingerprintBank {
  readonly name: string;
  readonly opts: AudioBankOptions;
  readonly #recordings: AudioRecording[] = [];
  readonly #byId = new Map<string, number>();
  readonly #removed = new Set<number>();
  /** hash -> packed (recording index * 2^22 + anchor frame) */
  readonly #index = new Map<number, number[]>();

  constructor(opts: Partial<AudioBankOptions> = {}) {
    this.opts = { ...AUDIO_BANK_DEFAULTS, ...opts, fingerprint: { ...opts.fingerprint } };
    this.name = this.opts.name;
  }

  get size(): number {
    return this.#byId.size;
  }

  list(): AudioRecording[] {
    return [...this.#byId.values()].map((i) => ({ ...this.#recordings[i] }));
  }

  /** The fingerprint options queries must use (a FingerprintWorker is created with them). */
  get fingerprintOptions(): Partial<FingerprintOptions> {
    return { ...this.opts.fingerprint };
  }

  /** Register a recording from mono PCM at the fingerprint sample rate (16 kHz by default). */
  register(
    id: string,
    pcm: Float32Array | AudioWindow,
    meta: { category?: Category; source?: string; title?: string } = {},
  ): AudioRecording {
    const { fingerprint: fp, durationSec } = this.fingerprintOf(pcm);
    return this.registerFingerprint(id, fp, durationSec, meta);
  }

  /** A recording's fingerprint, as this bank indexes it, without registering it. */
  fingerprintOf(pcm: Float32Array | AudioWindow): { fingerprint: Fingerprint; durationSec: number } {
    const window = pcm instanceof Float32Array ? { sampleRate: this.sampleRate, pcm } : pcm;
    if (window.sampleRate !== this.sampleRate) {
      throw new ModelError('MOD_ERR_BAD_SHAPE', `audio bank expects ${this.sampleRate} Hz, got ${window.sampleRate}`);
    }
    return {
      fingerprint: fingerprint(window.pcm, this.opts.fingerprint),
      durationSec: window.pcm.length / window.sampleRate,
    };
  }

  /** The fingerprint of an audio file (any format FFmpeg reads), resampled to mono 16 kHz. */
  async fingerprintFile(path: string): Promise<{ fingerprint: Fingerprint; durationSec: number }> {
    return this.fingerprintOf(await decodeAudioFile(path, this.sampleRate));
  }

  /**
   * Register a recording from its fingerprint (fingerprintOf, on this node or another with the same
   * fingerprint options): how a cluster shares a registration without the audio.
   */
  registerFingerprint(
    id: string,
    fp: Fingerprint,
    durationSec: number,
    meta: { category?: Category; source?: string; title?: string } = {},
  ): AudioRecording {
    this.unregister(id);
    const idx = this.#recordings.length;
    if (idx >= 1 << 30 || fp.frameCount >= 1 << 22)
      throw new ModelError('MOD_ERR_BAD_SHAPE', 'recording too long for the audio bank');
    const rec: AudioRecording = {
      id,
      category: meta.category ?? this.opts.defaultCategory,
      durationSec,
      landmarkCount: fp.hashes.length,
    };
    if (meta.source !== undefined) rec.source = meta.source;
    if (meta.title !== undefined) rec.title = meta.title;
    this.#recordings.push(rec);
    this.#byId.set(id, idx);
    for (let i = 0; i < fp.hashes.length; i++) {
      const packed = idx * 4194304 + fp.frames[i];
      const list = this.#index.get(fp.hashes[i]);
      if (list) list.push(packed);
      else this.#index.set(fp.hashes[i], [packed]);
    }
    return { ...rec };
  }

  /** Register a recording from an audio file (any format FFmpeg reads), resampled to mono 16 kHz. */
  async registerFile(
    id: string,
    path: string,
    meta: { category?: Category; source?: string; title?: string } = {},
  ): Promise<AudioRecording> {
    const { fingerprint: fp, durationSec } = await this.fingerprintFile(path);
    return this.registerFingerprint(id, fp, durationSec, { title: path, ...meta });
  }

  unregister(id: string): boolean {
    const idx = this.#byId.get(id);
    if (idx === undefined) return false;
    // Postings stay in the index and are skipped at query time; the bank is append-mostly.
    this.#removed.add(idx);
    this.#byId.delete(id);
    return true;
  }

  get sampleRate(): number {
    return this.opts.fingerprint.sampleRate ?? FINGERPRINT_DEFAULTS.sampleRate;
  }

  /** Best matching recordings for an excerpt (PCM at the bank's sample rate), strongest first. */
  match(pcm: Float32Array): ContentMatch[] {
    return this.matchDetailed(pcm).map((d) => d.match);
  }

  matchDetailed(pcm: Float32Array): AudioMatchDetail[] {
    return this.matchFingerprint(fingerprint(pcm, this.opts.fingerprint));
  }

  /** Vote with precomputed landmarks (e.g. a streaming matcher's accumulated ones). */
  matchFingerprint(fp: Fingerprint): AudioMatchDetail[] {
    const q = fp.hashes.length;
    if (q === 0 || this.#byId.size === 0) return [];
    // votes: recording -> (offset frame -> count); offset = ref frame - query frame (may be negative).
    const votes = new Map<number, Map<number, number>>();
    for (let i = 0; i < q; i++) {
      const postings = this.#index.get(fp.hashes[i]);
      if (!postings) continue;
      const qf = fp.frames[i];
      for (const packed of postings) {
        const rec = Math.floor(packed / 4194304);
        if (this.#removed.has(rec)) continue;
        const off = (packed % 4194304) - qf;
        let m = votes.get(rec);
        if (!m) votes.set(rec, (m = new Map<number, number>()));
        m.set(off, (m.get(off) ?? 0) + 1);
      }
    }
    const out: AudioMatchDetail[] = [];
    for (const [rec, m] of votes) {
      let best = 0;
      let bestOff = 0;
      for (const [off, c] of m) {
        // Opus and window alignment can shift a peak by one frame: count the neighbours too.
        const total = c + (m.get(off - 1) ?? 0) + (m.get(off + 1) ?? 0);
        if (total > best || (total === best && c > (m.get(bestOff) ?? 0))) {
          best = total;
          bestOff = off;
        }
      }
      if (best < this.opts.minAligned || best < this.opts.minRatio * q) continue;
      const r = this.#recordings[rec];
      const match: ContentMatch = {
        category: r.category,
        kind: 'audio_fingerprint',
        bank: this.name,
        entryId: r.id,
        confidence: confidenceOf(best, q, this.opts.minAligned),
        offsetSec: Math.max(0, bestOff * fp.frameSec),
      };
      if (r.source !== undefined) match.source = r.source;
      out.push({ match, aligned: best, queryLandmarks: q });
    }
    out.sort((a, b) => b.aligned - a.aligned);
    return out;
  }
}

/**
 * 0..1 from the aligned vote count: ~0.5 at the acceptance threshold, approaching 1 as the count grows,
 * scaled down when only a small share of the excerpt's landmarks agree.
 */
function confidenceOf(aligned: number, queryLandmarks: number, minAligned: number): number {
  const byCount = 1 - Math.pow(0.5, aligned / minAligned);
  const byShare = Math.min(1, aligned / queryLandmarks / 0.2);
  return Math.round(Math.min(1, byCount * (0.5 + 0.5 * byShare)) * 1000) / 1000;
}
