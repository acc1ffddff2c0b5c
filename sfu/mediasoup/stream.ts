// A live stream on the mediasoup engine. Its router holds what the publisher sends (one producer per
// track) and the video gate every viewer consumes:
//
//   live producer ---\                                    /--> viewer SimulcastConsumer (layer 1 = live)
//                     A (PlainTransport) ==loopback==> B  gated producer [slate, live] -> viewer ... (layer 0 = slate)
//   slate producer --/  (piped in from the worker's SlateSource)
//
// A consumes the live and slate producers; B produces one two-encoding (simulcast) producer from
// those two SSRCs. Each viewer's gate is then its consumer's preferred spatial layer: C++ only, no
// JavaScript per viewer or per packet, and a switch always lands on a keyframe.
//
// Viewers receive with their own offer's payload types (sfu/mediasoup/sdp.ts), and a worker serves
// only the consumers of its own routers, so viewers consume from an *edition*: the stream's router
// itself when a viewer's payload types match the publisher's and its worker has room, else a router
// with the viewer's payload types (on the least loaded worker) that the gated video and the audio are
// piped into with pipeToRouter. Editions close with the stream; an edition whose worker dies closes
// its viewers with reason 'error'.
//
// The moderation tap is a PlainTransport consumer per track sending plain RTP over loopback UDP
// straight to the samplers' decode thread (tap.openRtp): no JavaScript per packet on the event loop.
// tap.subscribe() (a DirectTransport consumer per track, made when the first subscriber arrives and
// closed when the last one leaves) stays for in-process subscribers: JavaScript per packet, once per stream.
//
// A joining viewer starts from the current GOP, not the publisher's next keyframe: the worker's
// routers keep each video producer's packets since its last keyframe and replay them to a consumer's
// first keyframe request (scripts/mediasoup-worker/worker.patch), so publishers that never answer PLI
// (FFmpeg's whip muxer) play at once. A simulcast publisher's largest layer is the one forwarded
// (#probeLayers).

import { watchTransport, type TransportLife } from './transport-life.ts';
import type {
  Consumer,
  DirectTransport,
  PlainTransport,
  Producer,
  Router,
  RtpCapabilities,
  WebRtcTransport,
} from 'mediasoup/types';
import { SafeEmitter } from '../emitter.ts';
import { isKeyframeStart, keyframePictureSize } from '../../media/keyframe.ts';
import { rtpView } from '../../media/rtp.ts';
import { KeyframeThrottle } from '../keyframe.ts';
import { LayerSizes } from '../simulcast.ts';
import { TapHub } from '../tap.ts';
import type { TapPacketSource } from '../tap.ts';
import type { ChosenCodec } from '../sdp.ts';
import type { CloseReason, PublisherOptions, Stream, TapRtpLink, TrackInfo, Viewer } from '../types.ts';
import { audioFirst, routerCodec } from './sdp.ts';
import type { SlateSource } from './slate.ts';
import type { MediasoupViewer } from './viewer.ts';
import type { MediaWorker, WorkerPool } from './workers.ts';

export interface StreamTuning {
  /** Keyframe requests to the publisher at least this far apart (ms). Default 300. */
  minKeyframeIntervalMs: number;
  /** Close a session that has not connected by then (ms). Default 15000. */
  connectTimeoutMs: number;
  /** Consumers a stream's own worker may carry beyond the others before viewers spread to them. Default 200. */
  homeBias: number;
}

/** One published track: its producer and what the tap and viewers need to know. */
export interface PublishedTrack {
  info: TrackInfo;
  codec: ChosenCodec;
  producer: Producer;
}

/** Where a group of viewers consumes: a router with their payload types, and the stream's producers in it. */
export class Edition {
  readonly viewers = new Set<MediasoupViewer>();
  constructor(
    readonly key: string,
    readonly worker: MediaWorker,
    readonly router: Router,
    /** The gated video producer (or the live one when the stream has no gate). */
    readonly video: Producer | undefined,
    readonly audio: Producer | undefined,
    /** Whether the edition owns its router (the stream's own router is the stream's). */
    readonly ownsRouter: boolean,
  ) {}
}

/** Longest a simulcast stream's layers are probed for their keyframe sizes (ms); a GOP of OBS's is 2 s. */
const LAYER_PROBE_MS = 5000;

type StreamEvents = { close: [CloseReason]; track: [TrackInfo]; viewer: [Viewer]; connected: [] };

