// Public contract of the engine-neutral SFU core. The server (composition root) and the policy
// enforcer program against these types only; engines live under sfu/<engine>/.
// Vocabulary follows mediasoup: a Stream has one Publisher (producer side) and many Viewers
// (consumer side); each Viewer has a per-kind Gate.

export type MediaKind = 'audio' | 'video';
export type VideoCodec = 'VP8' | 'H264';
export type AudioCodec = 'opus';
export type CodecName = VideoCodec | AudioCodec;

/** What one viewer's outbound track does. `blank` (video only) = slate picture; `mute` (audio only) = silence/no audio. */
export type GateState = 'forward' | 'blank' | 'mute' | 'closed';

export interface ViewerGateState {
  video: 'forward' | 'blank' | 'closed';
  audio: 'forward' | 'mute' | 'closed';
}

/** Why a publisher or viewer session ended. */
export interface CloseReason {
  /** 'ended' (publisher left), 'killed' (moderation/admin), 'error', 'shutdown', 'viewer_left', 'replaced'. */
  code: 'ended' | 'killed' | 'error' | 'shutdown' | 'viewer_left' | 'replaced';
  message: string;
  /** Statement of reasons id, when the close is a restrictive decision. */
  statementId?: string;
}

export interface TrackInfo {
  /** Stable id within the stream, e.g. the mid or `${kind}0`. */
  trackId: string;
  kind: MediaKind;
  codec: CodecName;
  payloadType: number;
  clockRate: number;
  ssrc?: number;
  /**
   * A simulcast video track (RFC 8853): the rids the publisher sends, lowest layer first where the
   * engine knows the order, and the one forwarded to viewers and the tap (undefined until chosen).
   * Viewers and moderation get the same layer: what is judged is what is watched.
   */
  simulcast?: { rids: readonly string[]; forwarded?: string };
}

/**
 * A copy of one received RTP packet, handed to tap subscribers. Plain data (no werift types) so
 * samplers/ can consume it without importing sfu/.
 */
export interface TapPacket {
  streamId: string;
  trackId: string;
  kind: MediaKind;
  codec: CodecName;
  clockRate: number;
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  marker: boolean;
  ssrc: number;
  /** RTP payload only (header stripped, RTX already unwrapped). A copy: subscribers may keep or transfer it. */
  payload: Uint8Array;
  /** Server clock when the packet arrived: performance.timeOrigin + performance.now(), in ms. */
  arrivedAt: number;
}

export interface TapSubscriptionOptions {
  /** Ring capacity in packets per subscription; the oldest packet is dropped when full. Default 512. */
  capacity?: number;
  /** Only these kinds. Default both. */
  kinds?: MediaKind[];
}

export interface TapSubscription {
  readonly delivered: number;
  readonly dropped: number;
  close(): void;
}

/**
 * One track's RTP sent by the engine's own forwarding process as plain RTP over loopback UDP (no
 * SRTP, no RTX, no header extensions; RTCP muxed on the same port), to a receiver that may live on
 * any thread: no packet crosses the Node event loop. Made in two steps so that the receiver knows
 * where the packets come from before the first one is sent.
 */
export interface TapRtpLink {
  readonly trackId: string;
  /** 127.0.0.1 port the packets are sent from; a receiver accepts nothing else. */
  readonly sourcePort: number;
  /** Starts sending to 127.0.0.1:port (once); resolves with the SSRC and payload type the packets carry. */
  start(port: number): Promise<{ ssrc: number; payloadType: number }>;
  /** Stops sending. Idempotent; the stream's close closes its links too. */
  close(): void;
}

export interface Tap {
  /** The handler runs outside the forwarding call stack (drained asynchronously); it must not block. */
  subscribe(handler: (packet: TapPacket) => void, options?: TapSubscriptionOptions): TapSubscription;
  /**
   * Engines that forward outside Node (mediasoup) send a track's RTP to a loopback UDP port instead,
   * with no JavaScript per packet on the event loop; undefined where the engine forwards on the event
   * loop itself (werift), whose packets are in JavaScript already. Rejects when the track is unknown
   * or the stream closed.
   */
  readonly openRtp?: (trackId: string) => Promise<TapRtpLink>;
}

export interface ViewerOptions {
  viewerId?: string;
  /** ISO 3166-1 alpha-2 code, upper case, or undefined when unknown. */
  jurisdiction?: string;
  /** Gate the viewer starts with, so a late joiner is filtered from the first frame. Default forward/forward. */
  initialGate?: Partial<ViewerGateState>;
}

