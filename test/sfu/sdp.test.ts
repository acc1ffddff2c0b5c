// sfu/sdp.ts rules for third-party clients, table-driven over real offers of the corpus and small
// edits of them: bundle-only sections (RFC 8843 7.2), DTLS roles (RFC 8842), H.264 profiles, and the
// werift answer tidy-up (no trickle, session-level ice-lite, no a=ssrc in recvonly sections).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  activeSections,
  h264Profile,
  matchViewerCodec,
  offerSetup,
  parseOffer,
  publisherCodecs,
  rebuildOffer,
  tidyAnswer,
} from '../../sfu/sdp.ts';
import type { ChosenCodec, MediaSection } from '../../sfu/sdp.ts';

const offer = (name: string): string =>
  readFileSync(join(import.meta.dirname, '..', 'fixtures', 'offers', name), 'utf8');

describe('bundle-only (RFC 8843 7.2)', () => {
  const cases: { what: string; sdp: string; liveKinds: string[] }[] = [
    {
      what: 'Firefox max-bundle: audio is port 0 + bundle-only in the group',
      sdp: offer('firefox-publish.sdp'),
      liveKinds: ['video', 'audio'],
    },
    { what: 'GStreamer max-bundle', sdp: offer('gstreamer-publish.sdp'), liveKinds: ['video', 'audio'] },
    {
      what: 'without a=bundle-only a port-0 section is rejected',
      sdp: offer('firefox-publish.sdp').replace('a=bundle-only\r\n', ''),
      liveKinds: ['video'],
    },
    {
      what: 'a bundle-only mid outside every BUNDLE group is rejected',
      sdp: offer('firefox-publish.sdp').replace('a=group:BUNDLE 0 1', 'a=group:BUNDLE 0'),
      liveKinds: ['video'],
    },
    {
      what: 'no BUNDLE group at all: rejected',
      sdp: offer('firefox-publish.sdp').replace('a=group:BUNDLE 0 1\r\n', ''),
      liveKinds: ['video'],
    },
  ];
  for (const c of cases) {
    test(c.what, () => {
      assert.deepEqual(
        activeSections(parseOffer(c.sdp)).map((s) => s.kind),
        c.liveKinds,
      );
    });
  }

  test('the rebuilt offer makes a kept bundle-only section an ordinary bundled one with its group transport attributes', () => {
    const o = parseOffer(offer('firefox-publish.sdp'));
    const chosen = publisherCodecs(o);
    const keep = new Map([...chosen].map(([s, c]) => [s, [c.payloadType]] as [MediaSection, number[]]));
    const rebuilt = parseOffer(rebuildOffer(o, keep));
    const audio = rebuilt.media.find((m) => m.kind === 'audio')!;
    assert.equal(audio.port, 9);
    assert.ok(!audio.bundleOnly);
    assert.ok(
      audio.lines.some((l) => l.startsWith('a=ice-ufrag:')),
      'ICE credentials',
    );
    assert.deepEqual(
      audio.codecs.map((c) => c.name),
      ['opus'],
    );
  });

  test('a bundle-only section without ICE credentials reads them from its tagged section', () => {
    const sdp = offer('gstreamer-publish.sdp').replace(/(m=audio[\s\S]*?)a=ice-ufrag:\S+\r\na=ice-pwd:\S+\r\n/, '$1');
    const o = parseOffer(sdp);
    assert.ok(!o.media[1]!.lines.some((l) => l.startsWith('a=ice-ufrag:')), 'the edit removed them');
    const chosen = publisherCodecs(o);
    const keep = new Map([...chosen].map(([s, c]) => [s, [c.payloadType]] as [MediaSection, number[]]));
    const audio = parseOffer(rebuildOffer(o, keep)).media[1]!;
    const ufrag = (s: MediaSection): string | undefined => s.lines.find((l) => l.startsWith('a=ice-ufrag:'));
    assert.equal(ufrag(audio), ufrag(o.media[0]!));
  });
});

