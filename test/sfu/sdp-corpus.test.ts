// Every real offer of the corpus (test/fixtures/offers/, written by capture.ts from Chromium, Firefox,
// GStreamer webrtcbin, FFmpeg's whip muxer, werift and an OBS-shaped werift client) gets a valid answer
// from both engines: one m-line per offered m-line in order, each live section answered with the
// opposite direction and the expected codec at the offer's payload type, bundle-only sections live
// (RFC 8843 7.2), the DTLS role of RFC 8842, no trickle advertisement, no a=ssrc in recvonly sections.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseOffer } from '../../sfu/sdp.ts';
import type { MediaSection, ParsedOffer } from '../../sfu/sdp.ts';
import type { Sfu } from '../../sfu/types.ts';
import { ENGINES, startServer } from './helpers.ts';
import type { TestServer } from './helpers.ts';

const DIR = join(import.meta.dirname, '..', 'fixtures', 'offers');

function offer(name: string): string {
  return readFileSync(join(DIR, name), 'utf8');
}

interface PublishCase {
  file: string;
  /** The video codec the SFU must take (its choice: VP8 first, else H264). */
  video: 'VP8' | 'H264';
}

interface ViewCase {
  file: string;
  /** Whether the viewer can take each stream's video codec (else 406 SFU_ERR_NO_COMMON_CODEC). */
  vp8: boolean;
  h264: boolean;
}

const PUBLISHERS: PublishCase[] = [
  { file: 'chromium-publish.sdp', video: 'VP8' },
  { file: 'chromium-publish-balanced.sdp', video: 'VP8' },
  { file: 'chromium-publish-h264-first.sdp', video: 'VP8' },
  { file: 'firefox-publish.sdp', video: 'VP8' },
  { file: 'firefox-publish-balanced.sdp', video: 'VP8' },
  { file: 'gstreamer-publish.sdp', video: 'H264' },
  { file: 'ffmpeg-whip.sdp', video: 'H264' },
  { file: 'ffmpeg-whip-dtls-active.sdp', video: 'H264' },
  { file: 'werift-publish-vp8.sdp', video: 'VP8' },
  { file: 'werift-publish-h264.sdp', video: 'H264' },
  { file: 'obs-shaped-werift.sdp', video: 'H264' },
  // the fuzz benchmark's seeds are real offers too (OBS's from its documented shape)
  { file: 'fuzz-obs-whip.sdp', video: 'H264' },
];

const VIEWERS: ViewCase[] = [
  { file: 'chromium-view.sdp', vp8: true, h264: true },
  { file: 'chromium-view-balanced.sdp', vp8: true, h264: true },
  // Debian's Firefox has no OpenH264
  { file: 'firefox-view.sdp', vp8: true, h264: false },
  { file: 'firefox-view-balanced.sdp', vp8: true, h264: false },
  { file: 'gstreamer-view.sdp', vp8: false, h264: true },
  { file: 'werift-view.sdp', vp8: true, h264: true },
];

function attr(lines: readonly string[], name: string): string | undefined {
  return lines.find((l) => l.startsWith(`a=${name}:`))?.slice(name.length + 3);
}

/** a=setup of an offer: the first section's, else the session's. */
function offeredSetup(o: ParsedOffer): string {
  return (
    attr(o.media.find((m) => attr(m.lines, 'setup'))?.lines ?? [], 'setup') ??
    attr(o.sessionLines, 'setup') ??
    'actpass'
  );
}

function primaryCodec(s: MediaSection): string {
  return s.codecs.find((c) => c.name.toLowerCase() !== 'rtx')?.name.toUpperCase() ?? '';
}