export interface PublisherOptions {
  /** Called when the stream ends for any reason (also available as the Stream 'close' event). */
  onClose?: (reason: CloseReason) => void;
  /**
   * A live session of this stream id is replaced (closed with 'replaced') once this one has its answer,
   * instead of the publish failing with 409: a streamer reconnecting after a crash, before its dead
   * session timed out. The caller decides who may (the server: the same publish token). Default false.
   */
  replace?: boolean;
}

export interface ViewerStats {
  packetsForwarded: number;
  bytesForwarded: number;
  packetsDropped: number;
  keyframeRequests: number;
}

export interface Viewer {
  readonly id: string;
  readonly streamId: string;
  readonly jurisdiction: string | undefined;
  readonly closed: boolean;
  /** ICE and DTLS completed (media can flow); 'connected' fires once when it becomes true. */
  readonly connected: boolean;
  readonly gate: ViewerGateState;
  readonly paused: boolean;
  setVideoGate(state: 'forward' | 'blank'): void;
  setAudioGate(state: 'forward' | 'mute'): void;
  pause(): void;
  resume(): void;
  stats(): ViewerStats;
  close(reason: CloseReason): void;
  on(event: 'close', listener: (reason: CloseReason) => void): this;
  on(event: 'gate', listener: (gate: ViewerGateState) => void): this;
  on(event: 'connected', listener: () => void): this;
}

export interface Stream {
  readonly id: string;
  readonly closed: boolean;
  /** The publisher's ICE and DTLS completed; 'connected' fires once when it becomes true. */
  readonly connected: boolean;
  readonly createdAt: number;
  readonly tracks: readonly TrackInfo[];
  readonly viewers: ReadonlyMap<string, Viewer>;
  readonly tap: Tap;
  /** Ask the publisher for a keyframe (throttled, coalesced). */
  requestKeyFrame(trackId?: string): void;
  /** Ends the publisher session and every viewer session. Idempotent. */
  close(reason: CloseReason): void;
  on(event: 'close', listener: (reason: CloseReason) => void): this;
  on(event: 'track', listener: (track: TrackInfo) => void): this;
  on(event: 'viewer', listener: (viewer: Viewer) => void): this;
  on(event: 'connected', listener: () => void): this;
}

/** Engine-wide forwarding figures, read for /metrics. */
export interface EngineStats {
  engine: EngineName;
  streams: number;
  viewers: number;
  /** Outbound tracks being forwarded: one per viewer and kind. */
  consumers: number;
  /** RTP packets and bytes sent to the live viewers (their sums; viewers that left are not counted). */
  packetsForwarded: number;
  bytesForwarded: number;
  /** Forwarding processes: mediasoup's C++ workers; 0 for werift, which forwards on the Node event loop. */
  workers: number;
  /** CPU time of those processes since the engine started (ms); 0 for werift (see the process metrics). */
  workerCpuMs: number;
  /** Workers that died since the engine started (each was replaced). */
  workerDeaths: number;
  /** Workers running at real-time priority now; 0 for werift. */
  realtimeWorkers: number;
  /** Times a worker lost real-time priority for using more than its share of a core (mediasoup's guard). */
  realtimeDemotions: number;
}

export type EngineName = 'werift' | 'mediasoup';

export interface Sfu {
  readonly engine: EngineName;
  /** Resolves when the slate pictures are encoded (blanking before that shows no slate). */
  readonly slateReady: Promise<void>;
  engineStats(): Promise<EngineStats>;
  /** WHIP: answer a publisher's offer. Throws SfuError (SFU_ERR_*) on bad SDP, no codec, already live. */
  publish(
    streamId: string,
    offerSdp: string,
    options?: PublisherOptions,
  ): Promise<{ stream: Stream; answerSdp: string }>;
  /** WHEP: answer a viewer's offer. Throws SfuError on unknown stream, codec mismatch, bad SDP. */
  view(streamId: string, offerSdp: string, options?: ViewerOptions): Promise<{ viewer: Viewer; answerSdp: string }>;
  getStream(streamId: string): Stream | undefined;
  streams(): IterableIterator<Stream>;
  /** Closes every stream ('shutdown') and the engine. */
  close(): Promise<void>;
  on(event: 'stream', listener: (stream: Stream) => void): this;
}
