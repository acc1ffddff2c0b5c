// "Does a decodable picture start in this packet?" for any codec the product carries, so a waiting
// viewer can start exactly there (the werift engine, the load tester's viewers). Audio: every packet.
import { isH264KeyframeStart } from './h264.ts';
import { isVp8KeyframeStart } from './vp8.ts';

export function isKeyframeStart(codec: string, payload: Uint8Array): boolean {
  if (codec === 'VP8') return isVp8KeyframeStart(payload);
  if (codec === 'H264') return isH264KeyframeStart(payload);
  return true;
}