/** The checks every answer must pass; returns the answered live sections. */
function checkAnswer(
  o: ParsedOffer,
  answerSdp: string,
  role: 'publish' | 'view',
  expect: { video?: string },
): MediaSection[] {
  const a = parseOffer(answerSdp);
  assert.equal(a.media.length, o.media.length, 'one answered m-line per offered m-line');
  assert.ok(
    !/a=ice-options:trickle/.test(answerSdp),
    'no trickle advertised (ICE-lite, every candidate in the answer, PATCH 405)',
  );
  assert.ok(a.sessionLines.includes('a=ice-lite'), 'a=ice-lite at session level');
  const setup = offeredSetup(o);
  const live: MediaSection[] = [];
  o.media.forEach((os, i) => {
    const as = a.media[i]!;
    assert.equal(as.kind, os.kind, `m-line ${i} kind`);
    assert.equal(as.mid, os.mid, `m-line ${i} mid`);
    if (as.port === 0) return;
    live.push(as);
    assert.ok(!as.bundleOnly, 'no a=bundle-only in an answer');
    assert.equal(as.direction, role === 'publish' ? 'recvonly' : 'sendonly', `${os.kind} direction`);
    const primary = as.codecs.filter((c) => c.name.toLowerCase() !== 'rtx');
    assert.equal(primary.length, 1, `${os.kind}: one codec answered (${as.codecs.map((c) => c.name).join(',')})`);
    const offeredPt = os.codecs.find((c) => c.payloadType === primary[0]!.payloadType);
    assert.ok(
      offeredPt && offeredPt.name.toLowerCase() === primary[0]!.name.toLowerCase(),
      `${os.kind}: answered at the offer's payload type ${primary[0]!.payloadType}`,
    );
    if (os.kind === 'video' && expect.video) assert.equal(primaryCodec(as), expect.video.toUpperCase());
    if (os.kind === 'audio') assert.equal(primaryCodec(as), 'OPUS');
    const answerSetup = attr(as.lines, 'setup') ?? attr(a.sessionLines, 'setup');
    assert.equal(answerSetup, setup === 'active' ? 'passive' : 'active', `a=setup answering ${setup} (RFC 8842)`);
    if (as.direction === 'recvonly')
      assert.ok(!as.lines.some((l) => /^a=ssrc(-group)?:/.test(l)), 'no a=ssrc in a recvonly section');
    assert.ok(attr(as.lines, 'ice-ufrag') ?? attr(a.sessionLines, 'ice-ufrag'), 'ICE credentials');
  });
  assert.ok(live.length > 0, 'something answered');
  // every offered audio/video section the client sends (publish) or receives (view) is live, bundle-only ones too
  const wanted = o.media.filter(
    (m) =>
      (m.kind === 'audio' || m.kind === 'video') &&
      (role === 'publish' ? m.direction !== 'recvonly' : m.direction !== 'sendonly'),
  );
  for (const kind of new Set(wanted.map((m) => m.kind)))
    assert.ok(
      live.some((m) => m.kind === kind),
      `${kind} answered live`,
    );
  const group =
    a.sessionLines
      .find((l) => l.startsWith('a=group:BUNDLE'))
      ?.split(' ')
      .slice(1) ?? [];
  for (const m of live)
    assert.ok(m.mid !== undefined && group.includes(m.mid), `mid ${m.mid} in the answer's BUNDLE group`);
  assert.ok(answerSdp.includes('a=candidate:'), 'candidates in the answer');
  return live;
}

for (const engine of ENGINES) {
  describe(`offer corpus [${engine}]`, () => {
    let srv: TestServer;
    let sfu: Sfu;
    before(async () => {
      srv = await startServer({ engine });
      sfu = srv.sfu;
    });
    after(async () => {
      await srv?.close();
    });

    for (const c of PUBLISHERS) {
      test(`WHIP ${c.file}: ${c.video} + Opus answered`, async () => {
        const sdp = offer(c.file);
        const { stream, answerSdp } = await sfu.publish(`pub-${c.file}`, sdp);
        try {
          checkAnswer(parseOffer(sdp), answerSdp, 'publish', { video: c.video });
          assert.deepEqual(stream.tracks.map((t) => t.kind).sort(), ['audio', 'video'], 'both tracks ingested');
        } finally {
          stream.close({ code: 'ended', message: 'test' });
        }
      });
    }

    for (const c of VIEWERS) {
      for (const source of ['werift-publish-vp8.sdp', 'werift-publish-h264.sdp'] as const) {
        const codec = source.includes('vp8') ? 'VP8' : 'H264';
        const ok = codec === 'VP8' ? c.vp8 : c.h264;
        test(`WHEP ${c.file} of a ${codec} stream: ${ok ? 'answered' : '406'}`, async () => {
          const id = `view-${c.file}-${codec}`;
          const { stream } = await sfu.publish(id, offer(source));
          try {
            const sdp = offer(c.file);
            if (!ok) {
              await assert.rejects(
                sfu.view(id, sdp),
                (err: unknown) => err instanceof Error && 'code' in err && err.code === 'SFU_ERR_NO_COMMON_CODEC',
              );
              return;
            }
            const { viewer, answerSdp } = await sfu.view(id, sdp);
            try {
              checkAnswer(parseOffer(sdp), answerSdp, 'view', { video: codec });
              assert.equal(viewer.gate.audio, 'forward', 'the viewer gets audio');
              assert.equal(viewer.gate.video, 'forward', 'the viewer gets video');
            } finally {
              viewer.close({ code: 'viewer_left', message: 'test' });
            }
          } finally {
            stream.close({ code: 'ended', message: 'test' });
          }
        });
      }
    }

    test('a port-0 section without a=bundle-only, or with it outside every BUNDLE group, stays rejected', async () => {
      const base = offer('firefox-publish.sdp');
      // audio is the bundle-only section: drop the attribute, then move its mid out of the group
      const noBundleOnly = base.replace('a=bundle-only\r\n', '');
      const outsideGroup = base.replace('a=group:BUNDLE 0 1', 'a=group:BUNDLE 0');
      for (const [what, sdp] of [
        ['no bundle-only', noBundleOnly],
        ['outside the group', outsideGroup],
      ] as const) {
        const { stream, answerSdp } = await sfu.publish(`rej-${what}`, sdp);
        try {
          const a = parseOffer(answerSdp);
          const audio = a.media.find((m) => m.kind === 'audio')!;
          assert.equal(audio.port, 0, `${what}: audio rejected`);
          assert.deepEqual(
            stream.tracks.map((t) => t.kind),
            ['video'],
            `${what}: only video ingested`,
          );
        } finally {
          stream.close({ code: 'ended', message: 'test' });
        }
      }
    });
  });
}
