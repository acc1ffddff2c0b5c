// The viewer side of bench:forward: one of several processes that each play a share of the synthetic
// viewers, so receiving 500 viewers' packets can use every core without sharing the SFU's CPU figure.
// Forked by bench/forward.ts; talks over IPC:
//   <- { type: 'join', url, n }          join viewers until this process has n (batches of 10)
//   -> { type: 'joined', viewers, failed, errors, ports }   ports: the viewers' UDP ports (bench:forward's capture)
//   <- { type: 'sent', items }           [kind, rtpTimestamp, sentMono] of the publisher's frames
//   <- { type: 'start' } / 'stop'        start / end a measurement
//   -> { type: 'measured', latencies, delivered, receiving, cpuUs, wallMs }
//   <- { type: 'quit' }
// Times cross processes on the monotonic clock (process.hrtime, one clock per machine): a receipt
// is converted from this process's ms clock (MONO_OFFSET_MS).

import { WhepViewer } from '../loadtest/clients/whep-viewer.ts';
import { MONO_OFFSET_MS, localUdpPorts } from '../loadtest/clients/peer.ts';

type Msg =
  | { type: 'join'; url: string; n: number }
  | { type: 'sent'; items: [kind: 0 | 1, timestamp: number, sentMono: number][] }
  | { type: 'start' }
  | { type: 'stop' }
  | { type: 'quit' };

const send = (m: unknown): void => void process.send?.(m);
const viewers: WhepViewer[] = [];
// kind (0 audio, 1 video) -> RTP timestamp -> when the publisher sent the frame's last packet (mono ms)
const sent = [new Map<number, number>(), new Map<number, number>()] as const;
let measuring = false;
// receipts of frames' last packets in the measurement, joined with the send times at its end (a
// frame can arrive here before the IPC message that says when it left)
let receipts: [Map<number, number[]>, Map<number, number[]>] = [
  new Map<number, number[]>(),
  new Map<number, number[]>(),
];
let delivered = 0;
let counted: number[] = [];
let cpu0 = process.cpuUsage();
let t0 = 0;

async function join(url: string, n: number): Promise<void> {
  let failed = 0;
  const errors: string[] = [];
  while (viewers.length < n && failed < 20) {
    const batch = Math.min(10, n - viewers.length);
    const joined = await Promise.allSettled(
      Array.from({ length: batch }, () =>
        WhepViewer.connect({ url, maxRecords: 0, connectTimeoutMs: 30_000, headersOnly: true, setup: 'active' }),
      ),
    );
    for (const j of joined) {
      if (j.status === 'rejected') {
        failed++;
        if (errors.length < 3) errors.push(j.reason instanceof Error ? j.reason.message : String(j.reason));
        continue;
      }
      const v = j.value;
      v.onPacket = (p) => {
        if (!measuring) return;
        delivered++;
        if (p.kind === 'video' && !p.marker) return;
        const r = receipts[p.kind === 'video' ? 1 : 0];
        const list = r.get(p.timestamp);
        if (list) list.push(p.receivedAt - MONO_OFFSET_MS);
        else r.set(p.timestamp, [p.receivedAt - MONO_OFFSET_MS]);
      };
      viewers.push(v);
    }
  }
  send({ type: 'joined', viewers: viewers.length, failed, errors, ports: viewers.flatMap((v) => localUdpPorts(v.pc)) });
}

process.on('message', (m: Msg) => {
  if (m.type === 'join') void join(m.url, m.n);
  else if (m.type === 'sent') {
    for (const [kind, ts, at] of m.items) {
      const map = sent[kind];
      map.set(ts, at);
      if (map.size > 4000) map.delete(map.keys().next().value!);
    }
  } else if (m.type === 'start') {
    receipts = [new Map<number, number[]>(), new Map<number, number[]>()];
    delivered = 0;
    counted = viewers.map((v) => v.count('video') + v.count('audio'));
    cpu0 = process.cpuUsage();
    t0 = performance.now();
    measuring = true;
  } else if (m.type === 'stop') {
    measuring = false;
    const c = process.cpuUsage(cpu0);
    const latencies: number[] = [];
    for (const kind of [0, 1] as const) {
      for (const [ts, list] of receipts[kind]) {
        const at = sent[kind].get(ts);
        if (at !== undefined) for (const r of list) latencies.push(r - at);
      }
    }
    const receiving = viewers.filter((v, i) => v.count('video') + v.count('audio') > (counted[i] ?? 0)).length;
    send({
      type: 'measured',
      latencies,
      delivered,
      receiving,
      cpuUs: c.user + c.system,
      wallMs: performance.now() - t0,
    });
  } else if (m.type === 'quit') {
    void Promise.allSettled(viewers.map((v) => v.close({ deleteSession: false }))).then(() => process.exit(0));
  }
});
send({ type: 'ready' });
