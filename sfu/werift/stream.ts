// A live stream on the werift engine: the publisher's peer connection (ingest), its tracks, the
// fan-out to viewers, keyframe requests, REMB upstream and the tap.

import type { MediaStreamTrack, RTCPeerConnection, RTCRtpReceiver, RtcpPacket, RtpPacket } from 'werift';
import { RtcpSrPacket } from 'werift';
import { SafeEmitter } from '../emitter.ts';
import { isKeyframeStart } from '../../media/keyframe.ts';
import { vp8PictureId } from '../../media/vp8.ts';
import { KeyframeThrottle } from '../keyframe.ts';
import type { ChosenCodec } from '../sdp.ts';
import { TapHub } from '../tap.ts';
import type { TapPacketSource } from '../tap.ts';
import type { CloseReason, PublisherOptions, Stream, TrackInfo, Viewer } from '../types.ts';
import { closeWithNotify } from './close-notify.ts';
import { watchLiveness, type Liveness } from './liveness.ts';
import { sendRemb } from './peer.ts';
import { SimulcastChoice } from './simulcast.ts';

/** Longest wait for a simulcast publisher's layers to show their sizes before the largest seen is forwarded (ms). */
const SIMULCAST_WINDOW_MS = 3000;
import type { WeriftViewer } from './viewer.ts';

export interface StreamTuning {
  /** Keyframe requests to the publisher are spaced at least this far apart (ms). Default 300. */
  minKeyframeIntervalMs: number;
  /** A viewer still waiting for a keyframe re-requests after this long (ms). Default 600. */
  keyframeRetryMs: number;
  /** REMB sent to the publisher (bit/s). Default 2_500_000. */
  publisherBitrateBps: number;
  /** Close the session when ICE/DTLS has not connected within this time (ms). Default 15000. */
  connectTimeoutMs: number;
  /** Close a connected session after this long with no STUN, DTLS, RTP or RTCP from its peer (ms). Default 15000. */
  idleTimeoutMs: number;
  /** Largest GOP kept per video track for joining viewers (bytes of payload); 0 = none. Default 4 MiB. */
  gopCacheBytes: number;
}

/** One received track and what the fan-out needs about it. */
export class IngestTrack {
  ssrc: number | undefined;
  /** Publisher's latest sender report: RTP timestamp <-> NTP (64-bit) pair. */
  sr: { ntp: bigint; rtp: number } | undefined;
  lastTimestamp: number | undefined;
  lastArrival = 0;
  lastVp8PictureId: number | undefined;
  packets = 0;
  readonly tapSource: TapPacketSource;
  /** A simulcast track's layer choice; undefined for a single-layer track. */
  readonly simulcast: SimulcastChoice | undefined;
  #gop: RtpPacket[] | undefined;
  #gopBytes = 0;
  constructor(
    readonly info: TrackInfo,
    readonly codec: ChosenCodec,
    streamId: string,
  ) {
    this.tapSource = { streamId, trackId: info.trackId, kind: info.kind, codec: info.codec, clockRate: info.clockRate };
    this.simulcast = info.simulcast
      ? new SimulcastChoice(info.simulcast.rids, info.codec, SIMULCAST_WINDOW_MS, 4 * 1024 * 1024)
      : undefined;
  }

  /** The publisher's NTP time for an RTP timestamp of this track, or undefined before its first SR. */
  ntpFor(timestamp: number): bigint | undefined {
    const sr = this.sr;
    if (!sr) return undefined;
    const diff = (timestamp - sr.rtp) | 0;
    return sr.ntp + BigInt(Math.round((diff * 4294967296) / this.info.clockRate));
  }

  /**
   * Video: the packets since the last keyframe start (the current GOP, oldest first), so a viewer that
   * joins between keyframes starts at once even when the publisher ignores keyframe requests (FFmpeg's
   * whip muxer never answers PLI; its default GOP is 250 frames, ~8 s). Undefined until a keyframe is
   * seen, and while the current GOP has outgrown `maxBytes` (then joiners wait for the next keyframe).
   */
  get gop(): readonly RtpPacket[] | undefined {
    return this.#gop;
  }

