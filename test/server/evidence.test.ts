// Evidence clips (server/evidence.ts) on a stream fed through a real tap (sfu/tap.ts) with real
// encoder output (libvpx VP8 with a keyframe every 2 s, libopus), on a clock the test drives: the
// ring is bounded (10 s before, from a keyframe), a statement for SA, SE and DE yields one clip in
// SA's own folder and one in the default folder, each with its jurisdictions' retention; the clips
// remux without transcoding and demux with FFmpeg; a restart finds them; the sweep deletes each when
// its retention ends (audited). Prints the ring's memory per stream. A statement citing an audio
// window keeps it as a WAV beside the clip (16 kHz mono, as the samplers hand it), which FFmpeg
// decodes to the window's duration and rate, and the sweep deletes it with the clip.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AVMEDIA_TYPE_AUDIO,
  AVMEDIA_TYPE_VIDEO,
  AV_CODEC_ID_OPUS,
  AV_CODEC_ID_PCM_S16LE,
  AV_CODEC_ID_VP8,
  FormatContext,
  Packet,
} from 'node-av';
import { encodeAudio, encodeVideo, rgbTestPattern, sine48k } from '../../media/encode.ts';
import { packetizeVp8 } from '../../media/packetize.ts';
import { EvidenceRecorder, type CitedAudio } from '../../server/evidence.ts';
import type { StatementOfReasons } from '../../policies/types.ts';
import { FakeSfu, type FakeStream } from '../sfu/fake.ts';

const HOUR = 3_600_000;
const FPS = 25;
const SECONDS = 14;

async function demux(path: string): Promise<{ codecs: number[]; video: number; audio: number }> {
  const fmt = new FormatContext();
  assert.ok((await fmt.openInput(path, null, null)) >= 0, `FFmpeg opens ${path}`);
  await fmt.findStreamInfo(null);
  const kinds = fmt.streams.map((s) => s.codecpar.codecType);
  const codecs = fmt.streams.map((s) => s.codecpar.codecId);
  const pkt = new Packet();
  pkt.alloc();
  let video = 0;
  let audio = 0;
  while ((await fmt.readFrame(pkt)) >= 0) {
    if (kinds[pkt.streamIndex] === AVMEDIA_TYPE_VIDEO) video++;
    else if (kinds[pkt.streamIndex] === AVMEDIA_TYPE_AUDIO) audio++;
    pkt.unref();
  }
  pkt.free();
  await fmt.closeInput();
  return { codecs, video, audio };
}

function statement(streamId: string, jurisdictions: string[]): StatementOfReasons {
  return {
    id: `sor_test_${jurisdictions.join('')}`,
    streamId,
    issuedAt: Date.now(),
    restriction: {
      action: 'blank_video',
      scope: 'jurisdictions',
      jurisdictions,
      duration: 'while the content is shown',
    },
    facts: {
      categories: [{ category: 'banned_text', score: 1 }],
      matches: [],
      text: [],
      sampleSeqs: [],
      timeRange: { from: 0, to: 0 },
    },
    basis: { kind: 'own_initiative' },
    automated: { detection: true, decision: true },
    ground: { type: 'terms_of_service', clause: 'test', policyVersion: 'v', explanation: 'test' },
    redress: { appealUrl: '/v1/appeals/x', options: ['appeal'] },
  };
}

