import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HashBank, HashBankSet } from '../../models/hashbank/bank.ts';
import { hammingDistance, pdqToHex } from '../../models/pdq/pdq.ts';

// Deterministic PRNG so a failure can be replayed.
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomHash(r: () => number): Uint8Array {
  const h = new Uint8Array(32);
  for (let i = 0; i < 32; i++) h[i] = Math.floor(r() * 256);
  return h;
}

function flipBits(h: Uint8Array, n: number, r: () => number): Uint8Array {
  const out = h.slice();
  const done = new Set<number>();
  while (done.size < n) {
    const b = Math.floor(r() * 256);
    if (done.has(b)) continue;
    done.add(b);
    out[b >> 3] ^= 1 << (b & 7);
  }
  return out;
}

test('bank text format round-trips entries with category, source, id and metadata', async () => {
  const r = rng(1);
  const bank = new HashBank({ name: 'known_bad' });
  bank.add({
    hash: randomHash(r),
    category: 'terror',
    source: 'GIFCT\tbatch 7',
    id: 'e1',
    meta: { note: 'line1\nline2' },
  });
  bank.add({ hash: randomHash(r), category: 'csam', source: 'NCMEC' });
  bank.add({ hash: randomHash(r) });
  const text = bank.serialize();
  const back = HashBank.parse(text, { name: 'known_bad' });
  assert.equal(back.size, 3);
  for (const e of bank.entries()) {
    const b = back.get(e.id);
    assert.ok(b, e.id);
    assert.deepEqual({ ...b, hash: pdqToHex(b.hash) }, { ...e, hash: pdqToHex(e.hash) });
  }
  assert.equal(back.serialize(), text);

  const dir = mkdtempSync(join(tmpdir(), 'bank-'));
  try {
    await bank.save(join(dir, 'b.txt'));
    const loaded = await HashBank.load(join(dir, 'b.txt'), { name: 'known_bad' });
    assert.equal(loaded.serialize(), text);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bank parses bare hashes, key=value metadata and reports bad lines', () => {
  const hex = 'f'.repeat(64);
  const hex2 = '0'.repeat(64);
  const b = HashBank.parse(`# list\n${hex}\n\n${hex2}\tsource=tx\tcategory=terror\n`, {
    name: 'x',
    defaultCategory: 'known_bad_match',
  });
  assert.equal(b.get(hex)?.category, 'known_bad_match');
  assert.equal(b.get(hex2)?.category, 'terror');
  assert.equal(b.get(hex2)?.source, 'tx');
  assert.throws(() => HashBank.parse(`${hex}\nnot-a-hash\n`, { name: 'x' }), /line 2/);
});

test('match returns ContentMatch within the distance; add/remove at run time', () => {
  const r = rng(2);
  const bank = new HashBank({ name: 'known_bad', defaultCategory: 'known_bad_match', defaultSource: 'test' });
  const target = randomHash(r);
  for (let i = 0; i < 2000; i++) bank.add({ hash: randomHash(r) });
  bank.add({ hash: target, id: 'target', category: 'terror' });
  bank.reindex();
  const near = flipBits(target, 20, r);
  const m = bank.match(near);
  assert.equal(m.length, 1);
  assert.deepEqual(m[0], {
    category: 'terror',
    kind: 'pdq',
    bank: 'known_bad',
    entryId: 'target',
    distance: 20,
    confidence: 1 - 20 / 64,
    source: 'test',
  });
  assert.equal(bank.match(flipBits(target, 40, r)).length, 0);
  assert.equal(bank.match(flipBits(target, 40, r), 45).length, 1);
  assert.ok(bank.remove('target'));
  assert.equal(bank.match(near).length, 0);
  bank.add({ hash: target, id: 'again' });
  assert.equal(bank.match(near)[0]?.entryId, 'again');
  // heavy churn triggers compaction; the bank still answers correctly
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 2500; i++) bank.add({ hash: randomHash(r), id: `churn${i}` });
    for (let i = 0; i < 2500; i++) bank.remove(`churn${i}`);
  }
  assert.equal(bank.match(near)[0]?.entryId, 'again');
  assert.equal(bank.size, 2001);
});

test('multi-index hashing returns exactly what a linear scan returns (randomised)', () => {
  const r = rng(3);
  const bank = new HashBank({ name: 'b' });
  const stored: Uint8Array[] = [];
  for (let i = 0; i < 20000; i++) {
    // clusters: many hashes near a few centres, so answers have several hits at varied distances
    const h =
      i % 4 === 0 && stored.length > 0
        ? flipBits(stored[Math.floor(r() * stored.length)], Math.floor(r() * 48), r)
        : randomHash(r);
    stored.push(h);
    bank.add({ hash: h, id: `e${i}` });
  }
  bank.reindex();
  // pending (unindexed) additions and removals are part of the answer too
  for (let i = 0; i < 500; i++) bank.add({ hash: flipBits(stored[i], 10, r), id: `late${i}` });
  for (let i = 0; i < 300; i++) bank.remove(`e${Math.floor(r() * 20000)}`);
  let nonEmpty = 0;
  for (let q = 0; q < 300; q++) {
    const query =
      q % 3 === 0 ? randomHash(r) : flipBits(stored[Math.floor(r() * stored.length)], Math.floor(r() * 40), r);
    for (const dist of [31, 15, 47]) {
      const a = bank.match(query, dist);
      const b = bank.matchLinear(query, dist);
      assert.deepEqual(a, b, `query ${q} distance ${dist}`);
      if (a.length > 0) nonEmpty++;
      for (const m of a)
        assert.ok((m.distance ?? 999) <= dist && hammingDistance(query, bank.get(m.entryId)!.hash) === m.distance);
    }
  }
  assert.ok(nonEmpty > 200, `only ${nonEmpty} non-empty answers: the comparison would prove little`);
  // compaction renumbers slots without changing any answer
  const probe = Array.from({ length: 50 }, () => flipBits(stored[Math.floor(r() * stored.length)], 12, r));
  const before = probe.map((q) => bank.match(q));
  bank.compact();
  assert.deepEqual(
    probe.map((q) => bank.match(q)).map((a) => a.map((m) => m.entryId).sort()),
    before.map((a) => a.map((m) => m.entryId).sort()),
  );
  assert.deepEqual(
    probe.map((q) => bank.match(q)),
    probe.map((q) => bank.matchLinear(q)),
  );
});

test('a bank set matches several banks and keeps the best of dihedral variants', () => {
  const r = rng(4);
  const set = new HashBankSet();
  const h = randomHash(r);
  set.bank('known_bad', { defaultCategory: 'terror' }).add({ hash: h, id: 'a' });
  set.bank('other').add({ hash: flipBits(h, 5, r), id: 'b' });
  const m = set.match([flipBits(h, 30, r), h]);
  assert.deepEqual(
    m.map((x) => [x.bank, x.entryId, x.distance]),
    [
      ['known_bad', 'a', 0],
      ['other', 'b', 5],
    ],
  );
  assert.deepEqual(set.names(), ['known_bad', 'other']);
});
