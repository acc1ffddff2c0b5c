// Issue 19 item 1: signed webhooks, retried from a durable queue, in order per stream. A real HTTP
// receiver on 127.0.0.1 is stopped while a stream is gated, killed and appealed (real werift SFU,
// real WHIP publisher and WHEP viewers, the admin API), then started again: it gets every event once
// back, in order per stream, each signed with both secrets of a rotation. Then the server itself is
// restarted with events still queued: the new process delivers them from the queue file.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server as HttpServer } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildServer, type Server } from '../../server/app.ts';
import { loadConfig } from '../../server/config.ts';
import { verifyWebhook, type WebhookPayload } from '../../server/webhooks.ts';
import { LOAD_TEST_ENV } from '../../loadtest/server.ts';
import { WhipPublisher, syntheticClip } from '../../loadtest/clients/whip-publisher.ts';
import { WhepViewer } from '../../loadtest/clients/whep-viewer.ts';
import { freePort } from './helpers.ts';

const OLD_SECRET = 'whsec_old_0123456789abcdef';
const NEW_SECRET = 'whsec_new_0123456789abcdef';

interface Receipt {
  payload: WebhookPayload;
  body: string;
  signature: string;
  receivedAt: number;
}

/** A webhook receiver that can be stopped and started again on the same port. */
class Receiver {
  readonly receipts: Receipt[] = [];
  #server: HttpServer | undefined;
  constructor(readonly port: number) {}
  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }
  async start(): Promise<void> {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        this.receipts.push({
          payload: JSON.parse(body) as WebhookPayload,
          body,
          signature: String(req.headers['webhook-signature']),
          receivedAt: Date.now(),
        });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => this.#server!.listen(this.port, '127.0.0.1', resolve));
  }
  async stop(): Promise<void> {
    const s = this.#server;
    this.#server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
  /** First receipt of each id, in arrival order. */
  unique(): Receipt[] {
    const seen = new Set<string>();
    return this.receipts.filter((r) => (seen.has(r.payload.id) ? false : (seen.add(r.payload.id), true)));
  }
}

async function until(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function pct(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]! : NaN;
}

