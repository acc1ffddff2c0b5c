// Plain data that samplers/ takes in and hands out. No imports from sfu/: a packet is anything
// with these fields (the SFU's TapPacket fits structurally).
import type { LumaPlane } from './video-sampling.ts';

export type MediaKind = 'audio' | 'video';

export interface RtpPacketIn {
  streamId: string;
  trackId: string;
  kind: MediaKind;
  codec: 'VP8' | 'H264' | 'opus';
  clockRate: number;
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  marker: boolean;
  ssrc: number;
  payload: Uint8Array;
  /** Server clock at arrival (performance.timeOrigin + performance.now(), ms). */
  arrivedAt: number;
}

/** A track's identity, what the samplers need to decode it (listenRtp; every RtpPacketIn carries it). */
export type RtpTrackIn = Pick<RtpPacketIn, 'streamId' | 'trackId' | 'kind' | 'codec' | 'clockRate'>;

/** Per-stage timings, all server-clock ms (performance.timeOrigin + performance.now()). */
export interface SampleTimings {
  /** Arrival of the last packet of the frame / window. */
  arrivedAt: number;
  /** Frame reassembled and handed to the decoder worker. */
  queuedAt: number;
  decodedAt: number;
  /** Sample ready on the main thread. */
  readyAt: number;
}

export interface VideoSample {
  kind: 'video';
  streamId: string;
  trackId: string;
  rtpTimestamp: number;
  /** Why this frame was sampled. */
  reason: 'first' | 'interval' | 'scene';
  width: number;
  height: number;
  /**
   * RGB24, row-major, width*height*3 bytes. With SamplerPoolOptions.sharedFrames, a view into the
   * decode thread's ring, written again that many samples later (see copyRgb).
   */
  rgb: Uint8Array;
  /**
   * With sharedFrames: a copy of the picture of its own, for whoever keeps it beyond the decision path,
   * or undefined once the ring's slot holds a newer picture. Absent when rgb is already the sample's own.
   */
  copyRgb?: () => Uint8Array | undefined;
  /** 16x9 luma thumbnail (0..1, row-major) the scene detection computed (video-sampling.ts lumaThumbnail); absent when it is off. */
  thumbnail?: Float32Array;
  /**
   * The picture's full-range luma (GRAY8) at the RGB's size or within SamplerPoolOptions.lumaMaxSide:
   * what PDQ hashes. Not named `luma`: PDQ takes any object with `luma` for a LumaImage.
   */
  lumaPlane?: LumaPlane;
  /** Monotonic sample counter per track. */
  seq: number;
  timings: SampleTimings;
}

export interface AudioSample {
  kind: 'audio';
  streamId: string;
  trackId: string;
  /** RTP timestamp of the first packet in the window. */
  rtpTimestamp: number;
  sampleRate: number;
  /** Mono float PCM in [-1, 1]. */
  pcm: Float32Array;
  seq: number;
  timings: SampleTimings;
}

export type Sample = VideoSample | AudioSample;
