// bench:forward's SFU-side latency: a pcap as tcpdump writes it (Ethernet on lo, IPv4, UDP, RTP with
// header extensions) read back, and each viewer flow paired with the publisher packet it forwards,
// whatever SSRC and sequence offset the engine gave it, with the latency that was put in; and the
// same through a real tcpdump of loopback (skipped, with the reason, where it is missing or may not capture).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LoopbackCapture, forwardingLatency, readPcapRtp, tcpdumpPath } from '../../bench/sfu-latency.ts';

interface Sent {
  t: number; // ms
  src: number;
  dst: number;
  ssrc: number;
  seq: number;
  payload: number;
  marker?: boolean;
  /** 32-bit words of one-byte header extensions. */
  extWords?: number;
  rtcp?: boolean;
}

function pcap(packets: Sent[]): Buffer {
  const global = Buffer.alloc(24);
  global.writeUInt32LE(0xa1b2c3d4, 0);
  global.writeUInt16LE(2, 4);
  global.writeUInt16LE(4, 6);
  global.writeUInt32LE(96, 16);
  global.writeUInt32LE(1, 20); // Ethernet
  const records = packets.map((p) => {
    const ext = p.extWords ? 4 + 4 * p.extWords : 0;
    const rtp = Buffer.alloc(12 + ext + p.payload);
    rtp[0] = 0x80 | (ext ? 0x10 : 0);
    rtp[1] = p.rtcp ? 200 : (p.marker ? 0x80 : 0) | 96;
    rtp.writeUInt16BE(p.seq & 0xffff, 2);
    rtp.writeUInt32BE(p.seq * 3000, 4);
    rtp.writeUInt32BE(p.ssrc, 8);
    if (ext) {
      rtp.writeUInt16BE(0xbede, 12);
      rtp.writeUInt16BE(p.extWords!, 14);
    }
    const udp = Buffer.alloc(8);
    udp.writeUInt16BE(p.src, 0);
    udp.writeUInt16BE(p.dst, 2);
    udp.writeUInt16BE(8 + rtp.length, 4);
    const ip = Buffer.alloc(20);
    ip[0] = 0x45;
    ip[9] = 17;
    const frame = Buffer.concat([Buffer.alloc(14), ip, udp, rtp]);
    const kept = frame.subarray(0, Math.min(96, frame.length));
    const head = Buffer.alloc(16);
    const us = Math.round(p.t * 1000);
    head.writeUInt32LE(Math.floor(us / 1e6), 0);
    head.writeUInt32LE(us % 1e6, 4);
    head.writeUInt32LE(kept.length, 8);
    head.writeUInt32LE(frame.length, 12);
    return Buffer.concat([head, kept]);
  });
  return Buffer.concat([global, ...records]);
}

test('reads RTP off a loopback capture: ports, SSRC, sequence, marker, size after the extensions; RTCP left out', () => {
  const packets = readPcapRtp(
    pcap([
      { t: 1000, src: 5000, dst: 6000, ssrc: 7, seq: 10, payload: 300, marker: true, extWords: 2 },
      { t: 1000.5, src: 5000, dst: 6000, ssrc: 7, seq: 0, payload: 20, rtcp: true },
      { t: 1001.25, src: 6000, dst: 7000, ssrc: 9, seq: 65535, payload: 1100 },
    ]),
  );
  assert.deepEqual(packets, [
    { t: 1000, srcPort: 5000, dstPort: 6000, ssrc: 7, seq: 10, marker: true, size: 300 },
    { t: 1001.25, srcPort: 6000, dstPort: 7000, ssrc: 9, seq: 65535, marker: false, size: 1100 },
  ]);
});

