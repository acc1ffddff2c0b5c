// Which of a simulcast publisher's layers to forward, for both engines. SDP does not say which rid is
// the largest layer (OBS numbers them from its full output size down; mediasoup-client and LiveKit
// offer low to high; browsers as the page lists them), and bitrate is no proxy: in the OBS-shaped
// interop test the 256x144 layer carried 90 kbit/s and the 384x216 one 74. The keyframes say: each
// layer's keyframe declares its picture size (media/keyframe.ts keyframePictureSize), and the layer
// with the most pixels is forwarded, to viewers and the moderation tap alike.

/** Picture sizes and bytes seen per layer while a stream's layers are measured. */
export class LayerSizes {
  readonly #area = new Map<string, number>();
  readonly #bytes = new Map<string, number>();

  constructor(readonly rids: readonly string[]) {}

  note(rid: string, bytes: number, size: { width: number; height: number } | undefined): void {
    this.#bytes.set(rid, (this.#bytes.get(rid) ?? 0) + bytes);
    if (size) this.#area.set(rid, size.width * size.height);
  }

  /** Every announced layer has shown its size. */
  get complete(): boolean {
    return this.rids.every((r) => this.#area.has(r));
  }

  /** The layer with the most pixels among those seen, else the one with the most bytes; undefined before any. */
  largest(): string | undefined {
    const by = this.#area.size > 0 ? this.#area : this.#bytes;
    let best: string | undefined;
    for (const [rid, v] of by) if (best === undefined || v > by.get(best)!) best = rid;
    return best;
  }
}
