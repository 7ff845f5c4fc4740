/**
 * Smooth weighted round robin as an earliest-deadline-first schedule, exact and
 * O(log n) per pick (nginx's smooth WRR gives the same kind of sequence in O(n)).
 *
 * Endpoint i with integer weight W(i) is due for its (k+1)-th pick of a period
 * at virtual time (k + ½)/W(i) (Sainte-Laguë spacing: starting half a step in
 * keeps endpoints from all falling due together at the period's end); the heap
 * yields the earliest deadline, ties by index. Deadlines are compared as
 * integer cross-products, never as floats, so the order is exactly periodic:
 * the picks repeat every ΣW picks, hence every window of ΣW consecutive picks
 * holds exactly W(i) picks of endpoint i, spread over the window. After each
 * period every count is reduced by its weight, which keeps the products small
 * (< 2^53) without changing the order.
 */

/** Above this, weights are rescaled (proportions kept to ~1e-7) so cross-products stay exact. */
export const MAX_EXACT_WEIGHT = 2 ** 24;
/** Decimal places of fractional weights kept exactly (0.5:1.5 is exactly 1:3). */
const WEIGHT_DECIMALS_SCALE = 1_000_000;
/** Upper bound on the random start phase, so that clients do not all start on the heaviest endpoint. */
const MAX_PHASE_PICKS = 1024;

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/**
 * Converts positive weights to integers with the same proportions: exact for
 * integers and for up to 6 decimals, reduced by their gcd; rescaled to at most
 * `MAX_EXACT_WEIGHT` otherwise (every endpoint keeps at least 1).
 */
export function toIntegerWeights(weights: readonly number[]): Float64Array {
  let scale = 1;
  while (scale < WEIGHT_DECIMALS_SCALE && weights.some(w => Math.abs(w * scale - Math.round(w * scale)) > 1e-9 * w * scale)) scale *= 10;
  const ints = Float64Array.from(weights, w => Math.max(1, Math.round(w * scale)));
  let divisor = 0;
  for (const w of ints) divisor = gcd(w, divisor);
  let max = 0;
  for (let i = 0; i < ints.length; i++) {
    ints[i] /= divisor;
    max = Math.max(max, ints[i]);
  }
  if (max > MAX_EXACT_WEIGHT) {
    for (let i = 0; i < ints.length; i++) ints[i] = Math.max(1, Math.round((ints[i] * MAX_EXACT_WEIGHT) / max));
  }
  return ints;
}

/** A fixed schedule (no add/remove): `WeightedRoundRobinScheduler` builds it for a stable set. */
export class SmoothWeightedScheduler {
  private readonly weight: Float64Array;
  /**
   * 2k + 1 for an endpoint picked k times this period (a little more after skips):
   * the numerator of its next deadline (k + ½)/W.
   */
  private readonly due: Float64Array;
  private readonly heap: Int32Array;
  private size: number;
  /** Scratch for picks that skip excluded endpoints. */
  private readonly skipped: Int32Array;
  /** ΣW after integer conversion: the picks repeat with this period. */
  readonly period: number;
  private picksThisPeriod = 0;

  /** `weights` must be positive; `random` sets the start phase (use `() => 0` to start at the period's beginning). */
  constructor(weights: readonly number[], random: () => number) {
    const n = weights.length;
    this.weight = toIntegerWeights(weights);
    this.due = new Float64Array(n).fill(1);
    this.heap = new Int32Array(n);
    this.skipped = new Int32Array(n);
    this.size = n;
    let period = 0;
    for (let i = 0; i < n; i++) {
      this.heap[i] = i;
      period += this.weight[i];
    }
    this.period = period;
    for (let i = (n >> 1) - 1; i >= 0; i--) this.siftDown(i);
    const phase = Math.floor(random() * Math.min(period, MAX_PHASE_PICKS));
    for (let i = 0; i < phase; i++) this.pick(undefined);
  }

  pick(excluded: Uint8Array | undefined): number {
    if (excluded === undefined) {
      const chosen = this.heap[0];
      this.advance(chosen);
      return chosen;
    }
    // Set excluded endpoints aside without using their turn, take the earliest allowed one, put them back.
    let skippedCount = 0;
    while (excluded[this.heap[0]] === 1 && this.size > 1) {
      this.skipped[skippedCount++] = this.heap[0];
      this.heap[0] = this.heap[--this.size];
      this.siftDown(0);
    }
    const chosen = this.heap[0];
    this.advance(chosen);
    for (let i = 0; i < skippedCount; i++) {
      this.heap[this.size++] = this.skipped[i];
      this.siftUp(this.size - 1);
    }
    return chosen;
  }

  /** Counts a pick of the heap's top (`chosen`) and restores the heap. */
  private advance(chosen: number): void {
    this.due[chosen] += 2;
    this.siftDown(0);
    if (++this.picksThisPeriod >= this.period) this.endPeriod();
  }

  private endPeriod(): void {
    this.picksThisPeriod = 0;
    // Only once every endpoint had its W picks (skips can delay that).
    for (let i = 0; i < this.due.length; i++) if (this.due[i] < 2 * this.weight[i] + 1) return;
    // Every deadline moves back by exactly 1: the order (and the heap) is unchanged.
    for (let i = 0; i < this.due.length; i++) this.due[i] -= 2 * this.weight[i];
  }

  /** Whether endpoint a is due before endpoint b: (k_a+½)/W_a < (k_b+½)/W_b, ties by index. */
  private before(a: number, b: number): boolean {
    const lhs = this.due[a] * this.weight[b];
    const rhs = this.due[b] * this.weight[a];
    return lhs < rhs || (lhs === rhs && a < b);
  }

  private siftDown(position: number): void {
    const heap = this.heap;
    const item = heap[position];
    for (;;) {
      let child = 2 * position + 1;
      if (child >= this.size) break;
      if (child + 1 < this.size && this.before(heap[child + 1], heap[child])) child++;
      if (!this.before(heap[child], item)) break;
      heap[position] = heap[child];
      position = child;
    }
    heap[position] = item;
  }

  private siftUp(position: number): void {
    const heap = this.heap;
    const item = heap[position];
    while (position > 0) {
      const parent = (position - 1) >> 1;
      if (!this.before(item, heap[parent])) break;
      heap[position] = heap[parent];
      position = parent;
    }
    heap[position] = item;
  }
}
