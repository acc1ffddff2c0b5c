// The mediasoup worker pool: one C++ worker per core (each a process of its own, so forwarding uses
// every core and never the Node event loop), each with a WebRtcServer so every WebRTC transport of
// that worker shares one UDP (and one TCP) port. A worker that dies is reported, its routers close
// (their owners see 'workerclose' and end their streams with 'error'), and a new worker takes its
// place on the same port.

import { execFile } from 'node:child_process';
import { cpus, setPriority } from 'node:os';
import { promisify } from 'node:util';
import * as mediasoup from 'mediasoup';
import type { WebRtcServer, Worker, WorkerLogLevel } from 'mediasoup/types';
import { SafeEmitter } from '../emitter.ts';
import { mediasoupWorkerBin } from './worker-bin.ts';

export interface WorkerPoolOptions {
  /** Number of workers. Default: one per core. */
  workers?: number;
  /** Address media sockets bind to. Default 127.0.0.1. */
  listenAddress?: string;
  /** Address written into ICE candidates. Default: listenAddress. */
  announcedAddress?: string;
  /** UDP/TCP port of the first worker's WebRtcServer; worker i listens on rtcPort + i. Default: ephemeral ports. */
  rtcPort?: number;
  /** Also listen on TCP (ICE-TCP, passive) on the same port. Default true. */
  enableTcp?: boolean;
  /** Worker log level. Default 'error'. */
  logLevel?: WorkerLogLevel;
  /** Worker binary. Default: mediasoupWorkerBin(). */
  workerBin?: string;
  /**
   * Scheduling priority (nice) of the worker processes. Default -10: on a machine that moderation
   * saturates, forwarding still runs first. Needs CAP_SYS_NICE (root); without it workers keep 0.
   */
  workerNice?: number;
  /**
   * Real-time priority (SCHED_RR, 1-99) of the worker processes, set with util-linux's chrt; 0 = off
   * (the default: nice only). A worker then runs the moment a packet arrives instead of after a busy
   * thread's slice: bench:forward measured the SFU's own p99 at 1 viewer 1.8-2.2 -> 0.4 ms, at 500
   * viewers 16.6-21.7 -> 8.0-9.3 ms, and with 4 streams moderated on the same cores 16.3-44.3 ->
   * 10.5-11.2 ms (bench/results/forward-rt.json). The kernel leaves other
   * threads 5 % of the CPU (sched_rt_runtime_us) when workers saturate every core, so on a machine
   * that may be driven past its forwarding capacity, moderation and signalling would stall: meant for
   * machines sized for their audience. Needs CAP_SYS_NICE; refused, the workers keep their nice value.
   */
  workerRealtimePriority?: number;
}

const execFileAsync = promisify(execFile);

/** One worker of the pool and what placement needs to know about it. */
export class MediaWorker {
  /** Consumers placed on this worker by the engine (viewer tracks, pipes), its load for placement. */
  consumers = 0;
  streams = 0;
  constructor(
    readonly index: number,
    readonly worker: Worker,
    readonly webRtcServer: WebRtcServer,
  ) {}
  get pid(): number {
    return this.worker.pid;
  }
  get closed(): boolean {
    return this.worker.closed;
  }
}

type PoolEvents = { died: [MediaWorker, Error]; replaced: [MediaWorker] };

export class WorkerPool extends SafeEmitter<PoolEvents> {
  readonly #slots: (MediaWorker | undefined)[];
  readonly #opts: Required<Omit<WorkerPoolOptions, 'rtcPort' | 'workerBin'>> &
    Pick<WorkerPoolOptions, 'rtcPort' | 'workerBin'>;
  #niceRefused = false;
  #realtimeRefused = false;
  #closed = false;
  /** CPU time of workers that have died (ms), so the total keeps counting. */
  #deadCpuMs = 0;
  #lastCpuMs = new Map<number, number>();
  deaths = 0;

