/**
 * Peak-EWMA by power of d choices, for one tier: draw d distinct endpoints in
 * proportion to weight and take the cheapest, cost = latency × (outstanding /
 * relative weight + 1 + common load) × (1 + failure penalty). Latency is the
 * estimate, or the age of the endpoint's oldest call in flight beyond its
 * rivals' if larger; latencies within `SIMILAR_LATENCY_RATIO` or
 * `SIMILAR_LATENCY_MS` of the best count as equal. One endpoint per pick is
 * looked at for probing. Why each term: docs/policies.md, "Latency-aware balancing".
 *
 * `choiceCount` 0 (or ≥ n) scans every endpoint; 1 is weighted random. Excluded
 * endpoints (retry skip hook) are never drawn nor probed. O(1) per add, remove
 * or re-weight (O(log n) with unequal weights); a pick is O(d).
 */
import { type status } from '@grpc/grpc-js';
import { CandidateSampler } from './candidate-sampler';
import { ensureFloat64 } from './growable';
import { type LatencyMirror, type LatencyTracker } from './peak-ewma-latency-tracker';
import { type CallLoad } from '../pool/call-load';
import { type CallHooks, type SchedulableEndpoint, type TierScheduler } from './pick-strategy';

/** An endpoint not picked for `probeIntervalMs` is probed only if its tier also made this many picks meanwhile. */
export const PROBE_MIN_PICKS = 200;
/** Estimates below this count as this much, so that a zero reading cannot cancel the outstanding-call factor. */
const MIN_LATENCY_MS = 0.01;
/** A new endpoint's prior is the median of this many of its tier's estimates at most (all of them in smaller tiers). */
export const MEDIAN_SAMPLE = 63;
/** Weight of each pick's candidates in the tier's common load (a moving average over about 8 picks). */
const TIER_LOAD_GAIN = 1 / 8;
/** Candidates whose latency is within this factor of the best one's are costed as if they had the same (no wider: a slower replica must not tie with a healthy one whose estimate a stall inflated). */
const SIMILAR_LATENCY_RATIO = 1.25;
/** ...and within this many ms of it (loopback-fast replicas differ by noise alone). */
const SIMILAR_LATENCY_MS = 1;

export interface PeakEwmaSchedulerSettings {
  /** d of power-of-d-choices; 0 = all. */
  readonly choiceCount: number;
  /** An endpoint not picked for this long is probed (see `PROBE_MIN_PICKS`). */
  readonly probeIntervalMs: number;
  /** Returns [0, 1). */
  readonly random: () => number;
  /** Called on each probe (tracing); must not throw. */
  readonly onProbe?: (tracker: LatencyTracker, idleMs: number) => void;
  /**
   * The latency state of an endpoint joining the tier: its existing tracker, or a new
   * one whose first estimate may be `tierMedianMs()` (NaN while nothing is measured).
   */
  readonly trackerFor: (endpoint: SchedulableEndpoint, tierMedianMs: () => number) => LatencyTracker;
}

export class PeakEwmaScheduler implements TierScheduler, LatencyMirror {
  private readonly endpoints: SchedulableEndpoint[] = [];
  /** `endpoints[i].load`, one pointer hop nearer (a pick reads two random candidates' loads). */
  private readonly loads: CallLoad[] = [];
  private readonly trackers: LatencyTracker[] = [];
  private inverseWeight = new Float64Array(0);
  /** Copies of each tracker's estimate and oldest call in flight (NaN: none), kept by `refresh`. */
  private estimateOf = new Float64Array(0);
  private oldestOf = new Float64Array(0);
  private readonly candidates: CandidateSampler;
  /** Per endpoint, the value of `picks` when it was last picked, and when (ms; handed back to its estimate on removal). */
  private lastPick = new Float64Array(0);
  private lastPickedMs = new Float64Array(0);
  /** The last pick's clock reading (`observeCall` follows its pick): the call's start. */
  private pickedAtMs = 0;
  private picks = 0;
  private probeCursor = 0;
  /** Whether the last pick was a probe (`observeCall` follows its pick). */
  private probed = false;
  /** Outstanding calls per unit of relative weight of a typical endpoint of the tier now (see the file comment). */
  private tierLoad = 0;
  private readonly probeIntervalMs: number;
  private readonly tierMedianMs = (): number => this.medianEstimate();

