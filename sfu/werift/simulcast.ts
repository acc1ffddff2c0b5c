// Simulcast ingest on the werift engine. A publisher that sends several layers of one video track
// (OBS with simulcast on: rids 0/1/2 on one m-line, each layer its own SSRC and rid header extension)
// has exactly one of them forwarded: the werift fan-out rewrites every packet to the viewer's one
// SSRC, so two layers interleaved would reach the decoder as garbage. The largest layer is chosen
// (sfu/simulcast.ts) once each layer's first keyframe has shown its size, or after `windowMs`, and
// fixed for the stream's life: switching layers would need the layers' timelines related through their
// sender reports, which OBS never needs (it sends every layer all the time). The chosen layer's
// packets since its keyframe are kept meanwhile, so the choice loses none of it.

import type { RtpPacket } from 'werift';
import { keyframePictureSize } from '../../media/keyframe.ts';
import { LayerSizes } from '../simulcast.ts';

export interface LayerDecision {
  rid: string;
  /** The chosen layer's packets from its latest keyframe start (oldest first), to be replayed. */
  backlog: RtpPacket[];
}

export class SimulcastChoice {
  readonly #sizes: LayerSizes;
  readonly #gops = new Map<string, { packets: RtpPacket[]; bytes: number }>();
  readonly #seen = new Set<string>();
  #firstAt: number | undefined;
  chosen: string | undefined;

  constructor(
    rids: readonly string[],
    readonly codec: string,
    /** Longest wait for every layer's keyframe before the largest seen is chosen (ms). */
    readonly windowMs: number,
    /** Bound of the packets kept per layer while measuring (bytes of payload). */
    readonly maxBacklogBytes: number,
  ) {
    this.#sizes = new LayerSizes(rids);
  }

  /**
   * A packet of layer `rid` while no layer is chosen; returns the decision when this packet makes it.
   * `requestKeyframe` is called once per layer that starts between keyframes (its size is unknown
   * until its next one).
   */
  observe(
    rid: string,
    rtp: RtpPacket,
    keyStart: boolean,
    now: number,
    requestKeyframe: (ssrc: number) => void,
  ): LayerDecision | undefined {
    this.#firstAt ??= now;
    if (!this.#seen.has(rid)) {
      this.#seen.add(rid);
      if (!keyStart) requestKeyframe(rtp.header.ssrc);
    }
    this.#sizes.note(rid, rtp.payload.length, keyStart ? keyframePictureSize(this.codec, rtp.payload) : undefined);
    let gop = this.#gops.get(rid);
    if (keyStart) {
      gop = { packets: [], bytes: 0 };
      this.#gops.set(rid, gop);
    }
    if (gop) {
      gop.packets.push(rtp);
      gop.bytes += rtp.payload.length;
      if (gop.bytes > this.maxBacklogBytes) this.#gops.delete(rid);
    }
    if (!this.#sizes.complete && now - this.#firstAt < this.windowMs) return undefined;
    const best = this.#sizes.largest()!;
    this.chosen = best;
    const backlog = this.#gops.get(best)?.packets ?? [];
    this.#gops.clear();
    return { rid: best, backlog };
  }
}
