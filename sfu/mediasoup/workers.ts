// The mediasoup worker pool: one C++ worker per core (each a process of its own, so forwarding uses
// every core and never the Node event loop), each with a WebRtcServer so every WebRTC transport of
// that worker shares one UDP (and one TCP) port. A worker that dies is reported, its routers close
// (their owners see 'workerclose' and end their streams with 'error'), and a new worker takes its
// place on the same port.

import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
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
   * (nice only). Default 10. A worker then runs the moment a packet arrives instead of after a busy
   * thread's slice: bench:forward measured the SFU's own p99 with 4 streams moderated on the same
   * cores no longer above the one without moderation (docs/FORWARDING.md). Needs CAP_SYS_NICE;
   * refused, the workers keep their nice value and the startup summary says so. A worker at real-time
   * priority that saturates a core would leave the rest of the machine (moderation, HTTP) only the
   * kernel's 5 % (sched_rt_runtime_us): `realtimeMaxCpu` bounds that.
   */
  workerRealtimePriority?: number;
  /**
   * A real-time worker that used more than this share of one core over a window (`realtimeWindowMs`)
   * is put back to normal scheduling at its nice value, where it competes with moderation by weight,
   * and returns to real-time priority once it used under half that share for `realtimeRestoreMs`.
   * Default 0.75: a worker never holds more than three quarters of a core ahead of everything else for
   * longer than one window.
   */
  realtimeMaxCpu?: number;
  /** Window over which each worker's CPU share is read from /proc (ms). Default 1000. */
  realtimeWindowMs?: number;
  /** How long a demoted worker must stay under half of `realtimeMaxCpu` before it gets real-time priority back (ms). Default 10000. */
  realtimeRestoreMs?: number;
}

const execFileAsync = promisify(execFile);

/** USER_HZ, the unit of /proc's CPU times: 100 on every Linux architecture Node runs on. */
const USER_HZ = 100;

/** A process's CPU time (ms), scheduling policy (0 normal, 2 SCHED_RR) and real-time priority, from /proc/PID/stat; undefined where there is none (gone, or not Linux). */
export function procSched(pid: number): { cpuMs: number; policy: number; rtPriority: number } | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // after the parenthesised name: field 3 (state) is index 0, so utime (14) is 11, stime 12, rt_priority (40) 37, policy 38
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return {
    cpuMs: ((Number(f[11]) + Number(f[12])) * 1000) / USER_HZ,
    policy: Number(f[38]),
    rtPriority: Number(f[37]),
  };
}

