/**
 * Weighted random choice over a changing set: P(i) = W(i)/ΣW.
 *
 * Two structures, because no single one is best at both:
 * - a Fenwick tree of the weights (O(log n) to add, remove or re-weight an
 *   endpoint, O(log n) to draw), always current;
 * - an alias table (`AliasScheduler`, O(1) draws, O(n) to build), rebuilt
 *   lazily: only after the tier has made n picks since the last change, so its
 *   cost is at most one extra O(1) per pick, amortised, and a burst of changes
 *   (a rolling deploy, 10,000 endpoints coming up) never rebuilds it per change.
 * Until then picks draw from the Fenwick tree.
 */
import { AliasScheduler, MAX_REJECTION_DRAWS, weightedScan } from './alias-scheduler';
import { ensureFloat64 } from './growable';
import { type TierScheduler } from './pick-strategy';


export class WeightedRandomScheduler implements TierScheduler {
  private weights = new Float64Array(0);
  /** 1-based Fenwick tree over `weights`, sized to a power of two (its capacity). */
  private tree = new Float64Array(1);
  private count = 0;
  private total = 0;
  private alias: AliasScheduler | undefined;
  private picksSinceChange = 0;

  /** `weights` must be positive and finite; `random` returns [0, 1). */
  constructor(weights: readonly number[], private readonly random: () => number) {
    for (const w of weights) this.add(undefined, w);
  }

  add(_endpoint: unknown, weight: number): void {
    const index = this.count++;
    if (this.count >= this.tree.length) this.rebuildTree(2 * Math.max(this.count, 4));
    this.weights = ensureFloat64(this.weights, this.count);
    this.weights[index] = weight;
    this.addToTree(index, weight);
    this.changed();
  }

  remove(index: number): void {
    const last = --this.count;
    const removed = this.weights[index];
    if (index !== last) {
      const moved = this.weights[last];
      this.addToTree(index, moved - removed);
      this.weights[index] = moved;
      this.addToTree(last, -moved);
    } else {
      this.addToTree(index, -removed);
    }
    this.weights[last] = 0;
    this.changed();
  }

  setWeight(index: number, weight: number): void {
    this.addToTree(index, weight - this.weights[index]);
    this.weights[index] = weight;
    this.changed();
  }

  pick(excluded: Uint8Array | undefined): number {
    const alias = this.alias;
    if (alias !== undefined) return alias.pick(excluded);
    return this.pickFromTree(excluded);
  }

  private pickFromTree(excluded: Uint8Array | undefined): number {
    if (this.count <= 1) return 0;
    if (++this.picksSinceChange >= this.count) {
      this.alias = new AliasScheduler(Array.from(this.weights.subarray(0, this.count)), this.random);
      // Floating-point drift of the incremental sums goes with it.
      this.rebuildTree(this.tree.length);
      return this.alias.pick(excluded);
    }
    if (excluded === undefined) return this.draw();
    for (let i = 0; i < MAX_REJECTION_DRAWS; i++) {
      const chosen = this.draw();
      if (excluded[chosen] !== 1) return chosen;
    }
    return weightedScan(this.weights, this.count, excluded, this.random);
  }

  private changed(): void {
    this.alias = undefined;
    this.picksSinceChange = 0;
  }

  /** The index whose cumulative weight range holds a uniform draw: descend the tree, O(log n). */
  private draw(): number {
    let target = this.random() * this.total;
    let position = 0;
    for (let step = this.tree.length >> 1; step > 0; step >>= 1) {
      const next = position + step;
      if (next < this.tree.length && this.tree[next] <= target) {
        position = next;
        target -= this.tree[next];
      }
    }
    return Math.min(position, this.count - 1);
  }



  private addToTree(index: number, delta: number): void {
    this.total += delta;
    for (let i = index + 1; i < this.tree.length; i += i & -i) this.tree[i] += delta;
  }

  /** A fresh tree of `capacity` (a power of two ≥ count + 1) from `weights`, in O(capacity). */
  private rebuildTree(capacity: number): void {
    let size = 1;
    while (size < capacity) size <<= 1;
    const tree = new Float64Array(size);
    let total = 0;
    for (let i = 0; i < this.count && i < this.weights.length; i++) {
      tree[i + 1] += this.weights[i];
      total += this.weights[i];
    }
    for (let i = 1; i < size; i++) {
      const parent = i + (i & -i);
      if (parent < size) tree[parent] += tree[i];
    }
    this.tree = tree;
    this.total = total;
  }
}
