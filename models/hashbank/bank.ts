// Named banks of known PDQ hashes (e.g. `known_bad`), the way hash-sharing programmes exchange them:
// a plain text file with one 64-digit hex hash per line and optional tab-separated metadata.
//
// File format (UTF-8):
//   # comment lines and blank lines are ignored
//   <hex>                                   -> category/source from the bank defaults, id = hex
//   <hex>\t<category>\t<source>\t<id>       -> any trailing fields may be left out
//   <hex>\tcategory=...\tsource=...\tid=... -> key=value fields, any order (other keys are kept in `meta`)
// Tabs, newlines and backslashes inside values are written as \t, \n and \\.

import { readFile, writeFile } from 'node:fs/promises';
import { ModelError } from '../errors.ts';
import type { Category, ContentMatch } from '../types.ts';
import { PDQ_MATCH_DISTANCE, pdqFromHex, pdqToHex, type PdqHash } from '../pdq/pdq.ts';
import { MultiIndexHashTable } from './mih.ts';

export interface HashBankEntry {
  /** Unique inside its bank. Default: the hash's hex. */
  id: string;
  hash: PdqHash;
  category: Category;
  /** Where the hash came from (programme, case id, ...). */
  source?: string;
  meta?: Record<string, string>;
}

export interface HashBankOptions {
  /** Bank name, reported as ContentMatch.bank. */
  name: string;
  /** Category of entries that name none. Default 'known_bad_match'. */
  defaultCategory: Category;
  /** Source of entries that name none. Default: none. */
  defaultSource?: string;
  /** Largest Hamming distance that counts as a match (0..255). Default 31. */
  maxDistance: number;
}

const DEFAULTS = Object.freeze({ defaultCategory: 'known_bad_match', maxDistance: PDQ_MATCH_DISTANCE });

function escapeField(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\r?\n/g, '\\n');
}

function unescapeField(v: string): string {
  return v.replace(/\\(\\|t|n)/g, (_, c: string) => (c === 't' ? '\t' : c === 'n' ? '\n' : '\\'));
}

/**
 * Confidence of a PDQ match from its distance: 1 at 0 bits, ~0.5 at the usual threshold of 31, 0 at 64+.
 */
export function pdqConfidence(distance: number): number {
  return Math.max(0, Math.min(1, 1 - distance / 64));
}

export class HashBank {
  readonly name: string;
  readonly defaultCategory: Category;
  readonly defaultSource: string | undefined;
  maxDistance: number;
  readonly #index = new MultiIndexHashTable();
  readonly #byId = new Map<string, { entry: HashBankEntry; slot: number }>();
  readonly #bySlot = new Map<number, HashBankEntry>();

  constructor(opts: Partial<HashBankOptions> & { name: string }) {
    this.name = opts.name;
    this.defaultCategory = opts.defaultCategory ?? DEFAULTS.defaultCategory;
    this.defaultSource = opts.defaultSource;
    this.maxDistance = opts.maxDistance ?? DEFAULTS.maxDistance;
  }

  get size(): number {
    return this.#byId.size;
  }

  /** Add (or replace, same id) an entry. Hash as hex or 32 bytes. */
  add(e: {
    hash: PdqHash | string;
    id?: string;
    category?: Category;
    source?: string;
    meta?: Record<string, string>;
  }): HashBankEntry {
    const hash = typeof e.hash === 'string' ? parseHash(e.hash) : checkHash(e.hash);
    const entry: HashBankEntry = {
      id: e.id ?? pdqToHex(hash),
      hash: hash.slice(),
      category: e.category ?? this.defaultCategory,
    };
    const source = e.source ?? this.defaultSource;
    if (source !== undefined) entry.source = source;
    if (e.meta && Object.keys(e.meta).length > 0) entry.meta = { ...e.meta };
    this.remove(entry.id);
    const slot = this.#index.add(entry.hash);
    this.#byId.set(entry.id, { entry, slot });
    this.#bySlot.set(slot, entry);
    return entry;
  }

