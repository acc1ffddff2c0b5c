// The moderation pipeline, wired: SFU tap -> samplers (worker threads) -> models -> policies
// (through the enforcer) -> SFU actions. The forwarding path only ever meets the tap handler, which
// copies a packet into the sampler pool and returns; everything after runs on its own clock, and a
// slow or dead model changes decisions, never the media. Where the engine forwards in native workers
// (mediasoup), not even that: its workers send each track's RTP over loopback UDP straight to the
// decode thread (Tap.openRtp, SamplerPool.listenRtp), and no packet crosses this thread.
//
// Moderation is never allowed to go silent (issue 12): every sample's moderation is bounded by
// sampleTimeoutMs (past it the sample counts as 'unavailable' and its in-flight slot is freed), and a
// watchdog feeds the enforcer 'unavailable' signals for a kind whose packets keep arriving while no
// signal of that kind has reached the enforcer for stallMs (a dead sampler thread, the in-flight cap,
// a stuck backend). Both go through the same path as a dead backend's 'unavailable' signals, so each
// jurisdiction's fail mode applies, and is audited, exactly as for those.
import type { SampleModerator } from '../models/moderator.ts';
import type { Signals } from '../models/types.ts';
import { jpegThumbnail, type SamplerPool } from '../samplers/index.ts';
import type { AudioSample, Sample, VideoSample } from '../samplers/types.ts';
import type { Sfu, Stream, TapRtpLink, TapSubscription, TrackInfo } from '../sfu/types.ts';
import type { EnforcementOutcome, Enforcer } from './enforcer.ts';

/** What the pipeline reports to metrics (ServerMetrics fits through a small adapter in the app). */
export interface PipelineObserver {
  sample?(sample: Sample, latencyMs: number): void;
  signals?(signals: Signals, outcome: EnforcementOutcome | undefined, appliedAt: number): void;
  dropped?(streamId: string, reason: 'inflight'): void;
  /** A sample's moderation did not finish within sampleTimeoutMs; it was fed as 'unavailable'. */
  timedOut?(streamId: string, kind: 'audio' | 'video'): void;
  /** A kind of a stream entered (stalled = true, `sinceMs` without a signal) or left a moderation stall. */
  stall?(streamId: string, kind: 'audio' | 'video', stalled: boolean, sinceMs: number): void;
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
  /**
   * How packets reach the samplers. 'auto': by the engine's loopback RTP links where it has them
   * (Tap.openRtp: mediasoup's workers send straight to the decode threads, no packet on the event
   * loop), else tap.subscribe(); 'subscribe': always tap.subscribe(). Default 'auto'.
   */
  tapMode?: 'auto' | 'subscribe';
  /** Recent video samples kept per stream so a review item can show the frame it is about. Default 4. */
  evidenceFrames?: number;
  /** Recent audio windows kept per stream so a statement's evidence keeps the ones it cites. Default 8 (8 s of 1 s windows, 512 KiB of 16 kHz PCM). */
  evidenceAudio?: number;
  /** A sample whose moderation has not finished after this long (ms) counts as 'unavailable' and frees its in-flight slot. Default 3000. */
  sampleTimeoutMs?: number;
  /** Packets of a kind flowing with no signal of that kind reaching the enforcer for this long (ms) is a stall: 'unavailable' signals are fed until one comes. Default 5000; 0 = no watchdog. */
  stallMs?: number;
  /** Server clock (ms). */
  clock?: () => number;
}

type Kind = 'audio' | 'video';

/** What the watchdog knows of one kind of a stream. */
interface KindWatch {
  /** Pipeline clock (ms) of the newest tap packet of this kind. */
  lastPacketAt: number;
  /** Pipeline clock (ms) of the newest signal of this kind fed to the enforcer (or of the first packet). */
  lastSignalAt: number;
  trackId: string;
  stalled: boolean;
}

