// media/rtp.ts: the RTP/RTCP framing every receiver of plain RTP shares (the mediasoup engine's tap,
// the samplers' loopback UDP input), against werift's serializer and hand-made edge cases.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RtpHeader, RtpPacket } from 'werift';
import { isRtcp, rtpView } from '../../media/rtp.ts';

describe('media/rtp', () => {
  it('reads the fields and the payload past CSRCs and a header extension', () => {
    const payload = Buffer.from([1, 2, 3, 4, 5]);
    const header = new RtpHeader({
      payloadType: 96,
      sequenceNumber: 65535,
      timestamp: 0xfffffff0,
      marker: true,
      ssrc: 0x89abcdef,
      csrc: [7, 8],
      extension: true,
      extensionProfile: 0xbede,
      extensions: [{ id: 1, payload: Buffer.from([0xaa, 0xbb]) }],
    });
    const v = rtpView(new RtpPacket(header, payload).serialize());
    assert.ok(v);
    assert.deepEqual(
      { pt: v.pt, marker: v.marker, seq: v.seq, ts: v.ts, ssrc: v.ssrc, payload: [...v.payload] },
      { pt: 96, marker: true, seq: 65535, ts: 0xfffffff0, ssrc: 0x89abcdef, payload: [1, 2, 3, 4, 5] },
    );
  });

  it('strips padding and refuses what is not RTP or overruns itself', () => {
    const padded = Buffer.from([0xa0, 111, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 9, 9, 0, 0, 3]);
    assert.deepEqual([...rtpView(padded)!.payload], [9, 9]);
    assert.equal(rtpView(Buffer.from([0x80, 96, 0])), undefined, 'too short');
    assert.equal(rtpView(Buffer.alloc(20)), undefined, 'version 0');
    const badExt = Buffer.from([0x90, 96, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xbe, 0xde, 0, 9]);
    assert.equal(rtpView(badExt), undefined, 'extension longer than the packet');
    const badPad = Buffer.from([0xa0, 96, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 1, 200]);
    assert.equal(rtpView(badPad), undefined, 'padding longer than the payload');
  });

  it('tells RTCP muxed on the RTP port (RFC 5761) from RTP with any dynamic payload type', () => {
    const sr = Buffer.from([0x80, 200, 0, 6, 0, 0, 0, 1, ...new Array<number>(20).fill(0)]);
    assert.equal(isRtcp(sr), true);
    assert.equal(isRtcp(Buffer.from([0x81, 205, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2])), true, 'a feedback packet');
    for (let pt = 96; pt < 128; pt++) {
      for (const m of [0, 0x80]) assert.equal(isRtcp(Buffer.from([0x80, m | pt, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3])), false);
    }
  });
});
