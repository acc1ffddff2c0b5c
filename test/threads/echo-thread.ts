// A request/reply thread for the worker-helper tests: echoes, sleeps, throws, exits, or fails setup.
import { serve } from '../../threads/thread.ts';

export type EchoRequest =
  | { op: 'echo'; value: unknown }
  | { op: 'sleep'; ms: number }
  | { op: 'throw'; message: string }
  | { op: 'exit' }
  | { op: 'pid' };

const started = Date.now() + Math.random();

serve<EchoRequest, unknown>((data) => {
  const opts = (data ?? {}) as { failSetup?: string };
  if (opts.failSetup) throw new Error(opts.failSetup);
  return async (req) => {
    switch (req.op) {
      case 'echo':
        return req.value;
      case 'sleep':
        await new Promise((r) => setTimeout(r, req.ms));
        return 'slept';
      case 'throw':
        throw new Error(req.message);
      case 'exit':
        process.exit(3);
        break;
      case 'pid':
        return started;
    }
    return undefined;
  };
});
