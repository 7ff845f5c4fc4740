/**
 * Smooth weighted round robin over a changing set, for `etcd_weighted_round_robin`,
 * in two structures (as `WeightedRandomScheduler`):
 * - an earliest-deadline-first heap, always current, O(log n) per pick, add,
 *   remove and re-weight; a joiner is first due half a step on (Sainte-Laguë).
 *   Any ΣW picks give endpoint i W(i) within ±2 (±1 would need an O(n)
 *   re-alignment per change);
 * - the exact O(1) schedule (`PrecomputedWeightedScheduler`), rebuilt lazily once
 *   the set has been stable for a period of picks, so its O(ΣW log n) build is
 *   amortised and a burst of changes never rebuilds it per change. Periods over
 *   `MAX_PRECOMPUTED_PERIOD` stay on the heap.
 */
import { ensureFloat64, ensureInt32 } from './growable';
import { MAX_PRECOMPUTED_PERIOD, PrecomputedWeightedScheduler, weightedPeriod } from './precomputed-weighted-scheduler';
import { type TierScheduler } from './pick-strategy';

/** Virtual time is moved back to 0 (an O(n) pass) when it passes this, keeping deadlines precise. */
const REBASE_AFTER = 1e6;
/** Heap picks remembered, so the exact schedule starts where the heap left off. */
const RECENT_PICKS = 8;

export class WeightedRoundRobinScheduler implements TierScheduler {
  private weight = new Float64Array(0);
  private deadline = new Float64Array(0);
  /** Heap of indices by (deadline, index); `position[i]` is i's place in it. */
  private heap = new Int32Array(0);
  private position = new Int32Array(0);
  private count = 0;
  private now = 0;
  /** Scratch for picks that skip excluded endpoints. */
  private skipped = new Int32Array(0);
  private exact: PrecomputedWeightedScheduler | undefined;
  private picksSinceChange = 0;
  /** Picks after the last change at which to build the exact schedule; Infinity when it is not worth it. */
  private buildAfter = 0;
  /** The last heap picks (a ring), oldest first from `recentNext`. */
  private readonly recent = new Int32Array(RECENT_PICKS);
  private recentCount = 0;

  /**
   * `weights` must be positive. The order starts from the order endpoints were added
   * (the order they became ready: it differs between clients); `random` is kept for
   * the phase of an exact schedule built with no heap picks to continue.
   */
  constructor(weights: readonly number[], private readonly random: () => number) {
    for (const w of weights) this.add(undefined, w);
  }

  add(_endpoint: unknown, weight: number): void {
    const i = this.count++;
    this.weight = ensureFloat64(this.weight, this.count);
    this.deadline = ensureFloat64(this.deadline, this.count);
    this.heap = ensureInt32(this.heap, this.count);
    this.position = ensureInt32(this.position, this.count);
    this.weight[i] = weight;
    this.deadline[i] = this.now + 0.5 / weight;
    this.heap[i] = i;
    this.position[i] = i;
    this.siftUp(i);
    this.changed();
  }

  remove(index: number): void {
    const last = --this.count;
    this.removeFromHeap(index, last);
    if (index !== last) {
      // The last index moves into the freed one, in the heap too.
      this.weight[index] = this.weight[last];
      this.deadline[index] = this.deadline[last];
      const at = this.position[last];
      this.heap[at] = index;
      this.position[index] = at;
      // Ties are ordered by index, which just changed.
      this.restore(at);
    }
    this.changed();
  }

  setWeight(index: number, weight: number): void {
    const left = Math.max(0, this.deadline[index] - this.now);
    this.deadline[index] = this.now + (left * this.weight[index]) / weight;
    this.weight[index] = weight;
    this.restore(this.position[index]);
    this.changed();
  }

  pick(excluded: Uint8Array | undefined): number {
    const exact = this.exact;
    if (exact !== undefined) return exact.pick(excluded);
    return this.pickOnHeap(excluded);
  }

