/**
 * The candidates of a weighted power-of-d-choices pick: up to d distinct
 * endpoints drawn in proportion to weight (repeats and excluded ones drawn
 * again); the schedulers keep the least loaded per unit of weight, the first
 * drawn on a tie. Sampling by weight treats an endpoint of weight w as w equal
 * servers, so idle shares follow the weights exactly (dividing a uniform draw's
 * cost by weight would hand every idle pairing to the heaviest). Equal weights
 * draw uniformly; otherwise a `WeightedRandomScheduler` (O(1) alias draws).
 */
import { ensureInt32, ensureUint8 } from './growable';
import { WeightedRandomScheduler } from './weighted-random-scheduler';

/** Draws per candidate before giving up on finding d distinct ones. */
const DRAWS_PER_CHOICE = 4;
const EXTRA_DRAWS = 16;

export class CandidateSampler {
  /** The current pick's candidates, in draw order (valid up to the count `sample` returned). */
  drawn = new Int32Array(0);
  private seen = new Uint8Array(0);
  private readonly weighted: WeightedRandomScheduler;
  /** How many endpoints have each weight: all equal ⇔ one key. */
  private readonly weightCounts = new Map<number, number>();
  private weights: number[] = [];
  private weightSum = 0;

  /** `random` returns [0, 1). */
  constructor(private readonly random: () => number) {
    this.weighted = new WeightedRandomScheduler([], random);
  }

  /** Number of endpoints. */
  get size(): number {
    return this.weights.length;
  }

  /** Mean weight of the endpoints (1 when empty). */
  get meanWeight(): number {
    return this.weights.length === 0 ? 1 : this.weightSum / this.weights.length;
  }

  /** Whether every endpoint has the same weight. */
  get uniform(): boolean {
    return this.weightCounts.size <= 1;
  }

  weight(index: number): number {
    return this.weights[index];
  }

  add(weight: number): void {
    this.weights.push(weight);
    this.weighted.add(undefined, weight);
    this.count(weight, 1);
    this.weightSum += weight;
    // Scratch for the picks, grown here so that a pick never allocates.
    this.drawn = ensureInt32(this.drawn, this.weights.length);
    this.seen = ensureUint8(this.seen, this.weights.length);
  }

  /** Swap-remove, as the tier's list does. */
  remove(index: number): void {
    const weights = this.weights;
    this.count(weights[index], -1);
    this.weightSum -= weights[index];
    weights[index] = weights[weights.length - 1];
    weights.pop();
    this.weighted.remove(index);
  }

  setWeight(index: number, weight: number): void {
    this.count(this.weights[index], -1);
    this.count(weight, 1);
    this.weightSum += weight - this.weights[index];
    this.weights[index] = weight;
    this.weighted.setWeight(index, weight);
  }

  /**
   * Draws up to `d` distinct non-excluded candidates into `drawn`, in
   * proportion to weight; returns how many (fewer when the bounded draws keep
   * hitting repeats or excluded ones: the caller then scans, or takes fewer).
   */
  sample(d: number, excluded: Uint8Array | undefined): number {
    const n = this.weights.length;
    const drawn = this.drawn;
    if (d === 2 && excluded === undefined && this.uniform) {
      // The default, exactly: two distinct uniform draws with two random numbers.
      const a = Math.floor(this.random() * n);
      let b = Math.floor(this.random() * (n - 1));
      if (b >= a) b++;
      drawn[0] = a;
      drawn[1] = b;
      return 2;
    }
    const seen = this.seen;
    let count = 0;
    for (let attempt = 0, limit = DRAWS_PER_CHOICE * d + EXTRA_DRAWS; attempt < limit && count < d; attempt++) {
      const candidate = this.uniform ? Math.floor(this.random() * n) : this.weighted.pick(excluded);
      if (seen[candidate] === 1 || (excluded !== undefined && excluded[candidate] === 1)) continue;
      seen[candidate] = 1;
      drawn[count++] = candidate;
    }
    for (let k = 0; k < count; k++) seen[drawn[k]] = 0;
    return count;
  }

  /** Puts every non-excluded endpoint into `drawn`, in index order; returns how many. */
  all(excluded: Uint8Array | undefined): number {
    let count = 0;
    for (let i = 0; i < this.weights.length; i++) {
      if (excluded === undefined || excluded[i] === 0) this.drawn[count++] = i;
    }
    return count;
  }

  private count(weight: number, delta: number): void {
    const next = (this.weightCounts.get(weight) ?? 0) + delta;
    if (next === 0) this.weightCounts.delete(weight);
    else this.weightCounts.set(weight, next);
  }
}
