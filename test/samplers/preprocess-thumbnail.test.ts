import assert from 'node:assert/strict';
import { it } from 'node:test';
import { jpegThumbnail } from '../../samplers/thumbnail.ts';
import { decodeJpeg, psnr, testPicture, yuvToRgb } from './helpers.ts';

it('jpegThumbnail makes a small JPEG, scaled to maxWidth, that decodes to the picture', () => {
  const rgb = yuvToRgb(testPicture(640, 480, 0), 640, 480);
  const jpeg = jpegThumbnail({ width: 640, height: 480, rgb }, { maxWidth: 320 });
  assert.deepEqual([...jpeg.subarray(0, 3)], [0xff, 0xd8, 0xff], 'JPEG SOI marker');
  assert.ok(jpeg.length < 40000, `${jpeg.length} bytes`);
  const frame = decodeJpeg(jpeg);
  assert.equal(frame.width, 320);
  assert.equal(frame.height, 240);
  // Luma of the thumbnail vs a 2x2 box-filtered luma of the original: same picture.
  const y = frame.data![0];
  const stride = frame.linesize[0];
  const ref = testPicture(640, 480, 0);
  const a = new Uint8Array(320 * 240);
  const b = new Uint8Array(320 * 240);
  for (let r = 0; r < 240; r++) {
    for (let c = 0; c < 320; c++) {
      a[r * 320 + c] = y[r * stride + c];
      const i = 2 * r * 640 + 2 * c;
      // full-range JPEG luma vs limited-range source: map 16..235 -> 0..255
      const lim = (ref[i] + ref[i + 1] + ref[i + 640] + ref[i + 641]) / 4;
      b[r * 320 + c] = Math.max(0, Math.min(255, Math.round(((lim - 16) * 255) / 219)));
    }
  }
  const db = psnr(a, b);
  assert.ok(db > 25, `thumbnail PSNR ${db.toFixed(1)} dB`);
  frame.free();
});