  keepGop(rtp: RtpPacket, keyStart: boolean, maxBytes: number): void {
    if (maxBytes <= 0) return;
    if (keyStart) {
      this.#gop = [rtp];
      this.#gopBytes = rtp.payload.length;
      return;
    }
    if (!this.#gop) return;
    this.#gopBytes += rtp.payload.length;
    if (this.#gopBytes > maxBytes) this.#gop = undefined;
    else this.#gop.push(rtp);
  }

  /** Where the publisher's timeline is now, extrapolated from the last packet (for slate timestamps). */
  timestampNow(now: number): number | undefined {
    if (this.lastTimestamp === undefined) return undefined;
    return (this.lastTimestamp + Math.round(((now - this.lastArrival) * this.info.clockRate) / 1000)) >>> 0;
  }
}

type StreamEvents = {
  close: [CloseReason];
  track: [TrackInfo];
  viewer: [Viewer];
  connected: [];
};

function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

export class WeriftStream extends SafeEmitter<StreamEvents> implements Stream {
  readonly createdAt = nowMs();
  readonly tap = new TapHub();
  readonly #viewers = new Map<string, WeriftViewer>();
  readonly #tracks: IngestTrack[] = [];
  #closed = false;
  #receivers = new Map<string, RTCRtpReceiver>();
  readonly #attached = new WeakSet<MediaStreamTrack>();
  readonly #announced = new WeakSet<IngestTrack>();
  readonly #keyframes: KeyframeThrottle;
  #timers: NodeJS.Timeout[] = [];
  readonly #liveness: Liveness;
  keyframeRequestsSent = 0;
  connected = false;
  readonly #options: PublisherOptions;
  readonly #onClosed: (s: WeriftStream) => void;

  constructor(
    readonly id: string,
    readonly pc: RTCPeerConnection,
    tracks: IngestTrack[],
    readonly tuning: StreamTuning,
    options: PublisherOptions,
    onClosed: (s: WeriftStream) => void,
  ) {
    super();
    this.#options = options;
    this.#onClosed = onClosed;
    this.#keyframes = new KeyframeThrottle(tuning.minKeyframeIntervalMs, (trackId) => this.#sendPli(trackId));
    this.#tracks = tracks;
    for (const t of pc.getTransceivers()) {
      const track = tracks.find((x) => x.info.trackId === t.mid);
      if (!track) continue;
      this.#receivers.set(track.info.trackId, t.receiver);
      // werift may have announced the track during setRemoteDescription, before this object existed
      for (const mst of t.receiver.tracks) this.#attach(track, mst, t.receiver);
      t.onTrack.subscribe((mst: MediaStreamTrack) => {
        if (!this.#attached.has(mst)) this.#attach(track, mst, t.receiver);
      });
    }
    pc.connectionStateChange.subscribe((state) => {
      if (state === 'connected' && !this.connected) {
        this.connected = true;
        this.emit('connected');
      }
      if (state === 'failed') this.close({ code: 'error', message: 'publisher connection failed' });
      if (state === 'closed' || state === 'disconnected')
        this.close({ code: 'ended', message: 'publisher disconnected' });
    });
    const connectTimer = setTimeout(() => {
      if (!this.connected) this.close({ code: 'error', message: 'publisher never connected' });
    }, tuning.connectTimeoutMs);
    this.#liveness = watchLiveness(
      pc,
      tuning.idleTimeoutMs,
      () => this.connected,
      (silentMs) =>
        this.close({
          code: 'ended',
          message: `the publisher went silent: no STUN, RTP or RTCP for ${Math.round(silentMs / 1000)} s`,
        }),
    );
    const rembTimer = setInterval(() => this.#sendRemb(), 1000);
    const keyframeWatch = setInterval(
      () => this.#watchKeyframes(),
      Math.max(100, Math.floor(tuning.keyframeRetryMs / 2)),
    );
    this.#timers.push(connectTimer, rembTimer, keyframeWatch);
  }

  get closed(): boolean {
    return this.#closed;
  }

  get tracks(): readonly TrackInfo[] {
    return this.#tracks.map((t) => t.info);
  }

  get ingestTracks(): readonly IngestTrack[] {
    return this.#tracks;
  }

  get viewers(): ReadonlyMap<string, Viewer> {
    return this.#viewers;
  }

  trackOfKind(kind: 'audio' | 'video'): IngestTrack | undefined {
    return this.#tracks.find((t) => t.info.kind === kind);
  }

  #attach(track: IngestTrack, mst: MediaStreamTrack, receiver: RTCRtpReceiver): void {
    this.#attached.add(mst);
    if (track.simulcast) {
      // werift also makes a track for the announced SSRC; a simulcast layer is known by its rid
      const rid = mst.rid;
      if (rid === undefined) return;
      // one of a simulcast track's layers (sfu/werift/simulcast.ts): only the chosen one goes on
      mst.onReceiveRtp.subscribe((rtp: RtpPacket) => this.#onLayerRtp(track, rid, rtp, receiver));
      mst.onReceiveRtcp.subscribe((rtcp: RtcpPacket) => {
        if (rtcp instanceof RtcpSrPacket && track.simulcast?.chosen === rid)
          track.sr = { ntp: rtcp.senderInfo.ntpTimestamp, rtp: rtcp.senderInfo.rtpTimestamp };
      });
      // one 'track' event for the track, not one per layer
      if (!this.#announced.has(track)) {
        this.#announced.add(track);
        this.emit('track', track.info);
      }
      return;
    }
    if (mst.ssrc !== undefined) track.ssrc = mst.ssrc;
    track.info.ssrc = track.ssrc;
    this.emit('track', track.info);
    mst.onReceiveRtp.subscribe((rtp: RtpPacket) => this.#onRtp(track, rtp));
    mst.onReceiveRtcp.subscribe((rtcp: RtcpPacket) => {
      if (rtcp instanceof RtcpSrPacket)
        track.sr = { ntp: rtcp.senderInfo.ntpTimestamp, rtp: rtcp.senderInfo.rtpTimestamp };
    });
    if (track.info.kind === 'video') {
      // a viewer that is already waiting gets its first picture sooner
      this.requestKeyFrame(track.info.trackId);
    }
  }

  #onLayerRtp(track: IngestTrack, rid: string, rtp: RtpPacket, receiver: RTCRtpReceiver): void {
    const layers = track.simulcast!;
    if (layers.chosen === rid) return this.#onRtp(track, rtp);
    // the other layers are not forwarded
    if (layers.chosen !== undefined || this.#closed) return;
    const decided = layers.observe(rid, rtp, isKeyframeStart(track.codec.name, rtp.payload), nowMs(), (ssrc) => {
      this.keyframeRequestsSent++;
      receiver.sendRtcpPLI(ssrc).catch((err: unknown) => void err);
    });
    if (!decided) return;
    track.info.simulcast = { rids: track.info.simulcast?.rids ?? [], forwarded: decided.rid };
    for (const p of decided.backlog) this.#onRtp(track, p);
    if (decided.backlog.length === 0) this.requestKeyFrame(track.info.trackId);
  }

  #onRtp(track: IngestTrack, rtp: RtpPacket): void {
    if (this.#closed) return;
    const arrivedAt = nowMs();
    const h = rtp.header;
    if (track.ssrc === undefined) track.ssrc = h.ssrc;
    track.packets++;
    track.lastTimestamp = h.timestamp;
    track.lastArrival = arrivedAt;
    if (track.codec.name === 'VP8') {
      const pid = vp8PictureId(rtp.payload);
      if (pid !== undefined) track.lastVp8PictureId = pid;
    }
    const keyStart = track.info.kind === 'video' && isKeyframeStart(track.codec.name, rtp.payload);
    // werift's sender keeps a forwarded packet's own header extensions over its own: the publisher's
    // ids would be read under each viewer's mapping (an OBS-shaped publisher's 1-byte mid at id 3 is a
    // werift viewer's 3-byte abs-send-time, and that viewer dropped every video packet)
    rtp.header.extensions = [];
    for (const v of this.#viewers.values()) v.forward(track, rtp, keyStart);
    if (track.info.kind === 'video') track.keepGop(rtp, keyStart, this.tuning.gopCacheBytes);
    this.tap.offer(track.tapSource, h, rtp.payload, arrivedAt);
  }

  requestKeyFrame(trackId?: string): void {
    this.#keyframes.request(trackId);
  }

  #sendPli(trackId?: string): void {
    if (this.#closed) return;
    for (const t of this.#tracks) {
      if (t.info.kind !== 'video' || t.ssrc === undefined) continue;
      if (trackId && t.info.trackId !== trackId && this.#tracks.filter((x) => x.info.kind === 'video').length > 1)
        continue;
      const receiver = this.#receivers.get(t.info.trackId);
      if (!receiver) continue;
      this.keyframeRequestsSent++;
      receiver.sendRtcpPLI(t.ssrc).catch((err: unknown) => void err);
    }
  }

  #watchKeyframes(): void {
    if (this.#closed) return;
    const now = performance.now();
    for (const v of this.#viewers.values()) {
      if (v.waitingForKeyframeSince(now) >= this.tuning.keyframeRetryMs) {
        this.requestKeyFrame();
        v.noteKeyframeRequested(now);
      }
    }
  }

  #sendRemb(): void {
    if (this.#closed || !this.connected) return;
    const ssrcs = this.#tracks.filter((t) => t.ssrc !== undefined).map((t) => t.ssrc!);
    const video = this.#tracks.find((t) => t.info.kind === 'video');
    const receiver = video ? this.#receivers.get(video.info.trackId) : this.#receivers.values().next().value;
    if (!receiver || ssrcs.length === 0) return;
    sendRemb(receiver, ssrcs, this.tuning.publisherBitrateBps);
  }

  addViewer(viewer: WeriftViewer): void {
    this.#viewers.set(viewer.id, viewer);
    viewer.on('close', () => this.#viewers.delete(viewer.id));
    this.emit('viewer', viewer);
  }

  close(reason: CloseReason): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#liveness.stop();
    this.#keyframes.close();
    for (const v of [...this.#viewers.values()]) v.close(reason);
    this.#viewers.clear();
    this.tap.close();
    closeWithNotify(this.pc);
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