interface Attached {
  stream: Stream;
  /** tap.subscribe() delivering to the samplers, unless the packets come by RTP links. */
  subscription: TapSubscription | undefined;
  /** The engine's loopback RTP links into the samplers (tapMode 'auto' on an engine that has them). */
  links: TapRtpLink[] | undefined;
  inFlight: number;
  dropped: number;
  timedOut: number;
  /** Signals of samples that had already timed out (not fed: the sample was fed as 'unavailable'). */
  late: number;
  stalls: number;
  watchdogSignals: number;
  watch: Partial<Record<Kind, KindWatch>>;
  /** Newest video samples, oldest first (evidence for reviewers). */
  frames: VideoSample[];
  /** Newest audio windows, oldest first (evidence). */
  audio: AudioSample[];
}

export interface PipelineStreamStats {
  streamId: string;
  /** How packets reach the samplers: the engine's loopback RTP links (none on this thread), or tap.subscribe(). */
  input: 'rtp' | 'tap';
  tapDelivered: number;
  tapDropped: number;
  inFlight: number;
  droppedInFlight: number;
  /** Samples whose moderation timed out (fed as 'unavailable'). */
  timedOut: number;
  /** Stalls entered (a kind with packets and no signal for stallMs). */
  stalls: number;
  /** 'unavailable' signals the watchdog fed. */
  watchdogSignals: number;
  /** Kinds stalled now. */
  stalled: Kind[];
}

