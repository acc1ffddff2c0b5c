// SampleModerator: one sample in, Signals out. It runs what the sample needs, each part at its own
// rate: the classifier cascade and PDQ hash matching on sampled frames (the fast path, answered within
// the budget), OCR plus text moderation at a lower rate and off the fast path (its own Signals, later),
// audio fingerprints and voice activity on audio windows.
//
// It takes plain data (a sampler's VideoSample/AudioSample fits structurally) and its parts by
// injection, so models/ stays free of the other folders and each part can be swapped or left out.
import { AudioStreamMatcher, type AudioStreamMatcherOptions, type Fingerprinter } from './audio/stream.ts';
import type { AudioFingerprintBank } from './audio/bank.ts';
import type { HashBankSet } from './hashbank/bank.ts';
import { lumaFromGray, pdqHash, pdqToHex, type GrayImage, type LumaImage, type PdqResult } from './pdq/pdq.ts';
import type {
  AudioWindow,
  Category,
  ContentMatch,
  ImageFrame,
  ModelRef,
  SignalStatus,
  Signals,
  TextHit,
} from './types.ts';

export interface VideoSampleIn extends ImageFrame {
  kind: 'video';
  streamId: string;
  trackId: string;
  seq: number;
  rtpTimestamp: number;
  reason: string;
  /** The sampler's 16x9 luma thumbnail of the frame (0..1), when it computed one: lets OCR skip a static picture. */
  thumbnail?: Float32Array;
  /** The picture's luma plane from the sampler (full-range 8-bit): PDQ hashes it instead of the RGB frame when pdqFromLuma. */
  lumaPlane?: { width: number; height: number; data: Uint8Array };
  /** When rgb is a view into the sampler's shared ring (written again later): a copy of its own, or undefined once gone. */
  copyRgb?: () => Uint8Array | undefined;
  timings: { arrivedAt: number };
}

export interface AudioSampleIn extends AudioWindow {
  kind: 'audio';
  streamId: string;
  trackId: string;
  seq: number;
  rtpTimestamp: number;
  timings: { arrivedAt: number };
}

export type SampleIn = VideoSampleIn | AudioSampleIn;

/** What the classifier cascade answers (NsfwCascade fits). */
export interface FrameClassifier {
  classify(
    frame: ImageFrame,
    opts: { deadline?: number; arrivedAt?: number },
  ): Promise<{
    status: SignalStatus;
    scores: Record<Category, number>;
    escalated: boolean;
    uncertain: boolean;
    models: ModelRef[];
    timings: Record<string, number>;
  }>;
}

/** On-screen text reader (the OCR fits). */
export interface TextReader {
  readonly ref?: ModelRef;
  /**
   * `detLimitSide`: longest side (px) of the picture text detection looks at; recognition reads the
   * full-resolution crops. `take`: the frame's pixels are a copy of the read's own, which it may hand over.
   */
  read(
    frame: ImageFrame,
    opts?: { detLimitSide?: number; take?: boolean },
  ): Promise<{ lines: { text: string; score?: number }[] }>;
}

/** Text moderation of what OCR read (TextModerator fits). */
export interface TextChecker {
  moderate(text: string, opts: { source: 'ocr' | 'chat' }): TextHit[];
}

/** PDQ hashes off this thread (PdqWorker fits). `take`: the picture's pixels may be handed over instead of copied. */
export interface PictureHasher {
  hash(picture: ImageFrame | LumaImage | GrayImage, opts?: { take?: boolean }): Promise<PdqResult>;
}

/** Voice activity (the VAD fits). */
export interface SpeechDetector {
  readonly ref?: ModelRef;
  hasSpeech(window: AudioWindow): Promise<boolean>;
}

