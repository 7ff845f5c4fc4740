/**
 * One endpoint's latency estimate for `etcd_peak_ewma`: a time-weighted moving
 * average, `1 - exp(-Δt / τ)` per sample, τ = `decayMs` falling and
 * `decayMs / RISE_RATIO` rising (peak-sensitive, not peak-replacing: why in
 * docs/policies.md). A probe answering faster replaces it; raise-only samples
 * (failed calls) below it are dropped; the first sample replaces the prior,
 * and with no prior the estimate is `NaN` (unknown). Pure state and arithmetic;
 * times come from the caller.
 */

/** A sample above the estimate moves it with time constant `decayMs / RISE_RATIO`. */
export const RISE_RATIO = 4;

export class PeakEwmaEstimate {
  /** Current estimate in ms; `NaN` while unknown. */
  estimateMs: number;
  /** When the endpoint was last picked (by any means), for probing: its tier's scheduler keeps it meanwhile and writes it back on removal. */
  lastPickedMs: number;
  private sampled = false;
  private stampMs: number;
  private readonly riseMs: number;

  /**
   * @param decayMs Time constant of the decay towards faster samples; positive.
   * @param priorMs Estimate until the first sample; `NaN` for none.
   * @param nowMs Creation time (counts as the last pick, so a new endpoint is not probed at once).
   */
  constructor(private readonly decayMs: number, priorMs: number, nowMs: number) {
    this.estimateMs = priorMs > 0 ? priorMs : Number.NaN;
    this.stampMs = nowMs;
    this.lastPickedMs = nowMs;
    this.riseMs = decayMs / RISE_RATIO;
  }

  /** Whether a real sample (not a prior) has been taken. */
  get hasSample(): boolean {
    return this.sampled;
  }

  /**
   * Takes one call's latency, measured at `nowMs`. `mayLower` false: the
   * sample can only raise the estimate (failed/cancelled calls). `probe`: the
   * call was a probe, whose successful answer below the estimate replaces it
   * (the estimate of an endpoint kept out of traffic is stale, the probe is the
   * news: a recovered replica is back after one probe). Ignores negative and
   * non-finite samples (a clock that went backwards).
   */
  observe(latencyMs: number, nowMs: number, mayLower: boolean, probe = false): void {
    if (!(latencyMs >= 0) || latencyMs === Infinity) return;
    const estimate = this.estimateMs;
    if (Number.isNaN(estimate)) {
      // With nothing to compare it to, a failure says nothing about speed (the failure penalty covers it).
      if (!mayLower) return;
      this.set(latencyMs, nowMs);
    } else if (latencyMs < estimate && !mayLower) {
      return;
    } else if (!this.sampled || (probe && latencyMs < estimate)) {
      this.set(latencyMs, nowMs);
    } else {
      const elapsedMs = Math.max(0, nowMs - this.stampMs);
      const keep = Math.exp(-elapsedMs / (latencyMs > estimate ? this.riseMs : this.decayMs));
      this.set(estimate * keep + latencyMs * (1 - keep), nowMs);
    }
  }

  private set(estimateMs: number, nowMs: number): void {
    this.estimateMs = estimateMs;
    this.stampMs = nowMs;
    this.sampled = true;
  }
}
