// Evidence clips: the media around every restrictive decision, kept where the decision's
// jurisdictions keep their evidence and for as long as they keep it (issue 19 item 2).
//
// Each live stream has a bounded ring of the RTP it forwarded, fed by its own tap subscription (a
// copy per packet per stream, never per viewer; nothing here runs on the forwarding call stack).
// The ring holds beforeMs of media, from the last video keyframe at or before that point, and at
// most maxRingBytes of payload. When the enforcer issues a statement it calls capture() (the
// EvidencePort): that takes a snapshot of the ring (references, no copy), returns the clip
// references the statement will cite, and keeps collecting the stream's packets for afterMs (or
// until the stream closes: a killed stream has no "after"). The packets are then reassembled into
// frames (samplers' FrameAssembler, the same one the samplers use) and remuxed by media/mux.ts,
// without transcoding: VP8 + Opus as WebM, H.264 + Opus as Matroska. The sampled frames the
// statement cites are kept beside the clip as JPEGs, and the audio windows it cites as WAVs (mono
// PCM at the samplers' rate, 16 kHz by default: what the models heard), when the pipeline still holds
// them.
//
// Storage: `dirs[J]` for a jurisdiction J that has one, else `dir`; a statement whose jurisdictions
// live in two places gets one clip in each. Retention: `retention[J]` else `retentionMs`, the longest
// of a location's jurisdictions; a sweep deletes expired clips (audited).
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { isKeyframeStart } from '../media/keyframe.ts';
import { muxFrames, type MuxFrame, type MuxTrack } from '../media/mux.ts';
import { encodeWav } from '../media/wav.ts';
import {
  H264ParameterSets,
  NAL_PPS,
  NAL_SPS,
  NAL_STAP_A,
  h264PacketCanStartFrame,
  h264PayloadNals,
} from '../media/h264.ts';
import { FrameAssembler, vp8Format } from '../samplers/frame-assembler.ts';
import type { EvidenceRef, StatementOfReasons } from '../policies/types.ts';
import type { Sfu, Stream, TapPacket, TapSubscription } from '../sfu/types.ts';
import type { EvidencePort } from './enforcer.ts';

export interface EvidenceOptions {
  sfu: Sfu;
  /** Default storage folder. */
  dir: string;
  /** Storage folder per jurisdiction (ISO code, upper case), for evidence that must stay in a region. */
  dirs?: Readonly<Record<string, string>>;
  /** How long a clip is kept (ms). Default 2592000000 (30 days). */
  retentionMs?: number;
  /** Retention per jurisdiction (ms). */
  retention?: Readonly<Record<string, number>>;
  /** Media kept before a decision (ms); the clip starts at the keyframe at or before it. Default 10000. */
  beforeMs?: number;
  /** Media kept after a decision (ms), while the stream lives. Default 5000. */
  afterMs?: number;
  /** Most RTP payload bytes one stream's ring holds. Default 16777216 (16 MiB). */
  maxRingBytes?: number;
  /** Expired clips are looked for this often (ms); 0 = only when sweep() is called. Default 60000. */
  sweepMs?: number;
  /** The sampled frames a statement cites, as JPEG: a snapshot taken at capture, encoded later. */
  citedFrames?: (
    streamId: string,
    sampleSeqs: readonly number[],
  ) => (() => { seq: number; jpeg: Uint8Array }[]) | undefined;
  /** The audio windows a statement cites (mono float PCM): a snapshot taken at capture, kept as WAV. */
  citedAudio?: (streamId: string, sampleSeqs: readonly number[]) => CitedAudio[] | undefined;
  audit?: (body: Record<string, unknown>) => unknown;
  log?: (level: 'warn' | 'info', msg: string, fields?: Record<string, unknown>) => void;
  /** Clock (ms since the epoch). Default Date.now. */
  now?: () => number;
  /** Clock of TapPacket.arrivedAt (ms). Default performance.timeOrigin + performance.now(). */
  mediaClock?: () => number;
}

