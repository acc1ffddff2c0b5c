// Vanished peers are reaped (issue 12, item 1), in both engines: a publisher or viewer process killed
// with SIGKILL (no DTLS close, no DELETE, as a crashed OBS or a closed laptop) is closed after the idle
// timeout with 'ended' / 'viewer_left', and the streamer's reconnect then succeeds. Before, the
// werift engine (ICE-lite, no consent checks) kept such a stream live for ever: the reconnect got 409.
// werift counts any STUN, DTLS, RTP or RTCP as life; mediasoup its ICE consent checks (RFC 7675).
import { spawn, type ChildProcess } from 'node:child_process';
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WhipPublisher, syntheticClip } from '../../loadtest/clients/whip-publisher.ts';
import { WhepViewer } from '../../loadtest/clients/whep-viewer.ts';
import type { CloseReason } from '../../sfu/types.ts';
import { ENGINES, startServer, until } from './helpers.ts';

const IDLE_MS = 3000;

interface PeerProcess {
  child: ChildProcess;
  location: string;
  kill(): void;
}

const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** Starts a peer in its own process and resolves once it is connected. */
async function peerProcess(role: 'publish' | 'view', url: string): Promise<PeerProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', new URL('./vanishing-peer.ts', import.meta.url).pathname, JSON.stringify({ role, url })],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.add(child);
  let out = '';
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const location = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the ${role} process did not connect within 60 s:\n${out}`)),
      60_000,
    );
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { location: string }).location);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the ${role} process exited with ${code}:\n${out}`));
    });
  });
  return {
    child,
    location,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

for (const engine of ENGINES) {
  describe(`vanished peers are reaped [${engine}]`, () => {
    test('a publisher killed with SIGKILL: its stream ends with "ended" after the idle timeout, its viewers are told, the reconnect succeeds', async (t) => {
      await using srv = await startServer({ engine, sfu: { idleTimeoutMs: IDLE_MS } });
      const pub = await peerProcess('publish', `${srv.base}/whip/crash`);
      const stream = srv.sfu.getStream('crash');
      assert.ok(stream, 'the stream is live');
      await until(() => stream.connected, 10_000, 'the server side of the publisher to connect');
      let reason: CloseReason | undefined;
      stream.on('close', (r) => (reason = r));
      const viewer = await WhepViewer.connect({ url: `${srv.base}/whep/crash` });
      try {
        await until(() => viewer.packets.length > 10, 20_000, 'media at the viewer');
        const killedAt = performance.now();
        pub.kill();
        await until(() => reason !== undefined, IDLE_MS + 20_000, 'the dead publisher session to be closed');
        const tookMs = performance.now() - killedAt;
        assert.equal(reason?.code, 'ended', reason?.message);
        assert.ok(tookMs >= IDLE_MS - 1000, `closed after the idle timeout, not before (${Math.round(tookMs)} ms)`);
        t.diagnostic(`publisher SIGKILL -> session closed: ${Math.round(tookMs)} ms (idle timeout ${IDLE_MS} ms)`);
        await Promise.race([
          viewer.ended,
          new Promise((_, reject) =>
            setTimeout(() => reject(new Error('the viewer was not told within 10 s')), 10_000),
          ),
        ]);
        // the streamer's reconnect
        const clip = await syntheticClip({ codec: 'VP8', width: 160, height: 120, seconds: 1 });
        const again = await WhipPublisher.connect({ url: `${srv.base}/whip/crash`, ...clip });
        await again.stop();
      } finally {
        await viewer.close();
      }
    });

    test('a viewer killed with SIGKILL leaves the stream with "viewer_left" after the idle timeout; the others keep watching', async (t) => {
      await using srv = await startServer({ engine, sfu: { idleTimeoutMs: IDLE_MS } });
      const clip = await syntheticClip({ codec: 'VP8', width: 160, height: 120, seconds: 1 });
      const pub = await WhipPublisher.connect({ url: `${srv.base}/whip/watch`, ...clip });
      pub.start();
      const stays = await WhepViewer.connect({ url: `${srv.base}/whep/watch` });
      try {
        const stream = srv.sfu.getStream('watch');
        assert.ok(stream);
        const gone = await peerProcess('view', `${srv.base}/whep/watch`);
        await until(() => stream.viewers.size === 2, 10_000, 'both viewers on the stream');
        // the viewers in joining order: the one that stays, then the one that will vanish
        const doomed = [...stream.viewers.values()].at(-1);
        assert.ok(doomed);
        await until(() => doomed.connected, 10_000, 'the server side of the doomed viewer to connect');
        let reason: CloseReason | undefined;
        doomed.on('close', (r) => (reason = r));
        const killedAt = performance.now();
        gone.kill();
        await until(() => reason !== undefined, IDLE_MS + 20_000, 'the dead viewer session to be closed');
        t.diagnostic(
          `viewer SIGKILL -> session closed: ${Math.round(performance.now() - killedAt)} ms (idle timeout ${IDLE_MS} ms)`,
        );
        assert.equal(reason?.code, 'viewer_left', `${reason?.code}: ${reason?.message}`);
        assert.equal(stream.viewers.size, 1);
        assert.equal(stream.closed, false, 'the stream goes on');
        const before = stays.packets.length;
        await until(() => stays.packets.length > before + 10, 10_000, 'media still reaching the other viewer');
      } finally {
        await stays.close();
        await pub.stop();
      }
    });
  });
}

describe('no media port left [werift]', () => {
  test('an offer when every port of the range is taken gets 503 SFU_ERR_NO_PORTS, never a 201 without a candidate', async () => {
    const base = 42_000 + Math.floor(Math.random() * 2000);
    await using srv = await startServer({ engine: 'werift', sfu: { udpPortRange: [base, base + 1] } });
    const clip = await syntheticClip({ codec: 'VP8', width: 160, height: 120, seconds: 1 });
    const pub = await WhipPublisher.connect({ url: `${srv.base}/whip/ports`, ...clip });
    try {
      const statuses: number[] = [];
      const codes: string[] = [];
      const viewers: WhepViewer[] = [];
      for (let i = 0; i < 4; i++) {
        try {
          viewers.push(await WhepViewer.connect({ url: `${srv.base}/whep/ports`, connectTimeoutMs: 10_000 }));
          statuses.push(201);
        } catch (err) {
          const e = err as { status?: number; code?: string };
          statuses.push(e.status ?? -1);
          if (e.code) codes.push(e.code);
        }
      }
      assert.ok(statuses.includes(503), `a full port range answers 503 (got ${statuses.join(', ')})`);
      assert.ok(codes.includes('SFU_ERR_NO_PORTS'), codes.join(', '));
      assert.ok(!statuses.includes(-1), 'every 201 connected');
      for (const v of viewers) await v.close();
    } finally {
      await pub.stop();
    }
  });
});
