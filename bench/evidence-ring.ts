// What the evidence rings (server/evidence.ts) cost: N streams, each fed a camera-like stream through
// a real tap (VP8 1200-byte packets at --kbps, a keyframe every --gop seconds, Opus 20 ms packets of
// 120 bytes) on a simulated clock, then the retained heap + ArrayBuffer memory per stream after a GC.
//   node --expose-gc --import tsx bench/evidence-ring.ts [--streams 20] [--kbps 1500] [--gop 2] [--seconds 30]
// Writes bench/results/evidence-ring.json. Then closes the streams and says what is still held (~0).
import { mkdir, writeFile } from 'node:fs/promises';
import { EvidenceRecorder } from '../server/evidence.ts';
import { FakeSfu, type FakeStream } from '../test/sfu/fake.ts';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const streams = arg('streams', 20);
const kbps = arg('kbps', 1500);
const gopS = arg('gop', 2);
const seconds = arg('seconds', 30);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

function used(): number {
  gc!();
  gc!();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}
function parts(): { heap: number; ab: number } {
  gc!();
  gc!();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, ab: m.arrayBuffers };
}

const sfu = new FakeSfu();
let mediaNow = 0;
const rec = new EvidenceRecorder({ sfu, dir: '/nonexistent-not-written', sweepMs: 0, mediaClock: () => mediaNow });
const list: FakeStream[] = [];
for (let i = 0; i < streams; i++) list.push((await sfu.publish(`s${i}`, 'v=0\r\n')).stream as FakeStream);
const base = used();
const baseParts = parts();

const fps = 30;
const frameBytes = Math.round((kbps * 1000) / 8 / fps);
const keyBytes = frameBytes * 6;
let vseq = 0;
let aseq = 0;
let fed = 0;
for (let ms = 0; ms < seconds * 1000; ms += 20) {
  mediaNow = ms;
  for (const s of list) {
    const src = (kind: 'video' | 'audio') => ({
      streamId: s.id,
      trackId: `${kind}0`,
      kind,
      codec: kind === 'video' ? ('VP8' as const) : ('opus' as const),
      clockRate: kind === 'video' ? 90000 : 48000,
    });
    s.tap.offer(
      src('audio'),
      { payloadType: 111, sequenceNumber: aseq++ & 0xffff, timestamp: ms * 48, marker: false, ssrc: 2 },
      new Uint8Array(120),
      ms,
    );
    if (ms % Math.round(1000 / fps) < 20) {
      const frame = Math.floor((ms * fps) / 1000);
      const key = frame % (gopS * fps) === 0;
      const bytes = key ? keyBytes : frameBytes;
      const n = Math.ceil(bytes / 1200);
      for (let p = 0; p < n; p++) {
        // VP8 payload descriptor (S bit on the first packet) + a frame tag whose bit 0 = 0 on keyframes
        const payload = new Uint8Array(Math.min(1200, bytes - p * 1200));
        payload[0] = p === 0 ? 0x10 : 0x00;
        payload[1] = key ? 0x00 : 0x01;
        s.tap.offer(
          src('video'),
          { payloadType: 96, sequenceNumber: vseq++ & 0xffff, timestamp: frame * 3000, marker: p === n - 1, ssrc: 1 },
          payload,
          ms,
        );
        fed++;
      }
    }
  }
  if (ms % 200 === 0) await new Promise((r) => setImmediate(r));
}
await new Promise((r) => setImmediate(r));
const rings = list.map((s) => rec.ringOf(s.id)!);
const after = used();
const afterParts = parts();
const perStream = (after - base) / streams;
const r0 = rings[0]!;
const report = {
  streams,
  kbps,
  gopS,
  seconds,
  ringSpanMs: Math.round(r0.spanMs),
  ringPayloadBytesPerStream: r0.bytes,
  ringPacketsPerStream: r0.packets,
  retainedBytesPerStream: Math.round(perStream),
  heapBytesPerStream: Math.round((afterParts.heap - baseParts.heap) / streams),
  arrayBufferBytesPerStream: Math.round((afterParts.ab - baseParts.ab) / streams),
  overheadBytesPerPacket: Math.round((perStream - r0.bytes) / r0.packets),
  packetsFed: fed,
};
console.log(JSON.stringify(report, null, 2));
await mkdir('bench/results', { recursive: true });
await writeFile('bench/results/evidence-ring.json', `${JSON.stringify(report, null, 2)}\n`);
rec.close();
for (const s of list) s.close({ code: 'ended', message: 'bench' });
await new Promise((r) => setTimeout(r, 2500));
const closed = parts();
console.log(
  `after the streams closed: ${Math.round((closed.heap + closed.ab - baseParts.heap - baseParts.ab) / streams)} bytes per stream still held`,
);
