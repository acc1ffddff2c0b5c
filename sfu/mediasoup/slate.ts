// The slate layer of the mediasoup gates: per worker and video codec one DirectTransport producer,
// fed from Node with slate keyframes and piped into the router of every stream of that codec. The
// JavaScript cost is per worker and codec, never per viewer or per stream: every stream's gate and
// every blanked viewer is served by the worker from there. The feed idles at one frame a second
// (a blanked viewer's picture does not change; the layer stays active for the worker, which marks a
// simulcast stream inactive after 1.5 s without packets) and sends one at once when a viewer is
// switched to the slate or connects blanked (kick), since a layer switch waits for a keyframe of the
// target layer. Every slate frame crosses two in-worker hops per stream (the pipe into the stream's
// router, then the gate's PlainTransport pair), so the idle rate is paid per stream by the worker.

import type { Producer, Router } from 'mediasoup/types';
import { packetizeH264, packetizeVp8 } from '../../media/packetize.ts';
import type { ChosenCodec } from '../sdp.ts';
import type { SlateFrames } from '../slate.ts';
import { routerCodec } from './sdp.ts';
import type { MediaWorker } from './workers.ts';

/** A 12-byte RTP header (RFC 3550 5.1) in front of a payload: V=2, no padding, extension or CSRC. */
export function rtpPacket(
  payloadType: number,
  sequenceNumber: number,
  timestamp: number,
  ssrc: number,
  marker: boolean,
  payload: Uint8Array,
): Buffer {
  const out = Buffer.allocUnsafe(12 + payload.length);
  out[0] = 0x80;
  out[1] = (marker ? 0x80 : 0) | (payloadType & 0x7f);
  out.writeUInt16BE(sequenceNumber & 0xffff, 2);
  out.writeUInt32BE(timestamp >>> 0, 4);
  out.writeUInt32BE(ssrc >>> 0, 8);
  out.set(payload, 12);
  return out;
}

/** A 90 kHz RTP timestamp of now. */
function rtpNow(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 90) >>> 0;
}

/** One codec's slate on one worker: its router, the producer and the sending state. */
class SlateFeed {
  seq = Math.floor(Math.random() * 0xffff);
  pictureId = Math.floor(Math.random() * 0x7fff);
  index = 0;
  /** When the last frame went out (performance.now()), and the frame promised to kicks that came too soon after it. */
  sentAt = -Infinity;
  trailing: NodeJS.Timeout | undefined;
  constructor(
    readonly router: Router,
    readonly producer: Producer,
    readonly codec: ChosenCodec,
    readonly payloadType: number,
    readonly ssrc: number,
  ) {}
}

/** Kicks closer than this to the last frame are served by one frame this long after it (ms): a verdict that blanks a jurisdiction's viewers kicks once per viewer. */
const KICK_GAP_MS = 100;

export interface SlateOptions {
  /** Slate frames a second between kicks. Default 1 (MediasoupSfuOptions.slateFps). */
  fps: number;
  /** The encoded slate pictures, or undefined while they are being encoded. */
  frames(codec: 'VP8' | 'H264'): SlateFrames | undefined;
}

function feedKey(worker: MediaWorker, codec: ChosenCodec): string {
  const fmtp =
    codec.name === 'H264'
      ? codec.fmtp
          .toLowerCase()
          .split(';')
          .filter((p) => /packetization-mode|profile-level-id/.test(p))
          .sort()
          .join(';')
      : '';
  return `${worker.index}:${worker.pid}:${codec.name}:${fmtp}`;
}

export class SlateSource {
  readonly #feeds = new Map<string, Promise<SlateFeed>>();
  readonly #timer: NodeJS.Timeout;
  #closed = false;

  constructor(readonly options: SlateOptions) {
    this.#timer = setInterval(() => this.#tick(), Math.round(1000 / Math.max(0.1, options.fps)));
    this.#timer.unref();
  }

