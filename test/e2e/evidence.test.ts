// Issue 19 item 2, end to end: a banked picture kills a stream (real SFU, on each engine: werift and
// mediasoup; real models and hash bank, synthetic WHIP publisher). The statement of reasons cites an evidence clip; the clip is
// a WebM remuxed from the forwarded RTP, decodes with FFmpeg (node-av) and holds the banked picture
// (its PDQ hash within the bank's match distance) as well as the clean seconds before it; it is served
// to admins over the API, its cited sampled frame too, referenced from the appeal's review item, and
// deleted (audited) when its retention ends. A protected melody's DE mute keeps the audio windows its
// statement cites as WAVs (as the samplers handed them to the models: 16 kHz mono, 1 s), served to
// admins and decoded with FFmpeg.
// The webhook receiver gets stream.killed with the statement; figures printed: clip size, ring memory.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server as HttpServer } from 'node:http';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AVMEDIA_TYPE_AUDIO,
  AVMEDIA_TYPE_VIDEO,
  AV_CODEC_ID_PCM_S16LE,
  AV_CODEC_ID_VP8,
  FF_DECODER_OPUS,
  FF_DECODER_VP8,
  FormatContext,
  Packet,
} from 'node-av';
import { bankedPicturePpm } from '../../loadtest/register.ts';
import { bankedPicture, protectedAudio, wav } from '../../loadtest/media/scenes.ts';
import { hammingDistance, pdqHash } from '../../models/pdq/pdq.ts';
import type { AuditEntry, StatementOfReasons } from '../../policies/types.ts';
import type { WebhookPayload } from '../../server/webhooks.ts';
import { freePort } from '../server/helpers.ts';
import { ENGINES, decodeWith } from '../sfu/helpers.ts';
import { Broadcast, CLIP, clip, sleep, startE2EServer, until, type E2EServer } from './helpers.ts';

const RETENTION_MS = 20_000;

interface Picture {
  ptsMs: number;
  width: number;
  height: number;
  distance: number;
}

/**
 * Every video picture of a clip with its PDQ distance to the banked picture, and how many audio frames decode:
 * FFmpeg's demuxer (node-av FormatContext) reads the file, the tests' one decode loop decodes it.
 */
async function decodeClip(
  path: string,
): Promise<{ pictures: Picture[]; audioFrames: number; format: string; durationMs: number }> {
  // the banked picture's own PDQ hash, as the bank holds it
  const target = pdqHash({ width: CLIP.width, height: CLIP.height, rgb: bankedPicture(CLIP.width, CLIP.height) }).hash;
  const fmt = new FormatContext();
  assert.ok((await fmt.openInput(path, null, null)) >= 0, `FFmpeg opens ${path}`);
  assert.ok((await fmt.findStreamInfo(null)) >= 0);
  const streams = fmt.streams;
  const vs = streams.find((st) => st.codecpar.codecType === AVMEDIA_TYPE_VIDEO);
  const as = streams.find((st) => st.codecpar.codecType === AVMEDIA_TYPE_AUDIO);
  assert.ok(vs, 'the clip has a video stream');
  assert.equal(vs.codecpar.codecId, AV_CODEC_ID_VP8, 'VP8, as published (no transcoding)');
  const video: Uint8Array[] = [];
  const pts: number[] = [];
  const audio: Uint8Array[] = [];
  const pkt = new Packet();
  pkt.alloc();
  while ((await fmt.readFrame(pkt)) >= 0) {
    const data = pkt.data;
    if (data && pkt.streamIndex === vs.index) {
      video.push(Buffer.from(data));
      pts.push((Number(pkt.pts) * vs.timeBase.num * 1000) / vs.timeBase.den);
    } else if (data && as && pkt.streamIndex === as.index) audio.push(Buffer.from(data));
    pkt.unref();
  }
  pkt.free();
  const format = fmt.iformat?.name ?? '';
  await fmt.closeInput();
  const pictures: Picture[] = [];
  decodeWith(FF_DECODER_VP8, video, (f) => {
    const y = f.data?.[0];
    if (!y) return;
    const stride = f.linesize[0] ?? f.width;
    const luma = new Float64Array(f.width * f.height);
    for (let r = 0; r < f.height; r++) for (let c = 0; c < f.width; c++) luma[r * f.width + c] = y[r * stride + c]!;
    const distance = hammingDistance(pdqHash({ width: f.width, height: f.height, luma }).hash, target);
    pictures.push({ ptsMs: pts[pictures.length] ?? NaN, width: f.width, height: f.height, distance });
  });
  let audioFrames = 0;
  if (audio.length)
    decodeWith(
      FF_DECODER_OPUS,
      audio,
      () => audioFrames++,
      (ctx) => (ctx.sampleRate = 48000),
    );
  return { pictures, audioFrames, format, durationMs: pts.length ? Math.max(...pts) - Math.min(...pts) : 0 };
}