export interface SampleModeratorOptions {
  classifier?: FrameClassifier;
  hashBanks?: HashBankSet;
  ocr?: TextReader;
  text?: TextChecker;
  audioBank?: AudioFingerprintBank;
  /** Computes audio fingerprints off this thread (a FingerprintWorker made with the bank's options); without it they are computed inline. */
  fingerprinter?: Fingerprinter;
  vad?: SpeechDetector;
  /** Computes PDQ hashes off this thread (a PdqWorker), beside the classifier; without it they are computed inline (about 4 ms per 640x360 frame). */
  hasher?: PictureHasher;
  /** Budget from a sample's last packet to its signals (ms). Default 100. */
  budgetMs: number;
  /** Least time between two PDQ hashes of a track (ms of arrival time); first and scene-change frames always. Default 900 (~1 fps, as vPDQ). */
  pdqIntervalMs: number;
  /** Hash the sample's luma plane when it has one (SamplerPoolOptions.lumaMaxSide): no RGB copy for the PDQ thread, no RGB-to-luma pass. Default true. */
  pdqFromLuma: boolean;
  /** Least time between two OCR passes of a track (ms); first and scene-change frames are preferred. Default 2000 (0.5 fps). */
  ocrIntervalMs: number;
  /** Least time between two OCR passes of a track while its last pass found restricted text (ms): the policies count OCR'd samples (2 of 6 to enter), so the second look comes sooner. Default 1000. */
  ocrConfirmIntervalMs: number;
  /** OCR passes in flight at once across all streams; a frame that finds them busy is skipped (counted). Default 1. */
  ocrConcurrency: number;
  /** Longest side (px) of the frame OCR detection runs on; recognition reads the boxes at full resolution. Default 320 (640x360: 122 -> 41 ms of CPU per pass, the load test's 51 px overlay still read). */
  ocrDetectSide: number;
  /** A picture that has not changed since the last OCR pass, which read no text, is read again only after this long (ms); 0 = read at ocrIntervalMs regardless. Default 6000. */
  ocrStaticRecheckMs: number;
  /** Largest change of one 16x9 luma thumbnail cell (0..1) under which the picture counts as unchanged. Default 0.03 (a 20 px caption moves its cells by far more; a static picture's coding noise stays under 0.01). */
  ocrStaticThreshold: number;
  audioMatcher: Partial<AudioStreamMatcherOptions>;
  /** Server clock (ms). */
  clock: () => number;
}

const DEFAULTS: Readonly<Omit<SampleModeratorOptions, 'clock'>> = Object.freeze({
  budgetMs: 100,
  pdqIntervalMs: 900,
  pdqFromLuma: true,
  ocrIntervalMs: 2000,
  ocrConfirmIntervalMs: 1000,
  ocrConcurrency: 1,
  ocrDetectSide: 320,
  ocrStaticRecheckMs: 6000,
  ocrStaticThreshold: 0.03,
  audioMatcher: {},
});

const PDQ_REF: ModelRef = Object.freeze({ name: 'pdq', version: '1.0' });
const FINGERPRINT_REF: ModelRef = Object.freeze({ name: 'audio-landmarks', version: '1' });

interface TrackState {
  lastPdqAt: number;
  lastOcrAt: number;
  /** Thumbnail of the frame the last OCR pass read, and whether that pass found any text. */
  ocrThumbnail?: Float32Array;
  ocrFoundText: boolean;
  /** The last pass's text hit a lexicon. */
  ocrFoundHits: boolean;
  audio?: AudioStreamMatcher;
}

export interface SampleModeratorStats {
  videoSamples: number;
  audioSamples: number;
  pdqHashes: number;
  ocrPasses: number;
  /** Frames due for OCR that found the passes busy and were replaced by a newer frame of their track, or went stale, while waiting. */
  ocrSkippedBusy: number;
  /** OCR passes left out because the picture had not changed since a pass that read no text. */
  ocrSkippedStatic: number;
  ocrErrors: number;
  audioMatches: number;
  /** Audio windows the fingerprint worker could not handle (no match signal for them). */
  fingerprintErrors: number;
  /** Frames the PDQ worker could not hash (no match signal for them). */
  pdqErrors: number;
}

