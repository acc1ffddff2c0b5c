// media/mux.ts: real encoder output (libvpx VP8, libx264, libopus) remuxed without transcoding into
// WebM / Matroska; FFmpeg's demuxer reads back the same codec, every frame, and the pictures decode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AVMEDIA_TYPE_VIDEO,
  AV_CODEC_ID_H264,
  AV_CODEC_ID_OPUS,
  AV_CODEC_ID_VP8,
  FF_DECODER_H264,
  FF_DECODER_VP8,
  FormatContext,
  Packet,
} from 'node-av';
import { encodeAudio, encodeVideo, rgbTestPattern, sine48k } from '../../media/encode.ts';
import { MuxError, muxFrames } from '../../media/mux.ts';
import { vp8FrameSize } from '../../media/vp8.ts';
import { decodeWith } from '../sfu/helpers.ts';

async function readBack(path: string): Promise<{
  format: string;
  codecs: number[];
  width: number;
  extradata: Buffer | null;
  video: Uint8Array[];
  audio: number;
}> {
  const fmt = new FormatContext();
  assert.ok((await fmt.openInput(path, null, null)) >= 0);
  await fmt.findStreamInfo(null);
  const vs = fmt.streams.find((s) => s.codecpar.codecType === AVMEDIA_TYPE_VIDEO)!;
  const out = {
    format: fmt.iformat?.name ?? '',
    codecs: fmt.streams.map((s) => s.codecpar.codecId),
    width: vs.codecpar.width,
    extradata: vs.codecpar.extradata,
    video: [] as Uint8Array[],
    audio: 0,
  };
  const pkt = new Packet();
  pkt.alloc();
  while ((await fmt.readFrame(pkt)) >= 0) {
    if (pkt.streamIndex === vs.index && pkt.data) out.video.push(Buffer.from(pkt.data));
    else out.audio++;
    pkt.unref();
  }
  pkt.free();
  await fmt.closeInput();
  return out;
}

for (const codec of ['VP8', 'H264'] as const) {
  test(`${codec} + Opus remux into ${codec === 'VP8' ? 'WebM' : 'Matroska'}: same codec, every frame, pictures decode`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'msfu-mux-'));
    try {
      const frames = Array.from({ length: 30 }, (_, i) => rgbTestPattern(320, 180, i));
      const video = await encodeVideo(frames, { codec, width: 320, height: 180, fps: 10, keyframeInterval: 10 });
      const audio = await encodeAudio(sine48k(3));
      // a clip cut from a live stream starts mid-GOP: frames before the first keyframe are left out.
      // (libx264 writes SPS/PPS only before its first IDR; the evidence ring adds them to later ones.)
      const cut = codec === 'VP8' ? video.slice(5) : video;
      const expected = codec === 'VP8' ? 20 : 30;
      const r = await muxFrames(join(dir, 'clip'), [
        { kind: 'video', codec, frames: cut.map((f) => ({ data: f.data, ptsMs: f.ptsMs, keyframe: f.keyframe })) },
        { kind: 'audio', codec: 'opus', frames: audio.map((f) => ({ data: f.data, ptsMs: f.ptsMs, keyframe: true })) },
      ]);
      assert.equal(r.container, codec === 'VP8' ? 'webm' : 'matroska');
      assert.deepEqual([r.width, r.height], [320, 180]);
      const back = await readBack(join(dir, 'clip'));
      assert.match(back.format, /matroska/);
      assert.deepEqual(back.codecs, [codec === 'VP8' ? AV_CODEC_ID_VP8 : AV_CODEC_ID_H264, AV_CODEC_ID_OPUS]);
      assert.equal(back.video.length, expected, 'every frame from the first keyframe on');
      assert.ok(back.audio >= 140, `audio packets (${back.audio})`);
      if (codec === 'VP8')
        assert.deepEqual(Buffer.from(back.video[0]!), Buffer.from(cut[5]!.data), 'the bytes as sent: no transcoding');
      // Matroska stores H.264 as avcC (length-prefixed NALs, SPS/PPS in the codec private data)
      let pictures = 0;
      decodeWith(
        codec === 'VP8' ? FF_DECODER_VP8 : FF_DECODER_H264,
        back.video,
        () => pictures++,
        (ctx) => {
          if (back.extradata) ctx.extraData = back.extradata;
        },
      );
      assert.equal(pictures, expected, 'each frame decodes');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}

test('no keyframe: a coded error, no file; vp8FrameSize reads a keyframe header', async () => {
  const video = await encodeVideo([rgbTestPattern(64, 48, 0), rgbTestPattern(64, 48, 1)], {
    codec: 'VP8',
    width: 64,
    height: 48,
    fps: 10,
  });
  assert.deepEqual(vp8FrameSize(video[0]!.data), { width: 64, height: 48 });
  assert.equal(vp8FrameSize(video[1]!.data), undefined, 'not a keyframe');
  await assert.rejects(
    muxFrames(join(tmpdir(), 'never.webm'), [
      { kind: 'video', codec: 'VP8', frames: [{ data: video[1]!.data, ptsMs: 0, keyframe: false }] },
    ]),
    MuxError,
  );
});
