// One viewer's egress on the werift engine: per-kind outbound state (gate, waiting for a keyframe,
// source/slate switching), pause/resume, and the lip-sync correction of its sender reports.

import type { RTCPeerConnection, RTCRtpSender, RtpPacket } from 'werift';
import { RtpHeader, RtpPacket as WeriftRtpPacket } from 'werift';
import { packetizeH264, packetizeVp8 } from '../../media/packetize.ts';
import { SafeEmitter } from '../emitter.ts';
import type { ChosenCodec } from '../sdp.ts';
import type { SlateFrames } from '../slate.ts';
import type { CloseReason, MediaKind, Viewer, ViewerGateState, ViewerStats } from '../types.ts';
import { closeWithNotify } from './close-notify.ts';
import { watchLiveness, type Liveness } from './liveness.ts';
import { setSenderReportClock } from './peer.ts';
import type { IngestTrack, WeriftStream } from './stream.ts';

type ViewerEvents = { close: [CloseReason]; gate: [ViewerGateState]; connected: [] };

/** Outbound state of one kind for one viewer. */
class Egress {
  /** Last RTP timestamp sent, on the publisher's timeline (before werift's re-basing). */
  lastSourceTs: number | undefined;
  /** The next packet starts after a gap (pause, mute, slate switch): re-base seq/timestamps first. */
  rebase = false;
  waitingKeyframe: boolean;
  /** Nothing of the live track was sent yet: the first forward may start from the cached GOP. */
  fresh = true;
  waitingSince = 0;
  lastKeyframeRequest = 0;
  slateSeq = 0;
  slateIndex = 0;
  slatePictureId = 0;
  constructor(
    readonly kind: MediaKind,
    readonly sender: RTCRtpSender,
    readonly codec: ChosenCodec,
  ) {
    this.waitingKeyframe = kind === 'video';
    this.waitingSince = performance.now();
  }
}

export interface ViewerSlate {
  /** Slate frames for a codec, or undefined while they are still being encoded. */
  get(codec: 'VP8' | 'H264'): SlateFrames | undefined;
  /** Slate frames per second while blanked. */
  fps: number;
}

export class WeriftViewer extends SafeEmitter<ViewerEvents> implements Viewer {
  readonly #gate: ViewerGateState;
  #paused = false;
  #closed = false;
  #slateTimer: NodeJS.Timeout | undefined;
  readonly #video: Egress | undefined;
  readonly #audio: Egress | undefined;
  readonly #stats: ViewerStats = { packetsForwarded: 0, bytesForwarded: 0, packetsDropped: 0, keyframeRequests: 0 };
  connected = false;
  #connectTimer: NodeJS.Timeout;
  readonly #liveness: Liveness;
  readonly #slate: ViewerSlate;