export class SampleModerator {
  readonly options: Readonly<SampleModeratorOptions>;
  readonly #tracks = new Map<string, TrackState>();
  #ocrInFlight = 0;
  /**
   * Tracks due for OCR while every pass is busy, each with its newest due frame. A finished pass takes
   * the track read longest ago, so with many streams each gets its turn (first come, first served let a
   * stream whose frames land just after another's go unread for 20 s: issue 16, 10 streams in step).
   */
  readonly #ocrWaiting = new Map<
    string,
    { sample: VideoSampleIn; emit: (signals: Signals) => void; state: TrackState }
  >();
  readonly #counters: SampleModeratorStats = {
    videoSamples: 0,
    audioSamples: 0,
    pdqHashes: 0,
    ocrPasses: 0,
    ocrSkippedBusy: 0,
    ocrSkippedStatic: 0,
    ocrErrors: 0,
    audioMatches: 0,
    fingerprintErrors: 0,
    pdqErrors: 0,
  };

  constructor(options: Partial<SampleModeratorOptions> = {}) {
    this.options = Object.freeze({ ...DEFAULTS, clock: () => performance.timeOrigin + performance.now(), ...options });
  }

  /**
   * Moderates one sample. `emit` receives the fast-path Signals before the returned promise settles;
   * OCR results arrive later as Signals of their own (same sampleSeq) when a pass ran.
   */
  async moderate(sample: SampleIn, emit: (signals: Signals) => void): Promise<void> {
    if (sample.kind === 'video') await this.#moderateVideo(sample, emit);
    else await this.#moderateAudio(sample, emit);
  }

  /** Forget a stream's per-track state (its audio history, rates). */
  releaseStream(streamId: string): void {
    for (const key of this.#tracks.keys()) if (key.startsWith(`${streamId}\u0000`)) this.#tracks.delete(key);
    for (const key of this.#ocrWaiting.keys()) if (key.startsWith(`${streamId}\u0000`)) this.#ocrWaiting.delete(key);
  }

  stats(): SampleModeratorStats {
    return { ...this.#counters };
  }

  #track(sample: SampleIn): TrackState {
    const key = `${sample.streamId}\u0000${sample.trackId}`;
    let state = this.#tracks.get(key);
    if (!state) {
      state = { lastPdqAt: -Infinity, lastOcrAt: -Infinity, ocrFoundText: false, ocrFoundHits: false };
      this.#tracks.set(key, state);
    }
    return state;
  }

  #base(sample: SampleIn): Signals {
    return {
      streamId: sample.streamId,
      trackId: sample.trackId,
      kind: sample.kind,
      sampleSeq: sample.seq,
      rtpTimestamp: sample.rtpTimestamp,
      arrivedAt: sample.timings.arrivedAt,
      completedAt: 0,
      status: 'ok',
      scores: {},
      matches: [],
      text: [],
      escalated: false,
      uncertain: false,
      models: [],
      timings: {},
    };
  }

  async #moderateVideo(sample: VideoSampleIn, emit: (signals: Signals) => void): Promise<void> {
    const { clock } = this.options;
    const state = this.#track(sample);
    const arrivedAt = sample.timings.arrivedAt;
    const eager = sample.reason === 'first' || sample.reason === 'scene';
    this.#counters.videoSamples++;
    const signals = this.#base(sample);

    // Start the classifier first: its inference runs on onnxruntime's threads while PDQ runs.
    const classified = this.options.classifier?.classify(sample, {
      arrivedAt,
      deadline: arrivedAt + this.options.budgetMs,
    });
    // It is awaited below, after PDQ: a rejection meanwhile is not unhandled (the await still sees it).
    classified?.catch(() => undefined);

    const banks = this.options.hashBanks;
    if (banks && (eager || arrivedAt - state.lastPdqAt >= this.options.pdqIntervalMs)) {
      state.lastPdqAt = arrivedAt;
      const t0 = clock();
      const plane = this.options.pdqFromLuma ? sample.lumaPlane : undefined;
      const gray = plane && { width: plane.width, height: plane.height, gray: plane.data };
      const hasher = this.options.hasher;
      let result: PdqResult | undefined;
      try {
        // beside the classifier's run, on threads of their own; the luma plane is PDQ's alone: handed over, not copied
        if (gray) result = hasher ? await hasher.hash(gray, { take: true }) : pdqHash(lumaFromGray(gray));
        else {
          const picture = { width: sample.width, height: sample.height, rgb: sample.rgb };
          result = hasher ? await hasher.hash(picture) : pdqHash(picture);
        }
      } catch {
        // A frame the worker could not hash is a missing match signal, counted; the classifier's answer still goes out.
        this.#counters.pdqErrors++;
      }
      if (result) {
        const { hash, quality } = result;
        this.#counters.pdqHashes++;
        signals.matches.push(
          ...banks
            .match(hash)
            .map((m): ContentMatch => ({ ...m, source: m.source ?? `pdq:${pdqToHex(hash)}:q${quality}` })),
        );
        signals.models.push(PDQ_REF);
        signals.timings.hash = clock() - t0;
      }
    }

    if (classified) {
      const result = await classified;
      signals.status = result.status;
      signals.scores = result.scores;
      signals.escalated = result.escalated;
      signals.uncertain = result.uncertain;
      signals.models.push(...result.models);
      for (const [stage, ms] of Object.entries(result.timings)) signals.timings[stage] = ms;
    }
    signals.completedAt = clock();
    emit(signals);

    const ocrInterval = state.ocrFoundHits ? this.options.ocrConfirmIntervalMs : this.options.ocrIntervalMs;
    if (this.options.ocr && this.options.text && (eager || arrivedAt - state.lastOcrAt >= ocrInterval)) {
      if (!eager && this.#staticSinceLastRead(sample, state, arrivedAt)) {
        this.#counters.ocrSkippedStatic++;
      } else if (this.#ocrInFlight >= this.options.ocrConcurrency) {
        const key = `${sample.streamId}\u0000${sample.trackId}`;
        if (this.#ocrWaiting.has(key)) this.#counters.ocrSkippedBusy++;
        this.#ocrWaiting.set(key, { sample, emit, state });
      } else {
        this.#startRead(sample, emit, state);
      }
    }
  }

  #startRead(sample: VideoSampleIn, emit: (signals: Signals) => void, state: TrackState): void {
    state.lastOcrAt = sample.timings.arrivedAt;
    state.ocrThumbnail = sample.thumbnail;
    this.#ocrInFlight++;
    // Not awaited by the caller's fast path: on-screen text is a slower signal of its own.
    void this.#readText(sample, emit, state).finally(() => {
      this.#ocrInFlight--;
      this.#nextWaitingRead();
    });
  }

  /** Starts the waiting track read longest ago; frames that waited longer than the OCR interval are dropped (counted). */
  #nextWaitingRead(): void {
    const now = this.options.clock();
    while (this.#ocrInFlight < this.options.ocrConcurrency && this.#ocrWaiting.size > 0) {
      let pick: string | undefined;
      for (const [key, w] of this.#ocrWaiting)
        if (pick === undefined || w.state.lastOcrAt < this.#ocrWaiting.get(pick)!.state.lastOcrAt) pick = key;
      const w = this.#ocrWaiting.get(pick!)!;
      this.#ocrWaiting.delete(pick!);
      if (now - w.sample.timings.arrivedAt > this.options.ocrIntervalMs) {
        this.#counters.ocrSkippedBusy++;
        continue;
      }
      this.#startRead(w.sample, w.emit, w.state);
    }
  }

  /**
   * OCR is the costliest signal (issue 16: more than half of a stream's moderation CPU). A picture
   * that has not changed since a pass that read nothing cannot have gained text, so it is read again
   * only every ocrStaticRecheckMs. A pass that read text keeps the regular rate (the policies count
   * OCR'd samples: 2 of 6 to enter), and any change of the picture, a new text overlay included,
   * reads at once.
   */
  #staticSinceLastRead(sample: VideoSampleIn, state: TrackState, arrivedAt: number): boolean {
    const { ocrStaticRecheckMs, ocrStaticThreshold } = this.options;
    const before = state.ocrThumbnail;
    const now = sample.thumbnail;
    if (ocrStaticRecheckMs <= 0 || state.ocrFoundText || !before || !now || before.length !== now.length) return false;
    if (arrivedAt - state.lastOcrAt >= ocrStaticRecheckMs) return false;
    for (let i = 0; i < now.length; i++) if (Math.abs(now[i]! - before[i]!) > ocrStaticThreshold) return false;
    return true;
  }

  async #readText(sample: VideoSampleIn, emit: (signals: Signals) => void, state: TrackState): Promise<void> {
    const { clock } = this.options;
    const ocr = this.options.ocr;
    const text = this.options.text;
    if (!ocr || !text) return;
    const signals = this.#base(sample);
    const t0 = clock();
    // a picture in the sampler's shared ring is copied now: a frame that waited for a pass may have lost its slot
    const own = sample.copyRgb?.();
    if (sample.copyRgb && !own) {
      this.#counters.ocrSkippedBusy++;
      return;
    }
    try {
      const { lines } = await ocr.read(own ? { ...sample, rgb: own } : sample, {
        detLimitSide: this.options.ocrDetectSide,
        ...(own ? { take: true } : {}),
      });
      this.#counters.ocrPasses++;
      state.ocrFoundText = lines.some((l) => l.text.trim() !== '');
      const hits: TextHit[] = [];
      for (const line of lines) hits.push(...text.moderate(line.text, { source: 'ocr' }));
      signals.text = hits;
      state.ocrFoundHits = hits.length > 0;
      if (ocr.ref) signals.models.push(ocr.ref);
    } catch {
      // A failed read is a missing text signal, not an outage of the classifiers: it must not drive
      // the policies' fail mode, so nothing is emitted (counted instead).
      this.#counters.ocrErrors++;
      return;
    }
    signals.timings.ocr = clock() - t0;
    signals.completedAt = clock();
    emit(signals);
  }

  async #moderateAudio(sample: AudioSampleIn, emit: (signals: Signals) => void): Promise<void> {
    const { clock } = this.options;
    const state = this.#track(sample);
    this.#counters.audioSamples++;
    const signals = this.#base(sample);
    const bank = this.options.audioBank;
    if (bank) {
      state.audio ??= new AudioStreamMatcher(bank, this.options.audioMatcher);
      const t0 = clock();
      const fingerprinter = this.options.fingerprinter;
      let matches: ContentMatch[] | undefined;
      try {
        matches = fingerprinter ? await state.audio.pushAsync(sample, fingerprinter) : state.audio.push(sample);
      } catch {
        // A window the worker could not fingerprint (queue full, worker gone) is a missing match
        // signal, counted; the window's other signals still go out.
        this.#counters.fingerprintErrors++;
      }
      if (matches) {
        if (matches.length > 0) this.#counters.audioMatches++;
        signals.matches.push(...matches);
        signals.models.push(FINGERPRINT_REF);
        signals.timings.fingerprint = clock() - t0;
      }
    }
    const vad = this.options.vad;
    if (vad) {
      const t0 = clock();
      try {
        signals.speech = await vad.hasSpeech(sample);
        if (vad.ref) signals.models.push(vad.ref);
      } catch {
        // Voice activity only narrows later audio models; without it every window counts as speech.
        signals.speech = true;
      }
      signals.timings.vad = clock() - t0;
    }
    signals.completedAt = clock();
    emit(signals);
  }
}
