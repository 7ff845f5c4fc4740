/**
 * Weighted random choice in O(1) per pick with Vose's alias method: one random
 * number picks a column and flips that column's biased coin. P(i) = W(i)/ΣW.
 * A fixed table, O(n) to build: `WeightedRandomScheduler` rebuilds it lazily
 * for a tier whose set changes.
 */

/** Draws before a pick that must avoid some endpoints falls back to an O(n) weighted scan. */
export const MAX_REJECTION_DRAWS = 8;

export class AliasScheduler {
  /** Probability of keeping column i (else its alias). */
  private readonly keep: Float64Array;
  private readonly alias: Int32Array;
  private readonly weights: Float64Array;

  /** `weights` must be positive and finite; `random` returns [0, 1). */
  constructor(weights: readonly number[], private readonly random: () => number) {
    const n = weights.length;
    this.weights = Float64Array.from(weights);
    this.keep = new Float64Array(n);
    this.alias = new Int32Array(n);
    let total = 0;
    for (const w of weights) total += w;
    const scaled = Float64Array.from(weights, w => (w * n) / total);
    const small = new Int32Array(n);
    const large = new Int32Array(n);
    let smallCount = 0;
    let largeCount = 0;
    for (let i = 0; i < n; i++) {
      if (scaled[i] < 1) small[smallCount++] = i;
      else large[largeCount++] = i;
    }
    while (smallCount > 0 && largeCount > 0) {
      const s = small[--smallCount];
      const l = large[--largeCount];
      this.keep[s] = scaled[s];
      this.alias[s] = l;
      scaled[l] = scaled[l] + scaled[s] - 1;
      if (scaled[l] < 1) small[smallCount++] = l;
      else large[largeCount++] = l;
    }
    // What is left is 1 up to rounding error.
    while (largeCount > 0) {
      const l = large[--largeCount];
      this.keep[l] = 1;
      this.alias[l] = l;
    }
    while (smallCount > 0) {
      const s = small[--smallCount];
      this.keep[s] = 1;
      this.alias[s] = s;
    }
  }

  pick(excluded: Uint8Array | undefined): number {
    if (excluded === undefined) return this.draw();
    for (let i = 0; i < MAX_REJECTION_DRAWS; i++) {
      const chosen = this.draw();
      if (excluded[chosen] !== 1) return chosen;
    }
    return weightedScan(this.weights, this.weights.length, excluded, this.random);
  }

  private draw(): number {
    const n = this.keep.length;
    const x = this.random() * n;
    const column = Math.min(n - 1, Math.floor(x));
    return x - column < this.keep[column] ? column : this.alias[column];
  }


}

/** Weighted choice among the first `count` endpoints not flagged in `excluded`, in O(count). */
export function weightedScan(weights: Float64Array, count: number, excluded: Uint8Array, random: () => number): number {
  let total = 0;
  let last = -1;
  for (let i = 0; i < count; i++) {
    if (excluded[i] !== 1) {
      total += weights[i];
      last = i;
    }
  }
  let target = random() * total;
  for (let i = 0; i < count; i++) {
    if (excluded[i] === 1) continue;
    target -= weights[i];
    if (target < 0) return i;
  }
  return Math.max(last, 0);
}