describe('DTLS role of the answer (RFC 8842 5.3)', () => {
  const cases: { file: string; offered: string; answer: string }[] = [
    { file: 'ffmpeg-whip.sdp', offered: 'passive', answer: 'active' },
    { file: 'ffmpeg-whip-dtls-active.sdp', offered: 'active', answer: 'passive' },
    { file: 'chromium-publish.sdp', offered: 'actpass', answer: 'active' },
    { file: 'firefox-view.sdp', offered: 'actpass', answer: 'active' },
    { file: 'obs-shaped-werift.sdp', offered: 'actpass', answer: 'active' },
  ];
  for (const c of cases) {
    test(`${c.file}: a=setup:${c.offered} is answered ${c.answer}`, () => {
      const o = parseOffer(offer(c.file));
      assert.deepEqual(offerSetup(o, activeSections(o)), { offered: c.offered, answer: c.answer });
    });
  }
  test('a=setup:holdconn is refused with SFU_ERR_BAD_SDP', () => {
    const o = parseOffer(offer('ffmpeg-whip.sdp').replaceAll('a=setup:passive', 'a=setup:holdconn'));
    assert.throws(
      () => offerSetup(o, activeSections(o)),
      (err: unknown) => err instanceof Error && 'code' in err && err.code === 'SFU_ERR_BAD_SDP',
    );
  });
});

describe('H.264 profiles', () => {
  const table: [string, string][] = [
    ['42e01f', 'constrained-baseline'],
    ['42c00d', 'constrained-baseline'],
    ['4d401f', 'constrained-baseline'],
    ['420014', 'baseline'],
    ['42001f', 'baseline'],
    ['4d001f', 'main'],
    ['64001f', 'high'],
    ['640c1f', 'constrained-high'],
  ];
  for (const [plid, profile] of table) test(`${plid} is ${profile}`, () => assert.equal(h264Profile(plid), profile));

  test('a viewer gets the same profile when it offers it, else its own (decoders go by the bitstream)', () => {
    const chromium = parseOffer(offer('chromium-view.sdp')).media.find((m) => m.kind === 'video')!;
    const werift = parseOffer(offer('werift-view.sdp')).media.find((m) => m.kind === 'video')!;
    const source = (plid: string): ChosenCodec => ({
      kind: 'video',
      name: 'H264',
      payloadType: 106,
      clockRate: 90000,
      fmtp: `level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=${plid}`,
    });
    const plidOf = (c: ChosenCodec | undefined): string | undefined =>
      /profile-level-id=([0-9a-f]+)/i.exec(c?.fmtp ?? '')?.[1];
    // FFmpeg announces Baseline 420014: Chromium offers Baseline 42001f, which is the same profile
    assert.equal(h264Profile(plidOf(matchViewerCodec(chromium, source('420014')))!), 'baseline');
    assert.equal(h264Profile(plidOf(matchViewerCodec(chromium, source('4d001f')))!), 'main');
    // Debian's Chromium offers no High: a High stream goes to its first packetization-mode 1 entry
    assert.equal(plidOf(matchViewerCodec(chromium, source('64001f'))), '42001f');
    // werift offers only 42e01f
    assert.equal(plidOf(matchViewerCodec(werift, source('420014'))), '42e01f');
  });
});

describe('tidyAnswer (werift answers)', () => {
  const answer = [
    'v=0',
    'o=- 1 0 IN IP4 0.0.0.0',
    's=-',
    't=0 0',
    'a=group:BUNDLE 0 1',
    'm=video 9 UDP/TLS/RTP/SAVPF 96',
    'a=ice-lite',
    'a=ice-options:trickle',
    'a=setup:passive',
    'a=recvonly',
    'a=mid:0',
    'a=ssrc-group:FID 1 2',
    'a=ssrc:1 cname:x',
    'a=ssrc:2 cname:x',
    'a=rtpmap:96 VP8/90000',
    'm=audio 9 UDP/TLS/RTP/SAVPF 111',
    'a=ice-lite',
    'a=ice-options:trickle',
    'a=sendonly',
    'a=mid:1',
    'a=ssrc:3 cname:x',
    'a=rtpmap:111 opus/48000/2',
    '',
  ].join('\r\n');
  const tidy = tidyAnswer(answer);
  test('no trickle advertised anywhere', () => assert.ok(!tidy.includes('ice-options')));
  test('a=ice-lite once, at session level after t=', () => {
    const lines = tidy.split('\r\n');
    assert.equal(lines.filter((l) => l === 'a=ice-lite').length, 1);
    assert.equal(lines[lines.indexOf('t=0 0') + 1], 'a=ice-lite');
  });
  test('recvonly sections lose a=ssrc and a=ssrc-group, sendonly ones keep them', () => {
    const o = parseOffer(tidy);
    assert.ok(!o.media[0]!.lines.some((l) => l.startsWith('a=ssrc')));
    assert.ok(o.media[1]!.lines.includes('a=ssrc:3 cname:x'));
  });
});
