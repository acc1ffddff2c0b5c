// Redis Store (ioredis): several server nodes share it. Live-stream entries are keys with a TTL,
// the audit log is a Redis Stream whose entry ids are the chain's sequence numbers (so XADD itself
// rejects a racing writer and the loser re-chains), the review queue is a sorted set plus a hash
// with claims decided in Lua (atomic across nodes), and control messages travel over pub/sub.
// Every backend failure surfaces as SRV_ERR_STORE_UNAVAILABLE (503); the server keeps serving.
// Retention (docs/RETENTION.md): the audit stream is trimmed to its bound (XTRIM, oldest first),
// decisions expire after the retention (PX), resolved review items lose their thumbnail and then go
// (a sorted set by resolution time), open amber items are refused beyond the bound. Statements of
// reasons and blocks are kept: Redis is the durable store they must outlive the node in. Writes are
// idempotent (records SET NX, audit appends by operation id, review items HSETNX, all in Lua) so the
// node's outbox (outbox.ts) may retry any of them; audit hashes are HMACs with a key Redis never sees.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { StatementOfReasons } from '../../policies/types.ts';
import { SrvError, notFound } from '../errors.ts';
import { chainAuditEntry } from '../../policies/audit.ts';
import { compareReviewItems } from '../../policies/index.ts';
import type { ShadowDifference } from '../../policies/shadow.ts';
import { PRIORITY_ESCALATED, type ReviewVote } from '../../policies/review.ts';
import { DropCounts, retentionOf } from './memory.ts';
import { SHADOW_DIFFERENCES_KEPT, SHADOW_RUNS_KEPT } from './types.ts';
import type {
  ActivePolicyRecord,
  BankEdit,
  BankEditInput,
  ShadowPolicyRecord,
  AuditEntry,
  ControlMessage,
  DecisionRecord,
  LiveStreamRecord,
  PolicyReviewItem,
  PolicyReviewResolution,
  Store,
  StoreRetention,
  StoreRetentionStats,
  StoredReviewItem,
  StreamBlock,
  Unsubscribe,
} from './types.ts';

// Review state lives in its own hash as a short string, so Lua never re-encodes an item (cjson
// would turn empty arrays into objects): 'pending' | 'resolved' | 'claimed:<expiresAt>:<claimedAt>:<reviewer>'.
const STATE_LUA_PRELUDE = `
local now = tonumber(ARGV[2])
local function parse(s)
  if not s then return nil end
  if s == 'pending' or s == 'resolved' then return s end
  local e, c, r = string.match(s, '^claimed:(%d+):(%d+):(.*)$')
  return 'claimed', tonumber(e), tonumber(c), r
end
`;

const CLAIM_LUA = `${STATE_LUA_PRELUDE}
local function take(id)
  local st = 'claimed:' .. string.format('%d', now + tonumber(ARGV[3])) .. ':' .. string.format('%d', now) .. ':' .. ARGV[1]
  redis.call('HSET', KEYS[1], id, st)
  return {'OK', id}
end
if ARGV[4] ~= '' then
  local status, exp, _, who = parse(redis.call('HGET', KEYS[1], ARGV[4]))
  if not status then return {'ERR', 'notfound'} end
  if status == 'resolved' then return {'ERR', 'resolved'} end
  if status == 'claimed' and exp > now and who ~= ARGV[1] then return {'ERR', 'held:' .. who} end
  return take(ARGV[4])
end
local ids = redis.call('ZRANGE', KEYS[2], 0, -1)
for _, id in ipairs(ids) do
  local status, exp = parse(redis.call('HGET', KEYS[1], id))
  if status == 'pending' or (status == 'claimed' and exp <= now) then return take(id) end
end
return {'NONE', ''}
`;

const RESOLVE_LUA = `${STATE_LUA_PRELUDE}
local status, exp, _, who = parse(redis.call('HGET', KEYS[1], ARGV[3]))
if not status then return {'ERR', 'notfound'} end
if status == 'resolved' then return {'ERR', 'resolved'} end
if status ~= 'claimed' or who ~= ARGV[1] or exp <= now then return {'ERR', 'claim'} end
redis.call('HSET', KEYS[1], ARGV[3], 'resolved')
redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[4], now, ARGV[3])
return {'OK', ARGV[3]}
`;

// A vote (issue 17): kept in its own hash (votes + escalated, JSON the client built from what it read
// under its claim); the claim is checked here, released when asked, the queue score raised on escalation.
const VOTE_LUA = `${STATE_LUA_PRELUDE}
local status, exp, _, who = parse(redis.call('HGET', KEYS[1], ARGV[3]))
if not status then return {'ERR', 'notfound'} end
if status == 'resolved' then return {'ERR', 'resolved'} end
if status ~= 'claimed' or who ~= ARGV[1] or exp <= now then return {'ERR', 'claim'} end
redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
if ARGV[5] == '1' then redis.call('HSET', KEYS[1], ARGV[3], 'pending') end
if ARGV[6] ~= '' then redis.call('ZADD', KEYS[2], ARGV[6], ARGV[3]) end
return {'OK', ARGV[3]}
`;

