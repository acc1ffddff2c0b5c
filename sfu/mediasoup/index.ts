// The mediasoup engine: createMediasoupSfu() returns an Sfu (sfu/types.ts) whose every forwarded
// packet is handled by mediasoup's C++ workers, one per core; the Node process only negotiates,
// gates (consumer controls) and taps one copy per stream for moderation.
//
//   const sfu = await createMediasoupSfu({ announcedAddress: '127.0.0.1', workers: 2 });
//   const { stream, answerSdp } = await sfu.publish('cam1', offerSdp);
//   const { viewer, answerSdp } = await sfu.view('cam1', viewerOfferSdp, { jurisdiction: 'SA', initialGate: { video: 'blank' } });

import { randomBytes } from 'node:crypto';
import type { Consumer, Router, WebRtcTransport } from 'mediasoup/types';
import { SafeEmitter } from '../emitter.ts';
import { alreadyLive, negotiationFailed, noCommonCodec, sfuClosed, streamNotFound } from '../errors.ts';
import { parseOffer, publisherCodecs, simulcastRids, viewerCodecs } from '../sdp.ts';
import { Slates } from '../slate.ts';
import type {
  EngineStats,
  MediaKind,
  PublisherOptions,
  Sfu,
  Stream,
  ViewerGateState,
  ViewerOptions,
} from '../types.ts';
import {
  audioFirst,
  codecSignature,
  editionCodec,
  offeredCname,
  offerTransport,
  producerParameters,
  routerCodec,
  viewerCapabilities,
  writeAnswer,
} from './sdp.ts';
import type { AnswerSection } from './sdp.ts';
import { SlateSource } from './slate.ts';
import { MediasoupStream } from './stream.ts';
import type { PublishedTrack, StreamTuning } from './stream.ts';
import { LIVE_LAYER, MediasoupViewer, SLATE_LAYER } from './viewer.ts';
import { WorkerPool } from './workers.ts';
import type { MediaWorker, WorkerPoolOptions } from './workers.ts';

export { mediasoupWorkerBin } from './worker-bin.ts';

export interface MediasoupSfuOptions extends WorkerPoolOptions {
  /** Publisher keyframe requests at least this far apart (ms). Default 300. */
  minKeyframeIntervalMs?: number;
  /** Sessions that have not connected by then are closed (ms). Default 15000. */
  connectTimeoutMs?: number;
  /** A connected session whose peer sends no STUN consent check for this long is closed (ms, rounded up to whole seconds: mediasoup's ICE consent timeout, RFC 7675). Default 15000. */
  idleTimeoutMs?: number;
  /** Slate frames per second while nothing is switched to it (a blank, and a viewer that connects blanked, get one at once). Default 1. */
  slateFps?: number;
  /** Consumers a stream's own worker may carry beyond the others before viewers spread out. Default 200. */
  homeBias?: number;
  /**
   * Give each stream its video gate (the slate layer viewers can be switched to). Default true.
   * false forwards the live video straight to every viewer and cannot blank: only for bench:forward,
   * whose anchor is the bare worker's forwarding.
   */
  gates?: boolean;
}

export interface MediasoupSfu extends Sfu {
  readonly pool: WorkerPool;
}

type SfuEvents = { stream: [Stream] };

function newId(): string {
  return randomBytes(9).toString('base64url');
}

function consumerSsrc(c: Consumer): number {
  return c.rtpParameters.encodings?.[0]?.ssrc ?? 0;
}

class MediasoupSfuImpl extends SafeEmitter<SfuEvents> implements MediasoupSfu {
  readonly engine = 'mediasoup';
  readonly #streams = new Map<string, MediasoupStream>();
  readonly #negotiating = new Set<string>();
  readonly #slates = new Slates();
  readonly #slate: SlateSource;
  readonly #tuning: StreamTuning;
  readonly #consentS: number;
  readonly #gates: boolean;
  readonly slateReady: Promise<void>;
  #closed = false;

