// The moderation pipeline, wired: SFU tap -> samplers (worker threads) -> models -> policies
// (through the enforcer) -> SFU actions. The forwarding path only ever meets the tap handler, which
// copies a packet into the sampler pool and returns; everything after runs on its own clock, and a
// slow or dead model changes decisions, never the media.
import type { SampleModerator } from '../models/moderator.ts';
import type { Signals } from '../models/types.ts';
import { jpegThumbnail, type SamplerPool } from '../samplers/index.ts';
import type { Sample, VideoSample } from '../samplers/types.ts';
import type { Sfu, Stream, TapSubscription } from '../sfu/types.ts';
import type { EnforcementOutcome, Enforcer } from './enforcer.ts';

/** What the pipeline reports to metrics (ServerMetrics fits through a small adapter in the app). */
export interface PipelineObserver {
  sample?(sample: Sample, latencyMs: number): void;
  signals?(signals: Signals, outcome: EnforcementOutcome | undefined, appliedAt: number): void;
  dropped?(streamId: string, reason: 'inflight'): void;
  error?(error: unknown, context: string): void;
}

export interface ModerationPipelineOptions {
  sfu: Sfu;
  samplers: SamplerPool;
  moderator: SampleModerator;
  enforcer: Enforcer;
  observer?: PipelineObserver;
  /** Samples of one stream being moderated at once; further samples are dropped (counted) until one finishes. Default 6. */
  maxInFlightPerStream?: number;
  /** Tap ring capacity per stream (packets). Default 2048. */
  tapCapacity?: number;
  /** Recent video samples kept per stream so a review item can show the frame it is about. Default 4. */
  evidenceFrames?: number;
  /** Server clock (ms). */
  clock?: () => number;
}

interface Attached {
  stream: Stream;
  subscription: TapSubscription;
  inFlight: number;
  dropped: number;
  /** Newest video samples, oldest first (evidence for reviewers). */
  frames: VideoSample[];
}

export interface PipelineStreamStats {
  streamId: string;
  tapDelivered: number;
  tapDropped: number;
  inFlight: number;
  droppedInFlight: number;
}

export class ModerationPipeline {
  readonly #opts: Required<Omit<ModerationPipelineOptions, 'observer'>> & { observer: PipelineObserver };
  readonly #attached = new Map<string, Attached>();
  #closed = false;

  constructor(options: ModerationPipelineOptions) {
    this.#opts = {
      maxInFlightPerStream: 6,
      tapCapacity: 2048,
      evidenceFrames: 4,
      clock: () => performance.timeOrigin + performance.now(),
      observer: {},
      ...options,
    };
    const { sfu, samplers } = this.#opts;
    sfu.on('stream', (stream) => this.attach(stream));
    for (const stream of sfu.streams()) this.attach(stream);
    samplers.on('sample', (sample) => this.#onSample(sample));
    samplers.on('keyframeNeeded', (streamId, trackId) => this.#opts.sfu.getStream(streamId)?.requestKeyFrame(trackId));
  }

  /** Starts moderating a live stream (called for every new stream; idempotent). */
  attach(stream: Stream): void {
    if (this.#closed || stream.closed || this.#attached.has(stream.id)) return;
    const { samplers, enforcer, moderator } = this.#opts;
    enforcer.attachStream(stream);
    const subscription = stream.tap.subscribe((packet) => samplers.push(packet), { capacity: this.#opts.tapCapacity });
    const entry: Attached = { stream, subscription, inFlight: 0, dropped: 0, frames: [] };
    this.#attached.set(stream.id, entry);
    stream.on('close', () => {
      subscription.close();
      // A stream id can be reused by a new session: only forget the entry that belongs to this one.
      if (this.#attached.get(stream.id) === entry) this.#attached.delete(stream.id);
      samplers.releaseStream(stream.id);
      moderator.releaseStream(stream.id);
      enforcer.streamEnded(stream.id);
    });
  }

  stats(): PipelineStreamStats[] {
    return [...this.#attached.values()].map((a) => ({
      streamId: a.stream.id,
      tapDelivered: a.subscription.delivered,
      tapDropped: a.subscription.dropped,
      inFlight: a.inFlight,
      droppedInFlight: a.dropped,
    }));
  }

  /**
   * A JPEG data URL of the newest frame among `refs` (evidence thumbnail references the pipeline put on
   * video signals) that this node still holds, or undefined. Encoded only when asked (a review item is
   * created), never per sample.
   */
  thumbnailFor(streamId: string, refs: readonly string[]): string | undefined {
    const frames = this.#attached.get(streamId)?.frames;
    if (!frames?.length) return undefined;
    const wanted = new Set(refs);
    for (let i = frames.length - 1; i >= 0; i--) {
      const f = frames[i]!;
      if (!wanted.has(frameRef(f))) continue;
      return `data:image/jpeg;base64,${Buffer.from(jpegThumbnail(f)).toString('base64')}`;
    }
    return undefined;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const a of this.#attached.values()) a.subscription.close();
    this.#attached.clear();
  }

  #onSample(sample: Sample): void {
    const entry = this.#attached.get(sample.streamId);
    if (!entry || this.#closed) return;
    const { observer, clock } = this.#opts;
    observer.sample?.(sample, sample.timings.readyAt - sample.timings.arrivedAt);
    if (entry.inFlight >= this.#opts.maxInFlightPerStream) {
      entry.dropped++;
      observer.dropped?.(sample.streamId, 'inflight');
      return;
    }
    entry.inFlight++;
    const thumbnailRef = sample.kind === 'video' ? this.#keepFrame(entry, sample) : undefined;
    const emit = (signals: Signals): void => {
      if (this.#closed) return;
      let outcome: EnforcementOutcome | undefined;
      try {
        outcome = this.#opts.enforcer.onSignal(thumbnailRef ? { ...signals, thumbnailRef } : signals);
      } catch (err) {
        observer.error?.(err, 'enforcer');
      }
      observer.signals?.(signals, outcome, clock());
    };
    this.#opts.moderator
      .moderate(sample, emit)
      .catch((err: unknown) => observer.error?.(err, 'moderator'))
      .finally(() => {
        entry.inFlight--;
      });
  }

  #keepFrame(entry: Attached, sample: VideoSample): string {
    entry.frames.push(sample);
    if (entry.frames.length > this.#opts.evidenceFrames) entry.frames.shift();
    return frameRef(sample);
  }
}

function frameRef(sample: VideoSample): string {
  return `frame:${sample.trackId}:${sample.seq}`;
}
