/**
 * Least outstanding requests, weight-aware, by power of d choices: draw d
 * distinct endpoints at random and take the one with the lowest
 * (outstanding + failure penalty + 1) / weight. The "+ 1" is the call being
 * placed: with everyone idle, the heavier endpoint wins. `choiceCount` 0 (or
 * ≥ n) scans every endpoint (= least connections). Ties go to a uniformly
 * random one among the tied: among d random draws, the first drawn is already
 * uniform; a full scan uses reservoir sampling.
 *
 * Endpoints are a dense array with swap-remove, so adding, removing or
 * re-weighting one is O(1). Distinct candidates are drawn by rejection (a
 * repeat or an excluded index is drawn again), which for d ≪ n costs d draws;
 * when rejection keeps failing (most of a small tier excluded) a scan decides.
 */
import { ensureFloat64, ensureInt32, ensureUint8 } from './growable';
import { type SchedulableEndpoint, type TierScheduler } from './pick-strategy';

/** Draws per candidate before a pick falls back to scanning. */
const DRAWS_PER_CHOICE = 4;
const EXTRA_DRAWS = 16;

export class LeastRequestScheduler implements TierScheduler {
  private readonly endpoints: SchedulableEndpoint[] = [];
  private inverseWeight = new Float64Array(0);
  /** The current pick's candidates, and a flag per index drawn (cleared after each pick): distinct draws in O(d). */
  private drawn = new Int32Array(0);
  private seen = new Uint8Array(0);

  /** `weights` must be positive; `choiceCount` 0 = all; `random` returns [0, 1). */
  constructor(
    endpoints: readonly SchedulableEndpoint[],
    weights: readonly number[],
    private readonly choiceCount: number,
    private readonly random: () => number,
  ) {
    endpoints.forEach((endpoint, i) => this.add(endpoint, weights[i]));
  }

  add(endpoint: SchedulableEndpoint, weight: number): void {
    const index = this.endpoints.length;
    this.endpoints.push(endpoint);
    this.inverseWeight = ensureFloat64(this.inverseWeight, index + 1);
    this.inverseWeight[index] = 1 / weight;
    // Scratch for the picks, grown here so that a pick never allocates.
    this.drawn = ensureInt32(this.drawn, Math.min(this.choiceCount, index + 1));
    this.seen = ensureUint8(this.seen, index + 1);
  }

  remove(index: number): void {
    const last = this.endpoints.length - 1;
    this.endpoints[index] = this.endpoints[last];
    this.inverseWeight[index] = this.inverseWeight[last];
    this.endpoints.pop();
  }

  setWeight(index: number, weight: number): void {
    this.inverseWeight[index] = 1 / weight;
  }

  pick(excluded: Uint8Array | undefined, nowMs: number): number {
    const n = this.endpoints.length;
    if (n <= 1) return 0;
    const d = this.choiceCount === 0 || this.choiceCount >= n ? n : this.choiceCount;
    if (d === n) return this.scan(excluded, nowMs);
    const sampled = this.sample(d, excluded, nowMs);
    return sampled >= 0 ? sampled : this.scan(excluded, nowMs);
  }

  private score(i: number, nowMs: number): number {
    return (this.endpoints[i].load.score(nowMs) + 1) * this.inverseWeight[i];
  }

  /** Best of up to d distinct non-excluded random candidates; -1 when none was found in the draws allowed. */
  private sample(d: number, excluded: Uint8Array | undefined, nowMs: number): number {
    const n = this.endpoints.length;
    if (d === 2 && excluded === undefined) {
      // The default, exactly: two distinct uniform draws with two random numbers.
      const a = Math.floor(this.random() * n);
      let b = Math.floor(this.random() * (n - 1));
      if (b >= a) b++;
      return this.score(b, nowMs) < this.score(a, nowMs) ? b : a;
    }
    const drawn = this.drawn;
    const seen = this.seen;
    let best = -1;
    let bestScore = Infinity;
    let count = 0;
    for (let attempt = 0, limit = DRAWS_PER_CHOICE * d + EXTRA_DRAWS; attempt < limit && count < d; attempt++) {
      const candidate = Math.floor(this.random() * n);
      if (seen[candidate] === 1 || (excluded !== undefined && excluded[candidate] === 1)) continue;
      seen[candidate] = 1;
      drawn[count++] = candidate;
      const score = this.score(candidate, nowMs);
      if (score < bestScore) {
        best = candidate;
        bestScore = score;
      }
    }
    for (let k = 0; k < count; k++) seen[drawn[k]] = 0;
    return best;
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
