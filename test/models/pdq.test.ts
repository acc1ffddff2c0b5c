import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  DIHEDRALS,
  PDQ_MATCH_DISTANCE,
  PDQ_REFERENCE_MAX_DIMENSION,
  hammingDistance,
  pdqFromHex,
  pdqHash,
  pdqHashDihedral,
  pdqToHex,
} from '../../models/pdq/pdq.ts';
import { PDQ_REFERENCE_DIR as REF, decodeImage, filterImage, jpegRoundTrip, vp8RoundTrip } from './media.ts';

const refs = readFileSync(REF + 'hashes.tsv', 'utf8')
  .trim()
  .split('\n')
  .map((l) => l.split('\t') as [string, string]);

const reference = { maxDimension: PDQ_REFERENCE_MAX_DIMENSION };

test('PDQ reproduces the reference hashes: PNG exactly, JPEG within a few bits', async () => {
  const report: string[] = [];
  for (const [file, expected] of refs) {
    const { hash, quality } = pdqHash(await decodeImage(REF + file), reference);
    const d = hammingDistance(hash, pdqFromHex(expected));
    report.push(`${file}\t${d}\tquality=${quality}`);
    if (file.endsWith('.png')) assert.equal(pdqToHex(hash), expected, file);
    // JPEG decoders differ in IDCT and chroma upsampling; low-quality (flat) pictures amplify that.
    else assert.ok(d <= (quality < 50 ? 31 : 8), `${file}: distance ${d}`);
  }
  console.log('PDQ reference distances (file, bits, quality):\n' + report.join('\n'));
});

test('full-resolution hashing (the default, as the C++ reference) stays close to the reference hashes', async () => {
  for (const [file, expected] of refs) {
    const { hash, quality } = pdqHash(await decodeImage(REF + file));
    const d = hammingDistance(hash, pdqFromHex(expected));
    assert.ok(d <= (quality < 50 ? 40 : 16), `${file}: distance ${d}`);
  }
});

test('dihedral variants of the original equal the hashes of the rotated/flipped pictures', async () => {
  const original = await decodeImage(REF + 'dih_bridge-1-original.jpg');
  const { hashes } = pdqHashDihedral(original, undefined, reference);
  const files: Record<string, string> = {
    original: 'dih_bridge-1-original.jpg',
    rotate90: 'dih_bridge-2-rotate-90.jpg',
    rotate180: 'dih_bridge-3-rotate-180.jpg',
    rotate270: 'dih_bridge-4-rotate-270.jpg',
    flipX: 'dih_bridge-5-flipx.jpg',
    flipY: 'dih_bridge-6-flipy.jpg',
    flipPlus1: 'dih_bridge-7-flip-plus-1.jpg',
    flipMinus1: 'dih_bridge-8-flip-minus-1.jpg',
  };
  for (const d of DIHEDRALS) {
    const expected = pdqFromHex(refs.find(([f]) => f === files[d])![1]);
    // Rotating before the 64x64 decimation samples slightly different pixels, hence a few bits.
    const dist = hammingDistance(hashes[d], expected);
    console.log(`dihedral ${d}: ${dist} bits from ${files[d]}`);
    assert.ok(dist <= 24, `${d}: ${dist}`);
    // and the variants differ from each other (a transform that did nothing would pass the above only for 'original')
    if (d !== 'original') assert.ok(hammingDistance(hashes[d], hashes.original) > 64, d);
  }
});

test('same picture after resize, JPEG, VP8 and brightness change stays within 31; unrelated pictures are far', async () => {
  const base = filterImage(await decodeImage(REF + 'dih_bridge-1-original.jpg'), 'scale=640:480');
  const h = pdqHash(base).hash;
  const variants = {
    resize320: filterImage(base, 'scale=320:240'),
    resize1280: filterImage(base, 'scale=1280:960'),
    jpegLow: await jpegRoundTrip(base, 300),
    vp8: await vp8RoundTrip(base, 300),
    brighter: filterImage(base, 'eq=brightness=0.08'),
    darker: filterImage(base, 'eq=brightness=-0.08'),
  };
  for (const [name, img] of Object.entries(variants)) {
    const d = hammingDistance(h, pdqHash(img).hash);
    assert.ok(d <= PDQ_MATCH_DISTANCE, `${name}: distance ${d}`);
  }
  const others = ['labelme-subset_q0291.jpg', 'labelme-subset_q1050.jpg', 'labelme-subset_q2821.jpg', 'c.png'];
  const hs = [h];
  for (const f of others) hs.push(pdqHash(await decodeImage(REF + f)).hash);
  for (let i = 0; i < hs.length; i++) {
    for (let j = i + 1; j < hs.length; j++) {
      assert.ok(hammingDistance(hs[i], hs[j]) > 64, `pictures ${i} and ${j} too close`);
    }
  }
});

test('hex round trip and input checks', () => {
  const hex = refs[0][1];
  assert.equal(pdqToHex(pdqFromHex(hex)), hex);
  assert.throws(() => pdqFromHex('abc'));
  assert.throws(() => pdqHash({ width: 10, height: 10, rgb: new Uint8Array(5) }));
});
