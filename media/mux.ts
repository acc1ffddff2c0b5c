// Remuxing encoded frames into a playable file, never transcoding: VP8 + Opus into WebM, H.264 +
// Opus into Matroska (FFmpeg's muxers through node-av). The evidence clips of restrictive decisions
// (server/evidence.ts) are written with it: what viewers were sent, byte for byte.
//
//   await muxFrames(path, [{ kind: 'video', codec: 'VP8', frames }, { kind: 'audio', codec: 'opus', frames }])
//     -> { container: 'webm', bytes, frames }   frames: { data, ptsMs, keyframe }, the first video one a keyframe
import {
  AV_CHANNEL_ORDER_NATIVE,
  AV_CH_LAYOUT_MONO,
  AV_CH_LAYOUT_STEREO,
  AV_CODEC_ID_H264,
  AV_CODEC_ID_OPUS,
  AV_CODEC_ID_VP8,
  AV_PKT_FLAG_KEY,
  AVMEDIA_TYPE_AUDIO,
  AVMEDIA_TYPE_VIDEO,
  FormatContext,
  Packet,
  Rational,
} from 'node-av';
import { statSync } from 'node:fs';
import { splitAnnexB } from './packetize.ts';
import { NAL_SPS, h264SpsSize } from './h264.ts';
import { vp8FrameSize } from './vp8.ts';

export interface MuxFrame {
  data: Uint8Array;
  /** Presentation time from the clip's start (ms). */
  ptsMs: number;
  keyframe: boolean;
}

export interface MuxTrack {
  kind: 'video' | 'audio';
  /** VP8 frames, H.264 Annex-B access units, or Opus packets. */
  codec: 'VP8' | 'H264' | 'opus';
  frames: MuxFrame[];
}

export interface MuxResult {
  container: 'webm' | 'matroska';
  /** File extension that goes with the container. */
  ext: 'webm' | 'mkv';
  bytes: number;
  frames: number;
  /** Video picture size, when known. */
  width?: number;
  height?: number;
}

export class MuxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MuxError';
  }
}

const MS = { num: 1, den: 1000 };

/** Picture size of an H.264 keyframe access unit (Annex B): what its SPS declares, cropping applied. */
function h264FrameSize(keyframe: Uint8Array): { width: number; height: number } | undefined {
  const sps = splitAnnexB(keyframe).find((n) => n.length > 0 && (n[0]! & 0x1f) === NAL_SPS);
  try {
    return sps ? h264SpsSize(sps) : undefined;
  } catch {
    return undefined;
  }
}

/** OpusHead (RFC 7845 5.1), the codec private data Matroska players expect. */
function opusHead(channels: number): Buffer {
  const b = Buffer.alloc(19);
  b.write('OpusHead', 0, 'ascii');
  b[8] = 1;
  b[9] = channels;
  b.writeUInt16LE(0, 10); // pre-skip: the packets are cut from a live stream, nothing to skip
  b.writeUInt32LE(48000, 12);
  b.writeInt16LE(0, 16);
  b[18] = 0;
  return b;
}

/**
 * Writes the tracks to `path` (the file is created or replaced). Video frames before the first
 * keyframe are skipped (nothing could decode them); the clip's time 0 is its first frame.
 */
