import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ocr } from '../../models/ocr/ocr.ts';
import { TextModerator } from '../../models/text/moderator.ts';
import { PDQ_REFERENCE_DIR, decodeImage, drawText, filterImage, solidFrame, vp8RoundTrip } from './media.ts';

const norm = (s: string): string => s.toLowerCase().replace(/\s+/g, '');

test(
  'OCR reads words drawn with a real font (DejaVu Sans via FFmpeg drawtext) into video frames',
  { timeout: 240_000 },
  async () => {
    await using ocr = await Ocr.load();
    const frame = drawText(solidFrame(640, 480, 235, 235, 235), [
      { text: 'visit scam-site.example now', x: 40, y: 80, size: 30 },
      { text: 'FREE CRYPTO GIVEAWAY', x: 40, y: 220, size: 40 },
      { text: 'Moderation 2024', x: 300, y: 380, size: 34, color: 'red' },
    ]);
    const r = await ocr.read(frame);
    // the Chinese-trained recogniser sometimes loses a space between capitalised words: compare without spaces
    assert.deepEqual(
      r.lines.map((l) => norm(l.text)),
      ['visitscam-site.examplenow', 'freecryptogiveaway', 'moderation2024'],
    );
    assert.equal(r.lines[0].text, 'visit scam-site.example now');
    const spam = TextModerator.create({ lexicons: { spam: { terms: ['free crypto'] } }, profanityCategory: null });
    assert.equal(spam.moderate(r.lines[1].text, { source: 'ocr' })[0]?.category, 'spam', r.lines[1].text);
    for (const l of r.lines) {
      assert.ok(l.score > 0.8, `${l.text}: ${l.score}`);
      assert.ok(l.box[0] >= 0 && l.box[2] <= 640 && l.box[1] >= 0 && l.box[3] <= 480 && l.box[2] > l.box[0]);
    }
    // the box of the first line is where it was drawn
    assert.ok(
      Math.abs(r.lines[0].box[0] - 40) < 15 && Math.abs(r.lines[0].box[1] - 80) < 20,
      JSON.stringify(r.lines[0].box),
    );
    assert.ok(r.timings.total >= r.timings.detect && r.timings.detect > 0);

    // white text over a photograph, after a VP8 round trip (what the sampler would decode), feeds text moderation
    const photo = filterImage(await decodeImage(PDQ_REFERENCE_DIR + 'dih_bridge-1-original.jpg'), 'scale=640:480');
    const overlay = await vp8RoundTrip(
      drawText(photo, [{ text: 'kill yourself', x: 100, y: 300, size: 44, color: 'white' }]),
      800,
    );
    const r2 = await ocr.read(overlay);
    assert.ok(
      r2.lines.some((l) => norm(l.text) === 'killyourself'),
      JSON.stringify(r2.lines),
    );
    const tm = TextModerator.create({ lexicons: { self_harm: { terms: ['kill yourself'] } } });
    const hits = r2.lines.flatMap((l) => tm.moderate(l.text, { source: 'ocr' }));
    assert.ok(
      hits.some((h) => h.category === 'self_harm' && h.source === 'ocr'),
      JSON.stringify(r2.lines),
    );

    // a frame without text reads nothing
    assert.deepEqual((await ocr.read(solidFrame(320, 240, 90, 120, 200))).lines, []);
  },
);
