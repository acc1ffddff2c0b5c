// Rebuilds whole video frames from RTP packets of one track, tolerating reordering and loss.
// A frame is the run of packets from the one after the previous frame's last packet (or, at the
// start or after a loss, a packet that can open a frame) up to the packet with the marker bit, all
// with the same RTP timestamp and no sequence gap. An incomplete frame is dropped once newer
// packets have arrived for longer than the reorder wait; what follows a drop is flagged so the
// decoder can wait for a key frame.
import { PayloadFormatError } from './errors.ts';
import { H264ParameterSets, h264PacketCanStartFrame } from '../media/h264.ts';
import { Vp8PayloadDescriptor, depacketizeVp8 } from '../media/vp8.ts';

export interface AssemblerPacket {
  sequenceNumber: number;
  timestamp: number;
  marker: boolean;
  payload: Uint8Array;
  arrivedAt: number;
}

export interface AssembledFrame {
  timestamp: number;
  data: Uint8Array;
  keyframe: boolean;
  /** Arrival (server clock ms) of the packet that completed the frame. */
  arrivedAt: number;
  firstSeq: number;
  lastSeq: number;
  /** Frames were lost before this one: references may be missing until the next key frame. */
  afterLoss: boolean;
}

/** What a codec's payload format tells the assembler. */
export interface FramePayloadFormat {
  canStartFrame(payload: Uint8Array): boolean;
  depacketize(payloads: Uint8Array[]): { data: Uint8Array; keyframe: boolean };
}

export function vp8Format(): FramePayloadFormat {
  return {
    canStartFrame: (p) => p.length > 0 && Vp8PayloadDescriptor.deSerialize(p).startOfFrame,
    depacketize: depacketizeVp8,
  };
}

export function h264Format(): FramePayloadFormat {
  const sets = new H264ParameterSets();
  return { canStartFrame: h264PacketCanStartFrame, depacketize: (p) => sets.depacketize(p) };
}

export interface FrameAssemblerOptions {
  /** How long (ms, by packet arrival times) a gap may stay open before its frame is given up. Default 60. */
  reorderWaitMs?: number;
  /** Most packets held while waiting for a gap to fill. Default 1024. */
  maxPendingPackets?: number;
}

interface Held extends AssemblerPacket {
  ext: number;
}

export class FrameAssembler {
  readonly #pending = new Map<number, Held>();
  /** Extended sequence number of the last packet consumed (emitted or dropped); NaN before the first frame. */
  #doneExt = Number.NaN;
  #highestExt = Number.NaN;
  #lossPending = true;
  readonly #reorderWaitMs: number;
  readonly #maxPending: number;
  /** Frames given up (incomplete or undecodable payload). */
  droppedFrames = 0;
  /** Packets that came after their frame was already emitted or dropped. */
  latePackets = 0;
  readonly #format: FramePayloadFormat;

  constructor(format: FramePayloadFormat, opts: FrameAssemblerOptions = {}) {
    this.#format = format;
    this.#reorderWaitMs = opts.reorderWaitMs ?? 60;
    this.#maxPending = opts.maxPendingPackets ?? 1024;
  }

  /** Adds a packet; returns the frames it completed, oldest first. */
  push(pkt: AssemblerPacket): AssembledFrame[] {
    const ext = this.#extend(pkt.sequenceNumber);
    if (ext <= this.#doneExt || this.#pending.has(ext)) {
      this.latePackets++;
      return [];
    }
    this.#pending.set(ext, { ...pkt, ext });
    const out: AssembledFrame[] = [];
    for (;;) {
      const f = this.#tryComplete(pkt.arrivedAt);
      if (f === 'wait') break;
      if (f !== 'dropped') out.push(f);
    }
    return out;
  }

  /** Forgets everything; the next frame starts afresh (and is flagged afterLoss). */
  reset(): void {
    this.#pending.clear();
    this.#doneExt = Number.NaN;
    this.#highestExt = Number.NaN;
    this.#lossPending = true;
  }

