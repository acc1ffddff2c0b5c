// End-to-end helpers: the real server (werift SFU + store + enforcer + moderation pipeline + models),
// synthetic clips whose content can be switched mid-stream, and probes that tell, per viewer, the
// source picture from the SFU's slate and count audio packets, all on the server clock.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildServer, type Server } from '../../server/app.ts';
import { loadConfig } from '../../server/config.ts';
import { LOAD_TEST_ENV } from '../../loadtest/server.ts';
import { WhipPublisher } from '../../loadtest/clients/whip-publisher.ts';
import { WhepViewer, type ReceivedPacket } from '../../loadtest/clients/whep-viewer.ts';
import { nowMs } from '../../loadtest/clients/peer.ts';
import { encodeAudio, encodeVideo, type EncodedFrame } from '../../media/encode.ts';
import { SCENE_DEFAULTS, renderScene, type SceneKind } from '../../loadtest/media/scenes.ts';
import { keyframePictureSize } from '../../media/keyframe.ts';

export { nowMs };

/** Source clips are 480x270; the SFU's slate is 640x360, so a keyframe's size tells them apart. */
export const CLIP = { width: 480, height: 270, fps: 10, seconds: 3 } as const;
export const SLATE_WIDTH = 640;

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function until(predicate: () => boolean, timeoutMs: number, what: string, stepMs = 50): Promise<number> {
  const end = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(stepMs);
  }
  return nowMs();
}

export interface E2EServer {
  server: Server;
  url: string;
  adminToken: string;
  token(claims: {
    role: 'publisher' | 'viewer' | 'reviewer' | 'admin';
    sub: string;
    streamId?: string;
    jurisdiction?: string;
  }): Promise<string>;
  close(): Promise<void>;
}

export async function startE2EServer(env: Record<string, string> = {}): Promise<E2EServer> {
  const scratch = await mkdtemp(join(tmpdir(), 'msfu-e2e-'));
  const config = loadConfig({
    argv: [],
    // werift unless a test names the engine (the moderation suite runs on both)
    // evidence clips and the webhook queue in a folder of this run, not the repository's .data/
    env: {
      ...LOAD_TEST_ENV,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      AUTH_SECRET: 'e2e-secret-0123456789-0123456789-0123456789',
      SFU_ENGINE: 'werift',
      EVIDENCE_DIR: join(scratch, 'evidence'),
      WEBHOOK_DIR: join(scratch, 'webhooks'),
      ...env,
    },
  });
  const server = await buildServer(config);
  const { url } = await server.listen();
  const adminToken = await server.auth.sign({ role: 'admin', sub: 'e2e-admin' }, '1h');
  return {
    server,
    url,
    adminToken,
    token: (c) => server.auth.sign(c, '1h'),
    close: async () => {
      await server.close();
      await rm(scratch, { recursive: true, force: true });
    },
  };
}

export interface Clip {
  kind: SceneKind;
  video: EncodedFrame[];
  audio: EncodedFrame[];
}

const clipCache = new Map<SceneKind, Promise<Clip>>();

/**
 * A scene from loadtest/media/scenes.ts, encoded with every video frame a keyframe, so a publisher can
 * switch clips at any frame and the decoders (the server's sampler, the viewers) never see a broken
 * reference; it also makes every source frame's size readable from its first packet.
 */
export function clip(kind: SceneKind): Promise<Clip> {
  let p = clipCache.get(kind);
  if (!p) {
    p = (async () => {
      const raw = await renderScene(kind, {
        ...SCENE_DEFAULTS,
        width: CLIP.width,
        height: CLIP.height,
        fps: CLIP.fps,
        seconds: CLIP.seconds,
      });
      const video = await encodeVideo(raw.frames, {
        codec: 'VP8',
        width: CLIP.width,
        height: CLIP.height,
        fps: CLIP.fps,
        bitrateKbps: 1500,
        keyframeInterval: 1,
      });
      const audio = await encodeAudio(raw.pcm, { bitrateKbps: 32 });
      return { kind, video, audio };
    })();
    clipCache.set(kind, p);
  }
  return p;
}

/** A WHIP publisher whose video and audio clips can be swapped while it plays. */
export class Broadcast {
  readonly video: { codec: 'VP8'; frames: EncodedFrame[]; fps: number };
  readonly audio: { frames: EncodedFrame[] };
  endedAt: number | undefined;
  #pending: { kind: 'audio' | 'video'; resolve: (t: number) => void } | undefined;

