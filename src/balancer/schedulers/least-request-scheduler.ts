/**
 * Least outstanding requests, weight-aware, by power of d choices: draw d
 * distinct endpoints in proportion to weight and take the one with the lowest
 * (outstanding + failure penalty) / weight; on a tie the first drawn. So with
 * everyone idle the shares follow the weights exactly (the first draw
 * decides), and under load each call goes to the less loaded unit of weight
 * (see `CandidateSampler` for why weights bias the draw, not a "+1" score).
 * `choiceCount` 0 (or ≥ n) scans every endpoint (= least connections), ties
 * going to one of the tied in proportion to weight (weighted reservoir
 * sampling); 1 is weighted random.
 *
 * Endpoints are a dense array with swap-remove, so adding, removing or
 * re-weighting one is O(1) (O(log n) with unequal weights). When the bounded
 * draws find no candidate (most of a small tier excluded) a scan decides.
 */
import { CandidateSampler } from './candidate-sampler';
import { ensureFloat64 } from './growable';
import { type SchedulableEndpoint, type TierScheduler } from './pick-strategy';

export class LeastRequestScheduler implements TierScheduler {
  private readonly endpoints: SchedulableEndpoint[] = [];
  private inverseWeight = new Float64Array(0);
  private readonly candidates: CandidateSampler;

  /** `weights` must be positive; `choiceCount` 0 = all; `random` returns [0, 1). */
  constructor(
    endpoints: readonly SchedulableEndpoint[],
    weights: readonly number[],
    private readonly choiceCount: number,
    private readonly random: () => number,
  ) {
    this.candidates = new CandidateSampler(random);
    endpoints.forEach((endpoint, i) => this.add(endpoint, weights[i]));
  }

  add(endpoint: SchedulableEndpoint, weight: number): void {
    const index = this.endpoints.length;
    this.endpoints.push(endpoint);
    this.inverseWeight = ensureFloat64(this.inverseWeight, index + 1);
    this.inverseWeight[index] = 1 / weight;
    this.candidates.add(weight);
  }

  remove(index: number): void {
    const last = this.endpoints.length - 1;
    this.endpoints[index] = this.endpoints[last];
    this.inverseWeight[index] = this.inverseWeight[last];
    this.endpoints.pop();
    this.candidates.remove(index);
  }

  setWeight(index: number, weight: number): void {
    this.inverseWeight[index] = 1 / weight;
    this.candidates.setWeight(index, weight);
  }

  pick(excluded: Uint8Array | undefined, nowMs: number): number {
    const n = this.endpoints.length;
    if (n <= 1) return 0;
    const d = this.choiceCount === 0 || this.choiceCount >= n ? n : this.choiceCount;
    if (d === n) return this.scan(excluded, nowMs);
    const count = this.candidates.sample(d, excluded);
    return count > 0 ? this.best(count, nowMs) : this.scan(excluded, nowMs);
  }

  private score(i: number, nowMs: number): number {
    return this.endpoints[i].load.score(nowMs) * this.inverseWeight[i];
  }

  /** The lowest-scored of the first `count` drawn candidates; the earliest drawn on a tie. */
  private best(count: number, nowMs: number): number {
    const drawn = this.candidates.drawn;
    let best = drawn[0];
    let bestScore = this.score(best, nowMs);
    for (let k = 1; k < count; k++) {
      const score = this.score(drawn[k], nowMs);
      if (score < bestScore) {
        best = drawn[k];
        bestScore = score;
      }
    }
    return best;
  }

  private scan(excluded: Uint8Array | undefined, nowMs: number): number {
    let best = -1;
    let bestScore = Infinity;
    let tiedWeight = 0;
    for (let i = 0; i < this.endpoints.length; i++) {
      if (excluded !== undefined && excluded[i] === 1) continue;
      const score = this.score(i, nowMs);
      const weight = this.candidates.weight(i);
      if (score < bestScore) {
        best = i;
        bestScore = score;
        tiedWeight = weight;
      } else if (score === bestScore) {
        tiedWeight += weight;
        if (this.random() * tiedWeight < weight) best = i;
      }
    }
    return best < 0 ? 0 : best;
  }
}