  constructor(
    readonly pool: WorkerPool,
    opts: MediasoupSfuOptions,
  ) {
    super();
    this.#tuning = {
      minKeyframeIntervalMs: opts.minKeyframeIntervalMs ?? 300,
      connectTimeoutMs: opts.connectTimeoutMs ?? 15_000,
      homeBias: opts.homeBias ?? 200,
    };
    this.#consentS = Math.max(1, Math.ceil((opts.idleTimeoutMs ?? 15_000) / 1000));
    this.#gates = opts.gates ?? true;
    this.#slate = new SlateSource({ fps: opts.slateFps ?? 1, frames: (codec) => this.#slates.get(codec) });
    this.slateReady = this.#slates.ready;
    pool.on('died', (w, err) =>
      console.error(
        `sfu/mediasoup: worker ${w.index} (pid ${w.pid}) died: ${err.message}; its streams end with 'error', a new worker starts`,
      ),
    );
  }

  async #transport(worker: MediaWorker, router: Router): Promise<WebRtcTransport> {
    return router.createWebRtcTransport({
      webRtcServer: worker.webRtcServer,
      enableUdp: true,
      enableTcp: true,
      preferUdp: true,
      iceConsentTimeout: this.#consentS,
    });
  }

  async publish(
    streamId: string,
    offerSdp: string,
    options: PublisherOptions = {},
  ): Promise<{ stream: Stream; answerSdp: string }> {
    if (this.#closed) throw sfuClosed();
    const offer = parseOffer(offerSdp);
    const chosen = publisherCodecs(offer);
    const dtls = offerTransport(offer, [...chosen.keys()]);
    if ((this.#streams.has(streamId) && !options.replace) || this.#negotiating.has(streamId))
      throw alreadyLive(streamId);
    this.#negotiating.add(streamId);
    const worker = this.pool.pick();
    let router: Router | undefined;
    try {
      const codecs = [...chosen.values()];
      router = await worker.worker.createRouter({ mediaCodecs: audioFirst(codecs).map(routerCodec) });
      const transport = await this.#transport(worker, router);
      await transport.connect({ dtlsParameters: { role: dtls.remoteRole, fingerprints: dtls.fingerprints } });
      const published: PublishedTrack[] = [];
      const answered: AnswerSection[] = [];
      const kindIndex: Record<MediaKind, number> = { audio: 0, video: 0 };
      const cname = offeredCname([...chosen.keys()]) ?? `msfu-${streamId}`;
      for (const [section, codec] of chosen) {
        const rtpParameters = producerParameters(section, codec, cname);
        let producer;
        try {
          producer = await transport.produce({ kind: codec.kind, rtpParameters });
        } catch (err) {
          throw noCommonCodec(
            `the ${codec.kind} section cannot be received: ${err instanceof Error ? err.message : String(err)}`,
          );
        }
        const trackId = section.mid ?? `${codec.kind}${kindIndex[codec.kind]++}`;
        const rids = producer.type === 'simulcast' ? (rtpParameters.encodings ?? []).map((e) => e.rid ?? '') : [];
        const info = {
          trackId,
          kind: codec.kind,
          codec: codec.name,
          payloadType: codec.payloadType,
          clockRate: codec.clockRate,
          ssrc: rtpParameters.encodings?.[0]?.ssrc,
          ...(rids.length > 0 ? { simulcast: { rids } } : {}),
        };
        published.push({ info, codec, producer });
        answered.push({
          section,
          direction: 'recvonly',
          rtpParameters,
          rids: codec.kind === 'video' ? simulcastRids(section) : undefined,
        });
      }
      const stream = new MediasoupStream(
        streamId,
        worker,
        router,
        transport,
        published,
        this.#tuning,
        this.pool,
        this.#slate,
        options,
        (s) => {
          if (this.#streams.get(streamId) === s) this.#streams.delete(streamId);
        },
      );
      try {
        await stream.init(codecSignature(codecs), this.#gates);
      } catch (err) {
        stream.close({ code: 'error', message: 'gate setup failed' });
        throw err;
      }
      if (this.#closed) {
        stream.close({ code: 'shutdown', message: 'server shutting down' });
        throw sfuClosed();
      }
      const answerSdp = writeAnswer(offer, answered, {
        ice: transport.iceParameters,
        candidates: transport.iceCandidates,
        dtls: transport.dtlsParameters,
        setup: dtls.answerSetup,
      });
      this.#streams
        .get(streamId)
        ?.close({ code: 'replaced', message: 'the publisher reconnected: this session was replaced by a new one' });
      this.#streams.set(streamId, stream);
      this.emit('stream', stream);
      return { stream, answerSdp };
    } catch (err) {
      router?.close();
      if (err instanceof Error && 'statusCode' in err) throw err;
      throw negotiationFailed(err instanceof Error ? err.message : String(err));
    } finally {
      this.#negotiating.delete(streamId);
    }
  }

  async view(
    streamId: string,
    offerSdp: string,
    options: ViewerOptions = {},
  ): Promise<{ viewer: MediasoupViewer; answerSdp: string }> {
    if (this.#closed) throw sfuClosed();
    const offer = parseOffer(offerSdp);
    const stream = this.#streams.get(streamId);
    if (!stream || stream.closed) throw streamNotFound(streamId);
    const chosen = viewerCodecs(
      offer,
      (kind) => stream.trackOfKind(kind)?.codec,
      stream.tracks.map((t) => `${t.kind} ${t.codec}`).join(', '),
    );
    const dtls = offerTransport(offer, [...chosen.keys()]);
    const codecs = [...chosen.values()].map((c) => editionCodec(c, stream.trackOfKind(c.kind)?.codec));
    const homeSignature = codecSignature(
      stream.published.filter((t) => codecs.some((c) => c.kind === t.info.kind)).map((t) => t.codec),
    );
    let transport: WebRtcTransport | undefined;
    try {
      const edition = await stream.editionFor(codecSignature(codecs), codecs, homeSignature);
      if (stream.closed) throw streamNotFound(streamId);
      transport = await this.#transport(edition.worker, edition.router);
      await transport.connect({ dtlsParameters: { role: dtls.remoteRole, fingerprints: dtls.fingerprints } });
      const gate: ViewerGateState = { video: 'closed', audio: 'closed' };
      let video: Consumer | undefined;
      let audio: Consumer | undefined;
      const answered: AnswerSection[] = [];
      const cname = `msfu-${streamId}`;
      for (const [section, match] of chosen) {
        const producer = match.kind === 'video' ? edition.video : edition.audio;
        if (!producer) continue;
        const rtpCapabilities = viewerCapabilities(section, editionCodec(match, stream.trackOfKind(match.kind)?.codec));
        if (match.kind === 'video') {
          gate.video = options.initialGate?.video === 'blank' ? 'blank' : 'forward';
          const layers =
            producer.type === 'simulcast'
              ? {
                  preferredLayers: {
                    spatialLayer: gate.video === 'blank' ? SLATE_LAYER : LIVE_LAYER,
                    temporalLayer: 0,
                  },
                }
              : {};
          video = await transport.consume({ producerId: producer.id, rtpCapabilities, mid: section.mid, ...layers });
        } else {
          gate.audio = options.initialGate?.audio === 'mute' ? 'mute' : 'forward';
          audio = await transport.consume({
            producerId: producer.id,
            rtpCapabilities,
            mid: section.mid,
            paused: gate.audio === 'mute',
          });
        }
        const consumer = match.kind === 'video' ? video! : audio!;
        answered.push({
          section,
          direction: 'sendonly',
          rtpParameters: consumer.rtpParameters,
          send: { ssrc: consumerSsrc(consumer), cname, streamId, trackId: `${match.kind}-${streamId}` },
        });
      }
      if (answered.length === 0) throw noCommonCodec('the stream has no track the viewer asked for');
      const answerSdp = writeAnswer(offer, answered, {
        ice: transport.iceParameters,
        candidates: transport.iceCandidates,
        dtls: transport.dtlsParameters,
        setup: dtls.answerSetup,
      });
      if (stream.closed) throw streamNotFound(streamId);
      const placed = (video ? 1 : 0) + (audio ? 1 : 0);
      edition.worker.consumers += placed;
      const viewer = new MediasoupViewer(
        options.viewerId ?? newId(),
        streamId,
        options.jurisdiction,
        transport,
        edition.worker,
        video,
        audio,
        gate,
        this.#tuning.connectTimeoutMs,
        () => {
          edition.worker.consumers -= placed;
        },
        () => stream.kickSlate(),
      );
      stream.addViewer(viewer, edition);
      return { viewer, answerSdp };
    } catch (err) {
      transport?.close();
      if (err instanceof Error && 'statusCode' in err) throw err;
      throw negotiationFailed(err instanceof Error ? err.message : String(err));
    }
  }

  getStream(streamId: string): Stream | undefined {
    const s = this.#streams.get(streamId);
    return s && !s.closed ? s : undefined;
  }

  *streams(): IterableIterator<Stream> {
    for (const s of this.#streams.values()) if (!s.closed) yield s;
  }

  async engineStats(): Promise<EngineStats> {
    const out: EngineStats = {
      engine: 'mediasoup',
      streams: 0,
      viewers: 0,
      consumers: 0,
      packetsForwarded: 0,
      bytesForwarded: 0,
      workers: this.pool.workers.length,
      workerCpuMs: 0,
      workerDeaths: this.pool.deaths,
      realtimeWorkers: this.pool.realtimeWorkers,
      realtimeDemotions: this.pool.realtimeDemotions,
    };
    const reads: Promise<unknown>[] = [this.pool.cpuMs().then((ms) => (out.workerCpuMs = ms))];
    for (const s of this.#streams.values()) {
      if (s.closed) continue;
      out.streams++;
      for (const v of s.viewers.values()) {
        out.viewers++;
        if (!(v instanceof MediasoupViewer)) continue;
        out.consumers += (v.video ? 1 : 0) + (v.audio ? 1 : 0);
        reads.push(
          v.readStats().then((st) => {
            out.packetsForwarded += st.packetsForwarded;
            out.bytesForwarded += st.bytesForwarded;
          }),
        );
      }
    }
    await Promise.all(reads);
    return out;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of [...this.#streams.values()]) s.close({ code: 'shutdown', message: 'server shutting down' });
    this.#streams.clear();
    this.#slate.close();
    await this.slateReady;
    // let the transports' DTLS close_notify leave before the workers exit
    await new Promise((r) => setTimeout(r, 50));
    this.pool.close();
  }
}

/** Starts the worker pool and returns the engine. Rejects when no worker can be started. */
export async function createMediasoupSfu(opts: MediasoupSfuOptions = {}): Promise<MediasoupSfu> {
  const pool = await WorkerPool.start(opts);
  return new MediasoupSfuImpl(pool, opts);
}
