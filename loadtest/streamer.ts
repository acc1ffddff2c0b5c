// Plays a stream's script through a WHIP sender: the clean scene in a loop, switching to a
// violating clip at the scripted second. All publishers share one pacing loop so a hundred streams
// cost one timer, and every packet's send instant goes into the ledger for latency matching.

import type { EncodedScene } from './media/scenes.ts';
import { packetizeOpus, packetizeVp8 } from '../media/packetize.ts';
import type { SendLedger } from './observe.ts';
import type { StreamRecord } from './analyze.ts';
import type { ScriptedViolation, StreamScript } from './script.ts';
import { now } from './peers.ts';

/** Anything that can put an RTP payload on the wire and say when it did. */
export interface PayloadSink {
  readonly closed: boolean;
  send(kind: 'audio' | 'video', payload: Uint8Array, rtpTimestamp: number, marker: boolean): number;
}

interface Switch {
  index: number;
  violation: ScriptedViolation;
  track: 'video' | 'audio';
  scene: EncodedScene;
  /** First frame/packet number that plays the violating clip. */
  from: number;
}

const AUDIO_KINDS = new Set(['protected_audio']);

/** Most frames a lagging loop sends in one go before it skips ahead (keeps bursts bounded). */
const MAX_BACKLOG = 6;

export class ScriptedStream {
  #t0 = 0;
  #videoNext = 0;
  #audioNext = 0;
  readonly #videoBase = Math.floor(Math.random() * 2 ** 31);
  readonly #audioBase = Math.floor(Math.random() * 2 ** 31);
  readonly #pictureIdBase = Math.floor(Math.random() * 0x7fff);
  #switches: Switch[] = [];
  packetsSent = 0;
  skipped = 0;
  stopped = false;
  /** Called once per scripted violation when its first violating frame/packet goes out. */
  onOnset: ((violation: ScriptedViolation, at: number) => void) | undefined;
  readonly #sink: PayloadSink;
  readonly #clean: EncodedScene;
  readonly #violating: (kind: ScriptedViolation['kind']) => EncodedScene;
  readonly #ledger: SendLedger;

  constructor(
    readonly script: StreamScript,
    sink: PayloadSink,
    clean: EncodedScene,
    violating: (kind: ScriptedViolation['kind']) => EncodedScene,
    ledger: SendLedger,
    readonly record: StreamRecord,
  ) {
    this.#sink = sink;
    this.#clean = clean;
    this.#violating = violating;
    this.#ledger = ledger;
  }

  start(at = now()): void {
    this.#t0 = at;
    this.record.startedAt = at;
    const frameMs = 1000 / this.#clean.fps;
    this.#switches = this.script.violations.map((violation, index) => {
      const track = AUDIO_KINDS.has(violation.kind) ? 'audio' : 'video';
      const ms = violation.atSec * 1000;
      return {
        index,
        violation,
        track,
        scene: this.#violating(violation.kind),
        from: Math.ceil(ms / (track === 'video' ? frameMs : 20)),
      };
    });
  }

  /** Sends every frame and audio packet due by `at`. */
  tick(at: number): void {
    if (this.stopped || this.#sink.closed) return;
    const fps = this.#clean.fps;
    const videoDue = Math.floor(((at - this.#t0) * fps) / 1000);
    if (videoDue - this.#videoNext > MAX_BACKLOG) {
      this.skipped += videoDue - MAX_BACKLOG - this.#videoNext;
      this.#videoNext = videoDue - MAX_BACKLOG;
    }
    while (this.#videoNext <= videoDue) this.#sendVideo(this.#videoNext++);
    const audioDue = Math.floor((at - this.#t0) / 20);
    if (audioDue - this.#audioNext > MAX_BACKLOG * 3) {
      this.skipped += audioDue - MAX_BACKLOG * 3 - this.#audioNext;
      this.#audioNext = audioDue - MAX_BACKLOG * 3;
    }
    while (this.#audioNext <= audioDue) this.#sendAudio(this.#audioNext++);
  }

  #active(track: 'video' | 'audio', n: number): Switch | undefined {
    let best: Switch | undefined;
    for (const s of this.#switches) if (s.track === track && n >= s.from && (!best || s.from > best.from)) best = s;
    return best;
  }

  #onset(s: Switch | undefined, n: number, at: number): void {
    if (s && n === s.from && this.record.onsets[s.index] === undefined) {
      this.record.onsets[s.index] = at;
      this.onOnset?.(s.violation, at);
    }
  }

  #sendVideo(k: number): void {
    const s = this.#active('video', k);
    // a violating clip plays from its first frame (a keyframe) at the switch, then loops
    const clip = s ? s.scene.video : this.#clean.video;
    const frame = clip[(s ? k - s.from : k) % clip.length]!;
    const ts = (this.#videoBase + Math.round((k * 90000) / this.#clean.fps)) >>> 0;
    const payloads = packetizeVp8(frame.data, 1200, (this.#pictureIdBase + k) & 0x7fff);
    let first = 0;
    payloads.forEach((p, i) => {
      const at = this.#sink.send('video', p, ts, i === payloads.length - 1);
      if (i === 0) first = at;
      this.#ledger.sent(this.script.streamId, 'video', p, at);
      this.packetsSent++;
    });
    this.#onset(s, k, first);
  }

  #sendAudio(j: number): void {
    const s = this.#active('audio', j);
    const clip = s ? s.scene.audio : this.#clean.audio;
    const frame = clip[(s ? j - s.from : j) % clip.length]!;
    const ts = (this.#audioBase + j * 960) >>> 0;
    for (const p of packetizeOpus(frame.data)) {
      const at = this.#sink.send('audio', p, ts, false);
      this.#ledger.sent(this.script.streamId, 'audio', p, at);
      this.packetsSent++;
      this.#onset(s, j, at);
    }
  }
}

/** One timer for every stream: ticks each every `periodMs`. */
export class Pacer {
  readonly #streams = new Set<ScriptedStream>();
  #timer: NodeJS.Timeout | undefined;
  readonly #periodMs: number;

  constructor(periodMs = 5) {
    this.#periodMs = periodMs;
  }

  add(s: ScriptedStream): void {
    this.#streams.add(s);
    if (!this.#timer) this.#timer = setInterval(() => this.#tick(), this.#periodMs);
  }

  remove(s: ScriptedStream): void {
    this.#streams.delete(s);
  }

  #tick(): void {
    const at = now();
    for (const s of this.#streams) {
      try {
        s.tick(at);
      } catch (err) {
        s.stopped = true;
        s.record.error = `send failed: ${(err as Error).message}`;
      }
    }
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#streams.clear();
  }
}
