// SamplerPool: the main-thread face of the samplers. push() is called from the SFU's tap for every
// RTP packet; it only copies the packet into a per-worker batch (bounded) and returns. Worker
// threads depacketize, decode with node-av and sample; samples come back as events.
//
// Each decode thread is a SupervisedWorker (threads/): a crashed one is restarted with backoff, its
// tracks are registered again and resync on a key frame; packets that arrive meanwhile are dropped
// (counted). Not a RequestWorker: packets stream in and samples stream out without replies, under the
// pool's own byte-counting flow control (acks), so only the supervision is shared.
import { availableParallelism } from 'node:os';
import { DECISION_NICE, SafeEmitter, SupervisedWorker, type WorkerEvent } from '../threads/index.ts';
import { WorkerStartError } from './errors.ts';
import { PACKET_HEADER, UDP_COUNTERS_MS, writePacket } from './protocol.ts';
import type { FromWorker, ToWorker, TrackInfo, WorkerConfig } from './protocol.ts';
import type { RtpPacketIn, RtpTrackIn, Sample } from './types.ts';
import { DEFAULT_VIDEO_SAMPLING } from './video-sampling.ts';

export interface SamplerPoolOptions {
  /** Decode worker threads. Default: available cores - 1, at least 1, at most 4. */
  workers: number;
  /** Video sampling rate (frames/s of RTP time), besides the first decodable frame and scene changes. Default 2. */
  videoFps: number;
  /** Also sample on scene changes (downscaled luma difference). Default true. */
  sceneChange: boolean;
  /** Mean absolute luma difference (0..1) between consecutive frames that counts as a scene change. Default 0.08. */
  sceneThreshold: number;
  /** Least time (ms) between scene-change samples of a track. Default 250. */
  sceneMinGapMs: number;
  /** Largest width (px) of a video sample; larger frames are scaled down, aspect kept. Default 640. */
  maxWidth: number;
  /**
   * Longest side (px) of the luma plane each video sample carries for PDQ: full-range 8-bit luma
   * (GRAY8, what PDQ computes from RGB), scaled natively like the RGB sample, at its size or smaller
   * to fit this; 0 = none. Default 640 (the RGB's own size): its hash is 0-18 bits from the RGB
   * sample's on the load test's scenes (test; PDQ matches at <= 31), and PDQ gets a plane a third of
   * the RGB's size that nothing else needs, so it is handed to the PDQ thread instead of a copy of the
   * RGB (main-thread garbage, issue 16).
   */
  lumaMaxSide: number;
  /**
   * Sampled pictures per video track kept in a ring the decode thread shares with this one, so that a
   * sample's RGB is a view into it instead of a buffer of its own; 0 = a buffer per sample. A sample
   * costs the main isolate a 691 KB ArrayBuffer at 640x360, external memory that drove most of its
   * major GCs (issue 16). A slot is written again `sharedFrames` samples later: whoever keeps a
   * sample's pixels longer than the decision path takes them with VideoSample.copyRgb(). Default 0
   * (the server sets it).
   */
  sharedFrames: number;
  /** Audio window length (ms). Default 1000. */
  audioWindowMs: number;
  /** Audio sample rate of windows (Hz, mono). Default 16000. */
  audioSampleRate: number;
  /** Bytes of packets in flight to one worker before new packets are dropped. Default 8 MiB. */
  maxQueueBytes: number;
  /** A frame older than this (ms since arrival) when a worker gets to it is dropped and its track resyncs on a key frame. Default 1000. */
  maxLagMs: number;
  /** How long (ms) a sequence gap may stay open for reordered packets before the frame is dropped. Default 60. */
  reorderWaitMs: number;
  /** Least time (ms) between two keyframeNeeded events of a track. Default 500. */
  keyframeRequestIntervalMs: number;
  /** Least time (ms) between two "slower than realtime" warnings. Default 5000. */
  warningIntervalMs: number;
  /** Flush batched packets to workers at least this often (ms). Default 5. */
  flushIntervalMs: number;
  /** A stream with no packet for this long (ms) is released as if releaseStream() had been called. Default 30000; 0 = never. */
  idleReleaseMs: number;
  /** Nice value of the decode threads (Linux): when cores are scarce, forwarding wins over decoding, and decoding (on the budgeted path) over the rest of moderation. Default 5 (DECISION_NICE); 0 = same as the process. */
  workerNice: number;
}