  private pickOnHeap(excluded: Uint8Array | undefined): number {
    if (this.count <= 1) return 0;
    if (++this.picksSinceChange >= this.buildAfter) {
      this.buildExact();
      if (this.exact !== undefined) return this.exact.pick(excluded);
    }
    if (excluded === undefined) return this.advanceTop();
    // Set excluded endpoints aside without using their turn, take the earliest allowed one, put them back.
    this.skipped = ensureInt32(this.skipped, this.count);
    let skippedCount = 0;
    let size = this.count;
    while (excluded[this.heap[0]] === 1 && size > 1) {
      const top = this.heap[0];
      this.skipped[skippedCount++] = top;
      this.removeFromHeap(top, --size);
    }
    const chosen = this.advanceTop(size);
    for (let k = 0; k < skippedCount; k++) {
      const i = this.skipped[k];
      this.heap[size] = i;
      this.position[i] = size;
      this.siftUp(size++);
    }
    return chosen;
  }

  private changed(): void {
    this.exact = undefined;
    this.picksSinceChange = 0;
    this.recentCount = 0;
    // First n picks on the heap; then the period is measured (O(n)) and decides.
    this.buildAfter = this.count;
  }

  private buildExact(): void {
    const weights = Array.from(this.weight.subarray(0, this.count));
    if (this.buildAfter === this.count && this.count > 0) {
      const period = weightedPeriod(weights);
      this.buildAfter = period > MAX_PRECOMPUTED_PERIOD ? Infinity : Math.max(this.count, period);
      if (this.picksSinceChange < this.buildAfter) return;
    }
    this.exact = new PrecomputedWeightedScheduler(weights, this.random);
    const count = Math.min(this.recentCount, RECENT_PICKS, this.count);
    if (count > 0) {
      const recent: number[] = [];
      for (let k = count; k >= 1; k--) recent.push(this.recent[(this.recentCount - k) % RECENT_PICKS]);
      this.exact.continueAfter(recent);
    }
  }

  /** Picks the heap's top and moves its deadline one step on; `size` is the heap's current size. */
  private advanceTop(size = this.count): number {
    const chosen = this.heap[0];
    this.recent[this.recentCount++ % RECENT_PICKS] = chosen;
    this.now = this.deadline[chosen];
    this.deadline[chosen] += 1 / this.weight[chosen];
    this.siftDown(0, size);
    if (this.now > REBASE_AFTER) this.rebase();
    return chosen;
  }

  private rebase(): void {
    const shift = this.now;
    for (let i = 0; i < this.count; i++) this.deadline[i] -= shift;
    this.now = 0;
  }

  /** Takes index `i` out of a heap of `size + 1` entries, leaving `size`. */
  private removeFromHeap(i: number, size: number): void {
    const at = this.position[i];
    const moved = this.heap[size];
    if (at === size) return;
    this.heap[at] = moved;
    this.position[moved] = at;
    this.restore(at, size);
  }

  private restore(at: number, size = this.count): void {
    if (at > 0 && this.before(this.heap[at], this.heap[(at - 1) >> 1])) this.siftUp(at);
    else this.siftDown(at, size);
  }

  private before(a: number, b: number): boolean {
    const da = this.deadline[a];
    const db = this.deadline[b];
    return da < db || (da === db && a < b);
  }

  private siftDown(at: number, size = this.count): void {
    const heap = this.heap;
    const item = heap[at];
    for (;;) {
      let child = 2 * at + 1;
      if (child >= size) break;
      if (child + 1 < size && this.before(heap[child + 1], heap[child])) child++;
      if (!this.before(heap[child], item)) break;
      heap[at] = heap[child];
      this.position[heap[at]] = at;
      at = child;
    }
    heap[at] = item;
    this.position[item] = at;
  }

  private siftUp(at: number): void {
    const heap = this.heap;
    const item = heap[at];
    while (at > 0) {
      const parent = (at - 1) >> 1;
      if (!this.before(item, heap[parent])) break;
      heap[at] = heap[parent];
      this.position[heap[at]] = at;
      at = parent;
    }
    heap[at] = item;
    this.position[item] = at;
  }
}