describe('webhooks: signed, retried from a durable queue, in order per stream', { timeout: 180_000 }, () => {
  let dir: string;
  let receiver: Receiver;
  let server: Server | undefined;
  const start = async (): Promise<Server> => {
    const config = loadConfig({
      argv: [],
      env: {
        ...LOAD_TEST_ENV,
        PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'error',
        SFU_ENGINE: 'werift',
        MODERATION: 'false',
        AUTH_SECRET: 'webhook-test-secret-0123456789-0123456789',
        WEBHOOKS: JSON.stringify([{ id: 'platform', url: receiver.url, secrets: [NEW_SECRET, OLD_SECRET] }]),
        WEBHOOK_DIR: dir,
        WEBHOOK_BACKOFF_MIN_MS: '100',
        WEBHOOK_BACKOFF_MAX_MS: '800',
        WEBHOOK_TIMEOUT_MS: '1000',
      },
    });
    const s = await buildServer(config);
    await s.listen();
    return s;
  };
  const api = async (path: string, token: string, init: { method?: string; body?: unknown } = {}): Promise<Response> =>
    fetch(`${server!.url}${path}`, {
      method: init.method ?? 'GET',
      headers: {
        authorization: `Bearer ${token}`,
        ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'msfu-webhooks-'));
    receiver = new Receiver(await freePort());
    await receiver.start();
    server = await start();
  });
  after(async () => {
    await server?.close();
    await receiver.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('a receiver down during a gate, a kill and an appeal gets every event once back, in order, signed with both secrets', async () => {
    const s = server!;
    const admin = await s.auth.sign({ role: 'admin', sub: 'ops-admin' }, '1h');
    const streamId = 'wh-live';
    const publishToken = await s.auth.sign({ role: 'publisher', sub: 'streamer-1', streamId }, '1h');
    const clip = await syntheticClip({ codec: 'VP8', seconds: 1 });
    const pub = await WhipPublisher.connect({
      url: `${s.url}/whip/${streamId}`,
      token: publishToken,
      ...clip,
      connectTimeoutMs: 20_000,
    });
    pub.start();
    const viewers: WhepViewer[] = [];
    try {
      for (const n of [1, 2]) {
        const token = await s.auth.sign({ role: 'viewer', sub: `viewer-${n}`, streamId, jurisdiction: 'SA' }, '1h');
        viewers.push(await WhepViewer.connect({ url: `${s.url}/whep/${streamId}`, token, connectTimeoutMs: 20_000 }));
      }
      await until(
        () => receiver.unique().some((r) => r.payload.type === 'stream.started' && r.payload.streamId === streamId),
        10_000,
        'stream.started at the receiver',
      );
      const liveLatency = receiver.unique().map((r) => r.receivedAt - r.payload.at);

      // the receiver goes away; the platform acts meanwhile
      await receiver.stop();
      const downAt = Date.now();
      const gate = await api(`/v1/streams/${streamId}/gate`, admin, {
        method: 'POST',
        body: { jurisdiction: 'SA', video: 'blank', reason: 'regional rule (test)' },
      });
      assert.equal(gate.status, 200, await gate.text());
      await new Promise((r) => setTimeout(r, 800)); // the viewer.filtered aggregation window passes
      const kill = await api(`/v1/streams/${streamId}/kill`, admin, {
        method: 'POST',
        body: { reason: 'webhook test kill' },
      });
      assert.equal(kill.status, 202, await kill.clone().text());
      const statementId = ((await kill.json()) as { statement: { id: string } }).statement.id;
      await until(
        () => !s.sfu.getStream(streamId) || s.sfu.getStream(streamId)!.closed,
        10_000,
        'the killed stream gone from the SFU',
      );
      const appeal = await api(`/v1/appeals/${statementId}`, publishToken, {
        method: 'POST',
        body: { grounds: 'it was a test' },
      });
      assert.equal(appeal.status, 201, await appeal.clone().text());
      await until(
        () => (s.webhooks.get('platform').failedAttempts ?? 0) >= 3,
        15_000,
        'three failed attempts while the receiver is down',
      );
      const whileDown = s.webhooks.get('platform');
      assert.ok(whileDown.pending >= 5, `events queued while the receiver is down (${whileDown.pending})`);
      assert.ok(whileDown.lastError, 'the last error is shown');
      assert.ok(
        whileDown.recent.some((a) => !a.ok),
        'failed attempts are listed',
      );
      const listed = (await (await api('/v1/webhooks', admin)).json()) as {
        endpoints: { id: string; pending: number; failedAttempts: number }[];
      };
      assert.equal(listed.endpoints[0]?.id, 'platform');
      assert.ok(listed.endpoints[0]!.failedAttempts >= 3);
      const metrics = await (await fetch(`${s.url}/metrics`)).text();
      assert.match(metrics, /msfu_webhook_attempts_total\{endpoint="platform",outcome="failed"\} [1-9]/);
      assert.match(metrics, /msfu_webhook_pending\{endpoint="platform"\} [1-9]/);

      // back: everything arrives, in order
      await receiver.start();
      const upAt = Date.now();
      await until(
        () => s.webhooks.get('platform').pending === 0,
        15_000,
        'the queue drained once the receiver is back',
      );
      const events = receiver.unique().filter((r) => r.payload.streamId === streamId);
      const types = events.map((r) => r.payload.type);
      for (const t of [
        'stream.started',
        'viewer.filtered',
        'stream.killed',
        'statement.created',
        'stream.ended',
        'appeal.created',
      ] as const)
        assert.ok(types.includes(t), `${t} delivered (${types.join(', ')})`);
      // per stream: seq 1, 2, 3 ... in arrival order, no gap, nothing twice
      assert.deepEqual(
        events.map((r) => r.payload.seq),
        events.map((_, i) => i + 1),
        `seqs in order: ${events.map((r) => `${r.payload.seq}:${r.payload.type}`).join(' ')}`,
      );
      assert.ok(types.indexOf('stream.killed') < types.indexOf('stream.ended'), 'killed before ended');
      assert.ok(
        types.indexOf('statement.created') < types.indexOf('appeal.created'),
        'the statement before its appeal',
      );
      // aggregated per jurisdiction: the two SA viewers make one event
      const filtered = events.filter((r) => r.payload.type === 'viewer.filtered');
      assert.equal(filtered.length, 1, 'one viewer.filtered for the jurisdiction, not one per viewer');
      assert.deepEqual(
        {
          j: filtered[0]!.payload.data.jurisdiction,
          v: filtered[0]!.payload.data.video,
          n: filtered[0]!.payload.data.viewers,
        },
        { j: 'SA', v: 'blank', n: 2 },
      );
      // signed: either secret of the rotation verifies every delivery; a wrong one does not
      for (const r of receiver.receipts) {
        assert.ok(verifyWebhook(r.body, r.signature, NEW_SECRET), 'new secret verifies');
        assert.ok(verifyWebhook(r.body, r.signature, OLD_SECRET), 'previous secret verifies');
        assert.ok(!verifyWebhook(r.body, r.signature, 'whsec_wrong_0123456789abcdef'), 'a wrong secret does not');
      }
      const backLatency = events.filter((r) => r.receivedAt >= upAt).map((r) => r.receivedAt - upAt);
      const stats = s.webhooks.get('platform');
      // decision -> receipt with the receiver up: 40 manual kills (statement.created carries the decision time)
      const firstBench = receiver.receipts.length;
      for (let i = 0; i < 40; i++) {
        const r = await api(`/v1/streams/wh-bench-${i}/kill`, admin, {
          method: 'POST',
          body: { reason: 'latency figure' },
        });
        assert.equal(r.status, 202);
      }
      await until(
        () => receiver.receipts.slice(firstBench).filter((r) => r.payload.type === 'statement.created').length >= 40,
        15_000,
        '40 statement.created',
      );
      const decisionToReceipt = receiver.receipts
        .slice(firstBench)
        .filter((r) => r.payload.type === 'statement.created')
        .map((r) => r.receivedAt - r.payload.at);
      console.log(
        '[webhooks] figures',
        JSON.stringify({
          streamStartedToReceiptMs: liveLatency[0],
          decisionToReceiptMs: {
            n: decisionToReceipt.length,
            p50: pct(decisionToReceipt, 0.5),
            p99: pct(decisionToReceipt, 0.99),
            max: Math.max(...decisionToReceipt),
          },
          outageMs: upAt - downAt,
          failedAttemptsDuringOutage: stats.failedAttempts,
          retriesAfterOutage: stats.recent.filter((a) => a.at >= upAt && !a.ok).length,
          deliveredAfterOutage: backLatency.length,
          backToLastReceiptMs: Math.max(...backLatency),
          duplicates: receiver.receipts.length - receiver.unique().length,
        }),
      );
    } finally {
      for (const v of viewers) await v.close().catch(() => undefined);
      await pub.stop().catch(() => undefined);
    }
  });

  test('events queued when the server stops are delivered by the next process from the queue file, seq continuing', async () => {
    await receiver.stop();
    const before = receiver.unique().filter((r) => r.payload.streamId === 'wh-live').length;
    // an appeal decision while the receiver is down: queued on disk
    const s = server!;
    const reviewer = await s.auth.sign({ role: 'reviewer', sub: 'rev-1' }, '1h');
    const claim = await api('/v1/review/claim', reviewer, { method: 'POST', body: {} });
    assert.equal(claim.status, 200, await claim.clone().text());
    const item = (await claim.json()) as { id: string };
    const resolved = await api(`/v1/review/${item.id}/resolve`, reviewer, {
      method: 'POST',
      body: { outcome: 'overturn', note: 'test' },
    });
    assert.equal(resolved.status, 200, await resolved.text());
    await until(() => s.webhooks.get('platform').pending >= 1, 5000, 'the decision queued');
    await s.close();
    server = undefined;

    await receiver.start();
    server = await start();
    await until(
      () => receiver.unique().some((r) => r.payload.type === 'appeal.decided'),
      15_000,
      'appeal.decided delivered by the restarted server',
    );
    const events = receiver.unique().filter((r) => r.payload.streamId === 'wh-live');
    assert.deepEqual(
      events.map((r) => r.payload.seq),
      events.map((_, i) => i + 1),
      `seq continues across the restart: ${events.map((r) => `${r.payload.seq}:${r.payload.type}`).join(' ')}`,
    );
    assert.ok(events.length > before);
    const decided = events.find((r) => r.payload.type === 'appeal.decided')!;
    assert.equal(decided.payload.data.outcome, 'overturn');
  });
});
