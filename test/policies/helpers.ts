// Shared fixtures for the policy tests: the shipped policy bundle, signal builders, and a fake
// Stream/Viewer implementing sfu/types.ts.
import { EventEmitter } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPolicyBundle } from '../../policies/loader.ts';
import type { Policy, PolicyFile, SignalLike } from '../../policies/types.ts';
import type { CloseReason, Stream, TrackInfo, Viewer, ViewerGateState, ViewerStats } from '../../sfu/types.ts';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const POLICY_DIR = join(REPO, 'policies');

export function shippedPolicyFiles(): PolicyFile[] {
  const out: PolicyFile[] = [];
  const walk = (dir: string, rel: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (e.isDirectory()) walk(join(dir, e.name), `${rel}/${e.name}`);
      else if (/\.ya?ml$/.test(e.name)) out.push({ filename: `${rel}/${e.name}`, text: readFileSync(join(dir, e.name), 'utf8') });
    }
  };
  walk(POLICY_DIR, 'policies');
  return out;
}

export function shippedPolicy(): Policy {
  return loadPolicyBundle(shippedPolicyFiles());
}

/** A signal for one sample; `at` is both arrival and (minus 20 ms) completion. */
export function signal(
  seq: number,
  scores: Record<string, number> = {},
  extra: Partial<SignalLike> = {},
): SignalLike {
  const at = extra.arrivedAt ?? 1_000 + seq * 500;
  return {
    streamId: 's1',
    kind: 'video',
    sampleSeq: seq,
    rtpTimestamp: seq * 45_000,
    arrivedAt: at,
    completedAt: at + 20,
    status: 'ok',
    scores,
    matches: [],
    text: [],
    uncertain: false,
    models: [{ name: 'nsfw-mobilenetv2', version: 'test' }],
    ...extra,
  };
}

export const badMatch = { category: 'known_bad_match', kind: 'pdq', bank: 'known_bad', entryId: 'kb-1', distance: 8, confidence: 1 - 8 / 64 };
export const musicMatch = { category: 'copyright_audio', kind: 'audio_fingerprint', bank: 'protected_music', entryId: 'track-42', confidence: 0.9 };

type Listener = (...args: any[]) => void; // eslint-disable-line @typescript-eslint/no-explicit-any

export class FakeViewer implements Viewer {
  readonly id: string;
  readonly streamId: string;
  readonly jurisdiction: string | undefined;
  closed = false;
  connected = true;
  gate: ViewerGateState;
  paused = false;
  closeReason: CloseReason | undefined;
  /** Every gate call, in order. */
  readonly calls: string[] = [];
  readonly #em = new EventEmitter();

  constructor(streamId: string, id: string, jurisdiction: string | undefined, initial: Partial<ViewerGateState> = {}) {
    this.streamId = streamId;
    this.id = id;
    this.jurisdiction = jurisdiction;
    this.gate = { video: initial.video ?? 'forward', audio: initial.audio ?? 'forward' };
  }
  setVideoGate(state: 'forward' | 'blank'): void {
    if (this.closed) return;
    this.calls.push(`video:${state}`);
    this.gate = { ...this.gate, video: state };
    this.#em.emit('gate', this.gate);
  }
  setAudioGate(state: 'forward' | 'mute'): void {
    if (this.closed) return;
    this.calls.push(`audio:${state}`);
    this.gate = { ...this.gate, audio: state };
    this.#em.emit('gate', this.gate);
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
  stats(): ViewerStats {
    return { packetsForwarded: 0, bytesForwarded: 0, packetsDropped: 0, keyframeRequests: 0 };
  }
  close(reason: CloseReason): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    this.calls.push(`close:${reason.code}`);
    this.gate = { video: 'closed', audio: 'closed' };
    this.#em.emit('close', reason);
  }
  on(event: 'close', listener: (reason: CloseReason) => void): this;
  on(event: 'gate', listener: (gate: ViewerGateState) => void): this;
  on(event: 'connected', listener: () => void): this;
  on(event: string, listener: Listener): this {
    this.#em.on(event, listener);
    return this;
  }
}

export class FakeStream implements Stream {
  readonly id: string;
  closed = false;
  connected = true;
  readonly createdAt = 0;
  readonly tracks: readonly TrackInfo[] = [];
  readonly viewers = new Map<string, FakeViewer>();
  closeReason: CloseReason | undefined;
  readonly tap = { subscribe: () => ({ delivered: 0, dropped: 0, close: () => undefined }) };
  readonly #em = new EventEmitter();

  constructor(id: string) {
    this.id = id;
  }
  /** What the WHEP route does: create the viewer with its initial gate, then announce it. */
  addViewer(id: string, jurisdiction: string | undefined, initialGate?: Partial<ViewerGateState>): FakeViewer {
    const v = new FakeViewer(this.id, id, jurisdiction, initialGate);
    this.viewers.set(id, v);
    v.on('close', () => this.viewers.delete(id));
    this.#em.emit('viewer', v);
    return v;
  }
  requestKeyFrame(): void {}
  close(reason: CloseReason): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    for (const v of [...this.viewers.values()]) v.close(reason);
    this.#em.emit('close', reason);
  }
  on(event: 'close', listener: (reason: CloseReason) => void): this;
  on(event: 'track', listener: (track: TrackInfo) => void): this;
  on(event: 'viewer', listener: (viewer: Viewer) => void): this;
  on(event: 'connected', listener: () => void): this;
  on(event: string, listener: Listener): this {
    this.#em.on(event, listener);
    return this;
  }
}

export class FakeSfu {
  readonly streams = new Map<string, FakeStream>();
  add(id: string): FakeStream {
    const s = new FakeStream(id);
    this.streams.set(id, s);
    s.on('close', () => this.streams.delete(id));
    return s;
  }
  getStream(id: string): FakeStream | undefined {
    return this.streams.get(id);
  }
}
