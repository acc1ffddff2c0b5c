// A request/reply thread for the worker-helper tests: echoes, sleeps, throws, exits, fails setup, or
// tells its own nice value and that of a thread it starts (Linux /proc). With `closeLog` (a file),
// finished sleeps and the thread's onClose hook are appended to it.
import { appendFileSync, readFileSync, readlinkSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { onClose, serve } from '../../threads/thread.ts';

export type EchoRequest =
  | { op: 'echo'; value: unknown }
  | { op: 'sleep'; ms: number }
  | { op: 'throw'; message: string }
  | { op: 'exit' }
  | { op: 'pid' }
  | { op: 'nice' }
  | { op: 'sched' };

const started = Date.now() + Math.random();

/** Field 19 of /proc/thread-self/stat (after the parenthesised name): the thread's nice value. */
function ownNice(): number {
  return Number(
    readFileSync(`/proc/self/task/${readlinkSync('/proc/thread-self').split('/').pop()}/stat`, 'utf8')
      .split(') ')[1]!
      .split(' ')[16],
  );
}

/** Scheduling of this thread: policy (field 41 of its /proc stat: 0 normal, 2 SCHED_RR), real-time priority (40), nice (19). */
function ownSched(): { policy: number; rtPriority: number; nice: number } {
  const f = readFileSync(`/proc/self/task/${readlinkSync('/proc/thread-self').split('/').pop()}/stat`, 'utf8')
    .split(') ')[1]!
    .split(' ');
  return { policy: Number(f[38]), rtPriority: Number(f[37]), nice: Number(f[16]) };
}

/** Field `index` (after the parenthesised name) of the /proc stat of a thread this thread starts (as onnxruntime or FFmpeg would start theirs). */
function childStat(index: number): Promise<number> {
  const src = `const fs=require('node:fs');const t=fs.readlinkSync('/proc/thread-self').split('/').pop();require('node:worker_threads').parentPort.postMessage(Number(fs.readFileSync('/proc/self/task/'+t+'/stat','utf8').split(') ')[1].split(' ')[${index}]));`;
  return new Promise((resolve, reject) => {
    const w = new Worker(src, { eval: true });
    w.once('message', (n: number) => void w.terminate().then(() => resolve(n)));
    w.once('error', reject);
  });
}

serve<EchoRequest, unknown>((data) => {
  const opts = (data ?? {}) as { failSetup?: string; closeLog?: string };
  if (opts.failSetup) throw new Error(opts.failSetup);
  const log = (line: string): void => {
    if (opts.closeLog) appendFileSync(opts.closeLog, `${line}\n`);
  };
  onClose(() => log('onClose'));
  return async (req) => {
    switch (req.op) {
      case 'echo':
        return req.value;
      case 'sleep':
        await new Promise((r) => setTimeout(r, req.ms));
        log(`slept ${req.ms}`);
        return 'slept';
      case 'throw':
        throw new Error(req.message);
      case 'exit':
        process.exit(3);
        break;
      case 'pid':
        return started;
      case 'nice':
        return { own: ownNice(), child: await childStat(16) };
      case 'sched':
        return { ...ownSched(), childPolicy: await childStat(38) };
    }
    return undefined;
  };
});