export async function muxFrames(path: string, tracks: readonly MuxTrack[]): Promise<MuxResult> {
  const video = tracks.find((t) => t.kind === 'video');
  const h264 = video?.codec === 'H264';
  const container = h264 ? 'matroska' : 'webm';
  const prepared = tracks.map((t) => {
    if (t.kind !== 'video') return { ...t, frames: [...t.frames] };
    const k = t.frames.findIndex((f) => f.keyframe);
    return { ...t, frames: k < 0 ? [] : t.frames.slice(k) };
  });
  const usable = prepared.filter((t) => t.frames.length > 0);
  if (usable.length === 0) throw new MuxError('no frames to write (no keyframe in the video)');
  const t0 = Math.min(...usable.map((t) => t.frames[0]!.ptsMs));

  const fmt = new FormatContext();
  let opened = false;
  let size: { width: number; height: number } | undefined;
  let written = 0;
  try {
    if (fmt.allocOutputContext2(null, container, path) < 0) throw new MuxError(`cannot make a ${container} muxer`);
    const streams = usable.map((t) => {
      const st = fmt.newStream(null);
      const par = st.codecpar;
      if (t.kind === 'video') {
        const key = t.frames[0]!.data;
        size = t.codec === 'VP8' ? vp8FrameSize(key) : h264FrameSize(key);
        if (!size) throw new MuxError(`cannot read the picture size of the first ${t.codec} keyframe`);
        par.codecType = AVMEDIA_TYPE_VIDEO;
        par.codecId = t.codec === 'VP8' ? AV_CODEC_ID_VP8 : AV_CODEC_ID_H264;
        par.width = size.width;
        par.height = size.height;
        if (t.codec === 'H264') {
          // SPS + PPS as Annex-B extradata: the Matroska muxer turns it and the frames into avcC form
          const sets = splitAnnexB(key).filter((n) => (n[0]! & 0x1f) === 7 || (n[0]! & 0x1f) === 8);
          par.extradata = Buffer.concat(sets.flatMap((n) => [Buffer.from([0, 0, 0, 1]), Buffer.from(n)]));
        }
      } else {
        // the TOC's stereo flag (RFC 6716 3.1) of the first packet says how many channels the sender encodes
        const stereo = ((t.frames[0]!.data[0] ?? 0) & 0x04) !== 0;
        par.codecType = AVMEDIA_TYPE_AUDIO;
        par.codecId = AV_CODEC_ID_OPUS;
        par.sampleRate = 48000;
        par.channelLayout = {
          order: AV_CHANNEL_ORDER_NATIVE,
          nbChannels: stereo ? 2 : 1,
          mask: stereo ? AV_CH_LAYOUT_STEREO : AV_CH_LAYOUT_MONO,
        };
        par.extradata = opusHead(stereo ? 2 : 1);
      }
      st.timeBase = new Rational(1, 1000);
      return st;
    });
    if ((await fmt.openOutput()) < 0) throw new MuxError(`cannot open ${path} for writing`);
    opened = true;
    const hdr = await fmt.writeHeader();
    if (hdr < 0) throw new MuxError(`${container} header refused (${hdr})`);
    // interleaved by time, as a player reads it
    const queue = usable.flatMap((t, i) => t.frames.map((f) => ({ f, i })));
    queue.sort((a, b) => a.f.ptsMs - b.f.ptsMs);
    const pkt = new Packet();
    pkt.alloc();
    const lastPts = usable.map(() => -1);
    for (const { f, i } of queue) {
      // strictly increasing per stream: a muxer refuses equal or earlier timestamps
      const ms = Math.max(Math.round(f.ptsMs - t0), lastPts[i]! + 1);
      lastPts[i] = ms;
      pkt.data = Buffer.from(f.data);
      pkt.streamIndex = streams[i]!.index;
      pkt.pts = BigInt(ms);
      pkt.dts = BigInt(ms);
      pkt.flags = f.keyframe ? AV_PKT_FLAG_KEY : (0 as typeof AV_PKT_FLAG_KEY);
      pkt.rescaleTs(MS, streams[i]!.timeBase);
      const r = await fmt.interleavedWriteFrame(pkt);
      pkt.unref();
      if (r < 0) throw new MuxError(`writing a ${usable[i]!.codec} frame failed (${r})`);
      written++;
    }
    pkt.free();
    const tr = await fmt.writeTrailer();
    if (tr < 0) throw new MuxError(`${container} trailer refused (${tr})`);
  } finally {
    if (opened) await fmt.closeOutput();
    fmt.freeContext();
  }
  return { container, ext: h264 ? 'mkv' : 'webm', bytes: statSync(path).size, frames: written, ...(size ? size : {}) };
}
