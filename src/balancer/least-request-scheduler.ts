/**
 * Least outstanding requests, weight-aware, by power of d choices: draw d
 * distinct endpoints at random and take the one with the lowest
 * (outstanding + failure penalty + 1) / weight. The "+ 1" is the call being
 * placed: with everyone idle, the heavier endpoint wins. `choiceCount` 0 (or
 * ≥ n) scans every endpoint (= least connections). Ties go to a uniformly
 * random one among the tied: among d random draws, the first drawn is already
 * uniform; a full scan uses reservoir sampling.
 */
import { type SchedulableEndpoint, type TierScheduler } from './tier-scheduler';

export class LeastRequestScheduler implements TierScheduler {
  private readonly inverseWeight: Float64Array;
  /** A permutation of indices, partially reshuffled per pick (Fisher–Yates) to draw distinct candidates. */
  private readonly order: Int32Array;
  private readonly choices: number;

  /** `weights` must be positive; `choiceCount` 0 = all; `random` returns [0, 1). */
  constructor(
    private readonly endpoints: readonly SchedulableEndpoint[],
    weights: readonly number[],
    choiceCount: number,
    private readonly random: () => number,
  ) {
    const n = endpoints.length;
    this.inverseWeight = Float64Array.from(weights, w => 1 / w);
    this.order = Int32Array.from({ length: n }, (_, i) => i);
    this.choices = choiceCount === 0 || choiceCount >= n ? n : choiceCount;
  }

  pick(excluded: Uint8Array | undefined, nowMs: number): number {
    const n = this.endpoints.length;
    if (n === 1) return 0;
    return this.choices === n ? this.scan(excluded, nowMs) : this.sample(excluded, nowMs);
  }

  private score(i: number, nowMs: number): number {
    return (this.endpoints[i].load.score(nowMs) + 1) * this.inverseWeight[i];
  }

  private sample(excluded: Uint8Array | undefined, nowMs: number): number {
    const order = this.order;
    const n = order.length;
    let best = -1;
    let bestScore = Infinity;
    let drawn = 0;
    for (let j = 0; j < n && drawn < this.choices; j++) {
      const r = j + Math.floor(this.random() * (n - j));
      const candidate = order[r];
      order[r] = order[j];
      order[j] = candidate;
      if (excluded !== undefined && excluded[candidate] === 1) continue;
      drawn++;
      const score = this.score(candidate, nowMs);
      if (score < bestScore) {
        best = candidate;
        bestScore = score;
      }
    }
    return best < 0 ? 0 : best;
  }

  private scan(excluded: Uint8Array | undefined, nowMs: number): number {
    let best = -1;
    let bestScore = Infinity;
    let ties = 0;
    for (let i = 0; i < this.endpoints.length; i++) {
      if (excluded !== undefined && excluded[i] === 1) continue;
      const score = this.score(i, nowMs);
      if (score < bestScore) {
        best = i;
        bestScore = score;
        ties = 1;
      } else if (score === bestScore && this.random() * ++ties < 1) {
        best = i;
      }
    }
    return best < 0 ? 0 : best;
  }
}
