// Fixture for outbox.test.ts: a process that takes records into its outbox while Redis is away and
// waits to be SIGKILLed. argv: outboxDir redisUrl actions.
import { RedisStore } from '../../server/store/redis.ts';
import { DurableStore } from '../../server/store/durable.ts';
import { reviewItem } from './helpers.ts';

const [dir, url, n] = process.argv.slice(2) as [string, string, string];
const inner = await RedisStore.connect({ url, prefix: 'adopt:', auditKey: 'k'.repeat(48), commandTimeoutMs: 300 });
const store = await DurableStore.open({ inner, dir, nodeId: 'writer', storeId: 'test', headCheckMs: 0 });
console.log('connected');
while (await inner.ping()) await new Promise((r) => setTimeout(r, 50));
for (let i = 0; i < Number(n); i++) {
  const sid = `sor_of_${i}`;
  const ignore = (p: Promise<unknown>): void => void p.catch(() => undefined);
  ignore(
    store.putStatement({
      id: sid,
      streamId: `s${i}`,
      issuedAt: Date.now(),
      restriction: { action: 'kill_stream', scope: 'stream', jurisdictions: [], duration: 'd' },
      facts: { categories: [], matches: [], text: [], sampleSeqs: [], timeRange: { from: 0, to: 0 } },
      basis: { kind: 'own_initiative' },
      automated: { detection: true, decision: true },
      ground: { type: 'terms_of_service', clause: 'c', policyVersion: 'v', explanation: 'e' },
      redress: { appealUrl: 'u', options: [] },
    }),
  );
  ignore(
    store.putDecision({
      id: `dec_of_${i}`,
      streamId: `s${i}`,
      at: Date.now(),
      source: 'automated',
      bucket: 'red',
      action: 'kill_stream',
      jurisdictions: [],
      statementId: sid,
    }),
  );
  ignore(store.setBlock({ streamId: `s${i}`, reason: 'killed', statementId: sid, at: Date.now(), by: 'enforcer' }));
  ignore(store.appendAudit({ type: 'statement', i }));
  ignore(store.appendAudit({ type: 'decision', i }));
  ignore(store.enqueueReview(reviewItem({ id: `rev_of_${i}`, streamId: `s${i}` })));
}
console.log(`written ${store.outboxStats().depth}`);
setInterval(() => undefined, 1000);
