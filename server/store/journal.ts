// The one owner of this node's durable queue files: an append-only JSON-lines journal. The store
// outbox (outbox.ts) and the webhook queue (webhooks.ts) each had a copy of this file code (append
// with write(2), a replay that skips the line a crash cut short, compaction through a temporary
// file and a rename); both now keep their rows here. The queues on top stay two because they
// deliver differently: the outbox hands every record, in order, to one consumer (the store) and
// retries its head until the store has it, so a record that cannot wait must not queue behind
// anything slow; the webhook queue fans each event out to several receivers, each with its own head,
// backoff and age limit, so a receiver that is down for a day holds back nothing but itself.
//
// A row is in the kernel's page cache when append() returns (a SIGKILLed process loses nothing);
// `syncMs` fsyncs at most that often after writes (a host crash loses at most that much), and a
// rewrite is fsynced before it replaces the file.
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';

export interface JournalOptions {
  /** fsync after writes at most this often (ms); 0 = never (the kernel flushes). Default 0. */
  syncMs?: number;
}

export class Journal {
  /** The file. Created (with its folder) by the first append or rewrite. */
  readonly path: string;
  #fd: number | undefined;
  #bytes: number;
  #dirty = false;
  readonly #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(path: string, options: JournalOptions = {}) {
    this.path = path;
    this.#bytes = existsSync(path) ? statSync(path).size : 0;
    const syncMs = options.syncMs ?? 0;
    if (syncMs > 0) {
      this.#timer = setInterval(() => this.sync(), syncMs);
      this.#timer.unref();
    }
  }

  /** The rows of a journal file, in order; a line cut short by a crash (never acknowledged to anyone) is skipped. [] when there is no file. */
  static read<T>(path: string): T[] {
    if (!existsSync(path)) return [];
    const rows: T[] = [];
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      if (!line) continue;
      try {
        rows.push(JSON.parse(line) as T);
      } catch {
        continue;
      }
    }
    return rows;
  }

  /** Bytes in the file: what it held when opened, plus what was appended or rewritten since. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Appends one row; it is in the file (the kernel's cache) when this returns. */
  append(row: unknown): void {
    if (this.#closed) throw new Error(`journal ${this.path} is closed`);
    const line = `${JSON.stringify(row)}\n`;
    if (this.#fd === undefined) {
      mkdirSync(dirname(this.path), { recursive: true });
      this.#fd = openSync(this.path, 'a');
    }
    writeSync(this.#fd, line);
    this.#bytes += Buffer.byteLength(line);
    this.#dirty = true;
  }

  /** Replaces the file with `rows` atomically: a temporary file, fsynced, renamed over it. */
  rewrite(rows: readonly unknown[]): void {
    if (this.#closed) throw new Error(`journal ${this.path} is closed`);
    mkdirSync(dirname(this.path), { recursive: true });
    const text = rows.map((r) => `${JSON.stringify(r)}\n`).join('');
    const tmp = `${this.path}.tmp`;
    writeFileSync(tmp, text);
    const fd = openSync(tmp, 'a');
    fsyncSync(fd);
    renameSync(tmp, this.path);
    const old = this.#fd;
    this.#fd = fd;
    if (old !== undefined) closeSync(old);
    this.#bytes = Buffer.byteLength(text);
    this.#dirty = false;
  }

  /** fsync now if anything was written since the last one. */
  sync(): void {
    if (!this.#dirty || this.#fd === undefined) return;
    this.#dirty = false;
    fsyncSync(this.#fd);
  }

  /** fsyncs and closes; the file stays. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    const fd = this.#fd;
    this.#fd = undefined;
    if (fd === undefined) return;
    if (this.#dirty) fsyncSync(fd);
    closeSync(fd);
  }

  /** Closes and deletes the file. */
  remove(): void {
    this.close();
    try {
      unlinkSync(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}
