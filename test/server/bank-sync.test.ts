// Known-content bank edits are the cluster's (issue 13 item 4): a hash or a protected recording added
// through one node's API matches on another node within a heartbeat, a removal reaches it too, a node
// started later (a restart) has every edit before it serves, and with the store away an edit is
// refused (503) and changes nothing. A recording travels as its fingerprint, not its audio.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildServer } from '../../server/app.ts';
import { loadConfig } from '../../server/config.ts';
import { MemoryStore } from '../../server/store/memory.ts';
import { protectedAudio, wav } from '../../loadtest/media/scenes.ts';
import { decodeAudioFile } from '../../models/audio/decode.ts';
import { FakeSfu } from '../sfu/fake.ts';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const config = (nodeId: string) =>
  loadConfig({
    env: { INFERENCE_BACKEND: 'none', OCR: 'false', VAD: 'false' },
    overrides: { port: 0, host: '127.0.0.1', logLevel: 'silent', authSecret: 'b'.repeat(40), nodeId, heartbeatMs: 100 },
  });

const H1 = 'f0'.repeat(32);
const H2 = '0123456789abcdef'.repeat(4);

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check() && Date.now() < end) await sleep(50);
  assert.ok(check(), `within ${ms} ms: ${what}`);
}

test('a hash added or removed through one node reaches the others; a later node starts with every edit; no store, no edit', async () => {
  const store = new MemoryStore();
  await using one = await buildServer(config('n1'), { sfu: new FakeSfu(), store });
  await using two = await buildServer(config('n2'), { sfu: new FakeSfu(), store });
  const admin = { authorization: `Bearer ${await one.auth.sign({ role: 'admin', sub: 'ops' })}` };
  const bankOf = (s: typeof one, name: string) => s.moderation!.hashBanks.get(name);

  const r = await one.app.inject({
    method: 'POST',
    url: '/v1/banks/known_bad/hashes',
    headers: admin,
    payload: { hashes: [{ hash: H1, id: 'case-1' }, { hash: H2 }] },
  });
  assert.equal(r.statusCode, 201, r.body);
  assert.equal(bankOf(one, 'known_bad')?.size, 2, 'applied on the node that took the request at once');
  await until(
    'node 2 has both entries',
    () => bankOf(two, 'known_bad')?.get('case-1') !== undefined && bankOf(two, 'known_bad')?.get(H2) !== undefined,
  );

  const del = await two.app.inject({ method: 'DELETE', url: '/v1/banks/known_bad/hashes/case-1', headers: admin });
  assert.equal(del.statusCode, 204, del.body);
  await until('the removal made on node 2 reaches node 1', () => bankOf(one, 'known_bad')?.get('case-1') === undefined);
  assert.equal(bankOf(one, 'known_bad')?.size, 1);

  // a node that starts now (a restart) has every edit before it serves
  {
    await using three = await buildServer(config('n3'), { sfu: new FakeSfu(), store });
    assert.deepEqual(
      [...bankOf(three, 'known_bad')!.entries()].map((e) => e.id),
      [H2],
      'the edits so far, in order',
    );
  }

  // the store refuses: 503, nothing changed anywhere
  const append = store.appendBankEdit.bind(store);
  store.appendBankEdit = () => Promise.reject(new Error('store away'));
  try {
    const refused = await one.app.inject({
      method: 'POST',
      url: '/v1/banks/known_bad/hashes',
      headers: admin,
      payload: { hash: 'ab'.repeat(32), id: 'case-2' },
    });
    assert.equal(refused.statusCode, 503, refused.body);
    assert.equal(refused.json().code, 'SRV_ERR_STORE_UNAVAILABLE');
    assert.equal(bankOf(one, 'known_bad')?.get('case-2'), undefined, 'nothing applied');
  } finally {
    store.appendBankEdit = append;
  }
});

test('a protected recording registered on one node matches on another; its removal reaches it too', async () => {
  const store = new MemoryStore();
  await using one = await buildServer(config('n1'), { sfu: new FakeSfu(), store });
  await using two = await buildServer(config('n2'), { sfu: new FakeSfu(), store });
  const admin = { authorization: `Bearer ${await one.auth.sign({ role: 'admin', sub: 'ops' })}` };
  const bank = one.moderation!.audioBank.name;
  const body = wav(protectedAudio(8));
  const r = await one.app.inject({
    method: 'POST',
    url: `/v1/audio-banks/${bank}/recordings?name=melody`,
    headers: { ...admin, 'content-type': 'audio/wav' },
    payload: body,
  });
  assert.equal(r.statusCode, 201, r.body);
  const registered = r.json() as { landmarkCount: number };
  await until('node 2 has the recording', () => two.moderation!.audioBank.list().some((x) => x.id === 'melody'));
  assert.equal(
    two.moderation!.audioBank.list().find((x) => x.id === 'melody')?.landmarkCount,
    registered.landmarkCount,
    'the same fingerprint',
  );
  // an excerpt of the melody, as the samplers hand it (16 kHz mono), names it on node 2
  const dir = await mkdtemp(join(tmpdir(), 'bank-sync-'));
  try {
    await writeFile(join(dir, 'x.wav'), wav(protectedAudio(8)));
    const pcm = await decodeAudioFile(join(dir, 'x.wav'), two.moderation!.audioBank.sampleRate);
    const excerpt = pcm.subarray(2 * 16000, 6 * 16000);
    assert.ok(
      two.moderation!.audioBank.match(excerpt).some((m) => m.entryId === 'melody'),
      'node 2 matches the excerpt',
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const del = await two.app.inject({
    method: 'DELETE',
    url: `/v1/audio-banks/${bank}/recordings/melody`,
    headers: admin,
  });
  assert.equal(del.statusCode, 204, del.body);
  await until('the removal reaches node 1', () => !one.moderation!.audioBank.list().some((x) => x.id === 'melody'));
});
