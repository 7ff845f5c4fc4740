/**
 * Peak-EWMA by power of d choices, for one tier: draw d distinct endpoints at
 * random and take the cheapest, cost = latency estimate × (outstanding +
 * failure penalty + 1) / weight. The "+ 1" is the call being placed, so with
 * everything idle the faster (then the heavier) endpoint wins; outstanding
 * calls multiply the latency, so a fast endpoint is not piled on past the
 * point where it would answer later than a slower idle one.
 *
 * An endpoint whose estimate is still unknown (nothing measured anywhere yet)
 * is costed with the lowest estimate among the drawn candidates, i.e. on
 * outstanding calls alone: it is neither starved nor flooded until its first
 * answer.
 *
 * Probing: the tier looks at one endpoint per pick, in turn (O(1)); if that
 * endpoint has not been picked for `probeIntervalMs` and for at least
 * `PROBE_MIN_PICKS` of this tier's picks, it gets this pick, whatever its
 * cost. So a replica that was slow is measured again about once per
 * `probeIntervalMs` and its estimate decays when it has recovered, while at
 * low traffic the probes still take at most about 1 pick in `PROBE_MIN_PICKS`.
 *
 * `choiceCount` 0 (or ≥ n) scans every endpoint (O(n)); 1 is uniform random.
 * Ties go to a uniformly random one of the tied. Excluded endpoints (retry
 * skip hook) are never drawn nor probed.
 */
import { type status } from '@grpc/grpc-js';
import { type LatencyTracker } from './peak-ewma-latency-tracker';
import { type CallHooks, type SchedulableEndpoint, type TierScheduler } from './tier-scheduler';

/** An endpoint not picked for `probeIntervalMs` is probed only if its tier also made this many picks meanwhile. */
export const PROBE_MIN_PICKS = 100;
/** Estimates below this count as this much, so that a zero reading cannot cancel the outstanding-call factor. */
const MIN_LATENCY_MS = 0.01;

export interface PeakEwmaSchedulerSettings {
  /** d of power-of-d-choices; 0 = all. */
  readonly choiceCount: number;
  /** An endpoint not picked for this long is probed (see `PROBE_MIN_PICKS`). */
  readonly probeIntervalMs: number;
  /** Returns [0, 1). */
  readonly random: () => number;
  /** Called on each probe (tracing); must not throw. */
  readonly onProbe?: (tracker: LatencyTracker, idleMs: number) => void;
}

export class PeakEwmaScheduler implements TierScheduler {
  private readonly inverseWeight: Float64Array;
  /** A permutation of indices, partially reshuffled per pick (Fisher–Yates) to draw distinct candidates. */
  private readonly order: Int32Array;
  /** The current pick's candidates. */
  private readonly drawn: Int32Array;
  /** Per endpoint, the value of `picks` when it was last picked. */
  private readonly lastPick: Float64Array;
  private readonly choices: number;
  private picks = 0;
  private probeCursor = 0;

  /**
   * @param endpoints The tier's endpoints (their `load` gives outstanding calls and failure penalty).
   * @param trackers `trackers[i]` is the latency state of `endpoints[i]`.
   * @param weights Positive.
   */
  constructor(
    private readonly endpoints: readonly SchedulableEndpoint[],
    private readonly trackers: readonly LatencyTracker[],
    weights: readonly number[],
    private readonly settings: PeakEwmaSchedulerSettings,
  ) {
    const n = endpoints.length;
    this.inverseWeight = Float64Array.from(weights, w => 1 / w);
    this.order = Int32Array.from({ length: n }, (_, i) => i);
    this.choices = settings.choiceCount === 0 || settings.choiceCount >= n ? n : settings.choiceCount;
    this.drawn = new Int32Array(this.choices);
    this.lastPick = new Float64Array(n);
  }

  pick(excluded: Uint8Array | undefined, nowMs: number): number {
    let chosen = 0;
    if (this.endpoints.length > 1) {
      chosen = this.probe(excluded, nowMs);
      if (chosen < 0) chosen = this.cheapest(this.choices === this.endpoints.length ? this.all(excluded) : this.sample(excluded), nowMs);
    }
    this.trackers[chosen].estimate.lastPickedMs = nowMs;
    this.lastPick[chosen] = ++this.picks;
    return chosen;
  }

  observeCall(index: number, started: () => void, ended: (code: status) => void): CallHooks {
    return this.trackers[index].timeCall(started, ended);
  }

  /** The endpoint's cost with `estimateMs` as its latency. */
  cost(index: number, estimateMs: number, nowMs: number): number {
    return Math.max(estimateMs, MIN_LATENCY_MS) * (this.endpoints[index].load.score(nowMs) + 1) * this.inverseWeight[index];
  }

  private probe(excluded: Uint8Array | undefined, nowMs: number): number {
    const n = this.endpoints.length;
    const c = this.probeCursor;
    this.probeCursor = c + 1 === n ? 0 : c + 1;
    if (excluded !== undefined && excluded[c] === 1) return -1;
    const tracker = this.trackers[c];
    const idleMs = nowMs - tracker.estimate.lastPickedMs;
    if (idleMs < this.settings.probeIntervalMs || this.picks - this.lastPick[c] < PROBE_MIN_PICKS) return -1;
    this.settings.onProbe?.(tracker, idleMs);
    return c;
  }

  /** Draws up to `choices` distinct non-excluded candidates into `drawn`; returns how many. */
  private sample(excluded: Uint8Array | undefined): number {
    const order = this.order;
    const n = order.length;
    let drawn = 0;
    for (let j = 0; j < n && drawn < this.choices; j++) {
      const r = j + Math.floor(this.settings.random() * (n - j));
      const candidate = order[r];
      order[r] = order[j];
      order[j] = candidate;
      if (excluded === undefined || excluded[candidate] === 0) this.drawn[drawn++] = candidate;
    }
    return drawn;
  }

  /** Puts every non-excluded endpoint into `drawn`; returns how many. */
  private all(excluded: Uint8Array | undefined): number {
    let drawn = 0;
    for (let i = 0; i < this.endpoints.length; i++) {
      if (excluded === undefined || excluded[i] === 0) this.drawn[drawn++] = i;
    }
    return drawn;
  }

  private cheapest(count: number, nowMs: number): number {
    if (count === 0) return 0;
    // Unknown estimates borrow the lowest known one among the candidates (or all compare on load alone).
    let reference = Infinity;
    for (let k = 0; k < count; k++) {
      const estimate = this.trackers[this.drawn[k]].estimate.estimateMs;
      if (estimate < reference) reference = estimate;
    }
    if (reference === Infinity) reference = 1;
    let best = -1;
    let bestCost = Infinity;
    let ties = 0;
    for (let k = 0; k < count; k++) {
      const i = this.drawn[k];
      const estimate = this.trackers[i].estimate.estimateMs;
      const cost = this.cost(i, Number.isNaN(estimate) ? reference : estimate, nowMs);
      if (cost < bestCost) {
        best = i;
        bestCost = cost;
        ties = 1;
      } else if (cost === bestCost && this.settings.random() * ++ties < 1) {
        best = i;
      }
    }
    return best < 0 ? this.drawn[0] : best;
  }
}