// Writes a retry may repeat (the outbox retries until it hears an answer) never duplicate or overwrite:
// a record is SET NX and indexed only when it was new; an audit append carries an operation id whose
// key says which seq it became, and is added only if the head is still the one it was chained on.
const PUT_INDEXED_LUA = `
local ok
if tonumber(ARGV[2]) > 0 then ok = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) else ok = redis.call('SET', KEYS[1], ARGV[1], 'NX') end
if not ok then return 0 end
local cap = tonumber(ARGV[3]) - 1
redis.call('LPUSH', KEYS[2], ARGV[4])
redis.call('LTRIM', KEYS[2], 0, cap)
redis.call('LPUSH', KEYS[3], ARGV[4])
redis.call('LTRIM', KEYS[3], 0, cap)
if tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[3], ARGV[2]) end
return 1
`;

const AUDIT_APPEND_LUA = `
local done = redis.call('GET', KEYS[2])
if done then return {'DUP', done} end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local head = 0
if #last > 0 then head = tonumber(string.match(last[1][1], '^(%d+)')) end
if head ~= tonumber(ARGV[1]) then return {'RACE', tostring(head)} end
redis.call('XADD', KEYS[1], ARGV[2] .. '-0', 'e', ARGV[3])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[4])
return {'OK', ARGV[2]}
`;

const ENQUEUE_LUA = `
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('HSET', KEYS[2], ARGV[1], 'pending')
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
  return 1
end
return 0
`;

/** An audit operation id is remembered this long (ms): a retry later than that would append twice. */
const AUDIT_OP_TTL_MS = 7 * 86_400_000;

// A bank edit gets the next seq and is kept under it, in one step: two nodes' edits never share a seq.
const BANK_EDIT_LUA = `
local seq = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], seq, seq .. '|' .. ARGV[1])
return seq
`;

type RedisWithScripts = Redis & {
  bankEdit(seqKey: string, edits: string, json: string): Promise<number>;
  putIndexed(
    key: string,
    list: string,
    perStream: string,
    json: string,
    ttlMs: string,
    cap: string,
    id: string,
  ): Promise<number>;
  auditAppend(
    stream: string,
    opKey: string,
    prevSeq: string,
    seq: string,
    json: string,
    opTtlMs: string,
  ): Promise<[string, string]>;
  reviewEnqueue(items: string, state: string, queue: string, id: string, json: string, score: string): Promise<number>;
  reviewClaim(
    state: string,
    queue: string,
    reviewer: string,
    now: string,
    claimMs: string,
    itemId: string,
  ): Promise<[string, string]>;
  reviewResolve(
    state: string,
    queue: string,
    outcome: string,
    resolved: string,
    reviewer: string,
    now: string,
    itemId: string,
    outcomeJson: string,
  ): Promise<[string, string]>;
  reviewVote(
    state: string,
    queue: string,
    votes: string,
    reviewer: string,
    now: string,
    itemId: string,
    votesJson: string,
    release: string,
    score: string,
  ): Promise<[string, string]>;
};

export interface RedisStoreOptions {
  url: string;
  /** Key prefix. Default 'msfu:'. */
  prefix?: string;
  /** Retention bounds (docs/RETENTION.md). Default DEFAULT_RETENTION (server/store/types.ts); maxRecords bounds the decision and statement indexes. */
  retention?: Partial<StoreRetention>;
  /** How often the audit stream and resolved review items are trimmed (ms); 0 = never. Default 60000. */
  pruneIntervalMs?: number;
  /** Per-command timeout (ms). Default 3000. */
  commandTimeoutMs?: number;
  /** Called on connection errors (already coded). Default: ignored after the first log line by the caller. */
  onError?: (err: SrvError) => void;
  /** HMAC key of the audit chain (policies/audit.ts); never written to Redis. Default none (plain sha256). */
  auditKey?: string;
}

function parse<T>(raw: string | null | undefined): T | undefined {
  return raw == null ? undefined : (JSON.parse(raw) as T);
}

interface ReviewOutcome {
  resolution: PolicyReviewResolution;
  decisionId?: string;
  outcomeStatementId?: string;
}

/** Item JSON + state string + outcome JSON -> the stored view (a lapsed claim reads as pending). */
interface ReviewVotes {
  votes: ReviewVote[];
  escalated: boolean;
}

