// One viewer on the mediasoup engine: a WebRtcTransport and one consumer per kind, all in C++. The
// gates are consumer controls, so no JavaScript runs per packet in any state:
//   video forward / blank = setPreferredLayers({ spatialLayer: 1 | 0 }) on the gated (simulcast)
//   producer, whose layer 0 is the slate and layer 1 the live picture (a switch waits for the target
//   layer's keyframe, so a viewer never sees a broken or frozen frame; a blank asks the slate feed for
//   a frame at once, and so does a viewer that connects blanked); the worker never forwards a layer
//   above the preferred one (scripts/mediasoup-worker/worker.patch), so a blanked viewer whose slate
//   stalls gets no video rather than the live picture;
//   audio forward / mute = resume / pause; pause() / resume() pause and resume both consumers.

import type { Consumer, WebRtcTransport } from 'mediasoup/types';
import { watchTransport, type TransportLife } from './transport-life.ts';
import { SafeEmitter } from '../emitter.ts';
import type { MediaWorker } from './workers.ts';
import type { CloseReason, Viewer, ViewerGateState, ViewerStats } from '../types.ts';

type ViewerEvents = { close: [CloseReason]; gate: [ViewerGateState]; connected: [] };

export const LIVE_LAYER = 1;
export const SLATE_LAYER = 0;

/** Stats are read from the worker asynchronously; stats() returns the last reading and starts a new one when it is older than this. */
const STATS_MAX_AGE_MS = 1000;

export class MediasoupViewer extends SafeEmitter<ViewerEvents> implements Viewer {
  readonly #gate: ViewerGateState;
  #paused = false;
  #closed = false;
  #stats: ViewerStats = { packetsForwarded: 0, bytesForwarded: 0, packetsDropped: 0, keyframeRequests: 0 };
  #statsAt = 0;
  #statsPending: Promise<ViewerStats> | undefined;
  readonly #life: TransportLife;
  connected = false;
  readonly #onClosed: (v: MediasoupViewer) => void;
  readonly #kickSlate: () => void;

  constructor(
    readonly id: string,
    readonly streamId: string,
    readonly jurisdiction: string | undefined,
    readonly transport: WebRtcTransport,
    /** The worker whose process forwards to this viewer. */
    readonly worker: MediaWorker,
    readonly video: Consumer | undefined,
    readonly audio: Consumer | undefined,
    initialGate: ViewerGateState,
    connectTimeoutMs: number,
    onClosed: (v: MediasoupViewer) => void,
    /** Asks the stream's slate feed for a frame now (the viewer's video was switched to the slate layer). */
    kickSlate: () => void = () => undefined,
  ) {
    super();
    this.#onClosed = onClosed;
    this.#kickSlate = kickSlate;
    this.#gate = initialGate;
    this.#life = watchTransport(transport, 'viewer', connectTimeoutMs, {
      connected: () => {
        this.connected = true;
        if (this.#gate.video === 'blank') this.#kickSlate();
        this.emit('connected');
      },
      close: (reason) => this.close(reason),
    });
    // the router closed under the transport (stream ended, or its worker died)
    transport.on('routerclose', () => this.close({ code: 'error', message: 'viewer media router closed' }));
  }

  get closed(): boolean {
    return this.#closed;
  }
  get gate(): ViewerGateState {
    return { ...this.#gate };
  }
  get paused(): boolean {
    return this.#paused;
  }

  setVideoGate(state: 'forward' | 'blank'): void {
    const c = this.video;
    if (this.#closed || !c || this.#gate.video === state) return;
    this.#gate.video = state;
    c.setPreferredLayers({ spatialLayer: state === 'blank' ? SLATE_LAYER : LIVE_LAYER, temporalLayer: 0 }).then(
      // the worker now waits for a slate keyframe: one comes at once instead of at the next idle frame
      () => {
        if (state === 'blank' && this.#gate.video === 'blank') this.#kickSlate();
      },
      (err: unknown) => this.#controlFailed('setPreferredLayers', err),
    );
    this.emit('gate', this.gate);
  }

  setAudioGate(state: 'forward' | 'mute'): void {
    const c = this.audio;
    if (this.#closed || !c || this.#gate.audio === state) return;
    this.#gate.audio = state;
    if (!this.#paused)
      (state === 'mute' ? c.pause() : c.resume()).catch((err: unknown) => this.#controlFailed('audio gate', err));
    this.emit('gate', this.gate);
  }

  pause(): void {
    if (this.#closed || this.#paused) return;
    this.#paused = true;
    for (const c of [this.video, this.audio]) c?.pause().catch((err: unknown) => this.#controlFailed('pause', err));
  }

  resume(): void {
    if (this.#closed || !this.#paused) return;
    this.#paused = false;
    this.video?.resume().catch((err: unknown) => this.#controlFailed('resume', err));
    if (this.#gate.audio === 'forward')
      this.audio?.resume().catch((err: unknown) => this.#controlFailed('resume', err));
  }

  #controlFailed(what: string, err: unknown): void {
    // a consumer closed between the call and the worker's answer: the close path reports it
    if (this.#closed) return;
    console.error(`sfu/mediasoup: viewer ${this.id} ${what} failed`, err);
  }

  /** The last stats read from the worker; a new reading starts when this one is older than a second. */
  stats(): ViewerStats {
    if (!this.#closed && performance.now() - this.#statsAt > STATS_MAX_AGE_MS) void this.readStats();
    return { ...this.#stats };
  }

  /** Reads the consumers' send counters from the worker (one request per consumer, coalesced). */
  readStats(): Promise<ViewerStats> {
    if (this.#closed) return Promise.resolve({ ...this.#stats });
    this.#statsPending ??= (async () => {
      const next: ViewerStats = { packetsForwarded: 0, bytesForwarded: 0, packetsDropped: 0, keyframeRequests: 0 };
      for (const c of [this.video, this.audio]) {
        if (!c || c.closed) continue;
        try {
          for (const s of await c.getStats()) {
            if (s.type !== 'outbound-rtp') continue;
            next.packetsForwarded += s.packetCount;
            next.bytesForwarded += s.byteCount;
            next.keyframeRequests += (s.pliCount ?? 0) + (s.firCount ?? 0);
          }
        } catch {
          // closed meanwhile: keep what the other consumer said
        }
      }
      this.#stats = next;
      this.#statsAt = performance.now();
      return next;
    })().finally(() => (this.#statsPending = undefined));
    return this.#statsPending;
  }

  close(reason: CloseReason): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#gate.video = 'closed';
    this.#gate.audio = 'closed';
    this.#life.stop();
    // closing the transport sends the DTLS close_notify: the client learns at once
    this.transport.close();
    this.#onClosed(this);
    this.emit('close', reason);
    this.removeAllListeners();
  }
}
