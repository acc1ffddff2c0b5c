// Plain data that models/ takes in and hands out. No imports from sfu/, samplers/ or policies/:
// a frame is anything with these fields (a sampler's VideoSample fits structurally).

/** A decoded picture: RGB24, row-major. */
export interface ImageFrame {
  width: number;
  height: number;
  rgb: Uint8Array;
}

/** Mono PCM window. */
export interface AudioWindow {
  sampleRate: number;
  pcm: Float32Array;
}

export interface ModelRef {
  name: string;
  version: string;
}

/** Policy category names, e.g. 'sexual_explicit'. The taxonomy itself lives in policies/. */
export type Category = string;

export type SignalStatus = 'ok' | 'unavailable' | 'deadline_missed' | 'error';

/** A known-content match (PDQ hash bank, audio fingerprint bank). */
export interface ContentMatch {
  category: Category;
  kind: 'pdq' | 'audio_fingerprint';
  bank: string;
  entryId: string;
  /** Hamming distance for PDQ. */
  distance?: number;
  /** 0..1 */
  confidence: number;
  /** Offset into the registered recording (s), for audio. */
  offsetSec?: number;
  source?: string;
}

export interface TextHit {
  category: Category;
  term: string;
  /** Where: 'ocr' (on screen) or 'chat'. */
  source: 'ocr' | 'chat';
  /** UTF-16 offsets [start, end) into the original text. */
  start: number;
  end: number;
  /** The original text of the hit (as written, evasions included). */
  text: string;
  /** Jurisdictions the matching lexicon is limited to; absent = applies everywhere. */
  jurisdictions?: string[];
}

/**
 * Everything the models concluded about one sample. Consumed by policies/ (structurally) and by the
 * server for evidence and metrics.
 */
export interface Signals {
  streamId: string;
  trackId: string;
  kind: 'audio' | 'video';
  sampleSeq: number;
  rtpTimestamp: number;
  /** Server clock (ms) when the last packet of the sampled frame/window arrived. */
  arrivedAt: number;
  /** Server clock (ms) when these signals were complete. */
  completedAt: number;
  status: SignalStatus;
  /** Category -> probability in [0, 1] (max over models that scored it). */
  scores: Record<Category, number>;
  matches: ContentMatch[];
  text: TextHit[];
  /** Cascade: the fast model was uncertain and the deep one ran; `uncertain` = still uncertain after it. */
  escalated: boolean;
  uncertain: boolean;
  /** Speech present in an audio window (VAD). */
  speech?: boolean;
  models: ModelRef[];
  /** Stage -> ms: queue, preprocess, inference, postprocess, hash, ocr, ... */
  timings: Record<string, number>;
}