/** One worker of the pool and what placement needs to know about it. */
export class MediaWorker {
  /** Consumers placed on this worker by the engine (viewer tracks, pipes), its load for placement. */
  consumers = 0;
  streams = 0;
  /** Running at real-time priority now (false while demoted by the pool's guard, or when it is off). */
  realtime = false;
  /** The guard's last CPU reading of this worker, and since when a demoted one stayed under the restore share. */
  sample: { at: number; cpuMs: number } | undefined;
  calmSince: number | undefined;
  switching = false;
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

type PoolEvents = {
  died: [MediaWorker, Error];
  replaced: [MediaWorker];
  /** The guard took real-time priority from a worker (its CPU share over the window) or gave it back. */
  realtime: [MediaWorker, { realtime: boolean; cpuShare: number }];
};

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
  #guard: NodeJS.Timeout | undefined;
  deaths = 0;
  /** Times the guard took real-time priority from a worker since the pool started. */
  realtimeDemotions = 0;

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
      workerRealtimePriority: opts.workerRealtimePriority ?? 10,
      realtimeMaxCpu: opts.realtimeMaxCpu ?? 0.75,
      realtimeWindowMs: opts.realtimeWindowMs ?? 1000,
      realtimeRestoreMs: opts.realtimeRestoreMs ?? 10_000,
    };
    const rt = this.#opts.workerRealtimePriority;
    if (!Number.isInteger(rt) || rt < 0 || rt > 99)
      throw new RangeError(`workerRealtimePriority ${rt}: an integer 0-99 (0 = off)`);
    const max = this.#opts.realtimeMaxCpu;
    if (!(max > 0 && max <= 1))
      throw new RangeError(`realtimeMaxCpu ${max}: a share of one core, above 0 and at most 1`);
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
    if (pool.#opts.workerRealtimePriority > 0 && !pool.#realtimeRefused) {
      pool.#guard = setInterval(() => pool.#watchRealtime(), pool.#opts.realtimeWindowMs);
      pool.#guard.unref();
    }
    return pool;
  }

  get size(): number {
    return this.#slots.length;
  }

  /** How the workers are scheduled, for the startup summary. */
  get scheduling(): string {
    const o = this.#opts;
    if (o.workerRealtimePriority > 0 && !this.#realtimeRefused)
      return `SCHED_RR ${o.workerRealtimePriority} (nice ${o.workerNice} while above ${Math.round(o.realtimeMaxCpu * 100)} % of a core)`;
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
    const realtime =
      o.workerRealtimePriority > 0 && !this.#realtimeRefused && (await this.#setRealtime(worker, index, true));
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
    mw.realtime = realtime;
    this.#slots[index] = mw;
    worker.on('died', (error) => this.#onDied(mw, error));
    return mw;
  }

  /** SCHED_RR at the pool's priority, or back to normal scheduling at its nice value; false when refused. */
  async #setRealtime(worker: Worker, index: number, on: boolean): Promise<boolean> {
    const o = this.#opts;
    const pid = String(worker.pid);
    const args = on ? ['--rr', '-p', String(o.workerRealtimePriority), pid] : ['--other', '-p', '0', pid];
    try {
      await execFileAsync('chrt', args, { timeout: 5000 });
      return true;
    } catch (err) {
      if (worker.closed) return false;
      const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
      if (on && !this.#realtimeRefused) {
        this.#realtimeRefused = true;
        console.error(
          `sfu/mediasoup: workers keep normal scheduling (SCHED_RR ${o.workerRealtimePriority} refused: ${why})`,
        );
      } else if (!on)
        console.error(`sfu/mediasoup: worker ${index} keeps SCHED_RR (normal scheduling refused: ${why})`);
      return false;
    }
  }

  /**
   * The real-time guard, every window: a real-time worker above `realtimeMaxCpu` of a core goes back
   * to its nice value; a demoted one below half of that for `realtimeRestoreMs` gets SCHED_RR back.
   */
  #watchRealtime(): void {
    const o = this.#opts;
    const now = performance.now();
    for (const mw of this.workers) {
      const s = procSched(mw.pid);
      if (!s) continue;
      const prev = mw.sample;
      mw.sample = { at: now, cpuMs: s.cpuMs };
      if (!prev || mw.switching || now - prev.at <= 0) continue;
      const share = (s.cpuMs - prev.cpuMs) / (now - prev.at);
      let to: boolean | undefined;
      if (mw.realtime) {
        if (share > o.realtimeMaxCpu) to = false;
      } else if (this.#realtimeRefused) {
        continue;
      } else if (share < o.realtimeMaxCpu / 2) {
        mw.calmSince ??= now;
        if (now - mw.calmSince >= o.realtimeRestoreMs) to = true;
      } else mw.calmSince = undefined;
      if (to === undefined) continue;
      mw.switching = true;
      void this.#setRealtime(mw.worker, mw.index, to).then((done) => {
        mw.switching = false;
        if (!done || mw.closed) return;
        mw.realtime = to;
        mw.calmSince = undefined;
        if (!to) {
          // SCHED_OTHER: the kernel keeps the nice value the worker was started with
          this.realtimeDemotions++;
          console.error(
            `sfu/mediasoup: worker ${mw.index} used ${Math.round(share * 100)} % of a core: normal scheduling (nice ${o.workerNice}) until it stays under ${Math.round(o.realtimeMaxCpu * 50)} % for ${o.realtimeRestoreMs / 1000} s`,
          );
        }
        this.emit('realtime', mw, { realtime: to, cpuShare: share });
      });
    }
  }

  /** Workers running at real-time priority now. */
  get realtimeWorkers(): number {
    return this.workers.filter((w) => w.realtime).length;
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
    clearInterval(this.#guard);
    for (const w of this.#slots) w?.worker.close();
    this.#slots.fill(undefined);
    this.removeAllListeners();
  }
}
