// H264 end to end with synthetic clients: forwarding starts on an IDR, the H264 slate decodes, and a
// VP8-only viewer of an H264 stream is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WhipPublisher, syntheticClip } from '../../loadtest/clients/whip-publisher.ts';
import { WhepViewer } from '../../loadtest/clients/whep-viewer.ts';
import { WhipHttpError } from '../../loadtest/clients/peer.ts';
import { decodePictures, sleep, startServer } from './helpers.ts';

test('H264 stream: viewer decodes from an IDR, blank gives a decodable H264 slate, VP8-only viewer gets 406', async () => {
  await using srv = await startServer();
  await srv.sfu.slateReady;
  const clip = await syntheticClip({ codec: 'H264' });
  const pub = await WhipPublisher.connect({ url: `${srv.base}/whip/h`, ...clip });
  pub.start();
  const v = await WhepViewer.connect({ url: `${srv.base}/whep/h`, recordPayloads: true });
  try {
    assert.equal(v.codecOf.video, 'H264');
    await v.waitFor(() => v.keyframes > 0 && v.count('video') > 40, 15_000, 'H264 video');
    const frames = v.frames('video');
    assert.ok(frames[0]!.keyframe);
    const pics = decodePictures('H264', frames.slice(0, 20).map((f) => f.data));
    assert.ok(pics.length >= 10 && pics[0]!.width === 320, `decoded ${pics.length} source pictures`);
    const sv = [...srv.sfu.getStream('h')!.viewers.values()][0]!;
    const blankAt = performance.timeOrigin + performance.now();
    sv.setVideoGate('blank');
    await sleep(1500);
    const slate = v.frames('video', blankAt + 50);
    const slatePics = decodePictures('H264', slate.map((f) => f.data));
    assert.ok(slatePics.length >= 2 && slatePics.every((p) => p.width === 640), `H264 slate decodes (${slatePics.length})`);
    await assert.rejects(WhepViewer.connect({ url: `${srv.base}/whep/h`, codecs: ['VP8'] }), (err: unknown) => err instanceof WhipHttpError && err.status === 406);
  } finally {
    await v.close();
    await pub.stop();
  }
});
