// store/journal.ts, the one owner of the durable queue files (the store outbox, the webhook queue):
// rows round-trip through a real file, a line cut short by a crash is skipped, a rewrite replaces the
// file atomically and later rows land in the new file, and nothing is created before the first write.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Journal } from '../../server/store/journal.ts';

test('journal: append, replay past a torn line, atomic rewrite, bytes, lazy creation, remove', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'msfu-journal-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'sub', 'q.jsonl');
  const j = new Journal(path, { syncMs: 20 });
  assert.equal(existsSync(path), false, 'nothing written, no file');
  assert.deepEqual(Journal.read(path), []);
  j.append({ o: 'e', id: 'a' });
  j.append({ o: 'e', id: 'b', body: 'line\nbreak' });
  assert.equal(j.bytes, statSync(path).size);
  // a crash mid-write leaves a partial last line: replay skips it, keeps the rest
  appendFileSync(path, '{"o":"e","id":"c"');
  assert.deepEqual(Journal.read(path), [
    { o: 'e', id: 'a' },
    { o: 'e', id: 'b', body: 'line\nbreak' },
  ]);
  j.rewrite([{ o: 's', seqs: { s1: 2 } }]);
  assert.equal(existsSync(`${path}.tmp`), false);
  j.append({ o: 'a', id: 'x', ep: 'e1' });
  assert.deepEqual(
    Journal.read(path),
    [
      { o: 's', seqs: { s1: 2 } },
      { o: 'a', id: 'x', ep: 'e1' },
    ],
    'rows after a rewrite go to the new file',
  );
  assert.equal(j.bytes, readFileSync(path).length);
  j.close();
  assert.throws(() => j.append({}), /closed/);
  const again = new Journal(path);
  assert.equal(again.bytes, statSync(path).size, 'a journal opened on an existing file counts its bytes');
  again.append({ o: 'd', id: 'x', ep: 'e2' });
  assert.equal(Journal.read(path).length, 3);
  again.remove();
  assert.equal(existsSync(path), false);
  again.remove();
});