  #extend(seq: number): number {
    if (Number.isNaN(this.#highestExt)) {
      this.#highestExt = seq + 0x10000; // room below for late packets
      return this.#highestExt;
    }
    const base = this.#highestExt - (this.#highestExt & 0xffff);
    let ext = base + seq;
    if (ext - this.#highestExt > 0x8000) ext -= 0x10000;
    else if (this.#highestExt - ext > 0x8000) ext += 0x10000;
    if (ext > this.#highestExt) this.#highestExt = ext;
    return ext;
  }

  #tryComplete(now: number): AssembledFrame | 'dropped' | 'wait' {
    if (this.#pending.size === 0) return 'wait';
    let start = this.#doneExt + 1;
    if (Number.isNaN(this.#doneExt)) {
      const s = this.#findStart(Number.NEGATIVE_INFINITY, undefined);
      if (s === undefined) return this.#maybeGiveUp(now, undefined);
      start = s;
    }
    const first = this.#pending.get(start);
    if (first) {
      const run: Held[] = [];
      for (let e = start; ; e++) {
        const p = this.#pending.get(e);
        if (!p || p.timestamp !== first.timestamp) break;
        run.push(p);
        if (p.marker) return this.#emit(run);
      }
    }
    return this.#maybeGiveUp(now, first?.timestamp);
  }

  #emit(run: Held[]): AssembledFrame | 'dropped' {
    for (const p of run) this.#pending.delete(p.ext);
    const last = run[run.length - 1];
    this.#doneExt = last.ext;
    for (const e of this.#pending.keys()) if (e <= this.#doneExt) this.#pending.delete(e);
    const afterLoss = this.#lossPending;
    let arrivedAt = 0;
    for (const p of run) if (p.arrivedAt > arrivedAt) arrivedAt = p.arrivedAt;
    try {
      if (!this.#format.canStartFrame(run[0].payload)) throw new PayloadFormatError('frame', 'does not begin a frame');
      const { data, keyframe } = this.#format.depacketize(run.map((p) => p.payload));
      this.#lossPending = false;
      return {
        timestamp: run[0].timestamp,
        data,
        keyframe,
        arrivedAt,
        firstSeq: run[0].sequenceNumber,
        lastSeq: last.sequenceNumber,
        afterLoss,
      };
    } catch {
      this.droppedFrames++;
      this.#lossPending = true;
      return 'dropped';
    }
  }

  /** Gives the head frame up when newer packets have waited long enough, resuming at the next frame start. */
  #maybeGiveUp(now: number, headTimestamp: number | undefined): 'dropped' | 'wait' {
    let oldest = Number.POSITIVE_INFINITY;
    for (const p of this.#pending.values()) if (p.arrivedAt < oldest) oldest = p.arrivedAt;
    if (now - oldest < this.#reorderWaitMs && this.#pending.size < this.#maxPending) return 'wait';
    const after = Number.isNaN(this.#doneExt) ? Number.NEGATIVE_INFINITY : this.#doneExt;
    const next = this.#findStart(after, headTimestamp);
    if (next === undefined) {
      if (this.#pending.size < this.#maxPending) return 'wait';
      this.#pending.clear();
      this.droppedFrames++;
      this.#lossPending = true;
      return 'dropped';
    }
    for (const e of [...this.#pending.keys()]) if (e < next) this.#pending.delete(e);
    if (!Number.isNaN(this.#doneExt) || headTimestamp !== undefined) this.droppedFrames++;
    this.#doneExt = next - 1;
    this.#lossPending = true;
    return 'dropped';
  }

  /** Smallest held packet after `after` that can open a frame and is not part of `skipTimestamp`. */
  #findStart(after: number, skipTimestamp: number | undefined): number | undefined {
    let best: number | undefined;
    for (const p of this.#pending.values()) {
      if (p.ext <= after || p.timestamp === skipTimestamp) continue;
      if (best !== undefined && p.ext >= best) continue;
      let ok: boolean;
      try {
        ok = this.#format.canStartFrame(p.payload);
      } catch {
        ok = false;
      }
      if (ok) best = p.ext;
    }
    return best;
  }
}
