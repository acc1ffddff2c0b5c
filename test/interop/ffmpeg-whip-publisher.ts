// A third-party WHIP client: FFmpeg 8.1's own `whip` muxer (libavformat, through node-av) publishing
// H.264 + Opus encoded live from synthetic frames, paced in real time. It runs in a child process of
// the test, never in the server's process: libavformat's WHIP handshake (HTTP POST, ICE, DTLS) runs
// inside avformat_write_header, and in the server's process it would share the libuv thread pool
// with the server it is talking to.
//
//   node --import tsx test/interop/ffmpeg-whip-publisher.ts <whip-url> [--dtls-active] [--seconds N] [--profile baseline|high]
//
// Prints one JSON line on stdout: {"event":"done",...} with counters at the end, or
// {"event":"error","message":...} and exit code 1. (When the handshake is done is seen at the server:
// node-av holds the first packets until every stream has one, then writes the header.)

import {
  AV_CH_LAYOUT_STEREO,
  AV_CHANNEL_ORDER_NATIVE,
  AV_LOG_ERROR,
  AV_LOG_WARNING,
  AV_PIX_FMT_YUV420P,
  AV_SAMPLE_FMT_FLT,
  Encoder,
  FF_ENCODER_LIBOPUS,
  FF_ENCODER_LIBX264,
  Frame,
  Log,
  Muxer,
} from 'node-av';
import type { Packet } from 'node-av';
import { rgbTestPattern, rgbToI420 } from '../../media/encode.ts';

export interface FfmpegWhipOptions {
  url: string;
  /** whip_flags=dtls_active: FFmpeg offers a=setup:active and acts as DTLS client. Default false (FFmpeg offers passive). */
  dtlsActive: boolean;
  /** How long to publish (s). Default 10. */
  seconds: number;
  /** x264 profile: FFmpeg writes the profile-level-id that matches. Default baseline. */
  profile: 'baseline' | 'high';
}

function emit(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function publish(opts: FfmpegWhipOptions): Promise<void> {
  Log.setLevel(process.env.FFMPEG_WHIP_LOG === '1' ? AV_LOG_WARNING : AV_LOG_ERROR);
  const width = 320;
  const height = 240;
  const fps = 30;
  const video = await Encoder.create(FF_ENCODER_LIBX264, {
    timeBase: { num: 1, den: fps },
    frameRate: { num: fps, den: 1 },
    context: { bitRate: 500_000, gopSize: fps, maxBFrames: 0 },
    // the whip muxer refuses B-frames; a keyframe every second (FFmpeg never answers PLI)
    // x264's profile is a ceiling: ultrafast (no CABAC, no 8x8 transform) makes Constrained Baseline
    options: {
      preset: opts.profile === 'high' ? 'superfast' : 'ultrafast',
      tune: 'zerolatency',
      profile: opts.profile,
      'x264-params': `keyint=${fps}:min-keyint=${fps}:scenecut=0:repeat-headers=1`,
    },
  } as Parameters<typeof Encoder.create>[1]);
  const audio = await Encoder.create(FF_ENCODER_LIBOPUS, {
    timeBase: { num: 1, den: 48000 },
    context: { bitRate: 64_000 },
    options: { application: 'lowdelay', frame_duration: '20' },
  } as Parameters<typeof Encoder.create>[1]);
  const started = performance.now();
  const muxer = await Muxer.open(opts.url, {
    format: 'whip',
    options: { ...(opts.dtlsActive ? { whip_flags: 'dtls_active' } : {}), handshake_timeout: 8000 },
  });
  const videoIdx = muxer.addStream(video);
  const audioIdx = muxer.addStream(audio);
  let videoPackets = 0;
  let audioPackets = 0;
  const write = async (packets: Packet[], idx: number): Promise<void> => {
    for (const p of packets) {
      await muxer.writePacket(p, idx);
      p.free();
      if (idx === videoIdx) videoPackets++;
      else audioPackets++;
    }
  };
  try {
    const frames = Math.round(opts.seconds * fps);
    const t0 = performance.now();
    let audioSamples = 0;
    const tone = new Float32Array(960 * 2);
    for (let i = 0; i < frames; i++) {
      // audio up to this video frame's time, 20 ms at a time (stereo 440 Hz)
      while ((audioSamples / 48000) * 1000 <= (i * 1000) / fps) {
        for (let s = 0; s < 960; s++)
          tone[2 * s] = tone[2 * s + 1] = 0.2 * Math.sin((2 * Math.PI * 440 * (audioSamples + s)) / 48000);
        const af = Frame.fromAudioBuffer(Buffer.from(tone.buffer.slice(0)), {
          nbSamples: 960,
          format: AV_SAMPLE_FMT_FLT,
          sampleRate: 48000,
          channelLayout: { nbChannels: 2, order: AV_CHANNEL_ORDER_NATIVE, mask: AV_CH_LAYOUT_STEREO },
          timeBase: { num: 1, den: 48000 },
          pts: BigInt(audioSamples),
        });
        await write(await audio.encodeAll(af), audioIdx);
        af.free();
        audioSamples += 960;
      }
      const vf = Frame.fromVideoBuffer(rgbToI420(rgbTestPattern(width, height, i).rgb, width, height), {
        width,
        height,
        format: AV_PIX_FMT_YUV420P,
        timeBase: { num: 1, den: fps },
        pts: BigInt(i),
      });
      await write(await video.encodeAll(vf), videoIdx);
      vf.free();
      const due = t0 + ((i + 1) * 1000) / fps;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
    }
    emit({ event: 'done', videoPackets, audioPackets, ms: Math.round(performance.now() - started) });
  } finally {
    // the trailer sends the WHIP DELETE
    await muxer.close();
    video.close();
    audio.close();
  }
}

function parseArgs(argv: string[]): FfmpegWhipOptions {
  const url = argv[0];
  if (!url || !/^http:\/\/127\.0\.0\.1:\d+\//.test(url))
    throw new Error(
      'usage: ffmpeg-whip-publisher.ts http://127.0.0.1:PORT/whip/<id> [--dtls-active] [--seconds N] [--profile baseline|high]',
    );
  const seconds = argv.includes('--seconds') ? Number(argv[argv.indexOf('--seconds') + 1]) : 10;
  const profile = argv.includes('--profile') ? argv[argv.indexOf('--profile') + 1] : 'baseline';
  if (!(seconds > 0 && seconds <= 120)) throw new Error('--seconds must be in (0, 120]');
  if (profile !== 'baseline' && profile !== 'high') throw new Error('--profile must be baseline or high');
  return { url, dtlsActive: argv.includes('--dtls-active'), seconds, profile };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  publish(parseArgs(process.argv.slice(2))).then(
    () => process.exit(0),
    (err: unknown) => {
      emit({ event: 'error', message: err instanceof Error ? err.message : String(err) });
      process.exit(1);
    },
  );
}
