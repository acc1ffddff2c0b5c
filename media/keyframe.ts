// "Does a decodable picture start in this packet?" for any codec the product carries, so a waiting
// viewer can start exactly there (the werift engine, the load tester's viewers). Audio: every packet.
import { h264PayloadSps, h264SpsSize, isH264KeyframeStart } from './h264.ts';
import { isVp8KeyframeStart, vp8FrameSize, Vp8PayloadDescriptor } from './vp8.ts';

export function isKeyframeStart(codec: string, payload: Uint8Array): boolean {
  if (codec === 'VP8') return isVp8KeyframeStart(payload);
  if (codec === 'H264') return isH264KeyframeStart(payload);
  return true;
}

/**
 * The picture size a keyframe-start RTP payload declares (the VP8 keyframe header, the H.264 SPS),
 * or undefined when this payload does not say. Never throws: the forwarding path asks.
 */
export function keyframePictureSize(codec: string, payload: Uint8Array): { width: number; height: number } | undefined {
  try {
    if (codec === 'VP8') {
      const d = Vp8PayloadDescriptor.tryDeSerialize(payload);
      return d?.startOfFrame ? vp8FrameSize(payload.subarray(d.length)) : undefined;
    }
    if (codec === 'H264') {
      const sps = h264PayloadSps(payload);
      return sps ? h264SpsSize(sps) : undefined;
    }
  } catch {
    // a malformed SPS says nothing about the size
  }
  return undefined;
}