function reviewFrom(
  itemJson: string,
  state: string | null,
  outcomeJson: string | null,
  t: number,
  votesJson: string | null = null,
): StoredReviewItem {
  const item = JSON.parse(itemJson) as StoredReviewItem & { thumbnail?: string };
  if (votesJson) {
    const v = JSON.parse(votesJson) as ReviewVotes;
    item.votes = v.votes;
    if (v.escalated) {
      item.escalated = true;
      item.priority = PRIORITY_ESCALATED;
    }
  }
  delete item.claim;
  item.status = 'pending';
  if (state === 'resolved') item.status = 'resolved';
  else if (state?.startsWith('claimed:')) {
    const m = /^claimed:(\d+):(\d+):(.*)$/s.exec(state);
    if (m) {
      item.claim = { reviewer: m[3], claimedAt: Number(m[2]), expiresAt: Number(m[1]) };
      item.status = item.claim.expiresAt > t ? 'claimed' : 'pending';
    }
  }
  if (outcomeJson) {
    const o = JSON.parse(outcomeJson) as ReviewOutcome;
    item.resolution = o.resolution;
    if (o.decisionId) item.decisionId = o.decisionId;
    if (o.outcomeStatementId) item.outcomeStatementId = o.outcomeStatementId;
  }
  return item;
}

export class RedisStore implements Store {
  readonly kind = 'redis' as const;
  readonly #cmd: RedisWithScripts;
  readonly #sub: Redis;
  readonly #p: string;
  readonly #cap: number;
  readonly #retention: StoreRetention;
  readonly #auditKey: string | undefined;
  readonly #dropped = new DropCounts();
  readonly #timer: NodeJS.Timeout | undefined;
  #pruning: Promise<void> | undefined;
  /** Resolved before this had their thumbnail dropped by this node's sweeps already. */
  #thumbsSweptTo = 0;
  readonly #handlers = new Set<(m: ControlMessage) => void>();
  readonly #inflight = new Set<Promise<unknown>>();
  #closed = false;