/** An audio window a statement cites, as the samplers handed it to the models. */
export interface CitedAudio {
  seq: number;
  /** Hz. */
  sampleRate: number;
  /** Mono float PCM in [-1, 1]. */
  pcm: Float32Array;
}

/** What is kept of a clip beside it (`<id>.json`). */
export interface EvidenceMeta {
  ref: EvidenceRef;
  streamId: string;
  /** The statement (or review item) the clip was first kept for. */
  statementId: string;
  /** Every statement and review item that cites it (decisions of the same moment share one clip). */
  statementIds: string[];
  /** The first one's restriction. */
  action: string;
  file: string;
  container: 'webm' | 'matroska';
  contentType: string;
  bytes: number;
  frames: number;
  videoCodec?: string;
  width?: number;
  height?: number;
  /** JPEGs of the sampled frames the statement cites (file names beside the clip). */
  citedFrames: { seq: number; file: string }[];
  /** WAVs of the audio windows the statement cites (file names beside the clip). */
  citedAudio: { seq: number; file: string; sampleRate: number; durationMs: number }[];
  createdAt: number;
}

export interface EvidenceStats {
  rings: number;
  /** RTP payload bytes held in the rings now. */
  ringBytes: number;
  /** Packets held in the rings now. */
  ringPackets: number;
  clips: number;
  clipBytes: number;
  /** Clips deleted at the end of their retention since start. */
  deleted: number;
  /** Clips that could not be written (no keyframe, muxer error). */
  failed: number;
  /** Captures collecting their "after" part now. */
  pending: number;
}

interface Ring {
  stream: Stream;
  subscription: TapSubscription;
  packets: TapPacket[];
  head: number;
  bytes: number;
  /** Absolute indices of packets that start a video keyframe (absolute = position since the ring began). */
  keys: number[];
  /** Absolute index of packets[head]. */
  base: number;
  captures: Set<Capture>;
  closed: boolean;
  /** Newest H.264 SPS and PPS seen: a publisher that sends them once (libx264 without repeat-headers) still gets a decodable clip. */
  sps: Uint8Array | null;
  pps: Uint8Array | null;
}

/** What a clip is kept for: a statement of reasons, or a review item (amber: the reviewer sees the media). */
export interface EvidenceSubject {
  id: string;
  streamId: string;
  action: string;
  jurisdictions: readonly string[];
  sampleSeqs: readonly number[];
}

interface Capture {
  statement: EvidenceSubject;
  /** Every subject citing this capture's clips (the first is `statement`). */
  subjects: EvidenceSubject[];
  refs: EvidenceRef[];
  packets: TapPacket[];
  untilMedia: number;
  timer: NodeJS.Timeout | undefined;
  /** Snapshots of the sampled frames the subjects cite, encoded when the clip is written. */
  frames: (() => { seq: number; jpeg: Uint8Array }[])[];
  /** The audio windows the subjects cite. */
  audio: CitedAudio[];
  done: boolean;
}

const CONTENT_TYPE = { webm: 'video/webm', matroska: 'video/x-matroska' } as const;
/** A closed stream's ring stays this long, so a kill's statement (issued right after the close) still finds it. */
const CLOSED_RING_GRACE_MS = 2000;

type ResolvedOptions = Required<
  Omit<EvidenceOptions, 'citedFrames' | 'citedAudio' | 'audit' | 'log' | 'dirs' | 'retention'>
> &
  Pick<EvidenceOptions, 'citedFrames' | 'citedAudio' | 'audit' | 'log'> & {
    dirs: Record<string, string>;
    retention: Record<string, number>;
  };

