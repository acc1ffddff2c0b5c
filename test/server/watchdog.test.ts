// Moderation never goes silent (issue 12). Real SamplerPool (VP8 decoded by node-av in its worker
// threads), real Enforcer with the shipped policies, a fake SFU stream whose tap we drive with real RTP;
// the only injected faults are a moderator that never answers and a sampler stand-in that swallows
// every packet (a decoder that produces nothing). In both cases the fail mode of each jurisdiction
// applies (SA fail_closed blanks watching viewers, a DE viewer joining meanwhile is quarantined, SE
// fail_open keeps forwarding), a statement is audited, and everything recovers when signals come back.
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ModerationPipeline, type ModerationPipelineOptions, type PipelineObserver } from '../../server/pipeline.ts';
import { Enforcer } from '../../server/enforcer.ts';
import { PolicyStore } from '../../server/policy-store.ts';
import { SamplerPool } from '../../samplers/index.ts';
import type { Signals } from '../../models/types.ts';
import type { SampleIn } from '../../models/moderator.ts';
import type { RtpPacketIn } from '../../samplers/types.ts';
import type { TapPacket, TapRtpLink } from '../../sfu/types.ts';
import { shippedPolicyFiles } from '../policies/helpers.ts';
import { FakeSfu } from '../sfu/fake.ts';
import { encodeVideo, pushPaced, rtpizeVideo, testPicture, waitFor } from '../samplers/helpers.ts';

const W = 64;
const H = 48;

/** A moderator that hangs (never settles) until told to answer, then answers every sample 'ok' and clean. */
class SwitchableModerator {
  answering = false;
  calls = 0;
  async moderate(sample: SampleIn, emit: (s: Signals) => void): Promise<void> {
    this.calls++;
    if (!this.answering) return new Promise<void>(() => undefined);
    const at = performance.timeOrigin + performance.now();
    emit({
      streamId: sample.streamId,
      trackId: sample.trackId,
      kind: sample.kind,
      sampleSeq: sample.seq,
      rtpTimestamp: sample.rtpTimestamp,
      arrivedAt: sample.timings.arrivedAt,
      completedAt: at,
      status: 'ok',
      scores: { 'nsfw.porn': 0.01, 'nsfw.sexy': 0.01, 'nsfw.hentai': 0.01 },
      matches: [],
      text: [],
      escalated: false,
      uncertain: false,
      models: [{ name: 'stand-in', version: '1' }],
      timings: {},
    });
  }
  releaseStream(): void {}
}