  private constructor(opts: WorkerPoolOptions) {
    super();
    const listen = opts.listenAddress ?? '127.0.0.1';
    this.#opts = {
      workers: Math.max(1, opts.workers ?? cpus().length),
      listenAddress: listen,
      announcedAddress: opts.announcedAddress ?? listen,
      enableTcp: opts.enableTcp ?? true,
      logLevel: opts.logLevel ?? 'error',
      rtcPort: opts.rtcPort,
      workerBin: opts.workerBin ?? mediasoupWorkerBin(),
      workerNice: opts.workerNice ?? -10,
      workerRealtimePriority: opts.workerRealtimePriority ?? 0,
    };
    const rt = this.#opts.workerRealtimePriority;
    if (!Number.isInteger(rt) || rt < 0 || rt > 99)
      throw new RangeError(`workerRealtimePriority ${rt}: an integer 0-99 (0 = off)`);
    this.#slots = new Array<MediaWorker | undefined>(this.#opts.workers).fill(undefined);
  }

  static async start(opts: WorkerPoolOptions = {}): Promise<WorkerPool> {
    const pool = new WorkerPool(opts);
    try {
      await Promise.all(pool.#slots.map((_, i) => pool.#spawn(i)));
    } catch (err) {
      pool.close();
      throw err;
    }
    return pool;
  }

  get size(): number {
    return this.#slots.length;
  }

  /** How the workers are scheduled, for the startup summary. */
  get scheduling(): string {
    const o = this.#opts;
    if (o.workerRealtimePriority > 0 && !this.#realtimeRefused) return `SCHED_RR ${o.workerRealtimePriority}`;
    return this.#niceRefused ? 'nice 0' : `nice ${o.workerNice}`;
  }

  get workers(): MediaWorker[] {
    return this.#slots.filter((w): w is MediaWorker => w !== undefined && !w.closed);
  }

  async #spawn(index: number): Promise<MediaWorker> {
    const o = this.#opts;
    const worker = await mediasoup.createWorker({ logLevel: o.logLevel, workerBin: o.workerBin });
    try {
      setPriority(worker.pid, o.workerNice);
    } catch (err) {
      if (!this.#niceRefused)
        console.error(
          `sfu/mediasoup: workers keep the default priority (nice ${o.workerNice} refused: ${err instanceof Error ? err.message : String(err)})`,
        );
      this.#niceRefused = true;
    }
    if (o.workerRealtimePriority > 0 && !this.#realtimeRefused) {
      try {
        await execFileAsync('chrt', ['--rr', '-p', String(o.workerRealtimePriority), String(worker.pid)], {
          timeout: 5000,
        });
      } catch (err) {
        this.#realtimeRefused = true;
        const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
        console.error(
          `sfu/mediasoup: workers keep normal scheduling (SCHED_RR ${o.workerRealtimePriority} refused: ${why})`,
        );
      }
    }
    let server: WebRtcServer;
    try {
      const port = o.rtcPort ? o.rtcPort + index : undefined;
      const infos: mediasoup.types.TransportListenInfo[] = [
        {
          protocol: 'udp',
          ip: o.listenAddress,
          announcedAddress: o.announcedAddress !== o.listenAddress ? o.announcedAddress : undefined,
          port,
        },
      ];
      if (o.enableTcp)
        infos.push({
          protocol: 'tcp',
          ip: o.listenAddress,
          announcedAddress: o.announcedAddress !== o.listenAddress ? o.announcedAddress : undefined,
          port,
        });
      server = await worker.createWebRtcServer({ listenInfos: infos });
    } catch (err) {
      worker.close();
      throw err;
    }
    const mw = new MediaWorker(index, worker, server);
    this.#slots[index] = mw;
    worker.on('died', (error) => this.#onDied(mw, error));
    return mw;
  }

  #onDied(mw: MediaWorker, error: Error): void {
    this.deaths++;
    this.#deadCpuMs += this.#lastCpuMs.get(mw.pid) ?? 0;
    this.#lastCpuMs.delete(mw.pid);
    if (this.#slots[mw.index] === mw) this.#slots[mw.index] = undefined;
    this.emit('died', mw, error);
    if (this.#closed) return;
    const respawn = (attempt: number): void => {
      if (this.#closed) return;
      this.#spawn(mw.index).then(
        (fresh) => this.emit('replaced', fresh),
        (err: unknown) => {
          console.error(`sfu/mediasoup: could not replace worker ${mw.index} (attempt ${attempt})`, err);
          setTimeout(() => respawn(attempt + 1), Math.min(10_000, 500 * 2 ** attempt)).unref();
        },
      );
    };
    respawn(1);
  }

  /**
   * The worker for new work: the least loaded one, where `home` (a stream's own worker) counts
   * `homeBias` consumers lighter, so a small audience stays beside its publisher (no pipe) and a
   * large one spreads over every core.
   */
  pick(home?: MediaWorker, homeBias = 0): MediaWorker {
    const live = this.workers;
    if (live.length === 0) throw new Error('no mediasoup worker is running');
    let best = live[0]!;
    let bestLoad = Infinity;
    for (const w of live) {
      const load = w.consumers + w.streams * 4 - (w === home ? homeBias : 0);
      if (load < bestLoad) {
        best = w;
        bestLoad = load;
      }
    }
    return best;
  }

  /** CPU time used by every worker process since the pool started, dead ones included (ms). */
  async cpuMs(): Promise<number> {
    let total = this.#deadCpuMs;
    await Promise.all(
      this.workers.map(async (w) => {
        try {
          const ru = await w.worker.getResourceUsage();
          const ms = ru.ru_utime + ru.ru_stime;
          this.#lastCpuMs.set(w.pid, ms);
          total += ms;
        } catch {
          total += this.#lastCpuMs.get(w.pid) ?? 0;
        }
      }),
    );
    return total;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#slots) w?.worker.close();
    this.#slots.fill(undefined);
    this.removeAllListeners();
  }
}