  /** Remove by id; returns whether it was there. */
  remove(id: string): boolean {
    const found = this.#byId.get(id);
    if (!found) return false;
    this.#index.remove(found.slot);
    this.#bySlot.delete(found.slot);
    this.#byId.delete(id);
    // Churn (lists re-imported, entries retracted) would otherwise leave the index mostly tombstones.
    if (this.#index.dead > 4096 && this.#index.dead > this.#byId.size) this.compact();
    return true;
  }

  /** Reclaim the space of removed entries now. */
  compact(): void {
    const remap = this.#index.compact();
    const moved = [...this.#byId.values()];
    this.#bySlot.clear();
    for (const rec of moved) {
      rec.slot = remap[rec.slot];
      this.#bySlot.set(rec.slot, rec.entry);
    }
  }

  get(id: string): HashBankEntry | undefined {
    return this.#byId.get(id)?.entry;
  }

  entries(): IterableIterator<HashBankEntry> {
    return this.#bySlot.values();
  }

  /** Build the index now (otherwise it is rebuilt lazily when many additions are pending). */
  reindex(): void {
    this.#index.rebuild();
  }

  /** Entries within maxDistance (default: the bank's) of the hash, nearest first. */
  match(hash: PdqHash | string, maxDistance = this.maxDistance): ContentMatch[] {
    const q = typeof hash === 'string' ? parseHash(hash) : checkHash(hash);
    return this.#index.search(q, maxDistance).map((h) => this.#toMatch(h.slot, h.distance));
  }

  /** The same answer as match() by comparing against every entry (for tests and audits). */
  matchLinear(hash: PdqHash | string, maxDistance = this.maxDistance): ContentMatch[] {
    const q = typeof hash === 'string' ? parseHash(hash) : checkHash(hash);
    return this.#index.linearSearch(q, maxDistance).map((h) => this.#toMatch(h.slot, h.distance));
  }

  #toMatch(slot: number, distance: number): ContentMatch {
    const e = this.#bySlot.get(slot);
    if (!e) throw new ModelError('MOD_ERR_INFERENCE', `hash bank ${this.name}: slot ${slot} has no entry`);
    const m: ContentMatch = {
      category: e.category,
      kind: 'pdq',
      bank: this.name,
      entryId: e.id,
      distance,
      confidence: pdqConfidence(distance),
    };
    if (e.source !== undefined) m.source = e.source;
    return m;
  }

  /** The bank in the text format above (every field written, positional). */
  serialize(): string {
    const lines = [`# pdq hash bank: ${escapeField(this.name)}`, '# hash\tcategory\tsource\tid\t[key=value ...]'];
    for (const e of this.entries()) {
      const fields = [pdqToHex(e.hash), e.category, e.source ?? '', e.id];
      for (const [k, v] of Object.entries(e.meta ?? {})) fields.push(`${k}=${v}`);
      lines.push(fields.map(escapeField).join('\t'));
    }
    return lines.join('\n') + '\n';
  }

  /** Parse text in the format above into a new bank (errors name the line). */
  static parse(text: string, opts: Partial<HashBankOptions> & { name: string }): HashBank {
    const bank = new HashBank(opts);
    const lines = text.split(/\r?\n/);
    for (let n = 0; n < lines.length; n++) {
      const line = lines[n].trim();
      if (line === '' || line.startsWith('#')) continue;
      const fields = lines[n].replace(/\r$/, '').split('\t').map(unescapeField);
      const hex = fields[0].trim();
      let hash: PdqHash;
      try {
        hash = pdqFromHex(hex);
      } catch {
        throw new ModelError('MOD_ERR_CONFIG', `hash bank ${opts.name}: line ${n + 1}: not a 64-digit hex hash`);
      }
      const positional: string[] = [];
      const keyed: Record<string, string> = {};
      for (const f of fields.slice(1)) {
        const eq = f.indexOf('=');
        if (eq > 0 && /^[A-Za-z_][\w.-]*$/.test(f.slice(0, eq))) keyed[f.slice(0, eq)] = f.slice(eq + 1);
        else positional.push(f);
      }
      const category = keyed.category ?? (positional[0] || undefined);
      const source = keyed.source ?? (positional[1] || undefined);
      const id = keyed.id ?? (positional[2] || undefined);
      delete keyed.category;
      delete keyed.source;
      delete keyed.id;
      bank.add({ hash, id, category, source, meta: keyed });
    }
    bank.reindex();
    return bank;
  }

  static async load(path: string, opts: Partial<HashBankOptions> & { name: string }): Promise<HashBank> {
    return HashBank.parse(await readFile(path, 'utf8'), opts);
  }

  async save(path: string): Promise<void> {
    await writeFile(path, this.serialize(), 'utf8');
  }
}

/** Several named banks searched together. */
export class HashBankSet {
  readonly #banks = new Map<string, HashBank>();

  add(bank: HashBank): HashBank {
    this.#banks.set(bank.name, bank);
    return bank;
  }

  /** The named bank, created empty on first use. */
  bank(name: string, opts: Partial<Omit<HashBankOptions, 'name'>> = {}): HashBank {
    return this.#banks.get(name) ?? this.add(new HashBank({ ...opts, name }));
  }

  get(name: string): HashBank | undefined {
    return this.#banks.get(name);
  }

  delete(name: string): boolean {
    return this.#banks.delete(name);
  }

  names(): string[] {
    return [...this.#banks.keys()];
  }

  /** Matches in every bank; pass several hashes (e.g. dihedral variants) to keep each entry's best. */
  match(hashes: PdqHash | readonly PdqHash[]): ContentMatch[] {
    const list = hashes instanceof Uint8Array ? [hashes] : hashes;
    const best = new Map<string, ContentMatch>();
    for (const bank of this.#banks.values()) {
      for (const h of list) {
        for (const m of bank.match(h)) {
          const key = `${m.bank}\u0000${m.entryId}`;
          const prev = best.get(key);
          if (!prev || (m.distance ?? 256) < (prev.distance ?? 256)) best.set(key, m);
        }
      }
    }
    return [...best.values()].sort((a, b) => (a.distance ?? 0) - (b.distance ?? 0));
  }
}

function checkHash(h: PdqHash): PdqHash {
  if (!(h instanceof Uint8Array) || h.length !== 32)
    throw new ModelError('MOD_ERR_BAD_SHAPE', 'a PDQ hash is 32 bytes');
  return h;
}

function parseHash(hex: string): PdqHash {
  try {
    return pdqFromHex(hex);
  } catch {
    throw new ModelError('MOD_ERR_BAD_SHAPE', 'a PDQ hash is 64 hex digits');
  }
}