function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Capabilities for consumers inside the server (gate, tap): the router's codecs, no RTX, no header extensions. */
function internalCaps(router: Router): RtpCapabilities {
  return {
    codecs: router.rtpCapabilities.codecs?.filter((c) => !c.mimeType.toLowerCase().endsWith('/rtx')) ?? [],
    headerExtensions: [],
  };
}

export class MediasoupStream extends SafeEmitter<StreamEvents> implements Stream {
  readonly createdAt = nowMs();
  readonly tap: TapHub;
  readonly #viewers = new Map<string, MediasoupViewer>();
  readonly #editions = new Map<string, Promise<Edition>>();
  #home: Edition | undefined;
  #closed = false;
  #gate: { a: PlainTransport; b: PlainTransport; live: Consumer; gated: Producer } | undefined;
  #tapTransport: Promise<{ transport: DirectTransport; consumers: Consumer[] }> | undefined;
  /** The tap's video consumer when the video is simulcast (it follows the forwarded layer). */
  #tapVideo: Consumer | undefined;
  /** Loopback RTP links (tap.openRtp) and their consumers once started; the video ones follow the forwarded layer. */
  readonly #rtpLinks = new Map<PlainTransport, Consumer | undefined>();
  /** Simulcast: the producer's spatial layer (encoding index) viewers and the tap get. */
  #layer: number | undefined;
  readonly #keyframes: KeyframeThrottle;
  readonly #life: TransportLife;
  connected = false;
  keyframeRequestsSent = 0;
  readonly #pool: WorkerPool;
  readonly #slate: SlateSource;
  readonly #options: PublisherOptions;
  readonly #onClosed: (s: MediasoupStream) => void;