export const DEFAULT_SAMPLER_POOL_OPTIONS: Readonly<SamplerPoolOptions> = Object.freeze({
  workers: Math.max(1, Math.min(4, availableParallelism() - 1)),
  videoFps: DEFAULT_VIDEO_SAMPLING.fps,
  sceneChange: DEFAULT_VIDEO_SAMPLING.sceneChange,
  sceneThreshold: DEFAULT_VIDEO_SAMPLING.sceneThreshold,
  sceneMinGapMs: DEFAULT_VIDEO_SAMPLING.sceneMinGapMs,
  maxWidth: 640,
  lumaMaxSide: 640,
  sharedFrames: 0,
  audioWindowMs: 1000,
  audioSampleRate: 16000,
  maxQueueBytes: 8 * 1024 * 1024,
  maxLagMs: 1000,
  reorderWaitMs: 60,
  keyframeRequestIntervalMs: 500,
  warningIntervalMs: 5000,
  flushIntervalMs: 5,
  idleReleaseMs: 30000,
  workerNice: DECISION_NICE,
});

export interface SamplerStreamStats {
  streamId: string;
  /** Frames decoded (video frames + Opus frames). */
  frames: number;
  /** Samples emitted. */
  samples: number;
  /** Packets dropped on the way in plus frames dropped (loss, lag, undecodable). */
  drops: number;
  /** Latest lag (ms) between a frame's last packet arriving and a worker processing it. */
  lagMs: number;
  /** Latest sample latency (ms): last packet arrived -> sample ready. */
  sampleLatencyMs: number;
  /** Index of the worker that decodes this stream. */
  worker: number;
}

export type SamplerPoolEvents = {
  sample: [sample: Sample];
  keyframeNeeded: [streamId: string, trackId: string];
  warning: [message: string];
  /** A decode thread crashed or was restarted (metrics; a warning is emitted as well). */
  worker: [event: WorkerEvent];
};

interface TrackState {
  info: TrackInfo;
  stream: StreamState;
  seq: number;
  lastKeyframeRequest: number;
  /** UDP tracks: newest packet the decode thread reported (server clock ms; 0 before the first). */
  lastPacketAt: number;
  /** UDP tracks: the thread could not bind the port (again, after a restart): the track's packets are lost. */
  rtpFailed?: boolean;
  /** UDP tracks: the pending listenRtp() until the thread has bound the port. */
  listening?: { resolve: (port: number) => void; reject: (err: Error) => void };
  /** Video tracks with sharedFrames: the ring the decode thread announced last. */
  ring?: { buffer: SharedArrayBuffer; stamps: Int32Array; slotBytes: number; offset: number };
}

interface StreamState {
  streamId: string;
  worker: number;
  tracks: Map<string, TrackState>;
  inDrops: number;
  workerDrops: Map<number, number>;
  workerFrames: Map<number, number>;
  samples: number;
  lagMs: number;
  sampleLatencyMs: number;
  lastPacketAt: number;
}

interface WorkerSlot {
  index: number;
  worker: SupervisedWorker;
  ready: boolean;
  /** Packets posted and not yet acknowledged (bytes). */
  inflight: number;
  batch: Uint8Array;
  view: DataView;
  used: number;
  count: number;
  generation: number;
  /** When the thread last said anything (server clock ms): its UDP tracks' heartbeat. */
  heardAt: number;
}

const now = (): number => performance.timeOrigin + performance.now();
const BATCH_INITIAL = 64 * 1024;

export class SamplerPool extends SafeEmitter<SamplerPoolEvents> {
  readonly options: Readonly<SamplerPoolOptions>;
  readonly #slots: WorkerSlot[] = [];
  readonly #streams = new Map<string, StreamState>();
  readonly #tracksByKey = new Map<number, TrackState>();
  #nextKey = 1;
  #flushTimer: NodeJS.Timeout | null = null;
  #idleTimer: NodeJS.Timeout | null = null;
  #lastWarning = Number.NEGATIVE_INFINITY;
  #closedFlag = false;
  readonly #workerConfig: WorkerConfig;