export class EvidenceRecorder implements EvidencePort {
  readonly #o: ResolvedOptions;
  readonly #rings = new Map<string, Ring>();
  readonly #clips = new Map<string, EvidenceMeta & { dir: string }>();
  readonly #writing = new Set<Promise<void>>();
  #deleted = 0;
  #failed = 0;
  #sweep: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: EvidenceOptions) {
    this.#o = {
      retentionMs: 30 * 86_400_000,
      beforeMs: 10_000,
      afterMs: 5000,
      maxRingBytes: 16 * 1024 * 1024,
      sweepMs: 60_000,
      now: Date.now,
      mediaClock: () => performance.timeOrigin + performance.now(),
      ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
      dirs: Object.fromEntries(Object.entries(options.dirs ?? {}).map(([k, v]) => [k.toUpperCase(), v])),
      retention: Object.fromEntries(Object.entries(options.retention ?? {}).map(([k, v]) => [k.toUpperCase(), v])),
    } as ResolvedOptions;
    this.#load();
    options.sfu.on('stream', (s) => this.#attach(s));
    for (const s of options.sfu.streams()) this.#attach(s);
    if (this.#o.sweepMs > 0) {
      this.#sweep = setInterval(() => this.sweep(), this.#o.sweepMs);
      this.#sweep.unref();
    }
  }

  stats(): EvidenceStats {
    let ringBytes = 0;
    let ringPackets = 0;
    for (const r of this.#rings.values()) {
      ringBytes += r.bytes;
      ringPackets += r.packets.length - r.head;
    }
    let clipBytes = 0;
    for (const c of this.#clips.values()) clipBytes += c.bytes;
    let pending = 0;
    for (const r of this.#rings.values()) pending += r.captures.size;
    return {
      rings: this.#rings.size,
      ringBytes,
      ringPackets,
      clips: this.#clips.size,
      clipBytes,
      deleted: this.#deleted,
      failed: this.#failed,
      pending,
    };
  }

  /** A stream's ring now: bytes and packets held, and the media time it spans (ms). */
  ringOf(streamId: string): { bytes: number; packets: number; spanMs: number } | undefined {
    const r = this.#rings.get(streamId);
    if (!r) return undefined;
    const n = r.packets.length - r.head;
    return {
      bytes: r.bytes,
      packets: n,
      spanMs: n > 0 ? r.packets.at(-1)!.arrivedAt - r.packets[r.head]!.arrivedAt : 0,
    };
  }

  list(filter: { streamId?: string; statementId?: string } = {}): EvidenceMeta[] {
    return [...this.#clips.values()]
      .filter(
        (c) =>
          (filter.streamId === undefined || c.streamId === filter.streamId) &&
          (filter.statementId === undefined || c.statementIds.includes(filter.statementId)),
      )
      .map(({ dir: _dir, ...m }) => m);
  }

  /** A clip's metadata and the path of its file (or of one of its cited frames). */
  get(id: string): (EvidenceMeta & { path: string; dir: string }) | undefined {
    const c = this.#clips.get(id);
    return c && { ...c, path: join(c.dir, c.file) };
  }

  /** Waits for clips being written (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.#writing.size > 0 || [...this.#rings.values()].some((r) => r.captures.size > 0)) {
      await Promise.all([...this.#writing]);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  // ---- EvidencePort

  capture(statement: StatementOfReasons): EvidenceRef[] {
    return this.captureFor({
      id: statement.id,
      streamId: statement.streamId,
      action: statement.restriction.action,
      jurisdictions: statement.restriction.jurisdictions,
      sampleSeqs: statement.facts.sampleSeqs,
    });
  }

  /** Starts a clip for a statement or a review item; returns the references it will have. */
  captureFor(statement: EvidenceSubject): EvidenceRef[] {
    const ring = this.#rings.get(statement.streamId);
    if (!ring || this.#closed || ring.packets.length === ring.head) return [];
    const nowMedia = this.#o.mediaClock();
    const now = this.#o.now();
    const first = ring.packets[ring.head]!;
    const from = now - (nowMedia - first.arrivedAt);
    const to = ring.closed ? now : now + this.#o.afterMs;
    const locations = this.#locations(statement.jurisdictions);
    const shared = [...ring.captures].find((x) => !x.done && nowMedia <= x.untilMedia);
    if (shared) {
      // a capture still collecting already holds this decision's "before": one clip per location,
      // cited by both (the longest retention of its citers), collecting until the later "after"
      shared.subjects.push(statement);
      if (!ring.closed && nowMedia + this.#o.afterMs > shared.untilMedia) {
        shared.untilMedia = nowMedia + this.#o.afterMs;
        if (shared.timer) clearTimeout(shared.timer);
        shared.timer = setTimeout(() => this.#finish(ring, shared), this.#o.afterMs + 50);
        shared.timer.unref();
        for (const r of shared.refs) r.to = Math.max(r.to, Math.round(to));
      }
      const frames = this.#o.citedFrames?.(statement.streamId, statement.sampleSeqs);
      if (frames) shared.frames.push(frames);
      shared.audio.push(...(this.#o.citedAudio?.(statement.streamId, statement.sampleSeqs) ?? []));
      return locations.map(({ location, retentionMs }) => {
        let ref = shared.refs.find((r) => r.jurisdiction === location);
        if (!ref)
          shared.refs.push(
            (ref = this.#ref(statement.id, location, from, shared.refs[0]?.to ?? to, now + retentionMs)),
          );
        ref.expiresAt = Math.max(ref.expiresAt, now + retentionMs);
        return { ...ref };
      });
    }
    const refs = locations.map(({ location, retentionMs }) =>
      this.#ref(statement.id, location, from, to, now + retentionMs),
    );
    const c: Capture = {
      statement,
      subjects: [statement],
      refs,
      packets: ring.packets.slice(ring.head),
      untilMedia: nowMedia + this.#o.afterMs,
      timer: undefined,
      frames: [this.#o.citedFrames?.(statement.streamId, statement.sampleSeqs)].filter((f) => f !== undefined),
      audio: [...(this.#o.citedAudio?.(statement.streamId, statement.sampleSeqs) ?? [])],
      done: false,
    };
    ring.captures.add(c);
    const out = refs.map((r) => ({ ...r }));
    if (ring.closed) setImmediate(() => this.#finish(ring, c));
    else {
      c.timer = setTimeout(() => this.#finish(ring, c), this.#o.afterMs + 50);
      c.timer.unref();
    }
    return out;
  }

  #ref(subjectId: string, location: string, from: number, to: number, expiresAt: number): EvidenceRef {
    const id = `clip_${subjectId}_${location.toLowerCase()}`;
    return {
      id,
      kind: 'clip',
      url: `/v1/evidence/${id}`,
      jurisdiction: location,
      from: Math.round(from),
      to: Math.round(to),
      expiresAt,
    };
  }

  /** Deletes clips past their retention (audited); returns how many. */
  sweep(): number {
    const now = this.#o.now();
    let n = 0;
    for (const [id, c] of this.#clips) {
      if (c.ref.expiresAt > now) continue;
      for (const f of [c.file, `${id}.json`, ...c.citedFrames.map((x) => x.file), ...c.citedAudio.map((x) => x.file)]) {
        try {
          unlinkSync(join(c.dir, f));
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
            this.#o.log?.('warn', 'evidence: delete failed', { file: join(c.dir, f), err: (err as Error).message });
        }
      }
      this.#clips.delete(id);
      this.#deleted++;
      n++;
      this.#audit({
        type: 'evidence.deleted',
        clipId: id,
        streamId: c.streamId,
        statementIds: c.statementIds,
        jurisdiction: c.ref.jurisdiction,
        expiresAt: c.ref.expiresAt,
        reason: 'retention',
      });
    }
    return n;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#sweep) clearInterval(this.#sweep);
    for (const r of this.#rings.values()) {
      r.subscription.close();
      for (const c of r.captures) this.#finish(r, c);
    }
  }

  // ---- rings

  #attach(stream: Stream): void {
    if (this.#closed || stream.closed) return;
    const prev = this.#rings.get(stream.id);
    if (prev && prev.stream === stream) return;
    const ring: Ring = {
      stream,
      subscription: undefined as unknown as TapSubscription,
      packets: [],
      head: 0,
      bytes: 0,
      keys: [],
      base: 0,
      captures: new Set(),
      closed: false,
      sps: null,
      pps: null,
    };
    ring.subscription = stream.tap.subscribe((p) => this.#push(ring, p), { capacity: 1024 });
    this.#rings.set(stream.id, ring);
    stream.on('close', () => {
      ring.closed = true;
      ring.subscription.close();
      // what the tap still had in flight was delivered before the close; the captures can finish now
      setImmediate(() => {
        for (const c of ring.captures) this.#finish(ring, c);
      });
      setTimeout(() => {
        if (this.#rings.get(stream.id) === ring) this.#rings.delete(stream.id);
        // the closed Stream may outlive this (its listeners hold the ring): the media goes now
        ring.packets = [];
        ring.head = 0;
        ring.bytes = 0;
        ring.keys = [];
      }, CLOSED_RING_GRACE_MS).unref();
    });
  }

  #push(ring: Ring, p: TapPacket): void {
    const abs = ring.base + (ring.packets.length - ring.head);
    ring.packets.push(p);
    ring.bytes += p.payload.length;
    if (p.kind === 'video' && p.payload.length > 0 && isKeyframeStart(p.codec, p.payload)) ring.keys.push(abs);
    if (p.codec === 'H264' && p.payload.length > 0) {
      // SPS/PPS travel as single NAL packets or in a STAP-A (RFC 6184), never fragmented in practice
      const t = p.payload[0]! & 0x1f;
      if (t === NAL_SPS || t === NAL_PPS || t === NAL_STAP_A) {
        try {
          for (const n of h264PayloadNals(p.payload, { pending: null, header: 0 })) {
            if ((n[0]! & 0x1f) === NAL_SPS) ring.sps = n.slice();
            else if ((n[0]! & 0x1f) === NAL_PPS) ring.pps = n.slice();
          }
        } catch {
          // a malformed aggregate: the sampler counts those; here it only misses a parameter set
        }
      }
    }
    for (const c of ring.captures) if (p.arrivedAt <= c.untilMedia) c.packets.push(p);
    // keep beforeMs of media, from the newest keyframe at or before its start
    const cutoff = p.arrivedAt - this.#o.beforeMs;
    let keepFrom = ring.base;
    for (let i = ring.keys.length - 1; i >= 0; i--) {
      const k = ring.keys[i]!;
      if (ring.packets[ring.head + (k - ring.base)]!.arrivedAt <= cutoff) {
        keepFrom = k;
        break;
      }
    }
    // audio only (no keyframes): by time
    if (ring.keys.length === 0)
      while (ring.packets.length - ring.head > 1 && ring.packets[ring.head]!.arrivedAt < cutoff) this.#dropOldest(ring);
    while (ring.base < keepFrom) this.#dropOldest(ring);
    while (ring.bytes > this.#o.maxRingBytes && ring.packets.length - ring.head > 1) this.#dropOldest(ring);
    if (ring.head > 4096 && ring.head * 2 > ring.packets.length) {
      ring.packets = ring.packets.slice(ring.head);
      ring.head = 0;
    }
  }

  #dropOldest(ring: Ring): void {
    const p = ring.packets[ring.head]!;
    ring.packets[ring.head] = undefined as unknown as TapPacket;
    ring.head++;
    ring.bytes -= p.payload.length;
    if (ring.keys[0] === ring.base) ring.keys.shift();
    ring.base++;
  }

  // ---- clips

  #locations(jurisdictions: readonly string[]): { location: string; retentionMs: number }[] {
    const byLocation = new Map<string, number>();
    const js = jurisdictions.length > 0 ? jurisdictions : ['default'];
    for (const raw of js) {
      const j = raw.toUpperCase();
      const location = this.#o.dirs[j] ? j : 'default';
      const retentionMs = this.#o.retention[j] ?? this.#o.retentionMs;
      byLocation.set(location, Math.max(byLocation.get(location) ?? 0, retentionMs));
    }
    return [...byLocation].map(([location, retentionMs]) => ({ location, retentionMs }));
  }

  #dirOf(location: string): string {
    return location === 'default' ? this.#o.dir : (this.#o.dirs[location] ?? this.#o.dir);
  }

  #finish(ring: Ring, c: Capture): void {
    if (c.done) return;
    c.done = true;
    if (c.timer) clearTimeout(c.timer);
    ring.captures.delete(c);
    const job = this.#write(c).catch((err: unknown) => {
      this.#failed++;
      this.#o.log?.('warn', 'evidence clip not written', { statementId: c.statement.id, err: (err as Error).message });
      this.#audit({
        type: 'evidence.failed',
        streamId: c.statement.streamId,
        statementId: c.statement.id,
        clips: c.refs.map((r) => r.id),
        error: (err as Error).message,
      });
    });
    this.#writing.add(job);
    void job.finally(() => this.#writing.delete(job));
  }

  async #write(c: Capture): Promise<void> {
    const ring = this.#rings.get(c.statement.streamId);
    const tracks = clipTracks(c.packets, ring ? { sps: ring.sps, pps: ring.pps } : undefined);
    const bySeq = new Map<number, Uint8Array>();
    for (const snapshot of c.frames) for (const f of snapshot()) if (!bySeq.has(f.seq)) bySeq.set(f.seq, f.jpeg);
    const frames = [...bySeq].map(([seq, jpeg]) => ({ seq, jpeg }));
    const audioBySeq = new Map<number, { seq: number; sampleRate: number; wav: Buffer; durationMs: number }>();
    for (const a of c.audio)
      if (!audioBySeq.has(a.seq))
        audioBySeq.set(a.seq, {
          seq: a.seq,
          sampleRate: a.sampleRate,
          wav: encodeWav(a.pcm, a.sampleRate),
          durationMs: Math.round((a.pcm.length * 1000) / a.sampleRate),
        });
    for (const ref of c.refs) {
      const dir = this.#dirOf(ref.jurisdiction);
      mkdirSync(dir, { recursive: true });
      const tmp = join(dir, `${ref.id}.tmp`);
      const r = await muxFrames(tmp, tracks);
      const file = `${ref.id}.${r.ext}`;
      renameSync(tmp, join(dir, file));
      const cited = frames.map((f) => {
        const name = `${ref.id}.frame-${f.seq}.jpg`;
        writeFileSync(join(dir, name), f.jpeg);
        return { seq: f.seq, file: name };
      });
      const citedAudio = [...audioBySeq.values()].map((a) => {
        const name = `${ref.id}.audio-${a.seq}.wav`;
        writeFileSync(join(dir, name), a.wav);
        return { seq: a.seq, file: name, sampleRate: a.sampleRate, durationMs: a.durationMs };
      });
      const video = tracks.find((t) => t.kind === 'video');
      const meta: EvidenceMeta = {
        ref,
        streamId: c.statement.streamId,
        statementId: c.statement.id,
        statementIds: c.subjects.map((x) => x.id),
        action: c.statement.action,
        file,
        container: r.container,
        contentType: CONTENT_TYPE[r.container],
        bytes: r.bytes,
        frames: r.frames,
        ...(video ? { videoCodec: video.codec } : {}),
        ...(r.width ? { width: r.width, height: r.height } : {}),
        citedFrames: cited,
        citedAudio,
        createdAt: this.#o.now(),
      };
      writeFileSync(join(dir, `${ref.id}.json`), `${JSON.stringify(meta, null, 2)}\n`);
      this.#clips.set(ref.id, { ...meta, dir });
      this.#audit({
        type: 'evidence.stored',
        clipId: ref.id,
        streamId: meta.streamId,
        statementIds: meta.statementIds,
        jurisdiction: ref.jurisdiction,
        bytes: r.bytes,
        frames: r.frames,
        from: ref.from,
        to: ref.to,
        expiresAt: ref.expiresAt,
      });
    }
  }

  /** Clips already on disk (a restart keeps them and their retention). */
  #load(): void {
    for (const dir of new Set([this.#o.dir, ...Object.values(this.#o.dirs)])) {
      if (!existsSync(dir)) continue;
      for (const name of readdirSync(dir)) {
        if (!name.endsWith('.json')) continue;
        try {
          const meta = JSON.parse(readFileSync(join(dir, name), 'utf8')) as EvidenceMeta;
          if (meta.ref?.id && existsSync(join(dir, meta.file)))
            this.#clips.set(meta.ref.id, {
              ...meta,
              statementIds: meta.statementIds ?? [meta.statementId],
              citedAudio: meta.citedAudio ?? [],
              bytes: statSync(join(dir, meta.file)).size,
              dir,
            });
        } catch {
          // not ours, or cut short: left alone
        }
      }
    }
  }

  #audit(body: Record<string, unknown>): void {
    try {
      const r = this.#o.audit?.({ ...body, at: this.#o.now() });
      if (r instanceof Promise)
        r.catch((err: unknown) =>
          this.#o.log?.('warn', 'evidence audit append failed', { err: (err as Error).message }),
        );
    } catch (err) {
      this.#o.log?.('warn', 'evidence audit append failed', { err: (err as Error).message });
    }
  }
}