  private constructor(
    readonly streamId: string,
    readonly pub: WhipPublisher,
    video: { codec: 'VP8'; frames: EncodedFrame[]; fps: number },
    audio: { frames: EncodedFrame[] },
  ) {
    this.video = video;
    this.audio = audio;
    void pub.ended.then(() => (this.endedAt ??= nowMs()));
    pub.onPacket = (p) => {
      const pending = this.#pending;
      if (pending && p.kind === pending.kind) {
        this.#pending = undefined;
        pending.resolve(p.sentAt);
      }
    };
  }

  static async start(base: string, streamId: string, token: string, initial: Clip): Promise<Broadcast> {
    const video = { codec: 'VP8' as const, frames: initial.video, fps: CLIP.fps };
    const audio = { frames: initial.audio };
    const pub = await WhipPublisher.connect({
      url: `${base}/whip/${streamId}`,
      token,
      video,
      audio,
      connectTimeoutMs: 20_000,
    });
    const b = new Broadcast(streamId, pub, video, audio);
    pub.start();
    return b;
  }

  /** Swaps the video clip; resolves with the send time (server clock) of the first packet of the new clip. */
  switchVideo(next: Clip): Promise<number> {
    return this.#switch('video', () => (this.video.frames = next.video));
  }

  /** Swaps the audio clip; resolves with the send time of its first packet. */
  switchAudio(next: Clip): Promise<number> {
    return this.#switch('audio', () => (this.audio.frames = next.audio));
  }

  #switch(kind: 'audio' | 'video', swap: () => void): Promise<number> {
    return new Promise((resolve) => {
      // the send loop runs on this thread: the swap and the marker land between two of its ticks
      swap();
      this.#pending = { kind, resolve };
    });
  }

  stop(): Promise<void> {
    return this.pub.stop().catch(() => undefined);
  }
}

export type PictureKind = 'source' | 'slate' | 'other';

/** A WHEP viewer with a jurisdiction, recording what it sees: source vs slate pictures and audio packets. */
export class Watcher {
  readonly pictures: { at: number; kind: PictureKind }[] = [];
  readonly audioAt: number[] = [];
  endedAt: number | undefined;

  private constructor(
    readonly jurisdiction: string,
    readonly viewer: WhepViewer,
  ) {
    void viewer.ended.then(() => (this.endedAt ??= nowMs()));
    viewer.onPacket = (p: ReceivedPacket) => {
      if (p.kind === 'audio') {
        this.audioAt.push(p.receivedAt);
        return;
      }
      if (!p.keyframeStart) return;
      const size = p.payload ? keyframePictureSize('VP8', p.payload) : undefined;
      const kind: PictureKind = !size
        ? 'other'
        : size.width === CLIP.width
          ? 'source'
          : size.width === SLATE_WIDTH
            ? 'slate'
            : 'other';
      this.pictures.push({ at: p.receivedAt, kind });
      // payloads are only needed for the size of a keyframe's first packet
      this.viewer.packets.length = 0;
    };
  }

  static async connect(base: string, streamId: string, token: string, jurisdiction: string): Promise<Watcher> {
    const viewer = await WhepViewer.connect({
      url: `${base}/whep/${streamId}`,
      token,
      codecs: ['VP8'],
      recordPayloads: true,
      maxRecords: 1000,
      connectTimeoutMs: 20_000,
    });
    return new Watcher(jurisdiction, viewer);
  }

  count(kind: PictureKind, from = 0, to = Infinity): number {
    return this.pictures.filter((p) => p.kind === kind && p.at >= from && p.at < to).length;
  }

  first(kind: PictureKind, from = 0): number | undefined {
    return this.pictures.find((p) => p.kind === kind && p.at >= from)?.at;
  }

  audioCount(from = 0, to = Infinity): number {
    let n = 0;
    for (const t of this.audioAt) if (t >= from && t < to) n++;
    return n;
  }

  lastAudioAt(): number {
    return this.audioAt.at(-1) ?? 0;
  }

  close(): Promise<void> {
    return this.viewer.close().catch(() => undefined);
  }
}

/** p50 / p99 / max of a list (nearest rank). */
export function summary(xs: number[]): { n: number; p50: number; p99: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number): number => (s.length ? s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]! : NaN);
  return { n: s.length, p50: at(0.5), p99: at(0.99), max: s.at(-1) ?? NaN };
}
