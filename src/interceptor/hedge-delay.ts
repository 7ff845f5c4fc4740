/**
 * The adaptive hedging delay: the p95 ("The Tail at Scale") of a method's last
 * `HEDGE_DELAY_WINDOW` first-attempt latencies, a window of calls rather than of time
 * so the estimate rests on as many calls at any rate. `record` is O(1) into a ring, the
 * p95 is recomputed by quickselect every `HEDGE_DELAY_RECOMPUTE_EVERY` samples, and
 * nothing is allocated after construction. What the caller records: hedging-call.ts.
 */

/** First attempts the estimate covers (a ring of the most recent ones). */
export const HEDGE_DELAY_WINDOW = 1_000;
/** No adaptive hedging for a method until this many of its first attempts were seen. */
export const HEDGE_DELAY_MIN_SAMPLES = 100;
/** The adaptive delay is never below this: a copy sent sooner rarely beats a healthy answer and only adds load. */
export const HEDGE_DELAY_FLOOR_MS = 2;
/** The quantile is recomputed after this many new samples. */
export const HEDGE_DELAY_RECOMPUTE_EVERY = 50;
const QUANTILE = 0.95;

/** One method's adaptive hedging delay (see the file comment); the interceptor keeps one per method. */
export class HedgeDelayEstimator {
  private readonly ring: Float64Array;
  private readonly scratch: Float64Array;
  private next = 0;
  private count = 0;
  private sinceRecompute = 0;
  private p95Ms = 0;

  constructor(
    private readonly windowSize = HEDGE_DELAY_WINDOW,
    private readonly minSamples = HEDGE_DELAY_MIN_SAMPLES,
    private readonly floorMs = HEDGE_DELAY_FLOOR_MS,
    private readonly recomputeEvery = HEDGE_DELAY_RECOMPUTE_EVERY,
  ) {
    this.ring = new Float64Array(windowSize);
    this.scratch = new Float64Array(windowSize);
  }

  /** Samples in the window (at most the window size). */
  get samples(): number {
    return this.count;
  }

  /** The p95 of the window as last computed (0 before the first computation). */
  get p95(): number {
    return this.p95Ms;
  }

  /** One first attempt's latency (or lower bound) in ms; negative or non-finite values are ignored. */
  record(latencyMs: number): void {
    if (!(latencyMs >= 0) || latencyMs === Infinity) return;
    this.ring[this.next] = latencyMs;
    this.next = this.next + 1 === this.windowSize ? 0 : this.next + 1;
    if (this.count < this.windowSize) this.count++;
    this.sinceRecompute++;
    if (this.count < this.minSamples) return;
    if (this.count === this.minSamples || this.sinceRecompute >= this.recomputeEvery) this.recompute();
  }

  /** The delay to use now, or undefined while the window has fewer than `minSamples` samples. */
  delayMs(): number | undefined {
    if (this.count < this.minSamples) return undefined;
    return Math.max(this.floorMs, this.p95Ms);
  }

  private recompute(): void {
    this.sinceRecompute = 0;
    const n = this.count;
    const a = this.scratch;
    a.set(n === this.windowSize ? this.ring : this.ring.subarray(0, n));
    // Nearest rank: the smallest sample with at least 95 % of the window at or below it.
    this.p95Ms = select(a, n, Math.ceil(QUANTILE * n) - 1);
  }
}

/** The k-th smallest (0-based) of a[0..n), rearranging a in place (Hoare's quickselect, median-of-three pivot). */
export function select(a: Float64Array, n: number, k: number): number {
  let lo = 0;
  let hi = n - 1;
  while (hi > lo) {
    const mid = (lo + hi) >>> 1;
    // Order a[lo] ≤ a[mid] ≤ a[hi]: the pivot is their median, and both ends are sentinels.
    if (a[mid] < a[lo]) swap(a, mid, lo);
    if (a[hi] < a[lo]) swap(a, hi, lo);
    if (a[hi] < a[mid]) swap(a, hi, mid);
    const pivot = a[mid];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        swap(a, i, j);
        i++;
        j--;
      }
    }
    // Now a[lo..j] ≤ pivot ≤ a[i..hi], and a[j+1..i-1] (if any) equal the pivot.
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k];
  }
  return a[k];
}

function swap(a: Float64Array, i: number, j: number): void {
  const t = a[i];
  a[i] = a[j];
  a[j] = t;
}