export class ModerationPipeline {
  readonly #opts: Required<Omit<ModerationPipelineOptions, 'observer'>> & { observer: PipelineObserver };
  readonly #attached = new Map<string, Attached>();
  /** The newest sampled frames of streams that just closed: a kill's statement is issued after the close and may cite them. */
  readonly #closedFrames = new Map<string, Pick<Attached, 'frames' | 'audio'>>();
  #watchdog: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(options: ModerationPipelineOptions) {
    this.#opts = {
      maxInFlightPerStream: 6,
      tapCapacity: 2048,
      tapMode: 'auto',
      evidenceFrames: 4,
      evidenceAudio: 8,
      sampleTimeoutMs: 3000,
      stallMs: 5000,
      clock: () => performance.timeOrigin + performance.now(),
      observer: {},
      ...options,
    };
    const { sfu, samplers } = this.#opts;
    sfu.on('stream', (stream) => this.attach(stream));
    for (const stream of sfu.streams()) this.attach(stream);
    samplers.on('sample', (sample) => this.#onSample(sample));
    samplers.on('keyframeNeeded', (streamId, trackId) => this.#opts.sfu.getStream(streamId)?.requestKeyFrame(trackId));
    if (this.#opts.stallMs > 0) {
      this.#watchdog = setInterval(() => this.#checkStalls(), this.#tickMs());
      this.#watchdog.unref();
    }
  }

  /** Starts moderating a live stream (called for every new stream; idempotent). */
  attach(stream: Stream): void {
    if (this.#closed || stream.closed || this.#attached.has(stream.id)) return;
    const { samplers, enforcer, moderator } = this.#opts;
    enforcer.attachStream(stream);
    const watch: Attached['watch'] = {};
    const useLinks = this.#opts.tapMode === 'auto' && stream.tap.openRtp !== undefined;
    const entry: Attached = {
      stream,
      subscription: useLinks ? undefined : this.#subscribe(stream, watch),
      links: useLinks ? [] : undefined,
      inFlight: 0,
      dropped: 0,
      timedOut: 0,
      late: 0,
      stalls: 0,
      watchdogSignals: 0,
      watch,
      frames: [],
      audio: [],
    };
    this.#attached.set(stream.id, entry);
    if (useLinks) {
      for (const track of stream.tracks) this.#link(entry, track);
      stream.on('track', (track) => this.#link(entry, track));
    }
    stream.on('close', () => {
      entry.subscription?.close();
      for (const link of entry.links ?? []) link.close();
      // A stream id can be reused by a new session: only forget the entry that belongs to this one.
      if (this.#attached.get(stream.id) === entry) this.#attached.delete(stream.id);
      if (entry.frames.length > 0 || entry.audio.length > 0) {
        const kept = { frames: entry.frames, audio: entry.audio };
        this.#closedFrames.set(stream.id, kept);
        setTimeout(() => {
          if (this.#closedFrames.get(stream.id) === kept) this.#closedFrames.delete(stream.id);
        }, 2000).unref();
      }
      samplers.releaseStream(stream.id);
      moderator.releaseStream(stream.id);
      enforcer.streamEnded(stream.id);
    });
  }

  /** The tap as a subscriber: every packet through this thread, on to the samplers' batches. */
  #subscribe(stream: Stream, watch: Attached['watch']): TapSubscription {
    const { samplers, clock } = this.#opts;
    return stream.tap.subscribe(
      (packet) => {
        // The watchdog's view of the media: two numbers per packet, nothing that could block.
        const at = clock();
        const w = watch[packet.kind];
        if (w) {
          w.lastPacketAt = at;
          w.trackId = packet.trackId;
        } else {
          watch[packet.kind] = { lastPacketAt: at, lastSignalAt: at, trackId: packet.trackId, stalled: false };
        }
        samplers.push(packet);
      },
      { capacity: this.#opts.tapCapacity },
    );
  }

  /**
   * One track by the engine's loopback RTP link, straight into its decode thread. A link that cannot
   * be made (no port, a closing stream) puts the whole stream back on tap.subscribe(): moderation is
   * never left without its packets.
   */
  #link(entry: Attached, track: TrackInfo): void {
    const { stream } = entry;
    const { samplers } = this.#opts;
    const open = stream.tap.openRtp;
    if (!open || !entry.links || stream.closed) return;
    void (async () => {
      const link = await open(track.trackId);
      if (!entry.links || stream.closed) return link.close();
      entry.links.push(link);
      const port = await samplers.listenRtp(
        {
          streamId: stream.id,
          trackId: track.trackId,
          kind: track.kind,
          codec: track.codec,
          clockRate: track.clockRate,
        },
        link.sourcePort,
      );
      await link.start(port);
    })().catch((err: unknown) => {
      if (stream.closed || !entry.links || this.#attached.get(stream.id) !== entry) return;
      this.#opts.observer.error?.(
        err,
        `tap RTP link of ${stream.id}/${track.trackId}; falling back to tap.subscribe()`,
      );
      for (const link of entry.links) link.close();
      entry.links = undefined;
      samplers.releaseStream(stream.id);
      entry.subscription = this.#subscribe(stream, entry.watch);
    });
  }

  stats(): PipelineStreamStats[] {
    return [...this.#attached.values()].map((a) => ({
      streamId: a.stream.id,
      input: a.links ? 'rtp' : 'tap',
      tapDelivered: a.subscription?.delivered ?? 0,
      tapDropped: a.subscription?.dropped ?? 0,
      inFlight: a.inFlight,
      droppedInFlight: a.dropped,
      timedOut: a.timedOut,
      stalls: a.stalls,
      watchdogSignals: a.watchdogSignals,
      stalled: (['audio', 'video'] as const).filter((k) => a.watch[k]?.stalled),
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
      // a picture in the samplers' shared ring that its slot no longer holds is not shown as this frame
      const rgb = f.copyRgb ? f.copyRgb() : f.rgb;
      if (!rgb) return undefined;
      return `data:image/jpeg;base64,${Buffer.from(jpegThumbnail({ ...f, rgb })).toString('base64')}`;
    }
    return undefined;
  }

  /**
   * The sampled frames among `sampleSeqs` this node still holds (a statement's cited samples), as a
   * snapshot now and JPEGs when the returned function is called, so the caller (evidence) encodes off
   * the decision path.
   */
  citedFrames(
    streamId: string,
    sampleSeqs: readonly number[],
  ): (() => { seq: number; jpeg: Uint8Array }[]) | undefined {
    const wanted = new Set(sampleSeqs);
    const frames = (this.#attached.get(streamId)?.frames ?? this.#closedFrames.get(streamId)?.frames ?? []).filter(
      (f) => wanted.has(f.seq),
    );
    // a picture in the samplers' shared ring is written again later: the snapshot takes a copy now
    const pictures = frames.flatMap((f) => {
      if (!f.copyRgb) return [f];
      const rgb = f.copyRgb();
      return rgb ? [{ ...f, rgb }] : [];
    });
    if (pictures.length === 0) return undefined;
    return () => pictures.map((f) => ({ seq: f.seq, jpeg: jpegThumbnail(f) }));
  }

  /** The audio windows among `sampleSeqs` this node still holds (a statement's cited samples), as the models heard them. */
  citedAudio(
    streamId: string,
    sampleSeqs: readonly number[],
  ): { seq: number; sampleRate: number; pcm: Float32Array }[] {
    const wanted = new Set(sampleSeqs);
    return (this.#attached.get(streamId)?.audio ?? this.#closedFrames.get(streamId)?.audio ?? [])
      .filter((a) => wanted.has(a.seq))
      .map((a) => ({ seq: a.seq, sampleRate: a.sampleRate, pcm: a.pcm }));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#watchdog) clearInterval(this.#watchdog);
    this.#watchdog = null;
    for (const a of this.#attached.values()) {
      a.subscription?.close();
      for (const link of a.links ?? []) link.close();
      a.links = undefined;
    }
    this.#attached.clear();
  }

  #onSample(sample: Sample): void {
    const entry = this.#attached.get(sample.streamId);
    if (!entry || this.#closed) return;
    const { observer } = this.#opts;
    observer.sample?.(sample, sample.timings.readyAt - sample.timings.arrivedAt);
    if (entry.inFlight >= this.#opts.maxInFlightPerStream) {
      entry.dropped++;
      observer.dropped?.(sample.streamId, 'inflight');
      return;
    }
    entry.inFlight++;
    if (sample.kind === 'audio') this.#keepAudio(entry, sample);
    const thumbnailRef = sample.kind === 'video' ? this.#keepFrame(entry, sample) : undefined;
    let emitted = false;
    let timedOut = false;
    let done = false;
    const emit = (signals: Signals): void => {
      if (this.#closed) return;
      if (timedOut && !emitted) {
        // Already fed as 'unavailable' when it timed out: feeding it now would count the sample twice.
        entry.late++;
        return;
      }
      emitted = true;
      this.#feed(entry, thumbnailRef ? { ...signals, thumbnailRef } : signals, true);
    };
    const timer = setTimeout(() => {
      if (done || this.#closed) return;
      timedOut = true;
      done = true;
      entry.inFlight--;
      entry.timedOut++;
      observer.timedOut?.(sample.streamId, sample.kind);
      if (!emitted) {
        const at = this.#opts.clock();
        this.#feed(
          entry,
          unavailableSignals(
            sample.streamId,
            sample.trackId,
            sample.kind,
            sample.seq,
            sample.rtpTimestamp,
            sample.timings.arrivedAt,
            at,
            { timeout: at - sample.timings.arrivedAt },
          ),
          false,
        );
      }
    }, this.#opts.sampleTimeoutMs);
    timer.unref();
    this.#opts.moderator
      .moderate(sample, emit)
      .catch((err: unknown) => observer.error?.(err, 'moderator'))
      .finally(() => {
        clearTimeout(timer);
        if (done) return;
        done = true;
        entry.inFlight--;
      });
  }

  /**
   * Hands signals to the enforcer; each one (the moderator's, or a timed-out sample's 'unavailable')
   * is progress for the watchdog: the enforcer heard of that sample. Only the moderator's go to the
   * observer's per-stage figures.
   */
  #feed(entry: Attached, signals: Signals & { thumbnailRef?: string }, fromModerator: boolean): void {
    const { observer, clock } = this.#opts;
    const w = entry.watch[signals.kind];
    const at = clock();
    if (w) {
      w.lastSignalAt = at;
      if (w.stalled) {
        w.stalled = false;
        observer.stall?.(entry.stream.id, signals.kind, false, 0);
      }
    }
    const outcome = this.#enforce(signals);
    if (fromModerator) observer.signals?.(signals, outcome, clock());
  }

  #enforce(signals: Signals): EnforcementOutcome | undefined {
    try {
      return this.#opts.enforcer.onSignal(signals);
    } catch (err) {
      this.#opts.observer.error?.(err, 'enforcer');
      return undefined;
    }
  }

  #tickMs(): number {
    return Math.max(50, Math.min(1000, Math.floor(this.#opts.stallMs / 4)));
  }

  /** Samples the policy needs to see unavailable before its fail mode applies (1 when unknown). */
  #failAfter(): number {
    try {
      const n = (this.#opts.enforcer as Partial<Pick<Enforcer, 'policies'>>).policies?.current.failAfter;
      return typeof n === 'number' && n >= 1 ? Math.min(n, 1000) : 1;
    } catch {
      return 1;
    }
  }

  /**
   * The watchdog. A kind stalls when its packets are still arriving (one within the last second or
   * two ticks) but no signal of it has reached the enforcer for stallMs. Entering a stall feeds as many
   * 'unavailable' signals as the policy's failAfter, so the fail mode applies at stallMs rather than
   * some ticks later; each further tick of the stall feeds one more (the outage's time range grows).
   * The stall ends with the next signal of that kind; the policies' own recovery rule (failAfter good
   * samples) then lifts the fail mode.
   */
  #checkStalls(): void {
    if (this.#closed) return;
    const { clock, stallMs, observer } = this.#opts;
    const freshMs = Math.max(1000, 2 * this.#tickMs());
    for (const entry of [...this.#attached.values()]) {
      if (entry.stream.closed) continue;
      if (entry.links) this.#watchLinks(entry);
      for (const kind of ['audio', 'video'] as const) {
        const w = entry.watch[kind];
        const now = clock();
        if (!w || now - w.lastPacketAt > freshMs || now - w.lastSignalAt < stallMs) continue;
        let n = 1;
        if (!w.stalled) {
          w.stalled = true;
          entry.stalls++;
          observer.stall?.(entry.stream.id, kind, true, now - w.lastSignalAt);
          n = this.#failAfter();
        }
        for (let i = 0; i < n && this.#attached.get(entry.stream.id) === entry; i++) {
          entry.watchdogSignals++;
          // Negative sequence numbers: these stand for samples that never came, not for real ones.
          this.#enforce(
            unavailableSignals(entry.stream.id, w.trackId, kind, -entry.watchdogSignals, 0, now, now, {
              stalledMs: now - w.lastSignalAt,
            }),
          );
        }
      }
    }
  }

  /** The watchdog's view of packets that never pass this thread: what their decode thread last reported. */
  #watchLinks(entry: Attached): void {
    for (const kind of ['audio', 'video'] as const) {
      const at = this.#opts.samplers.rtpLastPacketAt(entry.stream.id, kind);
      const trackId = entry.stream.tracks.find((t) => t.kind === kind)?.trackId;
      if (at === undefined || trackId === undefined) continue;
      const w = entry.watch[kind];
      if (w) w.lastPacketAt = Math.max(w.lastPacketAt, at);
      else entry.watch[kind] = { lastPacketAt: at, lastSignalAt: at, trackId, stalled: false };
    }
  }

  #keepFrame(entry: Attached, sample: VideoSample): string {
    entry.frames.push(sample);
    if (entry.frames.length > this.#opts.evidenceFrames) entry.frames.shift();
    return frameRef(sample);
  }

  #keepAudio(entry: Attached, sample: AudioSample): void {
    entry.audio.push(sample);
    if (entry.audio.length > this.#opts.evidenceAudio) entry.audio.shift();
  }
}

function frameRef(sample: VideoSample): string {
  return `frame:${sample.trackId}:${sample.seq}`;
}

/** 'unavailable' signals for a sample (or a missing one) that got no model answer. */
function unavailableSignals(
  streamId: string,
  trackId: string,
  kind: Kind,
  sampleSeq: number,
  rtpTimestamp: number,
  arrivedAt: number,
  completedAt: number,
  timings: Record<string, number>,
): Signals {
  return {
    streamId,
    trackId,
    kind,
    sampleSeq,
    rtpTimestamp,
    arrivedAt,
    completedAt,
    status: 'unavailable',
    scores: {},
    matches: [],
    text: [],
    escalated: false,
    uncertain: false,
    models: [],
    timings,
  };
}
