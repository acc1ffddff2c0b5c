// A blanked viewer while the server's Node process is stalled (SIGSTOP: a long GC pause, swap, a
// debugger): the mediasoup workers forward on, the slate (fed from Node) stops, and after 1.5 s the
// worker marks the slate layer inactive. The viewer must not get the live picture back (upstream
// mediasoup switched it to the live layer: scripts/mediasoup-worker/worker.patch); it gets nothing,
// its picture stays the slate, until Node runs again.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { WhipPublisher, syntheticClip } from '../../loadtest/clients/whip-publisher.ts';
import { WhepViewer } from '../../loadtest/clients/whep-viewer.ts';
import { vp8FrameSize } from '../../media/vp8.ts';
import { ENGINES, sleep, until } from './helpers.ts';

/** Width of a VP8 keyframe, undefined for inter frames. */
const vp8Width = (frame: Uint8Array): number | undefined => vp8FrameSize(frame)?.width;

test(
  'mediasoup: a blanked viewer never gets the live picture back while the Node process is stalled for 4 s',
  { skip: ENGINES.includes('mediasoup') ? false : 'no mediasoup worker binary', timeout: 90_000 },
  async () => {
    const child = fork(new URL('./stalled-sfu.ts', import.meta.url), { execArgv: ['--import', 'tsx'] });
    let pub: WhipPublisher | undefined;
    let v: WhepViewer | undefined;
    try {
      const [ready] = (await Promise.race([
        once(child, 'message'),
        sleep(30_000).then(() => {
          throw new Error('the SFU process did not start within 30 s');
        }),
      ])) as [{ base: string }];
      // a 320x240 live picture with a keyframe every second, against the 640x360 slate
      const clip = await syntheticClip({ codec: 'VP8', width: 320, height: 240, seconds: 2, keyframeInterval: 30 });
      pub = await WhipPublisher.connect({ url: `${ready.base}/whip/stall`, ...clip });
      pub.start();
      v = await WhepViewer.connect({ url: `${ready.base}/whep/stall`, recordPayloads: true });
      const viewer = v;
      await viewer.waitFor(() => viewer.frames('video').some((f) => vp8Width(f.data) === 320), 15_000, 'live video');
      child.send({ type: 'blank' });
      const blankAt = performance.timeOrigin + performance.now();
      await until(
        () => viewer.frames('video', blankAt).filter((f) => vp8Width(f.data) === 640).length >= 3,
        15_000,
        'three slate keyframes after the blank',
      );
      const stopAt = performance.timeOrigin + performance.now();
      process.kill(child.pid!, 'SIGSTOP');
      await sleep(4000);
      process.kill(child.pid!, 'SIGCONT');
      const resumedAt = performance.timeOrigin + performance.now();
      await until(
        () => viewer.frames('video', resumedAt).some((f) => vp8Width(f.data) === 640),
        15_000,
        'a slate keyframe once Node runs again',
      );
      await sleep(1000);
      const after = viewer.frames('video', stopAt);
      const live = after.filter((f) => vp8Width(f.data) === 320);
      assert.equal(
        live.length,
        0,
        `${live.length} live keyframes reached the blanked viewer (of ${after.length} frames)`,
      );
      // the worker forwards nothing to it meanwhile: the viewer's picture stays the slate
      const during = viewer.frames('video', stopAt + 500).length - viewer.frames('video', resumedAt).length;
      assert.equal(during, 0, `${during} frames while the slate was stalled`);
    } finally {
      try {
        process.kill(child.pid!, 'SIGCONT');
      } catch {
        /* gone */
      }
      await v?.close().catch(() => undefined);
      await pub?.stop().catch(() => undefined);
      child.disconnect();
      await Promise.race([once(child, 'exit'), sleep(10_000)]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  },
);
