// Statistics for the load test: order statistics over latency samples, a bounded reservoir so a long
// run keeps constant memory, RFC 3550 interarrival jitter, histogram bins for the report's plots and
// quantiles read back from Prometheus histograms.

export interface Summary {
  n: number;
  min: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/**
 * Quantile of an ascending array by linear interpolation between closest ranks (the "R-7" rule that
 * numpy and most spreadsheets use). NaN for an empty array.
 */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  if (q <= 0) return sorted[0]!;
  if (q >= 1) return sorted[n - 1]!;
  const pos = (n - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  return a + (b - a) * (pos - lo);
}

export function summarize(values: ArrayLike<number>): Summary {
  const sorted = Float64Array.from(values as ArrayLike<number>).sort();
  const n = sorted.length;
  if (n === 0) return { n: 0, min: NaN, mean: NaN, p50: NaN, p95: NaN, p99: NaN, max: NaN };
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i]!;
  return {
    n,
    min: sorted[0]!,
    mean: sum / n,
    p50: quantileSorted(sorted, 0.5),
    p95: quantileSorted(sorted, 0.95),
    p99: quantileSorted(sorted, 0.99),
    max: sorted[n - 1]!,
  };
}

/** Fixed-capacity uniform sample of a stream of values (Vitter's algorithm R), with a seeded PRNG. */
export class Reservoir {
  readonly capacity: number;
  readonly #items: Float64Array;
  #size = 0;
  /** Values offered so far (kept or not). */
  seen = 0;
  #rng: () => number;

  constructor(capacity = 100_000, seed = 1) {
    if (!(capacity > 0)) throw new RangeError('capacity must be > 0');
    this.capacity = capacity;
    this.#items = new Float64Array(capacity);
    this.#rng = mulberry32(seed);
  }

  add(value: number): void {
    this.seen++;
    if (this.#size < this.capacity) {
      this.#items[this.#size++] = value;
      return;
    }
    const j = Math.floor(this.#rng() * this.seen);
    if (j < this.capacity) this.#items[j] = value;
  }

  values(): Float64Array {
    return this.#items.slice(0, this.#size);
  }
}

/** Small deterministic PRNG (mulberry32), so plans and reservoirs repeat run to run. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Interarrival jitter as RFC 3550 section 6.4.1 defines it, in ms: J += (|D| - J) / 16, where D is the
 * change in transit time (receive - send) between consecutive packets. Here send and receive are read
 * from the same clock, so transit is the true one-way delay.
 */
export class JitterEstimator {
  #lastTransit: number | undefined;
  jitter = 0;
  packets = 0;

  add(sentAt: number, receivedAt: number): void {
    const transit = receivedAt - sentAt;
    if (this.#lastTransit !== undefined) {
      const d = Math.abs(transit - this.#lastTransit);
      this.jitter += (d - this.jitter) / 16;
    }
    this.#lastTransit = transit;
    this.packets++;
  }
}

export interface Bin {
  from: number;
  to: number;
  count: number;
}

/** Equal-width bins between lo and hi (defaults: min and the 99.5th percentile, so one outlier does not flatten the plot). */
export function histogram(values: ArrayLike<number>, bins = 30, lo?: number, hi?: number): Bin[] {
  const sorted = Float64Array.from(values as ArrayLike<number>).sort();
  if (sorted.length === 0) return [];
  const from = lo ?? sorted[0]!;
  let to = hi ?? quantileSorted(sorted, 0.995);
  if (!(to > from)) to = from + 1;
  const width = (to - from) / bins;
  const out: Bin[] = Array.from({ length: bins }, (_, i) => ({
    from: from + i * width,
    to: from + (i + 1) * width,
    count: 0,
  }));
  for (const v of sorted) {
    if (v < from) continue;
    const i = Math.min(bins - 1, Math.floor((v - from) / width));
    out[i]!.count++;
  }
  return out;
}

/** One cumulative Prometheus histogram: upper bounds (`le`) ascending with cumulative counts; +Inf last. */
export interface CumulativeHistogram {
  buckets: { le: number; count: number }[];
  count: number;
  sum: number;
}

/** The difference of two scrapes of the same histogram (what happened between them). */
export function diffHistogram(
  after: CumulativeHistogram,
  before: CumulativeHistogram | undefined,
): CumulativeHistogram {
  if (!before) return after;
  const prev = new Map(before.buckets.map((b) => [b.le, b.count]));
  return {
    buckets: after.buckets.map((b) => ({ le: b.le, count: b.count - (prev.get(b.le) ?? 0) })),
    count: after.count - before.count,
    sum: after.sum - before.sum,
  };
}

/**
 * Quantile of a cumulative histogram with linear interpolation inside the bucket, as Prometheus'
 * histogram_quantile() does. Returns the last finite bound when the quantile falls in +Inf.
 */
export function histogramQuantile(h: CumulativeHistogram, q: number): number {
  const buckets = [...h.buckets].sort((a, b) => a.le - b.le);
  const total = buckets.length ? buckets[buckets.length - 1]!.count : 0;
  if (total <= 0) return Number.NaN;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (!Number.isFinite(b.le)) return prevLe;
      const inBucket = b.count - prevCount;
      if (inBucket <= 0) return b.le;
      return prevLe + ((b.le - prevLe) * (rank - prevCount)) / inBucket;
    }
    prevLe = Number.isFinite(b.le) ? b.le : prevLe;
    prevCount = b.count;
  }
  return prevLe;
}