  private constructor(cmd: Redis, sub: Redis, options: RedisStoreOptions) {
    this.#cmd = cmd as RedisWithScripts;
    this.#sub = sub;
    this.#p = options.prefix ?? 'msfu:';
    this.#retention = retentionOf(options.retention);
    this.#cap = this.#retention.maxRecords;
    this.#cmd.defineCommand('reviewClaim', { numberOfKeys: 2, lua: CLAIM_LUA });
    this.#cmd.defineCommand('reviewResolve', { numberOfKeys: 4, lua: RESOLVE_LUA });
    this.#cmd.defineCommand('reviewVote', { numberOfKeys: 3, lua: VOTE_LUA });
    this.#cmd.defineCommand('putIndexed', { numberOfKeys: 3, lua: PUT_INDEXED_LUA });
    this.#cmd.defineCommand('auditAppend', { numberOfKeys: 2, lua: AUDIT_APPEND_LUA });
    this.#cmd.defineCommand('reviewEnqueue', { numberOfKeys: 3, lua: ENQUEUE_LUA });
    this.#cmd.defineCommand('bankEdit', { numberOfKeys: 2, lua: BANK_EDIT_LUA });
    this.#auditKey = options.auditKey;
    const every = options.pruneIntervalMs ?? 60_000;
    if (every > 0) {
      this.#timer = setInterval(
        () =>
          void this.prune().catch((err: unknown) =>
            options.onError?.(err instanceof SrvError ? err : new SrvError('SRV_ERR_STORE_UNAVAILABLE', String(err))),
          ),
        every,
      );
      this.#timer.unref();
    }
    this.#sub.on('message', (channel: string, payload: string) => {
      if (channel !== this.#k('control')) return;
      let msg: ControlMessage;
      try {
        msg = JSON.parse(payload) as ControlMessage;
      } catch {
        return;
      }
      for (const h of [...this.#handlers]) {
        try {
          h(msg);
        } catch {
          // isolation between handlers; app.ts logs inside its own handler
        }
      }
    });
  }

  /** Connects both connections (commands, subscriber); SRV_ERR_STORE_UNAVAILABLE when Redis is unreachable. */
  static async connect(options: RedisStoreOptions): Promise<RedisStore> {
    const common = {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      commandTimeout: options.commandTimeoutMs ?? 3000,
      connectTimeout: 3000,
      retryStrategy: (times: number) => Math.min(100 * times, 2000),
    };
    const report = (err: Error): void =>
      options.onError?.(new SrvError('SRV_ERR_STORE_UNAVAILABLE', `redis: ${err.message}`, { cause: err }));
    // Without the offline queue a command fails at once while Redis is away instead of hanging.
    const cmd = new Redis(options.url, { ...common, enableOfflineQueue: false });
    const sub = new Redis(options.url, { ...common, enableOfflineQueue: true });
    cmd.on('error', report);
    sub.on('error', report);
    try {
      await Promise.all([cmd.connect(), sub.connect()]);
    } catch (err) {
      cmd.disconnect();
      sub.disconnect();
      throw new SrvError(
        'SRV_ERR_STORE_UNAVAILABLE',
        `redis: cannot connect to ${options.url.replace(/\/\/([^@]*)@/, '//***@')}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    const store = new RedisStore(cmd, sub, options);
    await store.#sub.subscribe(store.#k('control'));
    return store;
  }

  #k(...parts: string[]): string {
    return this.#p + parts.join(':');
  }

  async #run<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new SrvError('SRV_ERR_STORE_UNAVAILABLE', 'store is closed');
    const p = (async () => {
      try {
        return await fn();
      } catch (err) {
        if (err instanceof SrvError) throw err;
        throw new SrvError('SRV_ERR_STORE_UNAVAILABLE', `redis ${what}: ${(err as Error).message}`, { cause: err });
      }
    })();
    this.#inflight.add(p);
    try {
      return await p;
    } finally {
      this.#inflight.delete(p);
    }
  }

  // ---- registry

  putStream(record: LiveStreamRecord, ttlMs: number): Promise<void> {
    return this.#run('putStream', async () => {
      await this.#cmd
        .multi()
        .set(this.#k('stream', record.streamId), JSON.stringify(record), 'PX', ttlMs)
        .sadd(this.#k('streams'), record.streamId)
        .exec();
    });
  }

  heartbeat(
    streamId: string,
    ttlMs: number,
    patch: Partial<Omit<LiveStreamRecord, 'streamId'>> = {},
  ): Promise<boolean> {
    return this.#run('heartbeat', async () => {
      const key = this.#k('stream', streamId);
      const current = parse<LiveStreamRecord>(await this.#cmd.get(key));
      if (!current) return false;
      const next: LiveStreamRecord = { ...current, ...patch, streamId, heartbeatAt: Date.now() };
      // XX: never resurrect an entry that expired between the read and the write.
      const ok = await this.#cmd.set(key, JSON.stringify(next), 'PX', ttlMs, 'XX');
      return ok === 'OK';
    });
  }

  getStream(streamId: string): Promise<LiveStreamRecord | undefined> {
    return this.#run('getStream', async () =>
      parse<LiveStreamRecord>(await this.#cmd.get(this.#k('stream', streamId))),
    );
  }

  listStreams(): Promise<LiveStreamRecord[]> {
    return this.#run('listStreams', async () => {
      const ids = await this.#cmd.smembers(this.#k('streams'));
      if (ids.length === 0) return [];
      const raws = await this.#cmd.mget(ids.map((id) => this.#k('stream', id)));
      const gone = ids.filter((_, i) => raws[i] == null);
      if (gone.length) await this.#cmd.srem(this.#k('streams'), ...gone);
      return raws
        .filter((r): r is string => r != null)
        .map((r) => JSON.parse(r) as LiveStreamRecord)
        .sort((a, b) => a.startedAt - b.startedAt);
    });
  }

  removeStream(streamId: string): Promise<void> {
    return this.#run('removeStream', async () => {
      await this.#cmd.multi().del(this.#k('stream', streamId)).srem(this.#k('streams'), streamId).exec();
    });
  }

  // ---- blocks

  setBlock(block: StreamBlock): Promise<void> {
    return this.#run('setBlock', async () => {
      await this.#cmd.set(this.#k('block', block.streamId), JSON.stringify(block));
    });
  }
  clearBlock(streamId: string): Promise<boolean> {
    return this.#run('clearBlock', async () => (await this.#cmd.del(this.#k('block', streamId))) > 0);
  }
  getBlock(streamId: string): Promise<StreamBlock | undefined> {
    return this.#run('getBlock', async () => parse<StreamBlock>(await this.#cmd.get(this.#k('block', streamId))));
  }

  // ---- indexed records (decisions, statements, appeals)

  /** SET NX and indexed when new: a repeated put (an outbox retry) changes nothing. */
  async #putIndexed(kind: string, value: { id: string; streamId: string }): Promise<void> {
    // decisions expire after the retention; statements are kept (they back appeals and blocks)
    const ttl = kind === 'decision' && this.#retention.retentionMs > 0 ? this.#retention.retentionMs : 0;
    await this.#cmd.putIndexed(
      this.#k(kind, value.id),
      this.#k(kind + 's'),
      this.#k(kind + 's', 'stream', value.streamId),
      JSON.stringify(value),
      String(ttl),
      String(this.#cap),
      value.id,
    );
  }

  async #listIndexed<T>(kind: string, filter: { streamId?: string; limit?: number } = {}): Promise<T[]> {
    const list = filter.streamId === undefined ? this.#k(kind + 's') : this.#k(kind + 's', 'stream', filter.streamId);
    const ids = await this.#cmd.lrange(list, 0, (filter.limit ?? 100) - 1);
    if (ids.length === 0) return [];
    const raws = await this.#cmd.mget(ids.map((id) => this.#k(kind, id)));
    return raws.filter((r): r is string => r != null).map((r) => JSON.parse(r) as T);
  }

  putDecision(decision: DecisionRecord): Promise<void> {
    return this.#run('putDecision', () => this.#putIndexed('decision', decision));
  }
  getDecision(id: string): Promise<DecisionRecord | undefined> {
    return this.#run('getDecision', async () => parse<DecisionRecord>(await this.#cmd.get(this.#k('decision', id))));
  }
  listDecisions(filter?: { streamId?: string; limit?: number }): Promise<DecisionRecord[]> {
    return this.#run('listDecisions', () => this.#listIndexed<DecisionRecord>('decision', filter));
  }
  putStatement(statement: StatementOfReasons): Promise<void> {
    return this.#run('putStatement', () => this.#putIndexed('statement', statement));
  }
  getStatement(id: string): Promise<StatementOfReasons | undefined> {
    return this.#run('getStatement', async () =>
      parse<StatementOfReasons>(await this.#cmd.get(this.#k('statement', id))),
    );
  }
  listStatements(filter?: { streamId?: string; limit?: number }): Promise<StatementOfReasons[]> {
    return this.#run('listStatements', () => this.#listIndexed<StatementOfReasons>('statement', filter));
  }

  // ---- audit (Redis Stream, entry id = `${seq}-0`)

  appendAudit(body: Record<string, unknown>, options: { id?: string } = {}): Promise<AuditEntry> {
    return this.#run('appendAudit', async () => {
      const key = this.#k('audit');
      const opKey = this.#k('audit', 'op', options.id ?? randomUUID());
      for (let attempt = 0; attempt < 50; attempt++) {
        const last = await this.#cmd.xrevrange(key, '+', '-', 'COUNT', 1);
        const prev = last.length ? parse<AuditEntry>(last[0][1][1]) : undefined;
        const entry = chainAuditEntry(prev, body, Date.now(), this.#auditKey);
        const [status, value] = await this.#cmd.auditAppend(
          key,
          opKey,
          String(prev?.seq ?? 0),
          String(entry.seq),
          JSON.stringify(entry),
          String(AUDIT_OP_TTL_MS),
        );
        if (status === 'OK') return entry;
        if (status === 'DUP') {
          // appended by an earlier try whose answer was lost: that entry is the result
          const rows = await this.#cmd.xrange(key, `${value}-0`, `${value}-0`);
          return rows.length ? (JSON.parse(rows[0][1][1]) as AuditEntry) : { ...entry, seq: Number(value) };
        }
        // another node appended first: re-read the head and chain onto it
      }
      throw new SrvError('SRV_ERR_STORE_UNAVAILABLE', 'redis appendAudit: too much contention');
    });
  }

  /** The newest audit entry (undefined when the log is empty). */
  auditHead(): Promise<AuditEntry | undefined> {
    return this.#run('auditHead', async () => {
      const last = await this.#cmd.xrevrange(this.#k('audit'), '+', '-', 'COUNT', 1);
      return last.length ? parse<AuditEntry>(last[0][1][1]) : undefined;
    });
  }

  readAudit(options: { afterSeq?: number; limit?: number } = {}): Promise<AuditEntry[]> {
    return this.#run('readAudit', async () => {
      const start = options.afterSeq ? `(${options.afterSeq}-0` : '-';
      const rows = await this.#cmd.xrange(this.#k('audit'), start, '+', 'COUNT', options.limit ?? 1000);
      return rows.map(([, fields]) => JSON.parse(fields[1]) as AuditEntry);
    });
  }

  // ---- review queue

  enqueueReview(
    item: PolicyReviewItem,
    extra: { thumbnail?: string; clips?: StoredReviewItem['clips'] } = {},
  ): Promise<StoredReviewItem> {
    return this.#run('enqueueReview', async () => {
      const stored = { ...item, ...extra };
      delete stored.claim;
      if (item.type === 'amber' && !(await this.#cmd.hexists(this.#k('review', 'items'), item.id))) {
        // Redis counts appeals in the bound too (the queue holds both); appeals are always taken
        const open = await this.#cmd.zcard(this.#k('review', 'queue'));
        if (open >= this.#retention.maxOpenReview) {
          this.#dropped.add('review_open', 'queue_full');
          throw new SrvError(
            'SRV_ERR_UNAVAILABLE',
            `review queue full: ${open} open items (storeMaxOpenReview ${this.#retention.maxOpenReview}); item ${item.id} of stream ${item.streamId} refused`,
          );
        }
      }
      await this.#cmd.reviewEnqueue(
        this.#k('review', 'items'),
        this.#k('review', 'state'),
        this.#k('review', 'queue'),
        item.id,
        JSON.stringify(stored),
        String(-item.priority * 1e13 + item.createdAt),
      );
      const out = await this.#readReview(item.id);
      if (!out) throw new SrvError('SRV_ERR_STORE_UNAVAILABLE', `redis enqueueReview: item ${item.id} vanished`);
      return out;
    });
  }

  async #readReview(itemId: string): Promise<StoredReviewItem | undefined> {
    const [raw, state, outcome, votes] = await Promise.all([
      this.#cmd.hget(this.#k('review', 'items'), itemId),
      this.#cmd.hget(this.#k('review', 'state'), itemId),
      this.#cmd.hget(this.#k('review', 'outcome'), itemId),
      this.#cmd.hget(this.#k('review', 'votes'), itemId),
    ]);
    return raw == null ? undefined : reviewFrom(raw, state, outcome, Date.now(), votes);
  }

  claimReview(reviewer: string, claimMs: number, itemId?: string): Promise<StoredReviewItem | undefined> {
    return this.#run('claimReview', async () => {
      const [status, value] = await this.#cmd.reviewClaim(
        this.#k('review', 'state'),
        this.#k('review', 'queue'),
        reviewer,
        String(Date.now()),
        String(claimMs),
        itemId ?? '',
      );
      if (status === 'OK') return this.#readReview(value);
      if (status === 'NONE') return undefined;
      if (value === 'notfound') throw notFound(`review item ${itemId} not found`);
      if (value === 'resolved') throw new SrvError('SRV_ERR_CONFLICT', `review item ${itemId} is resolved`);
      throw new SrvError('SRV_ERR_CONFLICT', `review item ${itemId} is claimed by ${value.slice(5)}`);
    });
  }

  resolveReview(
    itemId: string,
    reviewer: string,
    resolution: PolicyReviewResolution,
    extra: { decisionId?: string; outcomeStatementId?: string } = {},
  ): Promise<StoredReviewItem> {
    return this.#run('resolveReview', async () => {
      const outcome: ReviewOutcome = { resolution, ...extra };
      const [status, value] = await this.#cmd.reviewResolve(
        this.#k('review', 'state'),
        this.#k('review', 'queue'),
        this.#k('review', 'outcome'),
        this.#k('review', 'resolved'),
        reviewer,
        String(Date.now()),
        itemId,
        JSON.stringify(outcome),
      );
      if (status !== 'OK') {
        if (value === 'notfound') throw notFound(`review item ${itemId} not found`);
        if (value === 'resolved') throw new SrvError('SRV_ERR_CONFLICT', `review item ${itemId} is already resolved`);
        throw new SrvError(
          'SRV_ERR_CLAIM_EXPIRED',
          `review item ${itemId} is not claimed by ${reviewer} (claim missing, lapsed or held by another)`,
        );
      }
      const out = await this.#readReview(itemId);
      if (!out) throw notFound(`review item ${itemId} not found`);
      return out;
    });
  }

  voteReview(
    itemId: string,
    reviewer: string,
    votes: readonly ReviewVote[],
    options: { release: boolean; escalate: boolean },
  ): Promise<StoredReviewItem> {
    return this.#run('voteReview', async () => {
      const before = await this.#readReview(itemId);
      const escalated = options.escalate || before?.escalated === true;
      const record: ReviewVotes = { votes: [...votes], escalated };
      const [status, value] = await this.#cmd.reviewVote(
        this.#k('review', 'state'),
        this.#k('review', 'queue'),
        this.#k('review', 'votes'),
        reviewer,
        String(Date.now()),
        itemId,
        JSON.stringify(record),
        options.release ? '1' : '0',
        options.escalate && before ? String(-PRIORITY_ESCALATED * 1e13 + before.createdAt) : '',
      );
      if (status !== 'OK') {
        if (value === 'notfound') throw notFound(`review item ${itemId} not found`);
        if (value === 'resolved') throw new SrvError('SRV_ERR_CONFLICT', `review item ${itemId} is already resolved`);
        throw new SrvError(
          'SRV_ERR_CLAIM_EXPIRED',
          `review item ${itemId} is not claimed by ${reviewer} (claim missing, lapsed or held by another)`,
        );
      }
      const out = await this.#readReview(itemId);
      if (!out) throw notFound(`review item ${itemId} not found`);
      return out;
    });
  }

  getReview(itemId: string): Promise<StoredReviewItem | undefined> {
    return this.#run('getReview', () => this.#readReview(itemId));
  }

  listReview(
    options: { includeResolved?: boolean; type?: 'amber' | 'appeal'; streamId?: string; limit?: number } = {},
  ): Promise<StoredReviewItem[]> {
    return this.#run('listReview', async () => {
      const ids = options.includeResolved
        ? await this.#cmd.hkeys(this.#k('review', 'items'))
        : await this.#cmd.zrange(this.#k('review', 'queue'), '0', '-1');
      if (ids.length === 0) return [];
      const [raws, states, outcomes, votes] = await Promise.all([
        this.#cmd.hmget(this.#k('review', 'items'), ...ids),
        this.#cmd.hmget(this.#k('review', 'state'), ...ids),
        this.#cmd.hmget(this.#k('review', 'outcome'), ...ids),
        this.#cmd.hmget(this.#k('review', 'votes'), ...ids),
      ]);
      const t = Date.now();
      const items: StoredReviewItem[] = [];
      ids.forEach((_, i) => {
        const raw = raws[i];
        if (raw != null) items.push(reviewFrom(raw, states[i] ?? null, outcomes[i] ?? null, t, votes[i] ?? null));
      });
      return items
        .filter(
          (i) =>
            (options.includeResolved || i.status !== 'resolved') &&
            (options.type === undefined || i.type === options.type) &&
            (options.streamId === undefined || i.streamId === options.streamId),
        )
        .sort(compareReviewItems)
        .slice(0, options.limit ?? 200);
    });
  }

  reviewDepth(): Promise<number> {
    return this.#run('reviewDepth', () => this.#cmd.zcard(this.#k('review', 'queue')));
  }

  // ---- retention

  /** Trims the audit stream to its bound and drops resolved review items' thumbnails, then the items (oldest resolution first). */
  prune(): Promise<void> {
    return (this.#pruning ??= this.#run('prune', async () => {
      const r = this.#retention;
      const t = Date.now();
      this.#dropped.add('audit', 'count', await this.#cmd.xtrim(this.#k('audit'), 'MAXLEN', r.maxAudit));
      const items = this.#k('review', 'items');
      const resolved = this.#k('review', 'resolved');
      const stale = t - r.thumbnailRetentionMs;
      if (stale > this.#thumbsSweptTo) {
        const ids = await this.#cmd.zrangebyscore(resolved, this.#thumbsSweptTo, stale);
        for (const id of ids) {
          const raw = await this.#cmd.hget(items, id);
          const item = parse<StoredReviewItem>(raw);
          if (!item || item.thumbnail === undefined) continue;
          delete item.thumbnail;
          await this.#cmd.hset(items, id, JSON.stringify(item));
          this.#dropped.add('thumbnails', 'age');
        }
        this.#thumbsSweptTo = stale;
      }
      const drop = async (ids: string[], reason: 'count' | 'age'): Promise<void> => {
        if (ids.length === 0) return;
        const res = await this.#cmd
          .multi()
          .zrem(resolved, ...ids)
          .hdel(items, ...ids)
          .hdel(this.#k('review', 'state'), ...ids)
          .hdel(this.#k('review', 'outcome'), ...ids)
          .hdel(this.#k('review', 'votes'), ...ids)
          .exec();
        this.#dropped.add('review_resolved', reason, Number(res?.[0]?.[1] ?? 0));
      };
      if (r.retentionMs > 0)
        await drop(await this.#cmd.zrangebyscore(resolved, '-inf', `(${t - r.retentionMs}`), 'age');
      const over = (await this.#cmd.zcard(resolved)) - r.maxResolvedReview;
      if (over > 0) await drop(await this.#cmd.zrange(resolved, '0', String(over - 1)), 'count');
    }).finally(() => (this.#pruning = undefined)));
  }

  retentionStats(): Promise<StoreRetentionStats> {
    return this.#run('retentionStats', async () => {
      const res = await this.#cmd
        .multi()
        .xlen(this.#k('audit'))
        .llen(this.#k('decisions'))
        .llen(this.#k('statements'))
        .zcard(this.#k('review', 'queue'))
        .zcard(this.#k('review', 'resolved'))
        .scard(this.#k('streams'))
        .xrange(this.#k('audit'), '-', '+', 'COUNT', 1)
        .exec();
      const n = (i: number): number => Number(res?.[i]?.[1] ?? 0);
      const first = (res?.[6]?.[1] as [string, string[]][] | undefined)?.[0];
      return {
        // decisions and statements: their index lists (bounded by maxRecords); thumbnails and blocks are not counted in Redis
        entries: {
          audit: n(0),
          decisions: n(1),
          statements: n(2),
          review_open: n(3),
          review_resolved: n(4),
          streams: n(5),
        },
        thumbnailBytes: 0,
        dropped: this.#dropped.list(),
        auditFirstSeq: first ? Number(first[0].split('-')[0]) : 1,
      };
    });
  }

  // ---- the cluster's active policy

  setActivePolicy(record: ActivePolicyRecord): Promise<void> {
    return this.#run('setActivePolicy', async () => {
      await this.#cmd.set(this.#k('policy', 'active'), JSON.stringify(record));
    });
  }
  getActivePolicy(): Promise<ActivePolicyRecord | undefined> {
    return this.#run('getActivePolicy', async () =>
      parse<ActivePolicyRecord>(await this.#cmd.get(this.#k('policy', 'active'))),
    );
  }

  // ---- hash bank edits: a sorted set by seq ('<seq>|<json>' members), the seq a counter

  appendBankEdit(edit: BankEditInput): Promise<BankEdit> {
    return this.#run('appendBankEdit', async () => {
      const seq = await this.#cmd.bankEdit(this.#k('banks', 'seq'), this.#k('banks', 'edits'), JSON.stringify(edit));
      return { ...edit, seq: Number(seq) } as BankEdit;
    });
  }
  listBankEdits(after: number, limit = 1000): Promise<BankEdit[]> {
    return this.#run('listBankEdits', async () => {
      const members = await this.#cmd.zrangebyscore(this.#k('banks', 'edits'), `(${after}`, '+inf', 'LIMIT', 0, limit);
      return members.map((m) => {
        const bar = m.indexOf('|');
        return { ...(JSON.parse(m.slice(bar + 1)) as BankEditInput), seq: Number(m.slice(0, bar)) } as BankEdit;
      });
    });
  }

  // ---- shadow evaluation: the current candidate (a key), runs (a hash by version, ordered by a sorted set), differences (a list per candidate)

  setShadowPolicy(record: ShadowPolicyRecord | undefined): Promise<void> {
    return this.#run('setShadowPolicy', async () => {
      if (!record) {
        await this.#cmd.del(this.#k('shadow', 'current'));
        return;
      }
      const json = JSON.stringify(record);
      const order = this.#k('shadow', 'order');
      await this.#cmd
        .multi()
        .set(this.#k('shadow', 'current'), json)
        .hset(this.#k('shadow', 'runs'), record.version, json)
        .zadd(order, String(record.at), record.version)
        .exec();
      const over = (await this.#cmd.zcard(order)) - SHADOW_RUNS_KEPT;
      if (over <= 0) return;
      const old = await this.#cmd.zrange(order, '0', String(over - 1));
      if (old.length === 0) return;
      await this.#cmd
        .multi()
        .zrem(order, ...old)
        .hdel(this.#k('shadow', 'runs'), ...old)
        .del(...old.map((v) => this.#k('shadow', 'diff', v)))
        .exec();
    });
  }
  getShadowPolicy(): Promise<ShadowPolicyRecord | undefined> {
    return this.#run('getShadowPolicy', async () =>
      parse<ShadowPolicyRecord>(await this.#cmd.get(this.#k('shadow', 'current'))),
    );
  }
  getShadowRun(version: string): Promise<ShadowPolicyRecord | undefined> {
    return this.#run('getShadowRun', async () =>
      parse<ShadowPolicyRecord>(await this.#cmd.hget(this.#k('shadow', 'runs'), version)),
    );
  }
  appendShadowDifferences(differences: readonly ShadowDifference[]): Promise<void> {
    return this.#run('appendShadowDifferences', async () => {
      if (differences.length === 0) return;
      const m = this.#cmd.multi();
      for (const version of new Set(differences.map((d) => d.candidateVersion))) {
        const key = this.#k('shadow', 'diff', version);
        m.rpush(key, ...differences.filter((d) => d.candidateVersion === version).map((d) => JSON.stringify(d))).ltrim(
          key,
          -SHADOW_DIFFERENCES_KEPT,
          -1,
        );
      }
      await m.exec();
    });
  }
  listShadowDifferences(candidateVersion: string): Promise<ShadowDifference[]> {
    return this.#run('listShadowDifferences', async () =>
      (await this.#cmd.lrange(this.#k('shadow', 'diff', candidateVersion), 0, -1)).map(
        (j) => JSON.parse(j) as ShadowDifference,
      ),
    );
  }

  // ---- control

  publishControl(message: ControlMessage): Promise<void> {
    return this.#run('publishControl', async () => {
      await this.#cmd.publish(this.#k('control'), JSON.stringify(message));
    });
  }

  onControl(handler: (message: ControlMessage) => void): Unsubscribe {
    this.#handlers.add(handler);
    return () => this.#handlers.delete(handler);
  }

  async ping(): Promise<boolean> {
    if (this.#closed) return false;
    try {
      return (await this.#cmd.ping()) === 'PONG';
    } catch {
      return false;
    }
  }

  async flush(): Promise<void> {
    await Promise.allSettled([...this.#inflight]);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#timer) clearInterval(this.#timer);
    await this.flush();
    this.#closed = true;
    this.#handlers.clear();
    await Promise.allSettled([this.#cmd.quit(), this.#sub.quit()]);
    this.#cmd.disconnect();
    this.#sub.disconnect();
  }
}
