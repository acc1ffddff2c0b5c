// The werift engine: createWeriftSfu() returns an Sfu (sfu/types.ts) that answers WHIP/WHEP offers
// with werift peer connections and forwards RTP without transcoding.
//
//   const sfu = createWeriftSfu({ announcedAddress: '127.0.0.1' });
//   const { stream, answerSdp } = await sfu.publish('cam1', offerSdp);
//   const { viewer, answerSdp } = await sfu.view('cam1', viewerOfferSdp, { jurisdiction: 'SE' });
//   viewer.setVideoGate('blank'); stream.close({ code: 'killed', message: '...' });

import { randomBytes } from 'node:crypto';
import type { RTCRtpSender } from 'werift';
import { SafeEmitter } from '../emitter.ts';
import { alreadyLive, sfuClosed, streamNotFound } from '../errors.ts';
import { offerSetup, parseOffer, publisherCodecs, rebuildOffer, simulcastRids, viewerCodecs } from '../sdp.ts';
import type { ChosenCodec, MediaSection } from '../sdp.ts';
import { Slates } from '../slate.ts';
import type { EngineStats, MediaKind, PublisherOptions, Sfu, Stream, ViewerOptions } from '../types.ts';
import { countGarbage, garbageCounters } from './garbage.ts';
import { answerOffer, createPeer } from './peer.ts';
import type { PeerNetworkOptions } from './peer.ts';
import { IngestTrack, WeriftStream } from './stream.ts';
import type { StreamTuning } from './stream.ts';
import { WeriftViewer } from './viewer.ts';

export interface WeriftSfuOptions {
  /** Address written into ICE candidates. Default 127.0.0.1. */
  announcedAddress?: string;
  /** Local address media sockets bind to. Default: announcedAddress. */
  listenAddress?: string;
  /** Inclusive UDP port range for media sockets. Default: ephemeral ports. */
  udpPortRange?: [number, number];
  /** Publisher keyframe requests at least this far apart (ms). Default 300. */
  minKeyframeIntervalMs?: number;
  /** A viewer waiting for a keyframe re-requests after this long (ms). Default 600. */
  keyframeRetryMs?: number;
  /** Bitrate announced to publishers by REMB (bit/s). Default 2_500_000. */
  publisherBitrateBps?: number;
  /** Sessions that have not connected by then are closed (ms). Default 15000. */
  connectTimeoutMs?: number;
  /** A connected session with no STUN, DTLS, RTP or RTCP from its peer for this long is closed (ms). Default 15000 (RFC 7675's consent lifetime is 30 s; browsers check every ~5 s). */
  idleTimeoutMs?: number;
  /** Slate frames per second while a viewer is blanked. Default 2. */
  slateFps?: number;
  /** Largest GOP kept per video track so a joining viewer starts at once (payload bytes); 0 = none. Default 4 MiB. */
  gopCacheBytes?: number;
}

/** Counters a server can export as metrics. */
export interface WeriftSfuCounters {
  streams: number;
  viewers: number;
  /** Datagrams at media ports that were neither STUN, DTLS, RTP nor RTCP of a session. */
  garbageDatagrams: number;
  /** RTP/RTCP-looking datagrams that failed SRTP/SRTCP authentication or parsing. */
  rejectedMediaDatagrams: number;
}

export interface WeriftSfu extends Sfu {
  counters(): WeriftSfuCounters;
}

type SfuEvents = { stream: [Stream] };

function newId(): string {
  return randomBytes(9).toString('base64url');
}

class WeriftSfuImpl extends SafeEmitter<SfuEvents> implements WeriftSfu {
  readonly engine = 'werift';
  readonly #streams = new Map<string, WeriftStream>();
  readonly #negotiating = new Set<string>();
  readonly #net: PeerNetworkOptions;
  readonly #tuning: StreamTuning;
  readonly #slates = new Slates();
  readonly #slateFps: number;
  readonly slateReady: Promise<void>;
  #closed = false;