  /**
   * @param endpoints The tier's endpoints (their `load` gives outstanding calls and failure penalty).
   * @param weights Positive.
   */
  constructor(
    endpoints: readonly SchedulableEndpoint[],
    weights: readonly number[],
    private readonly settings: PeakEwmaSchedulerSettings,
  ) {
    this.candidates = new CandidateSampler(settings.random);
    this.probeIntervalMs = settings.probeIntervalMs;
    endpoints.forEach((endpoint, i) => this.add(endpoint, weights[i]));
  }

  add(endpoint: SchedulableEndpoint, weight: number): void {
    const tracker = this.settings.trackerFor(endpoint, this.tierMedianMs);
    const index = this.endpoints.length;
    this.endpoints.push(endpoint);
    this.loads.push(endpoint.load);
    this.trackers.push(tracker);
    this.inverseWeight = ensureFloat64(this.inverseWeight, index + 1);
    this.inverseWeight[index] = 1 / weight;
    this.lastPick = ensureFloat64(this.lastPick, index + 1);
    this.lastPickedMs = ensureFloat64(this.lastPickedMs, index + 1);
    this.lastPickedMs[index] = tracker.estimate.lastPickedMs;
    this.estimateOf = ensureFloat64(this.estimateOf, index + 1);
    this.oldestOf = ensureFloat64(this.oldestOf, index + 1);
    tracker.mirror = this;
    tracker.slot = index;
    this.refresh(index, tracker);
    // A newcomer is not probed before its tier made PROBE_MIN_PICKS more picks.
    this.lastPick[index] = this.picks;
    this.candidates.add(weight);
  }

  remove(index: number): void {
    const last = this.endpoints.length - 1;
    const removed = this.trackers[index];
    removed.estimate.lastPickedMs = this.lastPickedMs[index];
    if (removed.mirror === this) removed.mirror = undefined;
    const moved = this.trackers[last];
    if (moved.mirror === this) moved.slot = index;
    this.endpoints[index] = this.endpoints[last];
    this.loads[index] = this.loads[last];
    this.trackers[index] = moved;
    this.lastPickedMs[index] = this.lastPickedMs[last];
    this.estimateOf[index] = this.estimateOf[last];
    this.oldestOf[index] = this.oldestOf[last];
    this.inverseWeight[index] = this.inverseWeight[last];
    this.lastPick[index] = this.lastPick[last];
    this.endpoints.pop();
    this.loads.pop();
    this.trackers.pop();
    this.candidates.remove(index);
    if (this.probeCursor >= last) this.probeCursor = 0;
  }

  setWeight(index: number, weight: number): void {
    this.inverseWeight[index] = 1 / weight;
    this.candidates.setWeight(index, weight);
  }

  refresh(slot: number, tracker: LatencyTracker): void {
    this.estimateOf[slot] = tracker.estimate.estimateMs;
    this.oldestOf[slot] = tracker.oldestStartedMs();
  }

  /** The median estimate of the measured endpoints (of a sample of them in a large tier); NaN if none is measured. */
  medianEstimate(): number {
    const n = this.trackers.length;
    const measured: number[] = [];
    if (n <= MEDIAN_SAMPLE) {
      for (const t of this.trackers) if (t.estimate.hasSample) measured.push(t.estimate.estimateMs);
    } else {
      for (let k = 0; k < MEDIAN_SAMPLE; k++) {
        const t = this.trackers[Math.floor(this.settings.random() * n)];
        if (t.estimate.hasSample) measured.push(t.estimate.estimateMs);
      }
    }
    if (measured.length === 0) return Number.NaN;
    measured.sort((a, b) => a - b);
    const middle = measured.length >> 1;
    return measured.length % 2 === 1 ? measured[middle] : (measured[middle - 1] + measured[middle]) / 2;
  }

  pick(excluded: Uint8Array | undefined, nowMs: number): number {
    let chosen = 0;
    const n = this.endpoints.length;
    this.probed = false;
    if (n > 1) {
      chosen = this.probe(excluded, nowMs);
      this.probed = chosen >= 0;
      if (chosen < 0) {
        const d = this.settings.choiceCount === 0 || this.settings.choiceCount >= n ? n : this.settings.choiceCount;
        const count = d === n ? 0 : this.candidates.sample(d, excluded);
        chosen = count > 0 ? this.cheapest(count, false, nowMs) : this.cheapest(this.candidates.all(excluded), true, nowMs);
      }
    }
    this.lastPickedMs[chosen] = nowMs;
    this.lastPick[chosen] = ++this.picks;
    this.pickedAtMs = nowMs;
    return chosen;
  }