  constructor(
    readonly id: string,
    readonly stream: WeriftStream,
    readonly pc: RTCPeerConnection,
    egress: { kind: MediaKind; sender: RTCRtpSender; codec: ChosenCodec }[],
    readonly jurisdiction: string | undefined,
    initialGate: Partial<ViewerGateState> | undefined,
    slate: ViewerSlate,
  ) {
    super();
    this.#slate = slate;
    const v = egress.find((e) => e.kind === 'video');
    const a = egress.find((e) => e.kind === 'audio');
    this.#video = v ? new Egress('video', v.sender, v.codec) : undefined;
    this.#audio = a ? new Egress('audio', a.sender, a.codec) : undefined;
    this.#gate = {
      video: this.#video ? (initialGate?.video === 'blank' ? 'blank' : 'forward') : 'closed',
      audio: this.#audio ? (initialGate?.audio === 'mute' ? 'mute' : 'forward') : 'closed',
    };
    if (this.#video && this.#gate.video === 'blank') this.#video.fresh = false;
    if (this.#video) {
      this.#video.sender.onPictureLossIndication.subscribe(() => {
        const eg = this.#video!;
        // a viewer's own PLI while we forward the source: pass it upstream (throttled there)
        if (this.#gate.video === 'forward' && !this.#paused) {
          this.#stats.keyframeRequests++;
          this.stream.requestKeyFrame(stream.trackOfKind('video')?.info.trackId);
        } else if (this.#gate.video === 'blank') {
          this.#sendSlateFrame();
        }
        void eg;
      });
    }
    pc.connectionStateChange.subscribe((state) => {
      if (state === 'connected' && !this.connected) {
        this.connected = true;
        this.emit('connected');
        if (this.#gate.video === 'blank') this.#startSlate();
        else if (this.#video?.waitingKeyframe) this.stream.requestKeyFrame();
      }
      if (state === 'failed') this.close({ code: 'error', message: 'viewer connection failed' });
      if (state === 'closed' || state === 'disconnected')
        this.close({ code: 'viewer_left', message: 'viewer disconnected' });
    });
    this.#connectTimer = setTimeout(() => {
      if (!this.connected) this.close({ code: 'error', message: 'viewer never connected' });
    }, stream.tuning.connectTimeoutMs);
    this.#liveness = watchLiveness(
      pc,
      stream.tuning.idleTimeoutMs,
      () => this.connected,
      (silentMs) =>
        this.close({
          code: 'viewer_left',
          message: `the viewer went silent: no STUN, RTP or RTCP for ${Math.round(silentMs / 1000)} s`,
        }),
    );
  }

  get streamId(): string {
    return this.stream.id;
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

  stats(): ViewerStats {
    return { ...this.#stats };
  }

  /** How long this viewer has been waiting for a keyframe since its last request (ms), 0 when not waiting. */
  waitingForKeyframeSince(now: number): number {
    const eg = this.#video;
    if (!eg || !eg.waitingKeyframe || this.#paused || this.#gate.video !== 'forward' || !this.connected) return 0;
    return now - Math.max(eg.waitingSince, eg.lastKeyframeRequest);
  }

  noteKeyframeRequested(now: number): void {
    if (this.#video) this.#video.lastKeyframeRequest = now;
    this.#stats.keyframeRequests++;
  }

  /** Hot path: called for every packet of the stream. */
  forward(track: IngestTrack, rtp: RtpPacket, keyStart: boolean): void {
    // before DTLS is up werift drops what we send: a keyframe consumed then would be lost
    if (this.#closed || this.#paused || !this.connected) return;
    const eg = track.info.kind === 'video' ? this.#video : this.#audio;
    if (!eg) return;
    if (eg.kind === 'video') {
      if (this.#gate.video !== 'forward') return;
      if (eg.waitingKeyframe) {
        // A joining viewer starts from the current GOP (the keyframe and what followed), sent at once:
        // only on the first start, never after a blank (the GOP may hold what was blanked).
        const gop = !keyStart && eg.fresh ? track.gop : undefined;
        if (!keyStart && !gop) {
          this.#stats.packetsDropped++;
          return;
        }
        eg.waitingKeyframe = false;
        eg.fresh = false;
        if (gop) for (const p of gop) this.#send(eg, track, p);
      }
    } else if (this.#gate.audio !== 'forward') {
      return;
    }
    this.#send(eg, track, rtp);
  }

  #send(eg: Egress, track: IngestTrack, rtp: RtpPacket): void {
    const ts = rtp.header.timestamp;
    if (eg.rebase) {
      this.#rebase(eg, rtp.header.sequenceNumber, ts);
    }
    eg.lastSourceTs = ts;
    eg.sender.sendRtp(rtp).catch(this.#onSendError);
    const ntp = track.ntpFor(ts);
    if (ntp !== undefined) setSenderReportClock(eg.sender, ntp);
    this.#stats.packetsForwarded++;
    this.#stats.bytesForwarded += rtp.payload.length;
  }

  readonly #onSendError = (err: unknown): void => {
    void err;
    this.#stats.packetsDropped++;
  };

  /** Makes the next packet follow the last one sent: contiguous seq, timestamp advanced by the real gap. */
  #rebase(eg: Egress, seq: number, ts: number): void {
    eg.rebase = false;
    if (eg.lastSourceTs === undefined) return;
    let step = (ts - eg.lastSourceTs) >>> 0;
    if (step === 0 || step > 0x7fffffff) step = 1;
    eg.sender.replaceRTP({ sequenceNumber: seq, timestamp: ts }, true, step);
  }

  setVideoGate(state: 'forward' | 'blank'): void {
    const eg = this.#video;
    if (this.#closed || !eg || this.#gate.video === state) return;
    this.#gate.video = state;
    eg.rebase = true;
    if (state === 'blank') {
      eg.fresh = false;
      this.#startSlate();
    } else {
      this.#stopSlate();
      eg.waitingKeyframe = true;
      eg.waitingSince = performance.now();
      this.stream.requestKeyFrame();
    }
    this.emit('gate', this.gate);
  }

  setAudioGate(state: 'forward' | 'mute'): void {
    const eg = this.#audio;
    if (this.#closed || !eg || this.#gate.audio === state) return;
    this.#gate.audio = state;
    eg.rebase = true;
    this.emit('gate', this.gate);
  }

  pause(): void {
    if (this.#closed || this.#paused) return;
    this.#paused = true;
    this.#stopSlate();
    if (this.#video) this.#video.rebase = true;
    if (this.#audio) this.#audio.rebase = true;
  }

  resume(): void {
    if (this.#closed || !this.#paused) return;
    this.#paused = false;
    if (this.#gate.video === 'blank') {
      this.#startSlate();
    } else if (this.#video) {
      this.#video.waitingKeyframe = true;
      this.#video.waitingSince = performance.now();
      this.stream.requestKeyFrame();
    }
  }

  #startSlate(): void {
    if (this.#slateTimer || !this.connected || this.#paused || this.#closed) return;
    this.#sendSlateFrame();
    this.#slateTimer = setInterval(() => this.#sendSlateFrame(), Math.round(1000 / Math.max(0.5, this.#slate.fps)));
  }

  #stopSlate(): void {
    if (this.#slateTimer) clearInterval(this.#slateTimer);
    this.#slateTimer = undefined;
  }

  #sendSlateFrame(): void {
    const eg = this.#video;
    if (!eg || this.#closed || this.#paused || this.#gate.video !== 'blank') return;
    const codec = eg.codec.name === 'H264' ? 'H264' : 'VP8';
    const frames = this.#slate.get(codec);
    if (!frames) return;
    const track = this.stream.trackOfKind('video');
    const now = performance.timeOrigin + performance.now();
    // slate timestamps continue the publisher's timeline so the return to the source needs no jump
    let ts = track?.timestampNow(now) ?? Math.round(now * 90) >>> 0;
    if (eg.lastSourceTs !== undefined && ((ts - eg.lastSourceTs) | 0) <= 0) ts = (eg.lastSourceTs + 1) >>> 0;
    const frame = frames.keyframes[eg.slateIndex++ % frames.keyframes.length]!;
    if (eg.slatePictureId === 0) eg.slatePictureId = ((track?.lastVp8PictureId ?? 0) + 100) & 0x7fff;
    const payloads =
      codec === 'VP8' ? packetizeVp8(frame, 1200, eg.slatePictureId++ & 0x7fff) : packetizeH264(frame, 1200);
    payloads.forEach((payload, i) => {
      const seq = (eg.slateSeq = (eg.slateSeq + 1) & 0xffff);
      if (eg.rebase) this.#rebase(eg, seq, ts);
      eg.lastSourceTs = ts;
      const header = new RtpHeader({
        payloadType: eg.codec.payloadType,
        sequenceNumber: seq,
        timestamp: ts,
        marker: i === payloads.length - 1,
        ssrc: 0,
      });
      eg.sender.sendRtp(new WeriftRtpPacket(header, Buffer.from(payload))).catch(this.#onSendError);
      const ntp = track?.ntpFor(ts);
      if (ntp !== undefined) setSenderReportClock(eg.sender, ntp);
      this.#stats.packetsForwarded++;
      this.#stats.bytesForwarded += payload.length;
    });
  }

  close(reason: CloseReason): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#gate.video = 'closed';
    this.#gate.audio = 'closed';
    this.#stopSlate();
    clearTimeout(this.#connectTimer);
    this.#liveness.stop();
    closeWithNotify(this.pc);
    this.emit('close', reason);
    this.removeAllListeners();
  }
}