class PacketTap {
  readonly #handlers = new Set<(p: TapPacket) => void>();
  subscribe(handler: (p: TapPacket) => void) {
    this.#handlers.add(handler);
    return { delivered: 0, dropped: 0, close: () => void this.#handlers.delete(handler) };
  }
  push(p: RtpPacketIn): void {
    for (const h of this.#handlers) h(p as TapPacket);
  }
}

function harness() {
  const audit: Record<string, unknown>[] = [];
  const sfu = new FakeSfu();
  const policies = new PolicyStore({ audit: { append: (b) => void audit.push(b) } });
  assert.equal(policies.load(shippedPolicyFiles(), 'test').ok, true);
  const errors: string[] = [];
  const enforcer = new Enforcer({
    streams: sfu,
    policies,
    audit: { append: (b) => void audit.push(b) },
    onError: (e, c) => void errors.push(`${c}: ${String(e)}`),
  });
  const stream = sfu.add('s1');
  const tap = new PacketTap();
  Object.assign(stream, { tap });
  const viewers = { sa: stream.addViewer('sa', 'SA'), se: stream.addViewer('se', 'SE') };
  enforcer.attachStream(stream);
  const sfuFace = Object.assign(new EventEmitter(), {
    streams: () => [stream],
    getStream: (id: string) => sfu.getStream(id),
  });
  return { audit, enforcer, stream, tap, viewers, errors, sfu: sfuFace };
}

/** A pipeline over the harness's SFU and enforcer; samplers and moderator may be stand-ins (injected faults). */
function pipelineOf(
  h: ReturnType<typeof harness>,
  samplers: unknown,
  moderator: unknown,
  options: Partial<ModerationPipelineOptions>,
): ModerationPipeline {
  return new ModerationPipeline({
    sfu: h.sfu,
    samplers,
    moderator,
    enforcer: h.enforcer,
    ...options,
  } as unknown as ModerationPipelineOptions);
}

/** Real VP8 at 30 fps into the tap until stopped (every frame a key frame, so any point decodes). */
function liveSource(tap: PacketTap): { stop: () => Promise<void> } {
  const frames = encodeVideo(
    Array.from({ length: 30 }, (_, i) => testPicture(W, H, i)),
    { codec: 'VP8', width: W, height: H, keyframeInterval: 1 },
  );
  let running = true;
  const done = (async () => {
    for (let loop = 0; running && loop < 120; loop++) {
      const packets = rtpizeVideo(frames, 'VP8', {
        streamId: 's1',
        trackId: 'v',
        firstSeq: 1000 + loop * 200,
        firstTimestamp: 90000 + loop * 90000,
      });
      await pushPaced({ push: (p) => (running ? tap.push(p) : undefined) }, packets);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await done;
    },
  };
}

function statementsOf(audit: Record<string, unknown>[]): string[] {
  return audit.filter((e) => e.type === 'statement').map((e) => JSON.stringify(e.statement));
}

describe('moderation watchdog and per-sample timeouts', () => {
  it('a moderator that never answers: samples time out as unavailable, fail modes apply and are audited, and lift when answers return', async () => {
    const h = harness();
    await using samplers = await SamplerPool.create({ workers: 1 });
    const moderator = new SwitchableModerator();
    const timedOut: string[] = [];
    const pipeline = pipelineOf(h, samplers, moderator, {
      sampleTimeoutMs: 300,
      stallMs: 60_000,
      observer: { timedOut: (s, k) => void timedOut.push(`${s}:${k}`) } satisfies PipelineObserver,
    });
    const source = liveSource(h.tap);
    try {
      await waitFor(
        () => (h.viewers.sa.gate.video === 'blank' ? true : undefined),
        30_000,
        'the SA viewer blanked (fail_closed)',
      );
      assert.equal(h.viewers.se.gate.video, 'forward', 'SE fails open');
      const [st] = pipeline.stats();
      assert.ok(st!.timedOut >= 3, `samples timed out: ${st!.timedOut}`);
      assert.ok(st!.inFlight <= 6, 'in-flight count stays bounded');
      assert.ok(timedOut.length >= 3 && timedOut.every((t) => t === 's1:video'));
      assert.deepEqual(
        h.enforcer.gateForNewViewer('s1', 'DE'),
        { video: 'blank', audio: 'forward' },
        'DE quarantines new viewers',
      );
      const statements = statementsOf(h.audit);
      assert.ok(
        statements.some((s) => s.includes('signals_unavailable') && s.includes('SA')),
        'the fail-closed restriction has an audited statement',
      );

      moderator.answering = true;
      await waitFor(
        () => (h.viewers.sa.gate.video === 'forward' ? true : undefined),
        30_000,
        'the SA viewer forwarded again once answers return',
      );
      assert.deepEqual(h.enforcer.gateForNewViewer('s1', 'DE'), { video: 'forward', audio: 'forward' });
      assert.deepEqual(h.errors, []);
    } finally {
      await source.stop();
      pipeline.close();
    }
  });

  it('packets flowing but no samples at all (a decoder that produces nothing): the watchdog feeds unavailable after stallMs, and recovery follows real signals', async () => {
    const h = harness();
    // The injected fault: a sampler that takes every packet and never emits a sample.
    const samplers = Object.assign(new EventEmitter(), { push() {}, releaseStream() {} });
    const moderator = new SwitchableModerator();
    moderator.answering = true;
    const stalls: string[] = [];
    const pipeline = pipelineOf(h, samplers, moderator, {
      stallMs: 800,
      observer: { stall: (s, k, stalled) => void stalls.push(`${s}:${k}:${stalled}`) } satisfies PipelineObserver,
    });
    const source = liveSource(h.tap);
    try {
      await waitFor(
        () => (h.viewers.sa.gate.video === 'blank' ? true : undefined),
        30_000,
        'the SA viewer blanked by the watchdog',
      );
      assert.equal(h.viewers.se.gate.video, 'forward');
      const [st] = pipeline.stats();
      assert.deepEqual(st!.stalled, ['video']);
      assert.equal(st!.stalls, 1);
      assert.ok(st!.watchdogSignals >= 3, `watchdog signals: ${st!.watchdogSignals}`);
      assert.deepEqual(stalls, ['s1:video:true']);
      assert.deepEqual(h.enforcer.verdictOf('s1')?.degraded, ['video']);
      assert.ok(
        statementsOf(h.audit).some((s) => s.includes('signals_unavailable')),
        'audited',
      );

      // The decoder comes back: samples flow again and the moderator answers them.
      const frame = (seq: number) => ({
        kind: 'video',
        streamId: 's1',
        trackId: 'v',
        seq,
        rtpTimestamp: seq * 3000,
        reason: 'interval',
        width: W,
        height: H,
        rgb: new Uint8Array(W * H * 3),
        timings: {
          arrivedAt: performance.timeOrigin + performance.now(),
          queuedAt: 0,
          decodedAt: 0,
          readyAt: performance.timeOrigin + performance.now(),
        },
      });
      let seq = 1;
      await waitFor(
        () => {
          samplers.emit('sample', frame(seq++));
          return h.viewers.sa.gate.video === 'forward' ? true : undefined;
        },
        30_000,
        'the SA viewer forwarded once real signals return',
      );
      assert.deepEqual(stalls, ['s1:video:true', 's1:video:false']);
      assert.deepEqual(pipeline.stats()[0]!.stalled, []);
    } finally {
      await source.stop();
      pipeline.close();
    }
  });

  it('RTP links (no packet on the main thread): a decode thread that is down counts as packets flowing, so the watchdog still fails closed', async () => {
    const h = harness();
    const links: string[] = [];
    const openRtp = async (trackId: string): Promise<TapRtpLink> => ({
      trackId,
      sourcePort: 40000,
      start: async (port) => {
        links.push(`start:${trackId}:${port}`);
        return { ssrc: 1, payloadType: 96 };
      },
      close: () => void links.push(`close:${trackId}`),
    });
    Object.assign(h.tap, { openRtp });
    // The injected fault: the stream's decode thread is down, so the pool cannot see the packets and
    // says they flow (SamplerPool.rtpLastPacketAt), and no sample comes.
    const listened: string[] = [];
    const samplers = Object.assign(new EventEmitter(), {
      push() {
        throw new Error('no packet may come through the tap');
      },
      releaseStream() {},
      listenRtp: async (t: { trackId: string }, sourcePort: number) => {
        listened.push(`${t.trackId}<-${sourcePort}`);
        return 41000;
      },
      rtpLastPacketAt: (_: string, kind: string) =>
        kind === 'video' ? performance.timeOrigin + performance.now() : undefined,
    });
    const moderator = new SwitchableModerator();
    moderator.answering = true;
    const stalls: string[] = [];
    const pipeline = pipelineOf(h, samplers, moderator, {
      stallMs: 800,
      observer: { stall: (s, k, stalled) => void stalls.push(`${s}:${k}:${stalled}`) } satisfies PipelineObserver,
    });
    try {
      await waitFor(
        () => (h.viewers.sa.gate.video === 'blank' ? true : undefined),
        30_000,
        'the SA viewer blanked by the watchdog',
      );
      assert.deepEqual(listened.sort(), ['audio0<-40000', 'video0<-40000']);
      assert.deepEqual(links.sort(), ['start:audio0:41000', 'start:video0:41000']);
      const [st] = pipeline.stats();
      assert.equal(st!.input, 'rtp');
      assert.deepEqual(st!.stalled, ['video'], 'audio, with no packet reported, is not stalled');
      assert.equal(h.viewers.se.gate.video, 'forward');
      assert.deepEqual(stalls, ['s1:video:true']);
      h.stream.close({ code: 'ended', message: 'test' });
      assert.deepEqual(links.filter((l) => l.startsWith('close')).sort(), ['close:audio0', 'close:video0']);
    } finally {
      pipeline.close();
    }
  });

  it('an RTP link that cannot be made puts the stream back on the tap', async () => {
    const h = harness();
    Object.assign(h.tap, { openRtp: () => Promise.reject(new Error('no port')) });
    const pushed: string[] = [];
    const errors: string[] = [];
    const samplers = Object.assign(new EventEmitter(), {
      push: (p: RtpPacketIn) => void pushed.push(p.trackId),
      releaseStream() {},
      listenRtp: () => Promise.reject(new Error('unused')),
      rtpLastPacketAt: () => undefined,
    });
    const pipeline = pipelineOf(h, samplers, new SwitchableModerator(), {
      stallMs: 0,
      observer: { error: (e, c) => void errors.push(`${c}: ${(e as Error).message}`) } satisfies PipelineObserver,
    });
    try {
      await waitFor(() => (pipeline.stats()[0]?.input === 'tap' ? true : undefined), 5000, 'the fallback to the tap');
      assert.equal(errors.length, 1, errors.join('; '));
      assert.match(errors[0]!, /falling back to tap\.subscribe\(\): no port/);
      h.tap.push({
        ...rtpizeVideo(encodeVideo([testPicture(W, H)], { codec: 'VP8', width: W, height: H }), 'VP8')[0]!,
        streamId: 's1',
      });
      assert.deepEqual(pushed, ['v']);
    } finally {
      pipeline.close();
    }
  });
});