  observeCall(index: number, started: () => void, ended: (code: status) => void): CallHooks {
    return this.trackers[index].timeCall(started, ended, this.pickedAtMs, this.probed);
  }

  /** The endpoint's cost with `estimateMs` as its latency, `outstanding` calls and failure `penalty`. */
  cost(index: number, estimateMs: number, outstanding: number, penalty: number): number {
    return this.costPerUnit(estimateMs, outstanding * this.inverseWeight[index] * this.candidates.meanWeight, penalty);
  }

  /** The tier's common load: a moving average of the candidates' outstanding calls per unit of relative weight (diagnostics, tests). */
  get commonLoad(): number {
    return this.tierLoad;
  }

  private probe(excluded: Uint8Array | undefined, nowMs: number): number {
    const n = this.endpoints.length;
    const c = this.probeCursor < n ? this.probeCursor : 0;
    this.probeCursor = c + 1 >= n ? 0 : c + 1;
    if (excluded !== undefined && excluded[c] === 1) return -1;
    const idleMs = nowMs - this.lastPickedMs[c];
    if (idleMs < this.probeIntervalMs || this.picks - this.lastPick[c] < PROBE_MIN_PICKS) return -1;
    this.settings.onProbe?.(this.trackers[c], idleMs);
    return c;
  }

  private costPerUnit(estimateMs: number, outstandingPerUnit: number, penalty: number): number {
    return (estimateMs > MIN_LATENCY_MS ? estimateMs : MIN_LATENCY_MS) * (outstandingPerUnit + 1 + this.tierLoad) * (1 + penalty);
  }

  /**
   * The cheapest of the first `count` candidates in `candidates.drawn`. Ties go
   * to the earliest drawn (drawn by weight: idle shares follow the weights), or,
   * over a scan (`scanned`, index order), to one of the tied in proportion to weight.
   */
  private cheapest(count: number, scanned: boolean, nowMs: number): number {
    if (count === 0) return 0;
    const drawn = this.candidates.drawn;
    // Unknown estimates borrow the lowest known one among the candidates (or all compare on load alone).
    // The youngest oldest-call among candidates with calls in flight is the common part of their ages.
    let reference = Infinity;
    let youngestStartMs = Number.NEGATIVE_INFINITY;
    const estimateOf = this.estimateOf;
    const oldestOf = this.oldestOf;
    for (let k = 0; k < count; k++) {
      const i = drawn[k];
      const estimate = estimateOf[i];
      if (estimate < reference) reference = estimate;
      const oldest = oldestOf[i];
      if (oldest > youngestStartMs) youngestStartMs = oldest;
    }
    if (reference === Infinity) reference = 1;
    // Latencies within SIMILAR_LATENCY_RATIO or _MS of the best candidate's count as equal: outstanding calls (idle: the
    // weights) decide between them, so traffic does not herd onto whichever healthy replica's noise is lowest.
    const floorMs = Math.max(reference * SIMILAR_LATENCY_RATIO, reference + SIMILAR_LATENCY_MS);
    const meanWeight = this.candidates.meanWeight;
    const loads = this.loads;
    const inverseWeight = this.inverseWeight;
    let best = -1;
    let bestCost = Infinity;
    let tiedWeight = 0;
    let loadSum = 0;
    for (let k = 0; k < count; k++) {
      const i = drawn[k];
      let latency = estimateOf[i];
      if (!(latency >= floorMs)) latency = floorMs; // NaN (unknown) too
      // A call in flight for longer than its rivals' is a lower bound on this endpoint's latency now (beyond what they share).
      const excessAgeMs = youngestStartMs - oldestOf[i];
      if (excessAgeMs > latency) latency = excessAgeMs;
      const load = loads[i];
      const perUnit = load.outstanding(nowMs) * inverseWeight[i] * meanWeight;
      loadSum += perUnit;
      const cost = this.costPerUnit(latency, perUnit, load.failurePenalty(nowMs));
      if (cost < bestCost) {
        best = i;
        bestCost = cost;
        tiedWeight = scanned ? this.candidates.weight(i) : 0;
      } else if (scanned && cost === bestCost) {
        const weight = this.candidates.weight(i);
        tiedWeight += weight;
        if (this.settings.random() * tiedWeight < weight) best = i;
      }
    }
    // The candidates sample the tier: their mean load tracks the tier's (after this pick).
    this.tierLoad += TIER_LOAD_GAIN * (loadSum / count - this.tierLoad);
    return best < 0 ? drawn[0] : best;
  }
}