/**
 * The first video and the first audio track of a run of tap packets, as frames with times on the
 * packets' arrival clock: each track's RTP clock is anchored at its first packet's arrival (the
 * tap has no sender reports), which keeps the tracks within network jitter of each other.
 */
export function clipTracks(
  packets: readonly TapPacket[],
  h264?: { sps: Uint8Array | null; pps: Uint8Array | null },
): MuxTrack[] {
  const video = packets.find((p) => p.kind === 'video');
  const audio = packets.find((p) => p.kind === 'audio');
  const tracks: MuxTrack[] = [];
  const timeOf = (anchor: TapPacket) => (p: { timestamp: number }) =>
    anchor.arrivedAt + (((p.timestamp - anchor.timestamp) | 0) * 1000) / anchor.clockRate;
  if (video && (video.codec === 'VP8' || video.codec === 'H264')) {
    const sets = new H264ParameterSets();
    sets.sps = h264?.sps ?? null;
    sets.pps = h264?.pps ?? null;
    const assembler = new FrameAssembler(
      video.codec === 'VP8'
        ? vp8Format()
        : { canStartFrame: h264PacketCanStartFrame, depacketize: (p) => sets.depacketize(p) },
    );
    const at = timeOf(video);
    const frames: MuxFrame[] = [];
    for (const p of packets) {
      if (p.trackId !== video.trackId) continue;
      for (const f of assembler.push(p)) frames.push({ data: f.data, ptsMs: at(f), keyframe: f.keyframe });
    }
    tracks.push({ kind: 'video', codec: video.codec, frames });
  }
  if (audio && audio.codec === 'opus') {
    const at = timeOf(audio);
    const frames = packets
      .filter((p) => p.trackId === audio.trackId && p.payload.length > 0)
      .map((p) => ({ data: p.payload, ptsMs: at(p), keyframe: true }));
    tracks.push({ kind: 'audio', codec: 'opus', frames });
  }
  // a clip must start with a picture a player can show: audio before the first video keyframe goes
  const v = tracks.find((t) => t.kind === 'video');
  const k = v?.frames.find((f) => f.keyframe);
  if (k) for (const t of tracks) if (t.kind === 'audio') t.frames = t.frames.filter((f) => f.ptsMs >= k.ptsMs);
  return tracks;
}