  /**
   * A slate frame now on the feed of `worker` and `codec` (a viewer was just switched to the slate
   * layer, or connected blanked), or within KICK_GAP_MS of the last one. No feed yet: nothing to do.
   */
  kick(worker: MediaWorker, codec: ChosenCodec): void {
    const pending = this.#feeds.get(feedKey(worker, codec));
    if (!pending || this.#closed) return;
    void pending.then(
      (feed) => {
        if (feed.trailing || this.#closed) return;
        const wait = feed.sentAt + KICK_GAP_MS - performance.now();
        if (wait <= 0) return this.#send(feed, rtpNow());
        feed.trailing = setTimeout(() => {
          feed.trailing = undefined;
          this.#send(feed, rtpNow());
        }, wait);
        feed.trailing.unref();
      },
      () => undefined,
    );
  }

  /** The slate producer for a codec, piped into `router` (a stream's router on the same worker). */
  async pipeInto(worker: MediaWorker, router: Router, codec: ChosenCodec): Promise<Producer> {
    const feed = await this.#feed(worker, codec);
    const { pipeProducer } = await feed.router.pipeToRouter({ producerId: feed.producer.id, router, keepId: false });
    if (!pipeProducer) throw new Error('slate pipe produced nothing');
    return pipeProducer;
  }

  #feed(worker: MediaWorker, codec: ChosenCodec): Promise<SlateFeed> {
    const key = feedKey(worker, codec);
    let feed = this.#feeds.get(key);
    if (!feed) {
      feed = this.#createFeed(worker, codec);
      this.#feeds.set(key, feed);
      feed.catch(() => this.#feeds.delete(key));
      worker.worker.observer.once('close', () => this.#feeds.delete(key));
    }
    return feed;
  }

  async #createFeed(worker: MediaWorker, codec: ChosenCodec): Promise<SlateFeed> {
    const payloadType = 96;
    const router = await worker.worker.createRouter({ mediaCodecs: [routerCodec({ ...codec, payloadType })] });
    const transport = await router.createDirectTransport();
    const ssrc = (Math.random() * 0xffffffff) >>> 0;
    const producer = await transport.produce({
      kind: 'video',
      rtpParameters: {
        codecs: [
          {
            mimeType: `video/${codec.name}`,
            payloadType,
            clockRate: 90000,
            parameters: routerCodec(codec).parameters,
            rtcpFeedback: [],
          },
        ],
        encodings: [{ ssrc }],
        headerExtensions: [],
        rtcp: { cname: 'slate', reducedSize: true },
      },
    });
    return new SlateFeed(router, producer, codec, payloadType, ssrc);
  }

  #tick(): void {
    if (this.#closed) return;
    const timestamp = rtpNow();
    for (const pending of this.#feeds.values()) {
      void pending.then(
        (feed) => this.#send(feed, timestamp),
        () => undefined,
      );
    }
  }

  #send(feed: SlateFeed, timestamp: number): void {
    if (feed.producer.closed || this.#closed) return;
    // a kick just served counts as this tick's frame, and the other way round
    const now = performance.now();
    if (now - feed.sentAt < KICK_GAP_MS / 2) return;
    feed.sentAt = now;
    const codec = feed.codec.name === 'H264' ? 'H264' : 'VP8';
    const frames = this.options.frames(codec);
    if (!frames) return;
    const frame = frames.keyframes[feed.index++ % frames.keyframes.length]!;
    const payloads =
      codec === 'VP8'
        ? packetizeVp8(frame, 1200, (feed.pictureId = (feed.pictureId + 1) & 0x7fff))
        : packetizeH264(frame, 1200);
    payloads.forEach((payload, i) => {
      feed.seq = (feed.seq + 1) & 0xffff;
      feed.producer.send(
        rtpPacket(feed.payloadType, feed.seq, timestamp, feed.ssrc, i === payloads.length - 1, payload),
      );
    });
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    for (const pending of this.#feeds.values())
      void pending.then(
        (f) => {
          clearTimeout(f.trailing);
          f.router.close();
        },
        () => undefined,
      );
    this.#feeds.clear();
  }
}
