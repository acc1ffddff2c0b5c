// `npm start -- --demo`: synthetic streams so a newcomer sees moderation work without a camera.
//   demo-clean      moving shapes and a harmless melody: stays green
//   demo-violating  clean for a while, then a picture from the known-bad hash bank: killed
//   demo-regional   alternates clean / words only SA restricts on screen, with a protected melody
//                   under them: SA viewers get the slate, DE viewers lose the audio, SE viewers
//                   keep everything; the gates reopen when the clip turns clean again
// Each stream has synthetic viewers in SE, DE and SA so the per-jurisdiction gates act on someone.
// A client program like the load tester: it reaches the server only through its public protocols
// (the admin API registers the known content, WHIP publishes, WHEP watches), with tokens the server
// gave it. server/main.ts starts it as a child process (DEMO_URL, DEMO_TOKENS) and stops it with
// SIGTERM; before, the server imported it and added the banked hash to its banks directly.
import { WhepViewer } from './clients/whep-viewer.ts';
import { WhipPublisher } from './clients/whip-publisher.ts';
import type { EncodedFrame } from '../media/encode.ts';
import { loadScene, protectedAudio, wav, SCENE_DEFAULTS, type EncodedScene } from './media/scenes.ts';
import { bankedPicturePpm } from './register.ts';

export interface DemoHandle {
  close(): Promise<void>;
}

/** Tokens the server hands the demo: an admin's, one publish token per stream, one viewer token per jurisdiction. */
export interface DemoTokens {
  admin: string;
  publish: Record<string, string>;
  view: Record<string, string>;
}

export interface DemoOptions {
  /** Seconds of clean video before demo-violating shows the banked picture. Default 20. */
  violateAfterSec: number;
  /** Seconds each half (clean / regional) of demo-regional lasts. Default 15. */
  regionalHalfSec: number;
  jurisdictions: string[];
}

const DEFAULTS: Readonly<DemoOptions> = Object.freeze({
  violateAfterSec: 20,
  regionalHalfSec: 15,
  jurisdictions: ['SE', 'DE', 'SA'],
});

/** Plays `parts` one after the other as one looping clip (each part starts on a keyframe). */
function concat(parts: { scene: EncodedScene; seconds: number }[]): {
  video: EncodedFrame[];
  audio: EncodedFrame[];
  fps: number;
} {
  const video: EncodedFrame[] = [];
  const audio: EncodedFrame[] = [];
  let offsetMs = 0;
  for (const { scene, seconds } of parts) {
    const ms = seconds * 1000;
    for (let t = 0; t < ms; t += scene.video.length * (1000 / scene.fps)) {
      for (const f of scene.video) if (t + f.ptsMs < ms) video.push({ ...f, ptsMs: offsetMs + t + f.ptsMs });
      for (const f of scene.audio) if (t + f.ptsMs < ms) audio.push({ ...f, ptsMs: offsetMs + t + f.ptsMs });
    }
    offsetMs += ms;
  }
  return { video, audio, fps: parts[0].scene.fps };
}

const log = (msg: string): void => void process.stdout.write(`demo: ${msg}\n`);

export async function startDemo(
  url: string,
  tokens: DemoTokens,
  options: Partial<DemoOptions> = {},
): Promise<DemoHandle> {
  const o = { ...DEFAULTS, ...options };
  // The known content the demo violates with, registered as an operator would: through the admin API.
  const registrations = [
    {
      path: '/v1/banks/known_bad/pictures?id=demo-banked-picture&category=known_bad_match&source=demo',
      type: 'image/x-portable-pixmap',
      body: bankedPicturePpm(SCENE_DEFAULTS),
    },
    {
      path: '/v1/audio-banks/protected_music/recordings?name=demo-protected-melody&source=demo',
      type: 'audio/wav',
      body: new Uint8Array(wav(protectedAudio(12))),
    },
  ];
  for (const r of registrations) {
    const res = await fetch(`${url}${r.path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens.admin}`, 'content-type': r.type },
      body: r.body,
      signal: AbortSignal.timeout(30_000),
    });
    if (res.status === 503) {
      log('moderation is off on the server (MODERATION=false); the demo streams play unmoderated');
      break;
    }
    if (res.status !== 201)
      log(`known content not registered (${r.path.split('?')[0]}: ${res.status} ${(await res.text()).slice(0, 200)})`);
  }

  const [clean, banked, regional, music] = await Promise.all([
    loadScene('clean'),
    loadScene('banked_picture'),
    loadScene('regional'),
    loadScene('protected_audio'),
  ]);
  // The regional half: regional words on screen, with the protected melody under them.
  const regionalWithMusic: EncodedScene = { ...regional, audio: music.audio };
  const clips: Record<string, ReturnType<typeof concat>> = {
    'demo-clean': concat([{ scene: clean, seconds: clean.video.length / clean.fps }]),
    'demo-violating': concat([
      { scene: clean, seconds: o.violateAfterSec },
      { scene: banked, seconds: banked.video.length / banked.fps },
    ]),
    'demo-regional': concat([
      { scene: clean, seconds: o.regionalHalfSec },
      { scene: regionalWithMusic, seconds: o.regionalHalfSec },
    ]),
  };

  const publishers: WhipPublisher[] = [];
  const viewers: WhepViewer[] = [];
  let closed = false;
  for (const [streamId, clip] of Object.entries(clips)) {
    const token = tokens.publish[streamId];
    const publisher = await WhipPublisher.connect({
      url: `${url}/whip/${streamId}`,
      token,
      video: { codec: 'VP8', frames: clip.video, fps: clip.fps },
      audio: { frames: clip.audio },
    });
    publisher.start();
    publishers.push(publisher);
    void publisher.ended.then(() => {
      if (!closed) log(`stream ${streamId} ended by the server`);
    });
    for (const jurisdiction of o.jurisdictions) {
      viewers.push(await WhepViewer.connect({ url: `${url}/whep/${streamId}`, token: tokens.view[jurisdiction] }));
    }
  }
  log(
    `streams demo-clean, demo-violating (known-bad picture after ${o.violateAfterSec} s: killed), demo-regional (SA blanked / DE muted every other ${o.regionalHalfSec} s); watch them on /ops`,
  );

  return {
    async close() {
      closed = true;
      await Promise.allSettled([...viewers.map((v) => v.close()), ...publishers.map((p) => p.stop())]);
    },
  };
}

// As a program (server/main.ts --demo): DEMO_URL and DEMO_TOKENS (JSON DemoTokens) from the server; SIGTERM ends it.
if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('loadtest/demo.ts')) {
  const url = process.env.DEMO_URL;
  const tokens = process.env.DEMO_TOKENS;
  if (!url || !tokens) {
    process.stderr.write('demo: DEMO_URL and DEMO_TOKENS are set by the server (npm start -- --demo)\n');
    process.exit(2);
  }
  const demo = await startDemo(url, JSON.parse(tokens) as DemoTokens);
  const stop = (): void => void demo.close().finally(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
