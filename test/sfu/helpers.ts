// A tiny fastify app around an SFU engine for the SFU tests (the real server wires more). Every SFU
// suite runs once per engine: `for (const engine of ENGINES) describe(`... [${engine}]`, ...)`.

import Fastify from 'fastify';
import {
  AVERROR_EAGAIN,
  AVERROR_EOF,
  Codec,
  CodecContext,
  FF_DECODER_H264,
  FF_DECODER_VP8,
  Frame,
  Packet,
} from 'node-av';
import type { FastifyInstance } from 'fastify';
import { createWeriftSfu } from '../../sfu/werift/index.ts';
import type { WeriftSfu } from '../../sfu/werift/index.ts';
import { mediasoupWorkerBin } from '../../sfu/mediasoup/worker-bin.ts';
import type { MediasoupSfu } from '../../sfu/mediasoup/index.ts';
import type { EngineName, Sfu } from '../../sfu/types.ts';
import { pageRoutes, webrtcRoutes } from '../../server/routes/webrtc.ts';
import type { WebrtcRoutesOptions } from '../../server/routes/webrtc.ts';

/**
 * The engines every SFU suite runs against. mediasoup needs its worker binary (`npm run
 * mediasoup:worker`, which CI runs): without one its suites fail and say so, unless
 * MEDIASOUP_WORKER_OPTIONAL=1 leaves them out (a machine where no worker can be built).
 */
export const ENGINES: readonly EngineName[] =
  process.env.MEDIASOUP_WORKER_OPTIONAL === '1' && !mediasoupWorkerBin() ? ['werift'] : ['werift', 'mediasoup'];

export interface TestServer {
  app: FastifyInstance;
  sfu: Sfu;
  engine: EngineName;
  /** The werift engine, for its datagram counters; undefined on mediasoup. */
  werift: WeriftSfu | undefined;
  /** The mediasoup engine, for its worker pool; undefined on werift. */
  mediasoup: MediasoupSfu | undefined;
  base: string;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface TestSfuOptions {
  /** Sessions that have not connected by then are closed (ms). Default 8000. */
  connectTimeoutMs?: number;
  /** mediasoup workers. Default 2. */
  workers?: number;
  /** Connected sessions that go silent are closed after this long (ms). Default: the engine's (15000). */
  idleTimeoutMs?: number;
  /** werift: the media port range. Default: ephemeral ports. */
  udpPortRange?: [number, number];
}

async function createEngine(
  engine: EngineName,
  options: TestSfuOptions,
): Promise<{ sfu: Sfu; werift?: WeriftSfu; mediasoup?: MediasoupSfu }> {
  if (engine === 'werift') {
    const werift = createWeriftSfu({
      connectTimeoutMs: options.connectTimeoutMs ?? 8000,
      idleTimeoutMs: options.idleTimeoutMs,
      udpPortRange: options.udpPortRange,
    });
    return { sfu: werift, werift };
  }
  if (!mediasoupWorkerBin())
    throw new Error(
      'no mediasoup worker binary: run `npm run mediasoup:worker` (or set MEDIASOUP_WORKER_OPTIONAL=1 to test werift alone)',
    );
  const { createMediasoupSfu } = await import('../../sfu/mediasoup/index.ts');
  const mediasoup = await createMediasoupSfu({
    connectTimeoutMs: options.connectTimeoutMs ?? 8000,
    idleTimeoutMs: options.idleTimeoutMs,
    workers: options.workers ?? 2,
    listenAddress: '127.0.0.1',
  });
  return { sfu: mediasoup, mediasoup };
}

export async function startServer(
  options: { engine?: EngineName; sfu?: TestSfuOptions; routes?: Omit<WebrtcRoutesOptions, 'sfu'> } = {},
): Promise<TestServer> {
  const engine = options.engine ?? 'werift';
  const { sfu, werift, mediasoup } = await createEngine(engine, options.sfu ?? {});
  const app = Fastify({ logger: false });
  await app.register(webrtcRoutes, { sfu, ...options.routes });
  await app.register(pageRoutes);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await sfu.close();
    await app.close();
  };
  return { app, sfu, engine, werift, mediasoup, base: `http://127.0.0.1:${port}`, close, [Symbol.asyncDispose]: close };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

export interface DecodedPicture {
  width: number;
  height: number;
  /** Mean of the luma plane (0..255). */
  meanLuma: number;
  /** Share of luma samples above 200 (the slate's white text). */
  brightShare: number;
}

/**
 * Feeds packets in order to an FFmpeg decoder (node-av) and hands every decoded frame to `onFrame`
 * (the frame is reused: read it there). `setup` may set context fields before the decoder opens.
 */
export function decodeWith(
  decoderName: Parameters<typeof Codec.findDecoderByName>[0],
  packets: Uint8Array[],
  onFrame: (frame: Frame) => void,
  setup?: (ctx: CodecContext) => void,
): void {
  const dec = Codec.findDecoderByName(decoderName);
  if (!dec) throw new Error(`no decoder ${String(decoderName)}`);
  const ctx = new CodecContext();
  ctx.allocContext3(dec);
  ctx.threadCount = 1;
  setup?.(ctx);
  if (ctx.open2Sync(dec, null) < 0) throw new Error(`open decoder ${String(decoderName)}`);
  const pkt = new Packet();
  pkt.alloc();
  const frame = new Frame();
  frame.alloc();
  const drain = (): void => {
    for (;;) {
      const ret = ctx.receiveFrameSync(frame);
      if (ret === AVERROR_EAGAIN || ret === AVERROR_EOF || ret < 0) break;
      onFrame(frame);
      frame.unref();
    }
  };
  for (const p of packets) {
    pkt.data = Buffer.from(p);
    const sent = ctx.sendPacketSync(pkt);
    pkt.unref();
    if (sent >= 0 || sent === AVERROR_EAGAIN) drain();
  }
  ctx.sendPacketSync(null);
  drain();
  ctx.freeContext();
}

/** Decodes VP8 frames or H264 access units in order with FFmpeg; returns one entry per decoded picture. */
export function decodePictures(codec: 'VP8' | 'H264', frames: Uint8Array[]): DecodedPicture[] {
  const out: DecodedPicture[] = [];
  decodeWith(codec === 'H264' ? FF_DECODER_H264 : FF_DECODER_VP8, frames, (frame) => {
    const y = frame.data?.[0];
    const stride = frame.linesize[0] ?? frame.width;
    let sum = 0;
    let bright = 0;
    if (y) {
      for (let r = 0; r < frame.height; r++) {
        for (let c = 0; c < frame.width; c++) {
          const v = y[r * stride + c]!;
          sum += v;
          if (v > 200) bright++;
        }
      }
    }
    const n = frame.width * frame.height;
    out.push({ width: frame.width, height: frame.height, meanLuma: sum / n, brightShare: bright / n });
  });
  return out;
}