  constructor(opts: WeriftSfuOptions) {
    super();
    const announced = opts.announcedAddress ?? '127.0.0.1';
    this.#net = {
      announcedAddress: announced,
      listenAddress: opts.listenAddress ?? announced,
      udpPortRange: opts.udpPortRange,
    };
    this.#tuning = {
      minKeyframeIntervalMs: opts.minKeyframeIntervalMs ?? 300,
      keyframeRetryMs: opts.keyframeRetryMs ?? 600,
      publisherBitrateBps: opts.publisherBitrateBps ?? 2_500_000,
      connectTimeoutMs: opts.connectTimeoutMs ?? 15_000,
      idleTimeoutMs: opts.idleTimeoutMs ?? 15_000,
      gopCacheBytes: opts.gopCacheBytes ?? 4 * 1024 * 1024,
    };
    this.#slateFps = opts.slateFps ?? 2;
    this.slateReady = this.#slates.ready;
  }

  async publish(
    streamId: string,
    offerSdp: string,
    options: PublisherOptions = {},
  ): Promise<{ stream: Stream; answerSdp: string }> {
    if (this.#closed) throw sfuClosed();
    const offer = parseOffer(offerSdp);
    const chosen = publisherCodecs(offer);
    if ((this.#streams.has(streamId) && !options.replace) || this.#negotiating.has(streamId))
      throw alreadyLive(streamId);
    const keep = new Map<MediaSection, number[]>();
    for (const [s, c] of chosen)
      keep.set(s, c.rtxPayloadType !== undefined ? [c.payloadType, c.rtxPayloadType] : [c.payloadType]);
    const narrowed = rebuildOffer(offer, keep);
    const pc = createPeer(
      this.#net,
      [...chosen.keys()].some((s) => simulcastRids(s).length > 0),
    );
    const tracks: IngestTrack[] = [];
    let kindIndex: Record<MediaKind, number> = { audio: 0, video: 0 };
    for (const [s, c] of chosen) {
      const kind = c.kind;
      const trackId = s.mid ?? `${kind}${kindIndex[kind]}`;
      kindIndex = { ...kindIndex, [kind]: kindIndex[kind] + 1 };
      const rids = kind === 'video' ? simulcastRids(s) : [];
      const info = {
        trackId,
        kind,
        codec: c.name,
        payloadType: c.payloadType,
        clockRate: c.clockRate,
        ...(rids.length > 0 ? { simulcast: { rids } } : {}),
      };
      tracks.push(new IngestTrack(info, c, streamId));
    }
    // hold the id while negotiating, so two publishers of one stream cannot both go live
    if (this.#negotiating.has(streamId)) throw alreadyLive(streamId);
    this.#negotiating.add(streamId);
    let answerSdp: string;
    try {
      answerSdp = await answerOffer(pc, narrowed, this.#net, offerSetup(offer, [...chosen.keys()]).answer);
      if (this.#closed) throw sfuClosed();
    } catch (err) {
      await pc.close().catch((e: unknown) => void e);
      throw err;
    } finally {
      this.#negotiating.delete(streamId);
    }
    countGarbage(pc);
    this.#streams
      .get(streamId)
      ?.close({ code: 'replaced', message: 'the publisher reconnected: this session was replaced by a new one' });
    const stream = new WeriftStream(streamId, pc, tracks, this.#tuning, options, (s) => {
      if (this.#streams.get(streamId) === s) this.#streams.delete(streamId);
    });
    this.#streams.set(streamId, stream);
    this.emit('stream', stream);
    return { stream, answerSdp };
  }

  async view(
    streamId: string,
    offerSdp: string,
    options: ViewerOptions = {},
  ): Promise<{ viewer: WeriftViewer; answerSdp: string }> {
    if (this.#closed) throw sfuClosed();
    const offer = parseOffer(offerSdp);
    const stream = this.#streams.get(streamId);
    if (!stream || stream.closed) throw streamNotFound(streamId);
    const chosen = viewerCodecs(
      offer,
      (kind) => stream.trackOfKind(kind)?.codec,
      stream.tracks.map((t) => `${t.kind} ${t.codec}`).join(', '),
    );
    const keep = new Map<MediaSection, number[]>();
    for (const [s, match] of chosen)
      keep.set(s, match.rtxPayloadType !== undefined ? [match.payloadType, match.rtxPayloadType] : [match.payloadType]);
    const narrowed = rebuildOffer(offer, keep);
    const pc = createPeer(this.#net);
    let answerSdp: string;
    try {
      answerSdp = await answerOffer(pc, narrowed, this.#net, offerSetup(offer, [...chosen.keys()]).answer, () => {
        for (const t of pc.getTransceivers()) {
          if (t.kind === 'audio' || t.kind === 'video') t.setDirection('sendonly');
        }
      });
    } catch (err) {
      await pc.close().catch((e: unknown) => void e);
      throw err;
    }
    if (stream.closed) {
      await pc.close().catch((e: unknown) => void e);
      throw streamNotFound(streamId);
    }
    const egress: { kind: MediaKind; sender: RTCRtpSender; codec: ChosenCodec }[] = [];
    for (const t of pc.getTransceivers()) {
      const section =
        [...chosen.keys()].find((s) => s.mid !== undefined && s.mid === t.mid) ??
        [...chosen.keys()].find((s) => s.kind === t.kind);
      const codec = section ? chosen.get(section) : undefined;
      if (codec && !egress.some((e) => e.kind === codec.kind))
        egress.push({ kind: codec.kind, sender: t.sender, codec });
    }
    countGarbage(pc);
    const viewer = new WeriftViewer(
      options.viewerId ?? newId(),
      stream,
      pc,
      egress,
      options.jurisdiction,
      options.initialGate,
      {
        get: (codec) => this.#slates.get(codec),
        fps: this.#slateFps,
      },
    );
    if (stream.viewers.has(viewer.id))
      stream.viewers.get(viewer.id)?.close({ code: 'replaced', message: 'the same viewer joined again' });
    stream.addViewer(viewer);
    return { viewer, answerSdp };
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
      engine: 'werift',
      streams: 0,
      viewers: 0,
      consumers: 0,
      packetsForwarded: 0,
      bytesForwarded: 0,
      workers: 0,
      workerCpuMs: 0,
      workerDeaths: 0,
      realtimeWorkers: 0,
      realtimeDemotions: 0,
    };
    for (const s of this.#streams.values()) {
      if (s.closed) continue;
      out.streams++;
      for (const v of s.viewers.values()) {
        out.viewers++;
        out.consumers += (v.gate.video !== 'closed' ? 1 : 0) + (v.gate.audio !== 'closed' ? 1 : 0);
        const st = v.stats();
        out.packetsForwarded += st.packetsForwarded;
        out.bytesForwarded += st.bytesForwarded;
      }
    }
    return out;
  }

  counters(): WeriftSfuCounters {
    let viewers = 0;
    let streams = 0;
    for (const s of this.#streams.values()) {
      if (s.closed) continue;
      streams++;
      viewers += s.viewers.size;
    }
    return { streams, viewers, ...garbageCounters() };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of [...this.#streams.values()]) s.close({ code: 'shutdown', message: 'server shutting down' });
    this.#streams.clear();
    await this.slateReady;
  }
}

export function createWeriftSfu(opts: WeriftSfuOptions = {}): WeriftSfu {
  return new WeriftSfuImpl(opts);
}
