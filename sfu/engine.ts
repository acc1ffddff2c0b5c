// Choosing the forwarding engine. 'auto' takes mediasoup (C++ workers, one per core) when a worker
// binary is present (`npm run mediasoup:worker`, or MEDIASOUP_WORKER_BIN), and werift (pure
// TypeScript, installs anywhere) otherwise, so `npm install && npm start` works on any machine.

import { SfuError } from './errors.ts';
import type { EngineName, Sfu } from './types.ts';
import { mediasoupWorkerBin } from './mediasoup/worker-bin.ts';

export interface CreateSfuOptions {
  /** Default 'auto'. */
  engine?: 'auto' | EngineName;
  announcedAddress?: string;
  listenAddress?: string;
  /** werift: the media port range; mediasoup: worker i listens on the range's first port + i. */
  udpPortRange?: [number, number];
  /** mediasoup workers. Default: one per core. */
  mediasoupWorkers?: number;
  /** mediasoup workers' real-time priority (SCHED_RR 1-99); 0 = off. Default 10. See WorkerPoolOptions. */
  mediasoupRealtimePriority?: number;
  /** Share of a core above which a real-time worker goes back to normal scheduling. Default 0.75. See WorkerPoolOptions. */
  mediasoupRealtimeMaxCpu?: number;
  /** Sessions that have not connected by then are closed (ms). Default 15000. */
  connectTimeoutMs?: number;
  /** Connected sessions that send nothing (no STUN consent, RTP or RTCP) for this long are closed (ms). Default 15000. */
  idleTimeoutMs?: number;
}

export interface CreatedSfu {
  sfu: Sfu;
  /** One line for the startup summary: which engine and why. */
  summary: string;
}

export async function createSfu(opts: CreateSfuOptions = {}): Promise<CreatedSfu> {
  const wanted = opts.engine ?? 'auto';
  const bin = mediasoupWorkerBin();
  if (wanted === 'mediasoup' || (wanted === 'auto' && bin)) {
    if (!bin)
      throw new SfuError(
        'SFU_ERR_NO_WORKER',
        'SFU_ENGINE=mediasoup but no mediasoup worker binary: run `npm run mediasoup:worker` or set MEDIASOUP_WORKER_BIN',
      );
    const { createMediasoupSfu } = await import('./mediasoup/index.ts');
    try {
      const sfu = await createMediasoupSfu({
        workers: opts.mediasoupWorkers,
        workerRealtimePriority: opts.mediasoupRealtimePriority,
        realtimeMaxCpu: opts.mediasoupRealtimeMaxCpu,
        listenAddress: opts.listenAddress ?? opts.announcedAddress,
        announcedAddress: opts.announcedAddress,
        rtcPort: opts.udpPortRange?.[0],
        connectTimeoutMs: opts.connectTimeoutMs,
        idleTimeoutMs: opts.idleTimeoutMs,
        workerBin: bin,
      });
      if (opts.udpPortRange && opts.udpPortRange[0] + sfu.pool.size - 1 > opts.udpPortRange[1]) {
        await sfu.close();
        throw new Error(`UDP_PORT_RANGE ${opts.udpPortRange.join('-')} is smaller than the ${sfu.pool.size} workers`);
      }
      const workers = `${sfu.pool.size} worker${sfu.pool.size === 1 ? '' : 's'}`;
      return { sfu, summary: `mediasoup, ${workers} at ${sfu.pool.scheduling} (${bin})` };
    } catch (err) {
      if (wanted === 'mediasoup') throw err;
      console.error('sfu: the mediasoup worker would not start; falling back to werift', err);
      const sfu = await werift(opts);
      return {
        sfu,
        summary: `werift (mediasoup worker at ${bin} failed to start: ${err instanceof Error ? err.message : String(err)})`,
      };
    }
  }
  const sfu = await werift(opts);
  return {
    sfu,
    summary:
      wanted === 'werift'
        ? 'werift (SFU_ENGINE=werift)'
        : 'werift (no mediasoup worker: `npm run mediasoup:worker` builds one)',
  };
}

async function werift(opts: CreateSfuOptions): Promise<Sfu> {
  const { createWeriftSfu } = await import('./werift/index.ts');
  return createWeriftSfu({
    announcedAddress: opts.announcedAddress,
    listenAddress: opts.listenAddress,
    udpPortRange: opts.udpPortRange,
    connectTimeoutMs: opts.connectTimeoutMs,
    idleTimeoutMs: opts.idleTimeoutMs,
  });
}