  private constructor(options: SamplerPoolOptions) {
    super();
    this.options = Object.freeze({ ...options });
    this.#workerConfig = {
      video: {
        fps: options.videoFps,
        sceneChange: options.sceneChange,
        sceneThreshold: options.sceneThreshold,
        sceneMinGapMs: options.sceneMinGapMs,
      },
      maxWidth: options.maxWidth,
      lumaMaxSide: options.lumaMaxSide,
      sharedFrames: options.sharedFrames,
      audioSampleRate: options.audioSampleRate,
      audioWindowSamples: Math.round((options.audioWindowMs * options.audioSampleRate) / 1000),
      maxLagMs: options.maxLagMs,
      reorderWaitMs: options.reorderWaitMs,
    };
  }

  /** Starts the worker threads and resolves when all are ready to decode. */
  static async create(opts: Partial<SamplerPoolOptions> = {}): Promise<SamplerPool> {
    const pool = new SamplerPool({ ...DEFAULT_SAMPLER_POOL_OPTIONS, ...opts });
    try {
      await Promise.all(Array.from({ length: pool.options.workers }, (_, i) => pool.#startWorker(i)));
    } catch (err) {
      await pool.close();
      throw new WorkerStartError((err as Error).message);
    }
    const idle = pool.options.idleReleaseMs;
    if (idle > 0) {
      pool.#idleTimer = setInterval(() => pool.#releaseIdle(idle), Math.min(idle, 5000));
      pool.#idleTimer.unref();
    }
    return pool;
  }

  get closed(): boolean {
    return this.#closedFlag;
  }

  /**
   * Hands one RTP packet to the samplers. Never blocks and never throws for a bad packet: it copies
   * the payload into the stream's worker batch, or drops it (counted) when that worker is behind.
   */
  push(packet: RtpPacketIn): void {
    if (this.#closedFlag) return;
    const track = this.#track(packet);
    track.stream.lastPacketAt = packet.arrivedAt;
    const slot = this.#slots[track.stream.worker];
    const size = PACKET_HEADER + packet.payload.length;
    if (!slot.ready || slot.inflight + slot.used + size > this.options.maxQueueBytes) {
      track.stream.inDrops++;
      this.#warnBehind();
      return;
    }
    if (slot.used + size > slot.batch.length) this.#grow(slot, size);
    slot.used = writePacket(slot.view, slot.batch, slot.used, track.info.key, packet);
    slot.count++;
    if (this.#flushTimer === null) this.#flushTimer = setTimeout(() => this.#flush(), this.options.flushIntervalMs);
  }

  /**
   * Receives one track's RTP on a loopback UDP port of its stream's decode thread, from
   * 127.0.0.1:sourcePort (an engine's tap link, Tap.openRtp), instead of push(): no packet of the
   * track on this thread. Resolves with the port once the thread listens on it; a restarted thread
   * binds the same port again. Rejects when the port cannot be bound or the stream is released first.
   */
  listenRtp(track: RtpTrackIn, sourcePort: number): Promise<number> {
    if (this.#closedFlag) return Promise.reject(new Error('sampler pool closed'));
    const existing = this.#streams.get(track.streamId)?.tracks.get(track.trackId);
    if (existing) return Promise.reject(new Error(`track ${track.trackId} of ${track.streamId} is already sampled`));
    return new Promise<number>((resolve, reject) => {
      this.#track(track, { port: 0, sourcePort }).listening = { resolve, reject };
    });
  }

  /**
   * When the newest packet of a kind of a stream arrived (server clock ms), for UDP tracks (listenRtp),
   * whose packets this thread never sees; undefined for none. While their decode thread is down or
   * silent, packets are taken to be flowing (now): a moderation watchdog must not read a dead
   * thread as a quiet stream.
   */
  rtpLastPacketAt(streamId: string, kind: RtpTrackIn['kind']): number | undefined {
    const stream = this.#streams.get(streamId);
    if (!stream) return undefined;
    const slot = this.#slots[stream.worker];
    const at = now();
    const threadDown = !slot?.ready || at - slot.heardAt > 4 * UDP_COUNTERS_MS;
    let last: number | undefined;
    for (const t of stream.tracks.values()) {
      if (!t.info.rtp || t.info.kind !== kind) continue;
      if (threadDown || t.rtpFailed) return at;
      if (t.lastPacketAt > 0) last = Math.max(last ?? 0, t.lastPacketAt);
    }
    return last;
  }

  /** Forgets a stream that ended: its decoders are released in the worker. */
  releaseStream(streamId: string): void {
    const stream = this.#streams.get(streamId);
    if (!stream) return;
    this.#streams.delete(streamId);
    const keys: number[] = [];
    for (const t of stream.tracks.values()) {
      keys.push(t.info.key);
      this.#tracksByKey.delete(t.info.key);
      t.listening?.reject(new Error(`stream ${streamId} released`));
      t.listening = undefined;
    }
    this.#flushSlot(this.#slots[stream.worker]);
    this.#send(this.#slots[stream.worker], { t: 'release', keys });
  }

  #releaseIdle(idleMs: number): void {
    const cutoff = now() - idleMs;
    for (const s of [...this.#streams.values()]) {
      // UDP tracks are released by whoever linked them (the stream's close), never for quiet: their
      // packets are only counted while their thread runs.
      if ([...s.tracks.values()].some((t) => t.info.rtp)) continue;
      if (s.lastPacketAt < cutoff) this.releaseStream(s.streamId);
    }
  }

  /** Per-stream counters. */
  stats(): SamplerStreamStats[] {
    return [...this.#streams.values()].map((s) => ({
      streamId: s.streamId,
      frames: sum(s.workerFrames),
      samples: s.samples,
      drops: s.inDrops + sum(s.workerDrops),
      lagMs: s.lagMs,
      sampleLatencyMs: s.sampleLatencyMs,
      worker: s.worker,
    }));
  }

  /** Makes the worker of a stream crash (for tests and chaos drills); it is replaced like any crashed worker. */
  crashWorkerOf(streamId: string): void {
    const stream = this.#streams.get(streamId);
    if (stream) this.#slots[stream.worker]?.worker.crash();
  }

  /** Crashes and restarts of each decode thread. */
  workerStats(): { worker: string; crashes: number; restarts: number; state: string }[] {
    return this.#slots.map((s) => ({ worker: s.worker.name, ...s.worker.stats() }));
  }

  async close(): Promise<void> {
    if (this.#closedFlag) return;
    this.#closedFlag = true;
    if (this.#flushTimer) clearTimeout(this.#flushTimer);
    if (this.#idleTimer) clearInterval(this.#idleTimer);
    this.#flushTimer = null;
    this.#idleTimer = null;
    const slots = this.#slots.splice(0);
    for (const t of this.#tracksByKey.values()) t.listening?.reject(new Error('sampler pool closed'));
    this.#streams.clear();
    this.#tracksByKey.clear();
    // Workers decode what they hold, free their decoders and end by themselves (threads/ close); being
    // terminated in the middle of node-av work would abort the whole process.
    await Promise.all(slots.map((s) => s.worker.close()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #track(p: RtpTrackIn & { arrivedAt?: number }, rtp?: TrackInfo['rtp']): TrackState {
    let stream = this.#streams.get(p.streamId);
    if (!stream) {
      stream = {
        streamId: p.streamId,
        worker: this.#pickWorker(),
        tracks: new Map(),
        inDrops: 0,
        workerDrops: new Map(),
        workerFrames: new Map(),
        samples: 0,
        lagMs: 0,
        sampleLatencyMs: 0,
        lastPacketAt: p.arrivedAt ?? now(),
      };
      this.#streams.set(p.streamId, stream);
    }
    let track = stream.tracks.get(p.trackId);
    if (!track) {
      const info: TrackInfo = {
        key: this.#nextKey++,
        streamId: p.streamId,
        trackId: p.trackId,
        kind: p.kind,
        codec: p.codec,
        clockRate: p.clockRate,
        ...(rtp ? { rtp } : {}),
      };
      track = { info, stream, seq: 0, lastKeyframeRequest: Number.NEGATIVE_INFINITY, lastPacketAt: 0 };
      stream.tracks.set(p.trackId, track);
      this.#tracksByKey.set(info.key, track);
      const slot = this.#slots[stream.worker];
      this.#flushSlot(slot); // packets of other tracks first, then the new track, then its packets
      this.#send(slot, { t: 'track', track: info });
    }
    return track;
  }

  #pickWorker(): number {
    const load = this.#slots.map(() => 0);
    for (const s of this.#streams.values()) load[s.worker]++;
    let best = 0;
    for (let i = 1; i < load.length; i++) if (load[i] < load[best]) best = i;
    return best;
  }

  #grow(slot: WorkerSlot, need: number): void {
    const next = new Uint8Array(Math.max(slot.batch.length * 2, slot.used + need));
    next.set(slot.batch.subarray(0, slot.used));
    slot.batch = next;
    slot.view = new DataView(next.buffer);
  }

  #flush(): void {
    this.#flushTimer = null;
    for (const slot of this.#slots) this.#flushSlot(slot);
  }

  #flushSlot(slot: WorkerSlot): void {
    if (slot.count === 0) return;
    const buf = slot.batch.buffer.slice(0, slot.used) as ArrayBuffer;
    slot.inflight += buf.byteLength;
    this.#send(slot, { t: 'packets', buf, count: slot.count }, [buf]);
    slot.used = 0;
    slot.count = 0;
  }

  #send(slot: WorkerSlot, msg: ToWorker, transfer: ArrayBuffer[] = []): void {
    // False while the thread is down: a restarted thread is told everything it needs again.
    slot.worker.post(msg, transfer);
  }

  #startWorker(index: number): Promise<void> {
    const worker = new SupervisedWorker({
      entry: new URL('./decode-worker.ts', import.meta.url),
      name: `sampler-${index}`,
      nice: this.options.workerNice,
    });
    const slot: WorkerSlot = {
      index,
      worker,
      ready: false,
      inflight: 0,
      batch: new Uint8Array(BATCH_INITIAL),
      view: new DataView(new ArrayBuffer(0)),
      used: 0,
      count: 0,
      generation: 0,
      heardAt: 0,
    };
    slot.view = new DataView(slot.batch.buffer);
    this.#slots[index] = slot;
    worker.on('spawn', (generation) => {
      slot.generation = generation;
      slot.ready = false;
      slot.inflight = 0;
      slot.used = 0;
      slot.count = 0;
      worker.post({ t: 'config', config: this.#workerConfig } satisfies ToWorker);
      // Tracks already assigned to this slot (after a crash) are registered again; they resync on a key frame.
      for (const t of this.#tracksByKey.values()) {
        if (t.stream.worker === index) worker.post({ t: 'track', track: t.info } satisfies ToWorker);
      }
    });
    worker.on('ready', (generation) => {
      slot.ready = true;
      if (generation === 0) return;
      for (const t of this.#tracksByKey.values()) {
        if (t.stream.worker === index && t.info.kind === 'video') this.#requestKeyframe(t);
      }
    });
    worker.on('message', (msg) => this.#onWorkerMessage(slot, msg as FromWorker));
    worker.on('crash', (c) => {
      slot.ready = false;
      if (this.#closedFlag) return;
      this.emit('warning', `sampler worker ${index} crashed: ${c.error.message}; restarting in ${c.restartInMs} ms`);
      this.emit('worker', {
        type: 'crash',
        worker: c.worker,
        message: c.error.message,
        restartInMs: c.restartInMs,
        consecutive: c.consecutive,
      });
    });
    worker.on('restart', (r) => {
      if (!this.#closedFlag) this.emit('worker', { type: 'restart', worker: r.worker, restarts: r.restarts });
    });
    return worker.start();
  }

  #onWorkerMessage(slot: WorkerSlot, msg: FromWorker): void {
    if (this.#closedFlag) return;
    slot.heardAt = now();
    switch (msg.t) {
      case 'ack':
      case 'counters': {
        if (msg.t === 'ack') slot.inflight = Math.max(0, slot.inflight - msg.bytes);
        for (const c of msg.counters) {
          const t = this.#tracksByKey.get(c.key);
          if (!t) continue;
          // Counters restart with a replaced worker: keep per-generation figures additive.
          const k = c.key * 1024 + slot.generation;
          t.stream.workerFrames.set(k, c.frames);
          t.stream.workerDrops.set(k, c.drops);
          t.stream.lagMs = c.lagMs;
          if (c.lastPacketAt) {
            t.lastPacketAt = c.lastPacketAt;
            t.stream.lastPacketAt = Math.max(t.stream.lastPacketAt, c.lastPacketAt);
          }
        }
        if (msg.behind) this.#warnBehind();
        break;
      }
      case 'listening': {
        const t = this.#tracksByKey.get(msg.key);
        if (!t?.info.rtp) return;
        t.info.rtp.port = msg.port;
        t.rtpFailed = false;
        t.listening?.resolve(msg.port);
        t.listening = undefined;
        break;
      }
      case 'listenFailed': {
        const t = this.#tracksByKey.get(msg.key);
        if (!t) return;
        this.emit('warning', `sampler UDP input of ${t.info.streamId}/${t.info.trackId} failed: ${msg.message}`);
        t.rtpFailed = true;
        t.listening?.reject(new Error(msg.message));
        t.listening = undefined;
        break;
      }
      case 'keyframe': {
        const t = this.#tracksByKey.get(msg.key);
        if (t) this.#requestKeyframe(t);
        break;
      }
      case 'frames': {
        const t = this.#tracksByKey.get(msg.key);
        if (!t) return;
        const { buffer, slots, slotBytes, offset } = msg;
        t.ring = { buffer, stamps: new Int32Array(buffer, 0, slots), slotBytes, offset };
        break;
      }
      case 'video':
      case 'audio': {
        const t = this.#tracksByKey.get(msg.key);
        if (!t) return;
        const readyAt = now();
        const { arrivedAt } = msg.timings;
        const queuedAt = Math.max(arrivedAt, msg.timings.queuedAt);
        const decodedAt = Math.max(queuedAt, msg.timings.decodedAt);
        const timings = { arrivedAt, queuedAt, decodedAt, readyAt: Math.max(decodedAt, readyAt) };
        const base = {
          streamId: t.info.streamId,
          trackId: t.info.trackId,
          rtpTimestamp: msg.rtpTimestamp,
          seq: t.seq++,
          timings,
        };
        let sample: Sample;
        if (msg.t === 'video') {
          const shared = msg.rgb instanceof Uint8Array ? undefined : msg.rgb;
          if (shared && !t.ring) return; // cannot happen: the ring is announced before its first sample
          sample = {
            kind: 'video',
            ...base,
            reason: msg.reason,
            width: msg.width,
            height: msg.height,
            rgb: shared ? sharedPicture(t.ring!, shared.slot, msg.width * msg.height * 3) : (msg.rgb as Uint8Array),
            ...(shared ? { copyRgb: copyShared(t.ring!, shared.slot, shared.stamp, msg.width * msg.height * 3) } : {}),
            ...(msg.thumbnail ? { thumbnail: msg.thumbnail } : {}),
            ...(msg.lumaPlane ? { lumaPlane: msg.lumaPlane } : {}),
          };
        } else sample = { kind: 'audio', ...base, sampleRate: msg.sampleRate, pcm: msg.pcm };
        t.stream.samples++;
        t.stream.sampleLatencyMs = timings.readyAt - arrivedAt;
        this.emit('sample', sample);
        break;
      }
    }
  }

  #requestKeyframe(t: TrackState): void {
    const at = now();
    if (at - t.lastKeyframeRequest < this.options.keyframeRequestIntervalMs) return;
    t.lastKeyframeRequest = at;
    this.emit('keyframeNeeded', t.info.streamId, t.info.trackId);
  }

  #warnBehind(): void {
    const at = now();
    if (at - this.#lastWarning < this.options.warningIntervalMs) return;
    this.#lastWarning = at;
    this.emit('warning', 'sampling is slower than realtime: dropping to catch up');
  }

  protected override onListenerError(event: keyof SamplerPoolEvents, err: unknown): void {
    // A listener that throws must not break sampling for everyone else.
    if (event !== 'warning') this.emit('warning', `sampler ${String(event)} listener threw: ${(err as Error).message}`);
  }
}

function sum(m: Map<number, number>): number {
  let s = 0;
  for (const v of m.values()) s += v;
  return s;
}

type SharedRing = NonNullable<TrackState['ring']>;

function sharedPicture(ring: SharedRing, slot: number, bytes: number): Uint8Array {
  return new Uint8Array(ring.buffer, ring.offset + slot * ring.slotBytes, bytes);
}

/**
 * A copy of a shared slot's picture while it still holds the sample's (its stamp before and after the
 * copy: the decode thread sets -1 while it writes), else undefined.
 */
function copyShared(ring: SharedRing, slot: number, stamp: number, bytes: number): () => Uint8Array | undefined {
  return () => {
    if (Atomics.load(ring.stamps, slot) !== stamp) return undefined;
    const copy = sharedPicture(ring, slot, bytes).slice();
    return Atomics.load(ring.stamps, slot) === stamp ? copy : undefined;
  };
}