describe('evidence clips: ring, per-jurisdiction storage and retention', { timeout: 120_000 }, () => {
  let dir: string;
  let sfu: FakeSfu;
  let stream: FakeStream;
  let mediaNow = 0;
  let now = 1_000_000_000_000;
  const audit: Record<string, unknown>[] = [];
  let rec: EvidenceRecorder;
  /** The audio windows the "pipeline" holds, by stream. */
  const heldAudio = new Map<string, CitedAudio[]>();
  const make = (): EvidenceRecorder =>
    new EvidenceRecorder({
      sfu,
      dir: join(dir, 'default'),
      dirs: { SA: join(dir, 'sa') },
      retentionMs: HOUR / 2,
      retention: { SA: HOUR, DE: 2 * HOUR },
      beforeMs: 10_000,
      afterMs: 300,
      sweepMs: 0,
      citedAudio: (streamId, seqs) => heldAudio.get(streamId)?.filter((a) => seqs.includes(a.seq)),
      audit: (b) => audit.push(b),
      now: () => now,
      mediaClock: () => mediaNow,
    });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'msfu-evidence-unit-'));
    sfu = new FakeSfu();
    rec = make();
    stream = (await sfu.publish('ev-1', 'v=0\r\n')).stream as FakeStream;
  });
  after(async () => {
    rec.close();
    await rm(dir, { recursive: true, force: true });
  });

  test("the ring keeps 10 s from a keyframe; a SA+SE+DE statement gets a clip in SA's folder and one in the default folder", async () => {
    const frames = Array.from({ length: FPS * SECONDS }, (_, i) => rgbTestPattern(640, 360, i));
    const video = await encodeVideo(frames, {
      codec: 'VP8',
      width: 640,
      height: 360,
      fps: FPS,
      bitrateKbps: 1000,
      keyframeInterval: 2 * FPS,
    });
    const audio = await encodeAudio(sine48k(SECONDS));
    const memBefore = process.memoryUsage();
    // one stream's media on the test's clock, through the tap
    const src = (kind: 'video' | 'audio') => ({
      streamId: 'ev-1',
      trackId: `${kind}0`,
      kind,
      codec: kind === 'video' ? ('VP8' as const) : ('opus' as const),
      clockRate: kind === 'video' ? 90000 : 48000,
    });
    let vseq = 0;
    let aseq = 0;
    let packets = 0;
    const feedUntil = async (ms: number): Promise<void> => {
      for (const f of video) {
        if (f.ptsMs < mediaNow || f.ptsMs >= ms) continue;
        const parts = packetizeVp8(f.data);
        parts.forEach((p, i) =>
          stream.tap.offer(
            src('video'),
            {
              payloadType: 96,
              sequenceNumber: vseq++ & 0xffff,
              timestamp: (f.ptsMs * 90) >>> 0,
              marker: i === parts.length - 1,
              ssrc: 1,
            },
            p,
            f.ptsMs,
          ),
        );
        packets += parts.length;
      }
      for (const f of audio) {
        if (f.ptsMs < mediaNow || f.ptsMs >= ms) continue;
        stream.tap.offer(
          src('audio'),
          {
            payloadType: 111,
            sequenceNumber: aseq++ & 0xffff,
            timestamp: (f.ptsMs * 48) >>> 0,
            marker: false,
            ssrc: 2,
          },
          f.data,
          f.ptsMs,
        );
        packets++;
      }
      mediaNow = ms;
      await new Promise((r) => setImmediate(r)); // the tap drains
      await new Promise((r) => setImmediate(r));
    };
    for (let t = 500; t <= 13_000; t += 500) await feedUntil(t);
    const ring = rec.ringOf('ev-1')!;
    const mem = process.memoryUsage();
    assert.ok(
      ring.spanMs >= 10_000 - 100 && ring.spanMs <= 12_000,
      `the ring spans 10 s back to a keyframe, at most a GOP more (${ring.spanMs} ms)`,
    );
    const fedBytes = video.reduce((s, f) => s + f.data.length, 0) + audio.reduce((s, f) => s + f.data.length, 0);
    assert.ok(ring.bytes < fedBytes, 'older media left the ring');

    const refs = rec.capture(statement('ev-1', ['SA', 'SE', 'DE']));
    assert.deepEqual(refs.map((r) => r.jurisdiction).sort(), ['SA', 'default']);
    const sa = refs.find((r) => r.jurisdiction === 'SA')!;
    const other = refs.find((r) => r.jurisdiction === 'default')!;
    assert.equal(sa.expiresAt, now + HOUR, "SA's retention");
    assert.equal(
      other.expiresAt,
      now + 2 * HOUR,
      'SE and DE share the default folder: the longer of their retentions (DE)',
    );
    await feedUntil(14_000); // the "after" part: 300 ms of it is taken
    await rec.idle();
    const saClip = rec.get(sa.id)!;
    const defClip = rec.get(other.id)!;
    assert.ok(saClip.path.startsWith(join(dir, 'sa')), `SA's clip in SA's folder (${saClip.path})`);
    assert.ok(defClip.path.startsWith(join(dir, 'default')));
    const d = await demux(saClip.path);
    assert.deepEqual(d.codecs, [AV_CODEC_ID_VP8, AV_CODEC_ID_OPUS], 'VP8 and Opus, as sent: no transcoding');
    assert.ok(d.video >= 10 * FPS && d.video <= 12.5 * FPS, `10-12 s of pictures (${d.video})`);
    assert.ok(d.audio >= 10 * 50, `10 s of audio or more (${d.audio} packets)`);
    console.log(
      '[evidence] ring figures',
      JSON.stringify({
        stream: '640x360 VP8 1 Mbps, keyframe every 2 s, Opus 20 ms',
        ring,
        packetsFed: packets,
        payloadBytesPerSecond: Math.round((ring.bytes * 1000) / ring.spanMs),
        heapDeltaBytes: mem.heapUsed - memBefore.heapUsed,
        arrayBuffersDeltaBytes: mem.arrayBuffers - memBefore.arrayBuffers,
        clipBytes: { sa: saClip.bytes, default: defClip.bytes },
        clipPackets: d,
      }),
    );
    assert.deepEqual(
      audit
        .filter((a) => a.type === 'evidence.stored')
        .map((a) => a.clipId)
        .sort(),
      [sa.id, other.id].sort(),
    );
  });

  test('a restart keeps the clips; the sweep deletes each at the end of its retention, audited', async () => {
    rec.close();
    rec = make();
    assert.equal(rec.list({ streamId: 'ev-1' }).length, 2, 'both clips found again');
    const [sa, def] = [
      rec.list().find((c) => c.ref.jurisdiction === 'SA')!,
      rec.list().find((c) => c.ref.jurisdiction === 'default')!,
    ];
    const saPath = rec.get(sa.ref.id)!.path;
    now += HOUR - 1;
    assert.equal(rec.sweep(), 0, 'nothing expired yet');
    now += 2;
    assert.equal(rec.sweep(), 1, "SA's clip expired");
    assert.equal(existsSync(saPath), false);
    assert.equal(rec.get(sa.ref.id), undefined);
    assert.ok(rec.get(def.ref.id), 'the default one is kept longer');
    now += HOUR;
    assert.equal(rec.sweep(), 1);
    assert.equal(rec.list().length, 0);
    assert.deepEqual(
      audit.filter((a) => a.type === 'evidence.deleted').map((a) => a.clipId),
      [sa.ref.id, def.ref.id],
    );
  });

  test('a statement citing an audio window keeps it as a WAV that decodes to 1 s of 16 kHz mono; the sweep deletes it', async () => {
    // a 1 s window at the samplers' rate (a 440 Hz tone), and one the statement does not cite
    const tone = new Float32Array(16_000).map((_, i) => 0.5 * Math.sin((2 * Math.PI * 440 * i) / 16_000));
    heldAudio.set('ev-1', [
      { seq: 41, sampleRate: 16_000, pcm: new Float32Array(16_000) },
      { seq: 42, sampleRate: 16_000, pcm: tone },
    ]);
    const mute = { ...statement('ev-1', ['DE']), id: 'sor_test_melody' };
    mute.restriction.action = 'mute_audio';
    mute.facts.sampleSeqs = [42];
    // a second of media in the (restarted) recorder's ring
    const video = await encodeVideo(
      Array.from({ length: FPS }, (_, i) => rgbTestPattern(160, 90, i)),
      { codec: 'VP8', width: 160, height: 90, fps: FPS, keyframeInterval: FPS },
    );
    const t0 = mediaNow;
    let seq = 0;
    for (const f of video) {
      const parts = packetizeVp8(f.data);
      parts.forEach((p, i) =>
        stream.tap.offer(
          { streamId: 'ev-1', trackId: 'video0', kind: 'video', codec: 'VP8', clockRate: 90000 },
          {
            payloadType: 96,
            sequenceNumber: seq++,
            timestamp: ((t0 + f.ptsMs) * 90) >>> 0,
            marker: i === parts.length - 1,
            ssrc: 1,
          },
          p,
          t0 + f.ptsMs,
        ),
      );
    }
    mediaNow = t0 + 1000;
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    const [ref] = rec.capture(mute);
    assert.ok(ref, 'the ring still holds media: a clip is kept');
    await rec.idle();
    const meta = rec.get(ref.id)!;
    assert.deepEqual(
      meta.citedAudio.map((a) => ({ seq: a.seq, sampleRate: a.sampleRate, durationMs: a.durationMs })),
      [{ seq: 42, sampleRate: 16_000, durationMs: 1000 }],
      'only the cited window',
    );
    const wavPath = join(meta.dir, meta.citedAudio[0]!.file);
    // FFmpeg reads it back: 16 kHz, mono, 16000 samples, the tone's level
    const fmt = new FormatContext();
    assert.ok((await fmt.openInput(wavPath, null, null)) >= 0, `FFmpeg opens ${wavPath}`);
    await fmt.findStreamInfo(null);
    const [st] = fmt.streams;
    assert.equal(st!.codecpar.codecType, AVMEDIA_TYPE_AUDIO);
    assert.equal(st!.codecpar.codecId, AV_CODEC_ID_PCM_S16LE);
    assert.equal(st!.codecpar.sampleRate, 16_000);
    assert.equal(st!.codecpar.channels, 1);
    const pkt = new Packet();
    pkt.alloc();
    const pcm: Buffer[] = [];
    while ((await fmt.readFrame(pkt)) >= 0) {
      if (pkt.data) pcm.push(Buffer.from(pkt.data));
      pkt.unref();
    }
    pkt.free();
    await fmt.closeInput();
    const samples = Buffer.concat(pcm);
    assert.equal(samples.length / 2, 16_000, '1 s of samples');
    let peak = 0;
    for (let i = 0; i < samples.length; i += 2) peak = Math.max(peak, Math.abs(samples.readInt16LE(i)));
    assert.ok(
      Math.abs(peak / 32767 - 0.5) < 0.01,
      `the tone as the models heard it (peak ${(peak / 32767).toFixed(3)})`,
    );
    now += 3 * HOUR;
    assert.equal(rec.sweep(), 1);
    assert.equal(existsSync(wavPath), false, 'the WAV goes with its clip');
  });
});
