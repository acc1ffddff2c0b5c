// `npm run audit:verify`: walks the whole audit chain in the store the server is configured for
// (same environment / --config as `npm start`), a page at a time, checks every entry's HMAC
// (AUDIT_HMAC_KEY, or the key derived from AUTH_SECRET) and, where this host has them, the
// checkpoints in OUTBOX_DIR. Prints one JSON line; exit 0 when the chain verifies, 1 when it does
// not (the first bad entry is named), 2 when it could not be read.
import { existsSync } from 'node:fs';
import { loadConfig, auditKeyOf } from '../server/config.ts';
import { SrvError } from '../server/errors.ts';
import { AuditCheckpointFile, storeIdOf, walkAuditChain } from '../server/store/audit-chain.ts';
import { RedisStore } from '../server/store/redis.ts';

async function main(): Promise<number> {
  const config = loadConfig({ argv: process.argv.slice(2) });
  if (!config.redisUrl)
    throw new SrvError(
      'SRV_ERR_CONFIG',
      'REDIS_URL is not set: the in-memory store lives only inside the server (use GET /v1/audit/verify)',
    );
  const { key, source } = auditKeyOf(config);
  if (source === 'random')
    throw new SrvError('SRV_ERR_CONFIG', 'neither AUDIT_HMAC_KEY nor AUTH_SECRET is set: the chain key is unknown');
  const store = await RedisStore.connect({ url: config.redisUrl, prefix: config.redisPrefix, pruneIntervalMs: 0 });
  try {
    const checkpoints = existsSync(config.outboxDir)
      ? new AuditCheckpointFile(config.outboxDir, storeIdOf(config.redisUrl, config.redisPrefix)).list()
      : [];
    const t0 = performance.now();
    const result = await walkAuditChain(store, key, { checkpoints });
    const firstBad =
      result.brokenAt !== undefined
        ? ((await store.readAudit({ afterSeq: result.brokenAt - 1, limit: 1 }))[0] ?? null)
        : undefined;
    process.stdout.write(
      JSON.stringify({
        ...result,
        ...(firstBad !== undefined ? { firstBadEntry: firstBad } : {}),
        keyFrom: source,
        tookMs: Math.round(performance.now() - t0),
      }) + '\n',
    );
    return result.ok ? 0 : 1;
  } finally {
    await store.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof SrvError ? `${err.code}: ` : ''}${(err as Error).message}\n`);
    process.exit(2);
  },
);
