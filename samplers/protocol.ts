// Messages between SamplerPool (main thread) and its decode workers. Packets cross in binary
// batches (one transferred ArrayBuffer per flush); samples come back with their pixel/PCM buffers
// transferred, not copied, or their pictures in a ring shared per track ('frames', sharedFrames).
import type { MediaKind, RtpPacketIn } from './types.ts';
import type { LumaPlane, VideoSamplingOptions } from './video-sampling.ts';

export interface WorkerConfig {
  video: VideoSamplingOptions;
  /** Largest output width (px); larger frames are scaled down, aspect kept. */
  maxWidth: number;
  /** Longest side (px) of the luma plane sent with each video sample; 0 = none. */
  lumaMaxSide: number;
  /** Slots of a video track's shared ring of sampled RGB frames (SamplerPoolOptions.sharedFrames); 0 = none. */
  sharedFrames: number;
  audioSampleRate: number;
  audioWindowSamples: number;
  /** Frames older than this (ms since their last packet arrived) are dropped; the track waits for a key frame. */
  maxLagMs: number;
  reorderWaitMs: number;
}

export interface TrackInfo {
  key: number;
  streamId: string;
  trackId: string;
  kind: MediaKind;
  codec: RtpPacketIn['codec'];
  clockRate: number;
  /**
   * The track's RTP comes by loopback UDP (an engine's tap link) instead of in packet batches: the
   * thread binds 127.0.0.1:port (0 = any; a restarted thread binds the port its predecessor had) and
   * takes datagrams from 127.0.0.1:sourcePort only.
   */
  rtp?: { port: number; sourcePort: number };
}

export type ToWorker =
  | { t: 'config'; config: WorkerConfig }
  | { t: 'track'; track: TrackInfo }
  | { t: 'packets'; buf: ArrayBuffer; count: number }
  | { t: 'release'; keys: number[] };

export interface TrackCounters {
  key: number;
  frames: number;
  drops: number;
  lagMs: number;
  /** UDP tracks: when the newest packet came (server clock ms), 0 before the first. */
  lastPacketAt?: number;
}

export interface WireTimings {
  arrivedAt: number;
  queuedAt: number;
  decodedAt: number;
}

/** Besides these, the thread announces ready through threads/ (announceReady). */
export type FromWorker =
  | {
      t: 'video';
      key: number;
      rtpTimestamp: number;
      reason: 'first' | 'interval' | 'scene';
      width: number;
      height: number;
      /** The picture in a buffer of its own (transferred), or where it lies in the track's ring (`frames`). */
      rgb: Uint8Array | { slot: number; stamp: number };
      /** The frame's 16x9 luma thumbnail (video-sampling.ts), when scene detection computed one. */
      thumbnail?: Float32Array;
      /** The frame's prescaled luma plane (for PDQ), when configured. */
      lumaPlane?: LumaPlane;
      timings: WireTimings;
    }
  | { t: 'audio'; key: number; rtpTimestamp: number; sampleRate: number; pcm: Float32Array; timings: WireTimings }
  /**
   * A video track's ring of sampled RGB frames, (re)made for a picture size: one SharedArrayBuffer
   * shared with the main thread, so that samples carry a slot number instead of a new buffer each (an
   * ArrayBuffer arriving per sample is external memory the main isolate collects). Layout: `slots`
   * Int32 stamps (Atomics; -1 while a slot is written), then `slots` pictures of slotBytes from byte
   * `offset`.
   */
  | { t: 'frames'; key: number; buffer: SharedArrayBuffer; slots: number; slotBytes: number; offset: number }
  | { t: 'keyframe'; key: number }
  | { t: 'ack'; bytes: number; counters: TrackCounters[]; behind: boolean }
  /** A UDP track's socket is bound (or could not be). */
  | { t: 'listening'; key: number; port: number }
  | { t: 'listenFailed'; key: number; message: string }
  /** Every UDP_COUNTERS_MS while the thread has UDP tracks, touched or not: their counters, and a heartbeat. */
  | { t: 'counters'; counters: TrackCounters[]; behind: boolean };

/** How often a decode thread with UDP tracks reports their counters (ms). */
export const UDP_COUNTERS_MS = 250;

/** Bytes of the fixed header in front of each packet in a batch. */
export const PACKET_HEADER = 24;

/*
 * Batch layout, per packet (little endian):
 *   u32 track key | u16 seq | u8 flags (bit0 marker) | u8 0 | u32 RTP timestamp | f64 arrivedAt | u32 payload length | payload
 */
export function writePacket(view: DataView, bytes: Uint8Array, o: number, key: number, p: RtpPacketIn): number {
  view.setUint32(o, key, true);
  view.setUint16(o + 4, p.sequenceNumber, true);
  view.setUint8(o + 6, p.marker ? 1 : 0);
  view.setUint8(o + 7, 0);
  view.setUint32(o + 8, p.timestamp >>> 0, true);
  view.setFloat64(o + 12, p.arrivedAt, true);
  view.setUint32(o + 20, p.payload.length, true);
  bytes.set(p.payload, o + PACKET_HEADER);
  return o + PACKET_HEADER + p.payload.length;
}
