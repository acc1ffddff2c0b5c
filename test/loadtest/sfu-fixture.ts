// A minimal server for testing the load test's measurements against known actions: the real SFU
// (werift) and WHIP/WHEP routes, /readyz, /metrics (event-loop gauge only) and an ops event stream,
// with kills and gates applied by the test at known times instead of by moderation.

import Fastify, { type FastifyInstance } from 'fastify';
import websocket from '@fastify/websocket';
import { Socket as UdpSocket } from 'node:dgram';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createWeriftSfu, type WeriftSfu } from '../../sfu/werift/index.ts';
import { webrtcRoutes } from '../../server/routes/webrtc.ts';

export interface SfuFixture {
  baseUrl: string;
  sfu: WeriftSfu;
  app: FastifyInstance;
  /** Close the stream (a kill) and tell ops. */
  kill(streamId: string): void;
  /** Blank video / mute audio for viewers in `jurisdiction` of a stream. */
  gate(streamId: string, jurisdiction: string, g: { video?: 'blank' | 'forward'; audio?: 'mute' | 'forward' }): void;
  close(): Promise<void>;
}

export async function startSfuFixture(): Promise<SfuFixture> {
  const sfu = createWeriftSfu({ announcedAddress: '127.0.0.1' });
  const app = Fastify({ logger: false });
  await app.register(websocket);
  const sockets = new Set<{ send(data: string): void }>();
  const emit = (msg: object) => {
    for (const s of sockets) s.send(JSON.stringify(msg));
  };
  const eld = monitorEventLoopDelay({ resolution: 10 });
  eld.enable();
  app.get('/readyz', async () => ({ status: 'ready' }));
  app.get('/metrics', async (_req, reply) => {
    const text = `msfu_event_loop_delay_ms{quantile="0.99"} ${eld.percentile(99) / 1e6}\nmsfu_process_process_cpu_seconds_total ${process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6}\nmsfu_process_process_resident_memory_bytes ${process.memoryUsage().rss}\n`;
    eld.reset();
    return reply.type('text/plain').send(text);
  });
  app.get('/v1/events', { websocket: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await app.register(webrtcRoutes, {
    sfu,
    authorizeView: (req) => ({
      jurisdiction: String(req.headers['x-viewer-jurisdiction'] ?? '').toUpperCase() || undefined,
    }),
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  await sfu.slateReady;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    sfu,
    app,
    kill(streamId) {
      const at = Date.now();
      emit({
        type: 'decision',
        decision: { streamId, at, kill: true, restrictions: [{ action: 'kill_stream', jurisdictions: [] }] },
        streamId,
      });
      sfu.getStream(streamId)?.close({ code: 'killed', message: 'test kill' });
      emit({ type: 'stream.killed', streamId, reason: 'test', statementId: 'x', appealUrl: '', at });
    },
    gate(streamId, jurisdiction, g) {
      const stream = sfu.getStream(streamId);
      if (!stream) return;
      const actions: object[] = [];
      if (g.video === 'blank') actions.push({ action: 'blank_video', jurisdictions: [jurisdiction] });
      if (g.audio === 'mute') actions.push({ action: 'mute_audio', jurisdictions: [jurisdiction] });
      emit({ type: 'decision', streamId, decision: { streamId, at: Date.now(), kill: false, restrictions: actions } });
      for (const v of stream.viewers.values()) {
        if (v.jurisdiction !== jurisdiction) continue;
        if (g.video) v.setVideoGate(g.video);
        if (g.audio) v.setAudioGate(g.audio);
      }
    },
    async close() {
      for (const s of sockets) (s as unknown as { close(): void }).close();
      await sfu.close();
      await app.close();
      // werift 0.25.2 leaves one ICE socket per peer bound after close() when both ends of a loopback
      // session live in this process (seen here, not with the server in its own process); they carry
      // nothing any more, so let the test process end instead of waiting on them.
      const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
      for (const h of handles) if (h instanceof UdpSocket) h.unref();
    },
  };
}
