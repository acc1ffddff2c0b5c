// The SFU's own forwarding latency, read off the loopback interface: for every packet an engine
// forwards to a viewer, the kernel's timestamp of the SFU's send minus the kernel's timestamp of the
// publisher's send of the same packet. bench:forward's other latency figure is taken where the viewers
// read the packets, so on one machine it also holds the time the viewer processes waited for a core
// (they need 0.5-0.7 of one at 500 viewers); this one holds only what the SFU adds (its socket queue,
// its scheduling, its fan-out), as it would be seen with the viewers on other machines.
//
// Capture: tcpdump on `lo`, 96 bytes of each UDP packet (RTP headers are not encrypted by SRTP).
// Matching: the engines rewrite each viewer's SSRC and number its packets with their own offset, so
// each viewer flow (destination port, SSRC) is matched to the publisher flow (SSRC), the constant
// sequence-number offset and the constant size difference (SRTP tags of each leg) that most of its
// packets agree on when paired with the publisher packets sent in the 2 s before them. The size
// is what tells the right offset from one shifted by a few packets, which a steady stream (Opus at
// 50 packets/s) would agree with as well; a flow that nothing explains (RTX) is counted and left out.

import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** One RTP packet seen on the wire. `t`: kernel timestamp (ms, the capture's clock). */
export interface WireRtp {
  t: number;
  srcPort: number;
  dstPort: number;
  ssrc: number;
  seq: number;
  marker: boolean;
  /** Bytes after the RTP header and its extensions (the payload, still encrypted, and the SRTP tag). */
  size: number;
}

const LINK_HEADER: Record<number, number> = { 1: 14, 113: 16, 276: 20 };

/** The RTP packets of a classic pcap file (microsecond or nanosecond timestamps; Ethernet, SLL or SLL2 links; IPv4 and IPv6 UDP). */
export function readPcapRtp(buf: Buffer): WireRtp[] {
  if (buf.length < 24) throw new Error('pcap: shorter than its global header');
  const magic = buf.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  const be = !le && (buf.readUInt32BE(0) === 0xa1b2c3d4 || buf.readUInt32BE(0) === 0xa1b23c4d);
  if (!le && !be) throw new Error(`pcap: unknown magic 0x${magic.toString(16)}`);
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const nano = (le ? magic : buf.readUInt32BE(0)) === 0xa1b23c4d;
  const link = u32(20) & 0xffff;
  const linkLen = LINK_HEADER[link];
  if (linkLen === undefined) throw new Error(`pcap: link type ${link} not read`);
  const out: WireRtp[] = [];
  for (let o = 24; o + 16 <= buf.length;) {
    const t = u32(o) * 1000 + u32(o + 4) / (nano ? 1e6 : 1e3);
    const len = u32(o + 8);
    const p = o + 16;
    o = p + len;
    if (o > buf.length) break; // a record cut off by the end of the capture
    const ip = p + linkLen;
    let udp: number;
    const version = buf[ip]! >> 4;
    if (version === 4) {
      if (buf[ip + 9] !== 17) continue;
      udp = ip + (buf[ip]! & 0x0f) * 4;
    } else if (version === 6) {
      if (buf[ip + 6] !== 17) continue;
      udp = ip + 40;
    } else continue;
    const rtp = udp + 8;
    if (rtp + 12 > o) continue;
    const b0 = buf[rtp]!;
    const b1 = buf[rtp + 1]!;
    // RTP, not RTCP (RFC 5761), STUN or DTLS
    if (b0 >> 6 !== 2 || (b1 >= 192 && b1 <= 223)) continue;
    let header = 12 + 4 * (b0 & 0x0f);
    if (b0 & 0x10) {
      if (rtp + header + 4 > o) continue;
      header += 4 + 4 * buf.readUInt16BE(rtp + header + 2);
    }
    out.push({
      t,
      srcPort: buf.readUInt16BE(udp),
      dstPort: buf.readUInt16BE(udp + 2),
      ssrc: buf.readUInt32BE(rtp + 8),
      seq: buf.readUInt16BE(rtp + 2),
      marker: (b1 & 0x80) !== 0,
      size: buf.readUInt16BE(udp + 4) - 8 - header,
    });
  }
  return out;
}

export interface ForwardingLatency {
  /** In -> out per forwarded packet (ms). */
  latencies: number[];
  /** Viewer flows matched to a publisher flow / left out (no sequence offset explained them). */
  flowsMatched: number;
  flowsUnmatched: number;
}

/** Pairs each packet sent to a viewer port with the publisher's packet it forwards (see the file header). */
export function forwardingLatency(
  packets: readonly WireRtp[],
  opts: { publisherPorts: ReadonlySet<number>; viewerPorts: ReadonlySet<number>; windowMs?: number },
): ForwardingLatency {
  const windowMs = opts.windowMs ?? 2000;
  const ingress = new Map<
    number,
    { times: number[]; seqs: number[]; sizes: number[]; markers: boolean[]; bySeq: Map<number, number> }
  >();
  const egress = new Map<string, WireRtp[]>();
  for (const p of packets) {
    if (opts.publisherPorts.has(p.srcPort)) {
      let f = ingress.get(p.ssrc);
      if (!f) ingress.set(p.ssrc, (f = { times: [], seqs: [], sizes: [], markers: [], bySeq: new Map() }));
      f.times.push(p.t);
      f.seqs.push(p.seq);
      f.sizes.push(p.size);
      f.markers.push(p.marker);
      // first send only: a retransmission under the same number would make the SFU look faster
      if (!f.bySeq.has(p.seq)) f.bySeq.set(p.seq, p.t);
    } else if (opts.viewerPorts.has(p.dstPort)) {
      const key = `${p.dstPort}/${p.ssrc}`;
      const f = egress.get(key);
      if (f) f.push(p);
      else egress.set(key, [p]);
    }
  }
  const firstAtOrAfter = (times: number[], t: number): number => {
    let lo = 0;
    let hi = times.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (times[mid]! < t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const latencies: number[] = [];
  let flowsMatched = 0;
  let flowsUnmatched = 0;
  for (const flow of egress.values()) {
    // key -> [votes, sum of the latencies they imply]
    const votes = new Map<string, [number, number]>();
    const step = Math.max(1, Math.floor(flow.length / 64));
    let sampled = 0;
    for (let i = 0; i < flow.length; i += step) {
      const e = flow[i]!;
      sampled++;
      for (const [ssrc, f] of ingress) {
        for (let j = firstAtOrAfter(f.times, e.t - windowMs); j < f.times.length && f.times[j]! <= e.t; j++) {
          if (f.markers[j] !== e.marker) continue;
          const key = `${ssrc}/${(e.seq - f.seqs[j]!) & 0xffff}/${e.size - f.sizes[j]!}`;
          const v = votes.get(key);
          if (v) {
            v[0]++;
            v[1] += e.t - f.times[j]!;
          } else votes.set(key, [1, e.t - f.times[j]!]);
        }
      }
    }
    // A stream that repeats itself (a static picture's equal frames) fits a pairing shifted by whole
    // frames as well as the right one; the shifted ones have the SFU hold every packet longer, so of
    // the pairings nearly every packet agrees with, the one with the shortest latencies is taken.
    let most = 0;
    for (const [v] of votes.values()) most = Math.max(most, v);
    let best: string | undefined;
    let bestMean = Infinity;
    for (const [k, [v, sum]] of votes) if (v >= 0.95 * most && sum / v < bestMean) [best, bestMean] = [k, sum / v];
    if (!best || most < sampled / 2) {
      flowsUnmatched++;
      continue;
    }
    flowsMatched++;
    const [ssrc, offset] = best.split('/').map(Number) as [number, number, number];
    const bySeq = ingress.get(ssrc)!.bySeq;
    for (const e of flow) {
      const tIn = bySeq.get((e.seq - offset) & 0xffff);
      if (tIn !== undefined && e.t >= tIn && e.t - tIn <= windowMs) latencies.push(e.t - tIn);
    }
  }
  return { latencies, flowsMatched, flowsUnmatched };
}

/** Whether tcpdump can be run here (installed; capturing needs CAP_NET_RAW, found out at start). */
export function tcpdumpPath(): string | undefined {
  try {
    return execFileSync('sh', ['-c', 'command -v tcpdump'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** A tcpdump of loopback UDP into a file, for one measurement. */
export class LoopbackCapture {
  readonly #child: ChildProcess;
  #stderr = '';
  private constructor(
    child: ChildProcess,
    readonly file: string,
  ) {
    this.#child = child;
    child.stderr!.on('data', (d: Buffer) => (this.#stderr += d.toString()));
    // the capture never outlives the bench, whatever way the bench ends
    const kill = () => child.kill('SIGKILL');
    process.once('exit', kill);
    child.once('exit', () => process.off('exit', kill));
  }

  /**
   * Starts tcpdump and resolves once it listens; rejects with its message when it cannot (and ends
   * it). `maxMs`: tcpdump is stopped after this long even if stop() is never called. Default 10 min.
   */
  static async start(file: string, tcpdump = 'tcpdump', maxMs = 600_000): Promise<LoopbackCapture> {
    const child = spawn(tcpdump, ['-i', 'lo', '-n', '-s', '96', '-B', '65536', '-w', file, 'udp'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: maxMs,
      killSignal: 'SIGINT',
    });
    const cap = new LoopbackCapture(child, file);
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(t);
        child.stderr!.off('data', onData);
        child.off('exit', onExit);
        if (!err) return resolve();
        child.kill('SIGKILL');
        reject(err);
      };
      const t = setTimeout(
        () => done(new Error(`tcpdump did not say it was listening in 10 s: ${cap.#stderr}`)),
        10_000,
      );
      const onData = () => {
        if (cap.#stderr.includes('listening on')) done();
      };
      const onExit = (code: number | null) => done(new Error(`tcpdump exited (${code}): ${cap.#stderr.trim()}`));
      child.stderr!.on('data', onData);
      child.once('exit', onExit);
      child.once('error', (e) => done(e));
    });
    return cap;
  }

  /** CPU seconds tcpdump used so far (from /proc). */
  cpuSeconds(): number {
    try {
      const stat = readFileSync(`/proc/${this.#child.pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(f[11]) + Number(f[12])) / 100;
    } catch {
      return NaN;
    }
  }

  /** Stops the capture; resolves with the packets the kernel dropped (tcpdump's own count). */
  async stop(): Promise<{ dropped: number }> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return { dropped: this.#dropped() };
    // tcpdump reads the kernel's ring in blocks handed over at the latest after its 1 s buffer
    // timeout, and a SIGINT drops the block not yet handed over: the last second would be lost
    await new Promise((r) => setTimeout(r, 1500));
    const exited = new Promise((r) => this.#child.once('exit', r));
    this.#child.kill('SIGINT');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGKILL');
    return { dropped: this.#dropped() };
  }

  #dropped(): number {
    const m = /(\d+) packets? dropped by kernel/.exec(this.#stderr);
    return m ? Number(m[1]) : NaN;
  }
}
