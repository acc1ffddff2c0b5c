// Picks the Store implementation from the configuration.
import { MemoryStore } from './memory.ts';
import { RedisStore } from './redis.ts';
import type { Store, StoreRetention } from './types.ts';
import type { SrvError } from '../errors.ts';

export type * from './types.ts';
export { DEFAULT_RETENTION } from './types.ts';
export { MemoryStore } from './memory.ts';
export { RedisStore } from './redis.ts';

export async function createStore(options: {
  redisUrl?: string;
  redisPrefix?: string;
  /** Retention bounds (docs/RETENTION.md). Default DEFAULT_RETENTION. */
  retention?: Partial<StoreRetention>;
  onError?: (err: SrvError) => void;
}): Promise<Store> {
  if (!options.redisUrl) return new MemoryStore({ retention: options.retention });
  return RedisStore.connect({ url: options.redisUrl, prefix: options.redisPrefix, retention: options.retention, onError: options.onError });
}
