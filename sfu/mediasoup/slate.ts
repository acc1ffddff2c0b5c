// The slate layer of the mediasoup gates: per worker and video codec one DirectTransport producer,
// fed from Node with slate keyframes at a low rate and piped into the router of every stream of that
// codec. The JavaScript cost is per worker and codec (slateFps frames a second), never per viewer or
// per stream: every stream's gate and every blanked viewer is served by the worker from there.

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

/** One codec's slate on one worker: its router, the producer and the sending state. */
class SlateFeed {
  seq = Math.floor(Math.random() * 0xffff);
  pictureId = Math.floor(Math.random() * 0x7fff);
  index = 0;
  constructor(
    readonly router: Router,
    readonly producer: Producer,
    readonly codec: ChosenCodec,
    readonly payloadType: number,
    readonly ssrc: number,
  ) {}
}

export interface SlateOptions {
  /** Slate frames a second. Blanking waits for the next one (a layer switch needs a keyframe). Default 5. */
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
    this.#timer = setInterval(() => this.#tick(), Math.round(1000 / Math.max(1, options.fps)));
    this.#timer.unref();
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
    const timestamp = Math.round((performance.timeOrigin + performance.now()) * 90) >>> 0;
    for (const pending of this.#feeds.values()) {
      void pending.then(
        (feed) => this.#send(feed, timestamp),
        () => undefined,
      );
    }
  }

  #send(feed: SlateFeed, timestamp: number): void {
    if (feed.producer.closed || this.#closed) return;
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
        (f) => f.router.close(),
        () => undefined,
      );
    this.#feeds.clear();
  }
}
