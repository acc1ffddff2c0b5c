// Multi-index hashing (Norouzi, Punjani & Fleet, "Fast search in Hamming space with multi-index
// hashing", CVPR 2012) for 256-bit hashes. The hash is cut into 16 disjoint 16-bit substrings; if two
// hashes are within distance r, then by pigeonhole at least one substring is within floor(r / 16) of the
// query's. Each substring has a table (dense counting-sort buckets over the 65,536 values), so a query
// probes every key within that small radius in each table and verifies the candidates with a full
// Hamming distance. Additions go to a pending tail that is scanned linearly until the index is rebuilt
// (rebuilds are O(n) and happen lazily when the tail grows); removals are tombstones until compact().

const HASH_BYTES = 32;
const TABLES = 16;
const KEY_BITS = 16;
const BUCKETS = 1 << KEY_BITS;

const POPCOUNT8 = (() => {
  const t = new Uint8Array(256);
  for (let i = 1; i < 256; i++) t[i] = (i & 1) + t[i >> 1];
  return t;
})();

export interface MihHit {
  slot: number;
  distance: number;
}

export class MultiIndexHashTable {
  #pool = new Uint8Array(HASH_BYTES * 1024);
  #alive = new Uint8Array(1024);
  #count = 0;
  #deadCount = 0;
  /** Slots [0, indexed) are in the tables; [indexed, count) are pending. */
  #indexed = 0;
  #starts: Uint32Array[] = [];
  #slotsByKey: Uint32Array[] = [];

  /** Slots in use (alive ones). */
  get size(): number {
    return this.#count - this.#deadCount;
  }

  /** Add a hash; returns its slot (stable until compact()). */
  add(hash: Uint8Array): number {
    if (hash.length !== HASH_BYTES) throw new RangeError('hash must be 32 bytes');
    if (this.#count === this.#alive.length) this.#grow();
    const slot = this.#count++;
    this.#pool.set(hash, slot * HASH_BYTES);
    this.#alive[slot] = 1;
    return slot;
  }

  remove(slot: number): void {
    if (slot < 0 || slot >= this.#count || !this.#alive[slot]) return;
    this.#alive[slot] = 0;
    this.#deadCount++;
  }

  /** Tombstoned slots waiting for compact(). */
  get dead(): number {
    return this.#deadCount;
  }

  /**
   * Drop removed slots and rebuild. Returns the new slot of every old one (-1 for removed), so that
   * callers holding slots can renumber them.
   */
  compact(): Int32Array {
    const remap = new Int32Array(this.#count).fill(-1);
    let n = 0;
    for (let s = 0; s < this.#count; s++) {
      if (!this.#alive[s]) continue;
      if (n !== s) this.#pool.copyWithin(n * HASH_BYTES, s * HASH_BYTES, (s + 1) * HASH_BYTES);
      remap[s] = n++;
    }
    this.#alive.fill(0);
    this.#alive.fill(1, 0, n);
    this.#count = n;
    this.#deadCount = 0;
    this.rebuild();
    return remap;
  }

  hashAt(slot: number): Uint8Array {
    return this.#pool.subarray(slot * HASH_BYTES, (slot + 1) * HASH_BYTES);
  }

  isAlive(slot: number): boolean {
    return slot >= 0 && slot < this.#count && this.#alive[slot] === 1;
  }

  /** Rebuild the tables over every slot now present. */
  rebuild(): void {
    const n = this.#count;
    this.#starts = [];
    this.#slotsByKey = [];
    for (let t = 0; t < TABLES; t++) {
      const starts = new Uint32Array(BUCKETS + 1);
      const hi = t * 2;
      for (let s = 0; s < n; s++) {
        const o = s * HASH_BYTES + hi;
        starts[((this.#pool[o] << 8) | this.#pool[o + 1]) + 1]++;
      }
      for (let k = 0; k < BUCKETS; k++) starts[k + 1] += starts[k];
      const fill = starts.slice(0, BUCKETS);
      const slots = new Uint32Array(n);
      for (let s = 0; s < n; s++) {
        const o = s * HASH_BYTES + hi;
        slots[fill[(this.#pool[o] << 8) | this.#pool[o + 1]]++] = s;
      }
      this.#starts.push(starts);
      this.#slotsByKey.push(slots);
    }
    this.#indexed = n;
  }

  /**
   * Every alive slot within maxDistance of the query. Each slot is reported once, ordered by distance.
   */
  search(query: Uint8Array, maxDistance: number): MihHit[] {
    if (query.length !== HASH_BYTES) throw new RangeError('hash must be 32 bytes');
    const pending = this.#count - this.#indexed;
    if (pending > 4096 && pending > this.#indexed / 8) this.rebuild();
    const hits: MihHit[] = [];
    const seen = new Set<number>();
    const radius = Math.floor(maxDistance / TABLES);
    if (this.#indexed > 0) {
      const probes = probeMasks(radius);
      for (let t = 0; t < TABLES; t++) {
        const key = (query[t * 2] << 8) | query[t * 2 + 1];
        const starts = this.#starts[t];
        const slots = this.#slotsByKey[t];
        for (const mask of probes) {
          const k = key ^ mask;
          for (let p = starts[k], end = starts[k + 1]; p < end; p++) {
            const s = slots[p];
            if (!this.#alive[s] || seen.has(s)) continue;
            seen.add(s);
            const d = this.#distanceAt(query, s);
            if (d <= maxDistance) hits.push({ slot: s, distance: d });
          }
        }
      }
    }
    for (let s = this.#indexed; s < this.#count; s++) {
      if (!this.#alive[s]) continue;
      const d = this.#distanceAt(query, s);
      if (d <= maxDistance) hits.push({ slot: s, distance: d });
    }
    hits.sort((a, b) => a.distance - b.distance || a.slot - b.slot);
    return hits;
  }

  /** Reference answer: compare against every alive slot. */
  linearSearch(query: Uint8Array, maxDistance: number): MihHit[] {
    const hits: MihHit[] = [];
    for (let s = 0; s < this.#count; s++) {
      if (!this.#alive[s]) continue;
      const d = this.#distanceAt(query, s);
      if (d <= maxDistance) hits.push({ slot: s, distance: d });
    }
    hits.sort((a, b) => a.distance - b.distance || a.slot - b.slot);
    return hits;
  }

  #distanceAt(q: Uint8Array, slot: number): number {
    const pool = this.#pool;
    let d = 0;
    for (let i = 0, o = slot * HASH_BYTES; i < HASH_BYTES; i++, o++) d += POPCOUNT8[q[i] ^ pool[o]];
    return d;
  }

  #grow(): void {
    const cap = this.#alive.length * 2;
    const pool = new Uint8Array(cap * HASH_BYTES);
    pool.set(this.#pool);
    const alive = new Uint8Array(cap);
    alive.set(this.#alive);
    this.#pool = pool;
    this.#alive = alive;
  }
}

// All 16-bit XOR masks of popcount <= r (r is small: floor(31/16) = 1 gives 17 masks).
const maskCache = new Map<number, number[]>();
function probeMasks(r: number): number[] {
  const cached = maskCache.get(r);
  if (cached) return cached;
  const masks: number[] = [];
  for (let m = 0; m < BUCKETS; m++) if (POPCOUNT8[m & 0xff] + POPCOUNT8[m >> 8] <= r) masks.push(m);
  masks.sort((a, b) => POPCOUNT8[a & 0xff] + POPCOUNT8[a >> 8] - (POPCOUNT8[b & 0xff] + POPCOUNT8[b >> 8]));
  maskCache.set(r, masks);
  return masks;
}