  constructor(
    readonly id: string,
    readonly worker: MediaWorker,
    readonly router: Router,
    readonly transport: WebRtcTransport,
    readonly published: readonly PublishedTrack[],
    readonly tuning: StreamTuning,
    pool: WorkerPool,
    slate: SlateSource,
    options: PublisherOptions,
    onClosed: (s: MediasoupStream) => void,
  ) {
    super();
    this.#pool = pool;
    this.#slate = slate;
    this.#options = options;
    this.#onClosed = onClosed;
    this.#keyframes = new KeyframeThrottle(tuning.minKeyframeIntervalMs, (trackId) =>
      this.#sendKeyframeRequest(trackId),
    );
    worker.streams++;
    this.tap = new TapHub({ onSubscribers: (n) => this.#tapDemand(n), openRtp: (id) => this.#openRtpLink(id) });
    this.#life = watchTransport(transport, 'publisher', tuning.connectTimeoutMs, {
      connected: () => {
        this.connected = true;
        this.emit('connected');
      },
      close: (reason) => this.close(reason),
    });
    router.on('workerclose', () =>
      this.close({ code: 'error', message: `media worker ${worker.index} (pid ${worker.pid}) died` }),
    );
  }

  /** Builds the video gate and the stream's own edition. Called once by the engine before the answer goes out. */
  async init(homeKey: string, withGate: boolean): Promise<void> {
    const video = this.published.find((t) => t.info.kind === 'video');
    const audio = this.published.find((t) => t.info.kind === 'audio');
    // simulcast: the highest layer of the guessed order (sfu/mediasoup/sdp.ts simulcastLayerOrder) to start with
    if (video?.info.simulcast) this.#forwardLayer(video, video.info.simulcast.rids.length - 1);
    let gated: Producer | undefined = withGate ? undefined : video?.producer;
    if (video && withGate) {
      const caps = internalCaps(this.router);
      const listenInfo = { protocol: 'udp' as const, ip: '127.0.0.1' };
      const a = await this.router.createPlainTransport({ listenInfo, rtcpMux: true, comedia: false });
      const b = await this.router.createPlainTransport({ listenInfo, rtcpMux: true, comedia: false });
      await a.connect({ ip: b.tuple.localAddress, port: b.tuple.localPort });
      await b.connect({ ip: a.tuple.localAddress, port: a.tuple.localPort });
      const slateProducer = await this.#slate.pipeInto(this.worker, this.router, video.codec);
      const slate = await a.consume({ producerId: slateProducer.id, rtpCapabilities: caps });
      const live = await a.consume({
        producerId: video.producer.id,
        rtpCapabilities: caps,
        ...this.#layerPreference(),
      });
      const ssrcOf = (c: Consumer): number => c.rtpParameters.encodings![0]!.ssrc!;
      gated = await b.produce({
        kind: 'video',
        rtpParameters: {
          codecs: live.rtpParameters.codecs,
          headerExtensions: [],
          encodings: [{ ssrc: ssrcOf(slate) }, { ssrc: ssrcOf(live) }],
          rtcp: { cname: `gate-${this.id}`, reducedSize: true },
        },
      });
      this.#gate = { a, b, live, gated };
    }
    if (video?.info.simulcast) {
      this.#probeLayers(video).catch((err: unknown) => {
        if (!this.#closed)
          console.error(
            `sfu/mediasoup: stream ${this.id}: simulcast layer probe failed; forwarding layer ${this.#layer}`,
            err,
          );
      });
    }
    const home = new Edition(homeKey, this.worker, this.router, gated, audio?.producer, false);
    this.#home = home;
    this.#editions.set(homeKey, Promise.resolve(home));
    for (const t of this.published) this.emit('track', t.info);
  }

  get closed(): boolean {
    return this.#closed;
  }

  get tracks(): readonly TrackInfo[] {
    return this.published.map((t) => t.info);
  }

  get viewers(): ReadonlyMap<string, Viewer> {
    return this.#viewers;
  }

  /** A slate frame into this stream's gate now (a viewer was just blanked or connected blanked). */
  kickSlate(): void {
    const video = this.trackOfKind('video');
    if (this.#gate && video && !this.#closed) this.#slate.kick(this.worker, video.codec);
  }

  trackOfKind(kind: 'audio' | 'video'): PublishedTrack | undefined {
    return this.published.find((t) => t.info.kind === kind);
  }

  /**
   * The edition a viewer with these payload types consumes from: the stream's own router when it
   * fits and its worker is the least loaded (counting homeBias), else one on the chosen worker.
   */
  async editionFor(signature: string, codecs: readonly ChosenCodec[], homeSignature: string): Promise<Edition> {
    const worker = this.#pool.pick(this.worker, this.tuning.homeBias);
    if (worker === this.worker && signature === homeSignature && this.#home) return this.#home;
    const key = `${worker.index}:${worker.pid}|${signature}`;
    let edition = this.#editions.get(key);
    if (!edition) {
      edition = this.#openEdition(key, worker, codecs);
      this.#editions.set(key, edition);
      edition.catch(() => this.#editions.delete(key));
    }
    return edition;
  }

  async #openEdition(key: string, worker: MediaWorker, codecs: readonly ChosenCodec[]): Promise<Edition> {
    const home = this.#home;
    if (!home) throw new Error('stream not initialised');
    const router = await worker.worker.createRouter({ mediaCodecs: audioFirst(codecs).map(routerCodec) });
    try {
      const pipe = async (producer: Producer | undefined): Promise<Producer | undefined> => {
        if (!producer) return undefined;
        const { pipeProducer } = await this.router.pipeToRouter({ producerId: producer.id, router, keepId: false });
        return pipeProducer;
      };
      const video = codecs.some((c) => c.kind === 'video') ? await pipe(home.video) : undefined;
      const audio = codecs.some((c) => c.kind === 'audio') ? await pipe(home.audio) : undefined;
      const edition = new Edition(key, worker, router, video, audio, true);
      router.on('workerclose', () => {
        this.#editions.delete(key);
        for (const v of [...edition.viewers]) v.close({ code: 'error', message: `media worker ${worker.index} died` });
      });
      if (this.#closed) router.close();
      return edition;
    } catch (err) {
      router.close();
      throw err;
    }
  }

  addViewer(viewer: MediasoupViewer, edition: Edition): void {
    const previous = this.#viewers.get(viewer.id);
    if (previous) previous.close({ code: 'replaced', message: 'the same viewer joined again' });
    this.#viewers.set(viewer.id, viewer);
    edition.viewers.add(viewer);
    viewer.on('close', () => {
      edition.viewers.delete(viewer);
      if (this.#viewers.get(viewer.id) === viewer) this.#viewers.delete(viewer.id);
      // an edition nobody watches is closed (its pipes stop costing the worker anything)
      if (edition.ownsRouter && edition.viewers.size === 0 && !this.#closed) {
        this.#editions.delete(edition.key);
        edition.router.close();
      }
    });
    this.emit('viewer', viewer);
  }

  /** Publisher keyframe request, throttled to one per minKeyframeIntervalMs and coalesced. */
  requestKeyFrame(trackId?: string): void {
    this.#keyframes.request(trackId);
  }

  #sendKeyframeRequest(trackId?: string): void {
    if (this.#closed) return;
    const consumer = this.#gate?.live;
    if (!consumer || (trackId && this.trackOfKind('video')?.info.trackId !== trackId)) return;
    this.keyframeRequestsSent++;
    // a consumer's keyframe request reaches the producer and, throttled by the worker, the publisher
    consumer.requestKeyFrame().catch((err: unknown) => void err);
  }

  /** The spatial layer new internal consumers (gate, tap) start on: the one forwarded now. */
  #layerPreference(): { preferredLayers: { spatialLayer: number } } | Record<string, never> {
    return this.#layer === undefined ? {} : { preferredLayers: { spatialLayer: this.#layer } };
  }

  #forwardLayer(video: PublishedTrack, layer: number): void {
    this.#layer = layer;
    const rids = video.info.simulcast?.rids ?? [];
    video.info.simulcast = { rids, forwarded: rids[layer] };
  }

  /**
   * Simulcast: viewers (through the gate's live consumer) and the tap get the largest layer. The
   * encoding order is a guess from the rids (sfu/mediasoup/sdp.ts simulcastLayerOrder); this measures
   * it once, at the start: one DirectTransport consumer per layer reads that layer's first keyframe
   * size (sfu/simulcast.ts), for at most LAYER_PROBE_MS, then closes (JavaScript per packet only
   * during the probe). A size is credited to the layer the consumer really forwards (its current
   * layers), not the one it asked for, as a layer that has not started yet falls back to a lower one.
   */
  async #probeLayers(video: PublishedTrack): Promise<void> {
    const rids = video.info.simulcast?.rids ?? [];
    const sizes = new LayerSizes(rids);
    const transport = await this.router.createDirectTransport();
    try {
      const caps = internalCaps(this.router);
      let finish: () => void = () => undefined;
      const done = new Promise<void>((resolve) => (finish = resolve));
      const timer = setTimeout(finish, LAYER_PROBE_MS);
      for (let layer = 0; layer < rids.length; layer++) {
        const consumer = await transport.consume({
          producerId: video.producer.id,
          rtpCapabilities: caps,
          preferredLayers: { spatialLayer: layer },
        });
        consumer.on('rtp', (packet: Buffer) => {
          const rtp = rtpView(packet);
          const current = consumer.currentLayers?.spatialLayer;
          if (!rtp || current === undefined || !isKeyframeStart(video.info.codec, rtp.payload)) return;
          sizes.note(rids[current]!, rtp.payload.length, keyframePictureSize(video.info.codec, rtp.payload));
          if (sizes.complete) finish();
        });
      }
      this.on('close', () => finish());
      await done;
      clearTimeout(timer);
    } finally {
      transport.close();
    }
    const best = rids.indexOf(sizes.largest() ?? '');
    if (this.#closed || best < 0 || best === this.#layer) return;
    this.#forwardLayer(video, best);
    for (const c of [this.#gate?.live, this.#tapVideo, ...this.#rtpLinks.values()]) {
      if (c && !c.closed) await c.setPreferredLayers({ spatialLayer: best });
    }
  }

  #tapDemand(subscribers: number): void {
    if (this.#closed) return;
    if (subscribers > 0 && !this.#tapTransport) {
      this.#tapTransport = this.#openTap();
      this.#tapTransport.catch((err: unknown) => {
        console.error(`sfu/mediasoup: tap of stream ${this.id} failed`, err);
        this.#tapTransport = undefined;
      });
    } else if (subscribers === 0 && this.#tapTransport) {
      const pending = this.#tapTransport;
      this.#tapTransport = undefined;
      void pending.then(
        ({ transport }) => transport.close(),
        () => undefined,
      );
    }
  }

  async #openTap(): Promise<{ transport: DirectTransport; consumers: Consumer[] }> {
    const transport = await this.router.createDirectTransport();
    const consumers: Consumer[] = [];
    const caps = internalCaps(this.router);
    for (const t of this.published) {
      const consumer = await transport.consume({
        producerId: t.producer.id,
        rtpCapabilities: caps,
        ...(t.info.kind === 'video' ? this.#layerPreference() : {}),
      });
      if (t.info.kind === 'video' && consumer.type === 'simulcast') {
        this.#tapVideo = consumer;
        // the layer probe may have moved on while this consumer was being made
        if (this.#layer !== undefined && consumer.preferredLayers?.spatialLayer !== this.#layer)
          await consumer.setPreferredLayers({ spatialLayer: this.#layer });
      }
      const src: TapPacketSource = {
        streamId: this.id,
        trackId: t.info.trackId,
        kind: t.info.kind,
        codec: t.info.codec,
        clockRate: t.info.clockRate,
      };
      consumer.on('rtp', (packet: Buffer) => {
        const rtp = rtpView(packet);
        if (!rtp) return;
        this.tap.offer(
          src,
          { payloadType: rtp.pt, sequenceNumber: rtp.seq, timestamp: rtp.ts, marker: rtp.marker, ssrc: rtp.ssrc },
          rtp.payload,
          nowMs(),
        );
      });
      consumers.push(consumer);
    }
    if (this.#closed) transport.close();
    // a keyframe now, so the samplers' first decodable frame comes without waiting for the next one
    this.requestKeyFrame();
    return { transport, consumers };
  }

  /**
   * The tap without JavaScript per packet: a PlainTransport consumer of the track sends its RTP from
   * the worker to a loopback port (the samplers' decode thread), like the gate's transports. The
   * transport is made first so the receiver knows its source port before the first packet.
   */
  async #openRtpLink(trackId: string): Promise<TapRtpLink> {
    const track = this.published.find((t) => t.info.trackId === trackId);
    if (!track) throw new Error(`stream ${this.id} has no track ${trackId}`);
    if (this.#closed) throw new Error(`stream ${this.id} is closed`);
    const transport = await this.router.createPlainTransport({
      listenInfo: { protocol: 'udp', ip: '127.0.0.1' },
      rtcpMux: true,
      comedia: false,
    });
    if (this.#closed) {
      transport.close();
      throw new Error(`stream ${this.id} is closed`);
    }
    this.#rtpLinks.set(transport, undefined);
    transport.observer.once('close', () => this.#rtpLinks.delete(transport));
    let started = false;
    return {
      trackId,
      sourcePort: transport.tuple.localPort,
      start: async (port) => {
        if (started) throw new Error('tap RTP link already started');
        started = true;
        await transport.connect({ ip: '127.0.0.1', port });
        const video = track.info.kind === 'video';
        const consumer = await transport.consume({
          producerId: track.producer.id,
          rtpCapabilities: internalCaps(this.router),
          ...(video ? this.#layerPreference() : {}),
        });
        if (transport.closed) throw new Error(`tap RTP link of stream ${this.id} closed`);
        if (video && consumer.type === 'simulcast') {
          this.#rtpLinks.set(transport, consumer);
          // the layer probe may have moved on while this consumer was being made
          if (this.#layer !== undefined && consumer.preferredLayers?.spatialLayer !== this.#layer)
            await consumer.setPreferredLayers({ spatialLayer: this.#layer });
        }
        // a keyframe now, so the samplers' first decodable frame comes without waiting for the next one
        if (video) this.requestKeyFrame(trackId);
        return {
          ssrc: consumer.rtpParameters.encodings![0]!.ssrc!,
          payloadType: consumer.rtpParameters.codecs[0]!.payloadType,
        };
      },
      close: () => transport.close(),
    };
  }

  close(reason: CloseReason): void {
    if (this.#closed) return;
    this.#closed = true;
    this.worker.streams--;
    this.#life.stop();
    this.#keyframes.close();
    // viewers first: each closes its transport (DTLS close_notify) so every client learns at once
    for (const v of [...this.#viewers.values()]) v.close(reason);
    this.#viewers.clear();
    this.tap.close();
    for (const t of [...this.#rtpLinks.keys()]) t.close();
    this.transport.close();
    for (const pending of this.#editions.values())
      void pending.then(
        (e) => e.ownsRouter && e.router.close(),
        () => undefined,
      );
    this.#editions.clear();
    this.router.close();
    this.#onClosed(this);
    try {
      this.#options.onClose?.(reason);
    } catch (err) {
      console.error('sfu: publisher onClose threw', err);
    }
    this.emit('close', reason);
    this.removeAllListeners();
  }
}
