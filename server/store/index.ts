// Picks the Store implementation from the configuration.
import { MemoryStore } from './memory.ts';
import { RedisStore } from './redis.ts';
import type { Store } from './types.ts';
import type { SrvError } from '../errors.ts';

export type * from './types.ts';
export { MemoryStore } from './memory.ts';
export { RedisStore } from './redis.ts';

export async function createStore(options: { redisUrl?: string; redisPrefix?: string; onError?: (err: SrvError) => void }): Promise<Store> {
  if (!options.redisUrl) return new MemoryStore();
  return RedisStore.connect({ url: options.redisUrl, prefix: options.redisPrefix, onError: options.onError });
}
