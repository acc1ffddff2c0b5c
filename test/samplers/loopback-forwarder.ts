// A minimal stand-in for the SFU's forwarding loop, for isolation tests and the sampler bench:
// a source socket sends RTP over loopback UDP to a forwarder socket, which (optionally) taps each
// packet into a SamplerPool and sends it on to a sink socket. Forwarding latency is measured from
// the source's send to the sink's receive; the forwarder runs on this (main) thread, as the SFU does.
import dgram from 'node:dgram';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { RtpPacketIn } from '../../samplers/types.ts';
import { serializeRtp } from '../fixtures/rtp/rtpdump.ts';

export interface ForwardingFigures {
  packets: number;
  lost: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  eventLoopDelayP99Ms: number;
}

type Tap = (p: RtpPacketIn) => void;

function bind(sock: dgram.Socket): Promise<number> {
  return new Promise((resolve) => sock.bind(0, '127.0.0.1', () => resolve(sock.address().port)));
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/**
 * Plays `streams` (each a list of packets with arrivedAt as the schedule, ms from 0) in real time
 * through the loopback forwarder for `durationMs`, looping each list, and returns latency figures.
 */
export async function runForwarding(
  streams: RtpPacketIn[][],
  durationMs: number,
  tap?: Tap,
): Promise<ForwardingFigures> {
  const source = dgram.createSocket('udp4');
  const forwarder = dgram.createSocket('udp4');
  const sink = dgram.createSocket('udp4');
  const [, fwdPort, sinkPort] = await Promise.all([bind(source), bind(forwarder), bind(sink)]);
  // Key frames of several streams can land in the same millisecond; the default socket buffers
  // (~200 KB) would drop part of such a burst, which is a loss test, not a latency test.
  for (const s of [source, forwarder, sink]) {
    s.setRecvBufferSize(8 << 20);
    s.setSendBufferSize(8 << 20);
  }
  const sentAt = new Map<number, number>();
  const latencies: number[] = [];
  const meta = new Map<number, RtpPacketIn>(); // ssrc -> template of that track
  const now = (): number => performance.timeOrigin + performance.now();

  forwarder.on('message', (msg) => {
    if (tap) {
      const ssrc = msg.readUInt32BE(8);
      const t = meta.get(ssrc);
      if (t) {
        tap({
          ...t,
          sequenceNumber: msg.readUInt16BE(2),
          timestamp: msg.readUInt32BE(4),
          marker: (msg[1] & 0x80) !== 0,
          payload: new Uint8Array(msg.buffer, msg.byteOffset + 12, msg.length - 12),
          arrivedAt: now(),
        });
      }
    }
    forwarder.send(msg, sinkPort, '127.0.0.1');
  });
  sink.on('message', (msg) => {
    const id = msg.readUInt32BE(8) * 65536 + msg.readUInt16BE(2);
    const t = sentAt.get(id);
    if (t !== undefined) {
      latencies.push(performance.now() - t);
      sentAt.delete(id);
    }
  });

  const eld = monitorEventLoopDelay({ resolution: 5 });
  eld.enable();
  const start = performance.now();
  let sent = 0;
  const cursors = streams.map((packets, i) => {
    const ssrc = 0x1000 + i;
    meta.set(ssrc, { ...packets[0], ssrc });
    const loopMs = packets[packets.length - 1].arrivedAt + 1000 / 30;
    // Streams start a few ms apart, as independent publishers would.
    const offset = (i >> 1) * 7;
    return {
      packets: packets.map((p) => ({ ...p, arrivedAt: p.arrivedAt + offset })),
      ssrc,
      i: 0,
      loops: 0,
      loopMs,
      seq: 0,
    };
  });
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const t = performance.now() - start;
      for (const c of cursors) {
        for (;;) {
          const p = c.packets[c.i];
          const due = p.arrivedAt + c.loops * c.loopMs;
          if (due > t) break;
          const ts = (p.timestamp + Math.round(c.loops * c.loopMs * (p.clockRate / 1000))) >>> 0;
          const wire = serializeRtp({
            payloadType: p.payloadType,
            marker: p.marker,
            sequenceNumber: c.seq,
            timestamp: ts,
            ssrc: c.ssrc,
            payload: p.payload,
          });
          sentAt.set(c.ssrc * 65536 + c.seq, performance.now());
          c.seq = (c.seq + 1) & 0xffff;
          source.send(wire, fwdPort, '127.0.0.1');
          sent++;
          if (++c.i === c.packets.length) {
            c.i = 0;
            c.loops++;
          }
        }
      }
      if (t >= durationMs) resolve();
      else setTimeout(tick, 2);
    };
    tick();
  });
  await new Promise((r) => setTimeout(r, 200));
  eld.disable();
  await Promise.all([source, forwarder, sink].map((s) => new Promise<void>((r) => s.close(() => r()))));
  return {
    packets: sent,
    lost: sentAt.size,
    latencyP50Ms: percentile(latencies, 50),
    latencyP99Ms: percentile(latencies, 99),
    eventLoopDelayP99Ms: eld.percentile(99) / 1e6,
  };
}
