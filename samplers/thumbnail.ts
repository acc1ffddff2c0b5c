// Small JPEG thumbnails of sampled frames, kept as evidence next to a decision (node-av's MJPEG
// encoder; synchronous, a few ms for a 320-wide picture). Call it off the forwarding thread where
// possible (in the inference path, or only for samples that led to a restriction).
import { Codec, CodecContext, FFmpegError, Frame, Packet, Rational, SoftwareScaleContext } from 'node-av';
import {
  AV_CODEC_FLAG_QSCALE,
  AV_PIX_FMT_RGB24,
  AV_PIX_FMT_YUVJ420P,
  AVERROR_EAGAIN,
  AVERROR_EOF,
  FF_ENCODER_MJPEG,
  FF_QP2LAMBDA,
  SWS_BILINEAR,
} from 'node-av/constants';
import type { RgbFrame } from './preprocess.ts';

export interface JpegThumbnailOptions {
  /** Largest width (px); the picture is scaled down to it, aspect kept. Default 320. */
  maxWidth: number;
  /** JPEG quantiser scale, 2 (best) .. 31 (smallest). Default 6. */
  qscale: number;
}

const DEFAULTS: Readonly<JpegThumbnailOptions> = Object.freeze({ maxWidth: 320, qscale: 6 });

/** Encodes an RGB24 frame as a baseline JPEG (JFIF) no wider than maxWidth. */
export function jpegThumbnail(frame: RgbFrame, opts: Partial<JpegThumbnailOptions> = {}): Uint8Array {
  const o = { ...DEFAULTS, ...opts };
  let w = Math.min(frame.width, o.maxWidth);
  let h = Math.max(2, Math.round((frame.height * w) / frame.width));
  w = Math.max(2, w - (w & 1));
  h -= h & 1;
  const src = new Frame();
  const dst = new Frame();
  const sws = new SoftwareScaleContext();
  const ctx = new CodecContext();
  const pkt = new Packet();
  try {
    src.alloc();
    src.width = frame.width;
    src.height = frame.height;
    src.format = AV_PIX_FMT_RGB24;
    FFmpegError.throwIfError(src.allocBuffer(), 'thumbnail source');
    FFmpegError.throwIfError(
      src.fromBuffer(Buffer.from(frame.rgb.buffer, frame.rgb.byteOffset, frame.width * frame.height * 3)),
      'thumbnail fill',
    );
    dst.alloc();
    dst.width = w;
    dst.height = h;
    dst.format = AV_PIX_FMT_YUVJ420P;
    FFmpegError.throwIfError(dst.allocBuffer(), 'thumbnail frame');
    sws.getContext(frame.width, frame.height, AV_PIX_FMT_RGB24, w, h, AV_PIX_FMT_YUVJ420P, SWS_BILINEAR);
    FFmpegError.throwIfError(sws.initContext(), 'thumbnail scaler');
    sws.scaleFrameSync(dst, src);
    const codec = Codec.findEncoderByName(FF_ENCODER_MJPEG);
    if (!codec) throw new Error('node-av has no MJPEG encoder');
    ctx.allocContext3(codec);
    ctx.width = w;
    ctx.height = h;
    ctx.pixelFormat = AV_PIX_FMT_YUVJ420P;
    ctx.timeBase = new Rational(1, 1);
    ctx.setFlags(AV_CODEC_FLAG_QSCALE);
    ctx.globalQuality = o.qscale * FF_QP2LAMBDA;
    FFmpegError.throwIfError(ctx.open2Sync(codec, null), 'thumbnail encoder');
    dst.pts = 0n;
    dst.quality = o.qscale * FF_QP2LAMBDA;
    FFmpegError.throwIfError(ctx.sendFrameSync(dst), 'thumbnail encode');
    ctx.sendFrameSync(null);
    pkt.alloc();
    const ret = ctx.receivePacketSync(pkt);
    if (ret === AVERROR_EAGAIN || ret === AVERROR_EOF || !pkt.data)
      throw new Error('MJPEG encoder returned no picture');
    FFmpegError.throwIfError(ret, 'thumbnail packet');
    return new Uint8Array(pkt.data);
  } finally {
    pkt.free();
    ctx.freeContext();
    sws.freeContext();
    src.free();
    dst.free();
  }
}
