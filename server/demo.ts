// `npm start -- --demo`: synthetic streams so a newcomer sees moderation work without a camera.
//   demo-clean      moving shapes and a harmless melody: stays green
//   demo-violating  clean for a while, then a picture from the known-bad hash bank: killed
//   demo-regional   alternates clean / words only SA restricts on screen, with a protected melody
//                   under them: SA viewers get the slate, DE viewers lose the audio, SE viewers
//                   keep everything; the gates reopen when the clip turns clean again
// Each stream has synthetic viewers in SE, DE and SA so the per-jurisdiction gates act on someone.
// The streams go through the public WHIP/WHEP endpoints like any other client.
import { WhepViewer } from '../loadtest/clients/whep-viewer.ts';
import { WhipPublisher } from '../loadtest/clients/whip-publisher.ts';
import type { EncodedFrame } from '../media/encode.ts';
import { loadScene, protectedAudio, wav, SCENE_DEFAULTS, type EncodedScene } from '../loadtest/media/scenes.ts';
import { bankedPicturePpm } from '../loadtest/register.ts';
import type { Server } from './app.ts';

export interface DemoHandle {
  close(): Promise<void>;
}

export interface DemoOptions {
  /** Seconds of clean video before demo-violating shows the banked picture. Default 20. */
  violateAfterSec: number;
  /** Seconds each half (clean / regional) of demo-regional lasts. Default 15. */
  regionalHalfSec: number;
  jurisdictions: string[];
}

const DEFAULTS: Readonly<DemoOptions> = Object.freeze({ violateAfterSec: 20, regionalHalfSec: 15, jurisdictions: ['SE', 'DE', 'SA'] });

/** Plays `parts` one after the other as one looping clip (each part starts on a keyframe). */
function concat(parts: { scene: EncodedScene; seconds: number }[]): { video: EncodedFrame[]; audio: EncodedFrame[]; fps: number } {
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

export async function startDemo(server: Server, options: Partial<DemoOptions> = {}): Promise<DemoHandle> {
  const o = { ...DEFAULTS, ...options };
  const log = server.app.log;
  const stack = server.moderation;
  if (!stack) {
    log.warn('--demo: moderation is off (MODERATION=false); the demo streams play unmoderated');
  } else {
    // The known content the demo violates with, registered as an operator would: through the admin API.
    const authorization = `Bearer ${await server.auth.sign({ role: 'admin', sub: 'demo' }, '10m')}`;
    const registrations = [
      { url: '/v1/banks/known_bad/pictures?id=demo-banked-picture&category=known_bad_match&source=demo', type: 'image/x-portable-pixmap', body: Buffer.from(bankedPicturePpm(SCENE_DEFAULTS)) },
      { url: '/v1/audio-banks/protected_music/recordings?name=demo-protected-melody&source=demo', type: 'audio/wav', body: Buffer.from(wav(protectedAudio(12))) },
    ];
    for (const r of registrations) {
      const res = await server.app.inject({ method: 'POST', url: r.url, headers: { authorization, 'content-type': r.type }, payload: r.body });
      if (res.statusCode !== 201) log.warn({ url: r.url, status: res.statusCode, body: res.body.slice(0, 200) }, '--demo: known content not registered');
    }
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
    const token = await server.auth.sign({ role: 'publisher', sub: `demo-${streamId}`, streamId }, '24h');
    const publisher = await WhipPublisher.connect({ url: `${server.url}/whip/${streamId}`, token, video: { codec: 'VP8', frames: clip.video, fps: clip.fps }, audio: { frames: clip.audio } });
    publisher.start();
    publishers.push(publisher);
    void publisher.ended.then(() => {
      if (!closed) log.info({ streamId }, 'demo stream ended by the server');
    });
    for (const jurisdiction of o.jurisdictions) {
      const viewerToken = await server.auth.sign({ role: 'viewer', sub: `demo-viewer-${jurisdiction}`, jurisdiction }, '24h');
      viewers.push(await WhepViewer.connect({ url: `${server.url}/whep/${streamId}`, token: viewerToken }));
    }
  }
  log.info(
    `--demo: streams demo-clean, demo-violating (known-bad picture after ${o.violateAfterSec} s: killed), demo-regional (SA blanked / DE muted every other ${o.regionalHalfSec} s); watch them on /ops`,
  );

  return {
    async close() {
      closed = true;
      await Promise.allSettled([...viewers.map((v) => v.close()), ...publishers.map((p) => p.stop())]);
    },
  };
}