test('pairs each viewer packet with the packet it forwards, past SSRC and sequence rewriting', () => {
  const sent: Sent[] = [];
  const t0 = 1_700_000_000_000;
  // a steady stream (one 20 ms packet after another, as Opus sends): a pairing shifted by a packet or
  // two would agree on a sequence offset as well; the sizes tell them apart
  const sizes = Array.from({ length: 250 }, (_, i) => 80 + ((i * 37) % 61));
  for (let i = 0; i < 250; i++) {
    const t = t0 + i * 20;
    sent.push({ t, src: 4000, dst: 5000, ssrc: 11, seq: 65500 + i, payload: sizes[i]! });
    // viewer A: 1 ms later, its own SSRC and numbering, one header-extension word more on this leg
    sent.push({ t: t + 1, src: 5000, dst: 6001, ssrc: 21, seq: 300 + i, payload: sizes[i]!, extWords: 1 });
    // viewer B: 3 ms later, and a different SRTP tag length on its leg (4 bytes more)
    sent.push({ t: t + 3, src: 5000, dst: 6002, ssrc: 22, seq: 9000 + i, payload: sizes[i]! + 4 });
    // an RTX flow to B: repairs of nothing in particular
    if (i % 10 === 0) sent.push({ t: t + 5, src: 5000, dst: 6002, ssrc: 23, seq: i * 7, payload: 500 + i });
    // another publisher's packets to the SFU and the SFU's internal hops: not viewers, not ours
    sent.push({ t: t + 2, src: 4100, dst: 5000, ssrc: 12, seq: i, payload: 90 });
    sent.push({ t: t + 2, src: 5000, dst: 5500, ssrc: 31, seq: i, payload: sizes[i]! });
  }
  sent.sort((a, b) => a.t - b.t);
  const got = forwardingLatency(readPcapRtp(pcap(sent)), {
    publisherPorts: new Set([4000]),
    viewerPorts: new Set([6001, 6002]),
  });
  assert.equal(got.flowsMatched, 2);
  assert.equal(got.flowsUnmatched, 1);
  assert.equal(got.latencies.length, 500);
  const a = got.latencies.filter((l) => Math.abs(l - 1) < 1e-6).length;
  const b = got.latencies.filter((l) => Math.abs(l - 3) < 1e-6).length;
  assert.deepEqual([a, b], [250, 250]);
});

test('a stream that repeats itself is paired with the packets it forwards, not ones a few frames older', () => {
  const sent: Sent[] = [];
  const t0 = 1_700_000_000_000;
  // a static picture: every frame one packet of the same size, which a pairing shifted by whole
  // frames fits just as well
  for (let i = 0; i < 150; i++) {
    const t = t0 + i * 33;
    sent.push({ t, src: 4000, dst: 5000, ssrc: 11, seq: i, payload: 140, marker: true });
    sent.push({ t: t + 2, src: 5000, dst: 6001, ssrc: 21, seq: 700 + i, payload: 140, marker: true });
  }
  const got = forwardingLatency(readPcapRtp(pcap(sent)), {
    publisherPorts: new Set([4000]),
    viewerPorts: new Set([6001]),
  });
  assert.equal(got.flowsMatched, 1);
  assert.deepEqual(new Set(got.latencies.map((l) => l.toFixed(3))), new Set(['2.000']));
});

test('a real tcpdump of loopback: what one socket relays to another, paired with what it received', async (t) => {
  const tcpdump = tcpdumpPath();
  if (!tcpdump) return t.skip('tcpdump is not installed');
  const dir = mkdtempSync(join(tmpdir(), 'sfu-latency-test-'));
  const socket = async () => {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    return s;
  };
  const [publisher, sfu, viewer] = await Promise.all([socket(), socket(), socket()]);
  const rtp = (ssrc: number, seq: number, size: number) => {
    const b = Buffer.alloc(12 + size, 0x5a);
    b[0] = 0x80;
    b[1] = 0x80 | 96;
    b.writeUInt16BE(seq & 0xffff, 2);
    b.writeUInt32BE(seq * 3000, 4);
    b.writeUInt32BE(ssrc, 8);
    return b;
  };
  // the relay: each packet goes on to the viewer as it arrives, renumbered under its own SSRC
  const port = (s: Socket) => s.address().port;
  sfu.on('message', (m) => sfu.send(rtp(0x77, m.readUInt16BE(2) + 1000, m.length - 12), port(viewer), '127.0.0.1'));
  let capture: LoopbackCapture;
  try {
    capture = await LoopbackCapture.start(join(dir, 'lo.pcap'), tcpdump);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    for (const s of [publisher, sfu, viewer]) s.close();
    return t.skip(`tcpdump may not capture here: ${(err as Error).message}`);
  }
  try {
    const received = new Promise<void>((resolve) => {
      let n = 0;
      viewer.on('message', () => ++n === 40 && resolve());
    });
    for (let i = 0; i < 40; i++) {
      publisher.send(rtp(0x11, i, 100 + ((i * 13) % 50)), port(sfu), '127.0.0.1');
      await new Promise((r) => setTimeout(r, 10));
    }
    await Promise.race([
      received,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error('the viewer socket got 40 packets in 10 s')), 10_000),
      ),
    ]);
    const { dropped } = await capture.stop();
    assert.equal(dropped, 0);
    const got = forwardingLatency(readPcapRtp(readFileSync(capture.file)), {
      publisherPorts: new Set([port(publisher)]),
      viewerPorts: new Set([port(viewer)]),
    });
    assert.equal(got.flowsMatched, 1);
    assert.equal(got.latencies.length, 40);
    // every packet paired with its own send (one paired a packet early would come out negative
    // and be left out), however long a loaded machine took to relay it
    for (const l of got.latencies) assert.ok(l >= 0 && l < 1000, `latency ${l} ms`);
  } finally {
    await capture.stop();
    for (const s of [publisher, sfu, viewer]) s.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
