// Picks the Store implementation from the configuration.
import { MemoryStore } from './memory.ts';
import { RedisStore } from './redis.ts';
import { DurableStore, type DurableStoreOptions } from './durable.ts';
import { storeIdOf } from './audit-chain.ts';
import type { Store, StoreRetention } from './types.ts';
import type { SrvError } from '../errors.ts';

export type * from './types.ts';
export { DEFAULT_RETENTION } from './types.ts';
export { MemoryStore } from './memory.ts';
export { RedisStore } from './redis.ts';
export { DurableStore, OutboxQueuedError, type AuditChainAlarm, type OutboxStats } from './durable.ts';

export async function createStore(options: {
  redisUrl?: string;
  redisPrefix?: string;
  /** Retention bounds (docs/RETENTION.md). Default DEFAULT_RETENTION. */
  retention?: Partial<StoreRetention>;
  onError?: (err: SrvError) => void;
  /** HMAC key of the audit chain (config.ts auditKeyOf). */
  auditKey?: string;
  /** With Redis: enforcement records go through this node's outbox (durable.ts). */
  outbox?: Omit<DurableStoreOptions, 'inner' | 'storeId'>;
}): Promise<Store> {
  if (!options.redisUrl) return new MemoryStore({ retention: options.retention, auditKey: options.auditKey });
  const redis = await RedisStore.connect({
    url: options.redisUrl,
    prefix: options.redisPrefix,
    retention: options.retention,
    onError: options.onError,
    auditKey: options.auditKey,
  });
  if (!options.outbox) return redis;
  return DurableStore.open({
    ...options.outbox,
    inner: redis,
    storeId: storeIdOf(options.redisUrl, options.redisPrefix),
  });
}