for (const engine of ENGINES.filter((e) => !process.env.E2E_ENGINE || e === process.env.E2E_ENGINE))
  describe(`evidence clips of a kill, end to end [${engine}]`, { timeout: 300_000 }, () => {
    let e2e: E2EServer;
    let dir: string;
    let hook: HttpServer;
    const received: { payload: WebhookPayload; at: number }[] = [];
    const admin = (path: string): Promise<Response> =>
      fetch(`${e2e.url}${path}`, { headers: { authorization: `Bearer ${e2e.adminToken}` } });

    before(async () => {
      await Promise.all([clip('clean'), clip('banked_picture'), clip('protected_audio')]);
      dir = await mkdtemp(join(tmpdir(), 'msfu-evidence-'));
      const port = await freePort();
      hook = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          received.push({
            payload: JSON.parse(Buffer.concat(chunks).toString('utf8')) as WebhookPayload,
            at: Date.now(),
          });
          res.writeHead(200).end();
        });
      });
      await new Promise<void>((r) => hook.listen(port, '127.0.0.1', r));
      e2e = await startE2EServer({
        SFU_ENGINE: engine,
        EVIDENCE_DIR: join(dir, 'default'),
        EVIDENCE_RETENTION_MS: String(RETENTION_MS),
        // the melody's DE mute keeps its clip while the test reads it
        EVIDENCE_RETENTION: JSON.stringify({ DE: 600_000 }),
        EVIDENCE_SWEEP_MS: '250',
        WEBHOOK_DIR: join(dir, 'webhooks'),
        WEBHOOKS: JSON.stringify([
          {
            id: 'platform',
            url: `http://127.0.0.1:${port}/hook`,
            secrets: ['whsec_evidence_test_0123456789'],
            events: ['stream.killed', 'statement.created'],
          },
        ]),
      });
      const r = await fetch(
        `${e2e.url}/v1/banks/known_bad/pictures?category=known_bad_match&source=e2e&id=evidence-banked-picture`,
        {
          method: 'POST',
          headers: { authorization: `Bearer ${e2e.adminToken}`, 'content-type': 'image/x-portable-pixmap' },
          body: bankedPicturePpm(CLIP),
        },
      );
      assert.equal(r.status, 201, await r.text());
      const m = await fetch(`${e2e.url}/v1/audio-banks/protected_music/recordings?name=evidence-melody`, {
        method: 'POST',
        headers: { authorization: `Bearer ${e2e.adminToken}`, 'content-type': 'audio/wav' },
        body: new Uint8Array(wav(protectedAudio(10))),
      });
      assert.equal(m.status, 201, await m.text());
    });

    after(async () => {
      await e2e?.close();
      await new Promise<void>((r) => (hook ? hook.close(() => r()) : r()));
      await rm(dir, { recursive: true, force: true });
    });

    test('the kill statement cites a WebM clip that decodes and holds the banked picture; retention deletes it', async () => {
      const streamId = 'evidence-kill';
      const token = await e2e.token({ role: 'publisher', sub: 'streamer-evidence', streamId });
      const b = await Broadcast.start(e2e.url, streamId, token, await clip('clean'));
      try {
        await sleep(6000); // clean seconds in the ring before the violation
        const ring = e2e.server.evidence!.ringOf(streamId);
        assert.ok(ring && ring.packets > 0, 'the stream has an evidence ring');
        const switchSentAt = await b.switchVideo(await clip('banked_picture'));
        await Promise.race([
          b.pub.ended,
          sleep(45_000).then(() => {
            throw new Error('stream not killed within 45 s of the banked picture');
          }),
        ]);
        const killedAt = Date.now();

        const block = await e2e.server.store.getBlock(streamId);
        assert.ok(block?.statementId, 'blocked with a statement');
        const st = (await (await admin(`/v1/statements/${block.statementId}`)).json()) as StatementOfReasons;
        assert.equal(st.restriction.action, 'kill_stream');
        assert.ok(st.clips?.length, `the statement cites evidence clips (${JSON.stringify(st.clips)})`);
        const ref = st.clips[0]!;
        assert.equal(ref.url, `/v1/evidence/${ref.id}`);
        assert.ok(ref.expiresAt > Date.now(), 'not expired yet');

        await until(() => e2e.server.evidence!.get(ref.id) !== undefined, 15_000, 'the clip written');
        const meta = e2e.server.evidence!.get(ref.id)!;
        assert.equal(meta.container, 'webm');
        assert.equal(meta.videoCodec, 'VP8');
        assert.ok(meta.path.startsWith(join(dir, 'default')), 'stored in the default location');

        // served to admins (and not to anyone else)
        const anon = await fetch(`${e2e.url}${ref.url}`);
        assert.equal(anon.status, 401);
        const res = await admin(ref.url);
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('content-type'), 'video/webm');
        const served = Buffer.from(await res.arrayBuffer());
        assert.equal(served.length, meta.bytes);

        const decoded = await decodeClip(meta.path);
        assert.match(decoded.format, /matroska|webm/);
        assert.ok(decoded.pictures.length >= 20, `pictures decode (${decoded.pictures.length})`);
        assert.ok(
          decoded.pictures.every((p) => p.width === CLIP.width && p.height === CLIP.height),
          'the source pictures, not the slate',
        );
        const violating = decoded.pictures.filter((p) => p.distance <= 31);
        assert.ok(
          violating.length >= 1,
          `the banked picture is in the clip (closest PDQ distance ${Math.min(...decoded.pictures.map((p) => p.distance))})`,
        );
        const clean = decoded.pictures.filter((p) => p.distance > 31);
        assert.ok(clean.length >= 10, `the clean seconds before it too (${clean.length} pictures)`);
        assert.ok(decoded.audioFrames >= 50, `audio decodes (${decoded.audioFrames} Opus frames)`);
        const spanMs = decoded.durationMs;

        // cited sampled frames kept beside it, when the pipeline still held them
        if (meta.citedFrames.length > 0) {
          const f = await admin(`${ref.url}/frames/${meta.citedFrames[0]!.seq}`);
          assert.equal(f.status, 200);
          assert.equal(f.headers.get('content-type'), 'image/jpeg');
        }

        // webhook: stream.killed names the statement, statement.created cites the clip
        await until(
          () => received.some((r) => r.payload.type === 'stream.killed' && r.payload.streamId === streamId),
          10_000,
          'stream.killed webhook',
        );
        const killed = received.find((r) => r.payload.type === 'stream.killed' && r.payload.streamId === streamId)!;
        assert.equal(killed.payload.data.statementId, st.id);
        const created = received.find(
          (r) => r.payload.type === 'statement.created' && r.payload.data.statementId === st.id,
        );
        assert.deepEqual(created?.payload.data.clips, [ref.id]);

        const stats = e2e.server.evidence!.stats();
        console.log(
          '[evidence] figures',
          JSON.stringify({
            engine,
            clip: {
              bytes: meta.bytes,
              frames: meta.frames,
              pictures: decoded.pictures.length,
              violatingPictures: violating.length,
              spanMs: Math.round(spanMs),
              citedFrames: meta.citedFrames.length,
            },
            ringBeforeKill: ring,
            ringBytesPerSecond: ring.spanMs > 0 ? Math.round((ring.bytes * 1000) / ring.spanMs) : null,
            killToClipStoredMs: meta.createdAt - killedAt,
            // both on the epoch clock (nowMs is performance.timeOrigin + performance.now())
            violationSentToWebhookReceiptMs: Math.round(killed.at - switchSentAt),
            decisionToWebhookReceiptMs: killed.at - killed.payload.at,
            evidence: stats,
            clipsKept: e2e.server
              .evidence!.list()
              .map((c) => ({ id: c.ref.id, action: c.action, bytes: c.bytes, spanMs: c.ref.to - c.ref.from })),
          }),
        );

        // the streamer's appeal is a review item citing the same evidence
        const appeal = await fetch(`${e2e.url}/v1/appeals/${st.id}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ grounds: 'not what it looks like' }),
        });
        assert.equal(appeal.status, 201, await appeal.clone().text());
        const item = (await appeal.json()) as { id: string };
        const stored = (await (await admin(`/v1/review/${item.id}`)).json()) as { clips?: { id: string }[] };
        assert.deepEqual(
          stored.clips?.map((c) => c.id),
          st.clips.map((c) => c.id),
          'the review item references the clip',
        );

        // retention: deleted once it ends, and the deletion audited
        await until(
          () => e2e.server.evidence!.get(ref.id) === undefined,
          RETENTION_MS + 15_000,
          'the clip deleted at the end of its retention',
        );
        assert.equal(existsSync(meta.path), false, 'the file is gone');
        assert.equal((await admin(ref.url)).status, 404);
        const audit = (await (await admin('/v1/audit?limit=1000')).json()) as {
          entries: AuditEntry<Record<string, unknown>>[];
        };
        const types = audit.entries.filter((e) => e.body.clipId === ref.id).map((e) => e.body.type);
        assert.deepEqual(types, ['evidence.stored', 'evidence.deleted']);
      } finally {
        await b.stop();
      }
    });

    test(
      "a protected melody's mute keeps the audio windows its statement cites as 16 kHz mono WAVs",
      { timeout: 180_000 },
      async () => {
        const streamId = 'evidence-melody';
        const token = await e2e.token({ role: 'publisher', sub: 'streamer-melody', streamId });
        const b = await Broadcast.start(e2e.url, streamId, token, await clip('clean'));
        try {
          await sleep(3000);
          await b.switchAudio(await clip('protected_audio'));
          await until(
            () =>
              e2e.server.enforcer
                .restrictionsInForce(streamId)
                .some((r) => r.action === 'mute_audio' && r.jurisdictions.includes('DE')),
            60_000,
            'a DE mute in force',
          );
          const mute = e2e.server.enforcer
            .restrictionsInForce(streamId)
            .find((r) => r.action === 'mute_audio' && r.jurisdictions.includes('DE'))!;
          const st = (await (await admin(`/v1/statements/${mute.statementId}`)).json()) as StatementOfReasons;
          assert.ok(
            st.facts.categories.some((c) => c.category === 'copyright_audio'),
            JSON.stringify(st.facts.categories),
          );
          assert.ok(st.clips?.length, `the mute's statement cites a clip (${JSON.stringify(st.clips)})`);
          const ref = st.clips[0]!;
          await until(
            () => e2e.server.evidence!.get(ref.id) !== undefined,
            30_000,
            "the mute's clip written (after its 5 s)",
          );
          const meta = e2e.server.evidence!.get(ref.id)!;
          assert.ok(
            meta.citedAudio.length >= 1,
            `the cited audio windows are kept (${JSON.stringify(meta.citedAudio)}; statement cites samples ${st.facts.sampleSeqs.join(',')})`,
          );
          assert.ok(
            meta.citedAudio.every((a) => st.facts.sampleSeqs.includes(a.seq)),
            'only windows the statement cites',
          );
          const a = meta.citedAudio[0]!;
          assert.deepEqual(
            { sampleRate: a.sampleRate, durationMs: a.durationMs },
            { sampleRate: 16_000, durationMs: 1000 },
          );
          const res = await admin(`${ref.url}/audio/${a.seq}`);
          assert.equal(res.status, 200);
          assert.equal(res.headers.get('content-type'), 'audio/wav');
          assert.equal((await fetch(`${e2e.url}${ref.url}/audio/${a.seq}`)).status, 401, 'not served to anyone else');
          const served = join(dir, `served-${a.seq}.wav`);
          await writeFile(served, Buffer.from(await res.arrayBuffer()));
          const fmt = new FormatContext();
          assert.ok((await fmt.openInput(served, null, null)) >= 0, 'FFmpeg opens the served WAV');
          await fmt.findStreamInfo(null);
          const [st0] = fmt.streams;
          assert.deepEqual(
            { codec: st0!.codecpar.codecId, rate: st0!.codecpar.sampleRate, channels: st0!.codecpar.channels },
            { codec: AV_CODEC_ID_PCM_S16LE, rate: 16_000, channels: 1 },
          );
          const pkt = new Packet();
          pkt.alloc();
          let bytes = 0;
          let peak = 0;
          while ((await fmt.readFrame(pkt)) >= 0) {
            const d = pkt.data;
            if (d) {
              bytes += d.length;
              const v = Buffer.from(d);
              for (let i = 0; i + 1 < v.length; i += 2) peak = Math.max(peak, Math.abs(v.readInt16LE(i)));
            }
            pkt.unref();
          }
          pkt.free();
          await fmt.closeInput();
          assert.equal(bytes / 2, 16_000, '1 s of 16 kHz samples');
          assert.ok(peak > 1000, `the melody, not silence (peak ${peak})`);
          console.log(
            '[evidence] melody',
            JSON.stringify({
              engine,
              clip: ref.id,
              citedAudio: meta.citedAudio,
              sampleSeqs: st.facts.sampleSeqs,
              citedFrames: meta.citedFrames.length,
              peak,
            }),
          );
        } finally {
          await b.stop();
        }
      },
    );
  });
