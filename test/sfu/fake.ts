// The one fake SFU of the tests: real objects with the sfu/types.ts behaviour the server relies on
// (streams, viewers with gates, close cascades, events), no media. The server suites drive it through
// the WHIP/WHEP routes (publish/view); the enforcer and pipeline suites add streams and viewers directly.
import { EventEmitter } from 'node:events';
import { TapHub } from '../../sfu/tap.ts';
import type {
  CloseReason,
  EngineStats,
  PublisherOptions,
  Sfu,
  Stream,
  TrackInfo,
  Viewer,
  ViewerGateState,
  ViewerOptions,
  ViewerStats,
} from '../../sfu/types.ts';

export class FakeViewer extends EventEmitter implements Viewer {
  readonly id: string;
  readonly streamId: string;
  readonly jurisdiction: string | undefined;
  closed = false;
  connected = true;
  paused = false;
  gate: ViewerGateState;
  closeReason: CloseReason | undefined;
  /** Every gate call and the close, in order (`video:blank`, `audio:mute`, `close:killed`). */
  readonly calls: string[] = [];
  constructor(streamId: string, id: string, options: ViewerOptions) {
    super();
    this.id = id;
    this.streamId = streamId;
    this.jurisdiction = options.jurisdiction;
    this.gate = { video: options.initialGate?.video ?? 'forward', audio: options.initialGate?.audio ?? 'forward' };
  }
  setVideoGate(state: 'forward' | 'blank'): void {
    if (this.closed) return;
    this.calls.push(`video:${state}`);
    this.gate = { ...this.gate, video: state };
    this.emit('gate', this.gate);
  }
  setAudioGate(state: 'forward' | 'mute'): void {
    if (this.closed) return;
    this.calls.push(`audio:${state}`);
    this.gate = { ...this.gate, audio: state };
    this.emit('gate', this.gate);
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
  stats(): ViewerStats {
    return { packetsForwarded: 10, bytesForwarded: 1000, packetsDropped: 1, keyframeRequests: 0 };
  }
  close(reason: CloseReason): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    this.calls.push(`close:${reason.code}`);
    this.gate = { video: 'closed', audio: 'closed' };
    this.emit('close', reason);
  }
}

export class FakeStream extends EventEmitter implements Stream {
  readonly id: string;
  closed = false;
  connected = true;
  readonly createdAt = Date.now();
  readonly tracks: TrackInfo[] = [
    { trackId: 'video0', kind: 'video', codec: 'VP8', payloadType: 96, clockRate: 90000 },
    { trackId: 'audio0', kind: 'audio', codec: 'opus', payloadType: 111, clockRate: 48000 },
  ];
  readonly viewers = new Map<string, FakeViewer>();
  /** A real tap: tests may offer packets to it (nothing flows otherwise). */
  readonly tap = new TapHub();
  closeReason: CloseReason | undefined;
  readonly #onGone: () => void;
  constructor(id: string, onGone: () => void) {
    super();
    this.#onGone = onGone;
    this.id = id;
  }
  /** What the WHEP route does, without SDP: create the viewer with its initial gate, then announce it. */
  addViewer(id: string, jurisdiction: string | undefined, initialGate?: Partial<ViewerGateState>): FakeViewer {
    const v = new FakeViewer(this.id, id, { jurisdiction, initialGate });
    this.viewers.set(id, v);
    v.on('close', () => this.viewers.delete(id));
    this.emit('viewer', v);
    return v;
  }
  requestKeyFrame(): void {}
  close(reason: CloseReason): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    for (const v of [...this.viewers.values()]) v.close(reason);
    this.#onGone();
    this.emit('close', reason);
  }
}

export class FakeSfu extends EventEmitter implements Sfu {
  readonly engine = 'werift';
  readonly slateReady = Promise.resolve();
  readonly #streams = new Map<string, FakeStream>();
  #n = 0;
  /** New sessions start connected (default), or wait for connectAll() (admission tests). */
  connectSessions = true;
  /** Marks every session connected and tells its listeners. */
  connectAll(): void {
    for (const s of this.#streams.values()) {
      for (const v of s.viewers.values()) {
        if (v.connected) continue;
        v.connected = true;
        v.emit('connected');
      }
      if (!s.connected) {
        s.connected = true;
        s.emit('connected');
      }
    }
  }
  async engineStats(): Promise<EngineStats> {
    let viewers = 0;
    for (const s of this.#streams.values()) viewers += s.viewers.size;
    return {
      engine: 'werift',
      streams: this.#streams.size,
      viewers,
      consumers: viewers * 2,
      packetsForwarded: 0,
      bytesForwarded: 0,
      workers: 0,
      workerCpuMs: 0,
      workerDeaths: 0,
      realtimeWorkers: 0,
      realtimeDemotions: 0,
    };
  }
  async publish(
    streamId: string,
    offerSdp: string,
    options?: PublisherOptions,
  ): Promise<{ stream: Stream; answerSdp: string }> {
    if (!offerSdp.startsWith('v=0'))
      throw Object.assign(new Error('bad SDP'), { code: 'SFU_ERR_BAD_SDP', statusCode: 400 });
    if (this.#streams.has(streamId) && !options?.replace)
      throw Object.assign(new Error('already live'), { code: 'SFU_ERR_ALREADY_LIVE', statusCode: 409 });
    this.#streams.get(streamId)?.close({ code: 'replaced', message: 'replaced' });
    const s: FakeStream = new FakeStream(
      streamId,
      () => this.#streams.get(streamId) === s && this.#streams.delete(streamId),
    );
    s.connected = this.connectSessions;
    if (options?.onClose) s.on('close', options.onClose);
    this.#streams.set(streamId, s);
    this.emit('stream', s);
    return { stream: s, answerSdp: 'v=0\r\ns=fake-answer\r\n' };
  }
  /** A live stream without SDP (enforcer and pipeline tests); `publish` is the WHIP route's way. */
  add(streamId: string): FakeStream {
    const s: FakeStream = new FakeStream(
      streamId,
      () => this.#streams.get(streamId) === s && this.#streams.delete(streamId),
    );
    this.#streams.set(streamId, s);
    this.emit('stream', s);
    return s;
  }
  async view(
    streamId: string,
    offerSdp: string,
    options: ViewerOptions = {},
  ): Promise<{ viewer: Viewer; answerSdp: string }> {
    const s = this.#streams.get(streamId);
    if (!s) throw Object.assign(new Error('no such stream'), { code: 'SFU_ERR_STREAM_NOT_FOUND', statusCode: 404 });
    if (!offerSdp.startsWith('v=0'))
      throw Object.assign(new Error('bad SDP'), { code: 'SFU_ERR_BAD_SDP', statusCode: 400 });
    const v = new FakeViewer(streamId, options.viewerId ?? `v${++this.#n}`, options);
    v.connected = this.connectSessions;
    s.viewers.set(v.id, v);
    v.on('close', () => s.viewers.delete(v.id));
    s.emit('viewer', v);
    return { viewer: v, answerSdp: 'v=0\r\ns=fake-answer\r\n' };
  }
  getStream(streamId: string): FakeStream | undefined {
    return this.#streams.get(streamId);
  }
  streams(): IterableIterator<Stream> {
    return this.#streams.values();
  }
  async close(): Promise<void> {
    for (const s of [...this.#streams.values()]) s.close({ code: 'shutdown', message: 'sfu closed' });
  }
}
