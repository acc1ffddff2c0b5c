// Finding the mediasoup worker binary without loading mediasoup (the engine choice reads it at start).

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** Where a mediasoup worker binary is: MEDIASOUP_WORKER_BIN, else mediasoup's own build location; undefined when there is none. */
export function mediasoupWorkerBin(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const fromEnv = env.MEDIASOUP_WORKER_BIN;
  if (fromEnv) return existsSync(fromEnv) ? fromEnv : undefined;
  try {
    const main = createRequire(import.meta.url).resolve('mediasoup');
    // node/lib/index.js -> worker/out/Release/mediasoup-worker (where `npm run mediasoup:worker` links it)
    const bin = join(dirname(main), '..', '..', 'worker', 'out', 'Release', 'mediasoup-worker');
    return existsSync(bin) ? bin : undefined;
  } catch {
    return undefined;
  }
}
