/**
 * The latency estimate of one endpoint for `etcd_peak_ewma`: a peak-sensitive,
 * time-weighted moving average (Finagle's and Linkerd's peak-EWMA).
 *
 * - A sample above the estimate replaces it at once: one slow call is enough
 *   to steer traffic away.
 * - A sample below it pulls it down with weight `1 - exp(-Δt / decayMs)`, Δt
 *   being the time since the previous sample. Over a run of fast samples the
 *   excess therefore shrinks by `exp(-T / decayMs)` after T ms, however many
 *   samples there are: `decayMs` is a time constant, not a sample count.
 * - Samples that may only raise (failed or cancelled calls: a fast error is no
 *   evidence of a fast replica) are dropped when below the estimate.
 * - Before its first sample the estimate is the prior it was created with (a
 *   configured latency, or the median of its peers), and the first sample
 *   replaces the prior outright: the prior only has to keep a new endpoint from
 *   being starved or flooded until it has answered once. Without a prior
 *   (nothing measured anywhere yet) the estimate is unknown (`NaN`); the
 *   scheduler then compares it as if it equalled its best rival.
 *
 * Pure state and arithmetic; times come from the caller.
 */

export class PeakEwmaEstimate {
  /** Current estimate in ms; `NaN` while unknown. */
  estimateMs: number;
  /** When the endpoint was last picked (by any means); the scheduler's probing reads it. */
  lastPickedMs: number;
  private sampled = false;
  private stampMs: number;

  /**
   * @param decayMs Time constant of the decay towards faster samples; positive.
   * @param priorMs Estimate until the first sample; `NaN` for none.
   * @param nowMs Creation time (counts as the last pick, so a new endpoint is not probed at once).
   */
  constructor(private readonly decayMs: number, priorMs: number, nowMs: number) {
    this.estimateMs = priorMs > 0 ? priorMs : Number.NaN;
    this.stampMs = nowMs;
    this.lastPickedMs = nowMs;
  }

  /** Whether a real sample (not a prior) has been taken. */
  get hasSample(): boolean {
    return this.sampled;
  }

  /**
   * Takes one call's latency, measured at `nowMs`. `mayLower` false: the
   * sample can only raise the estimate (failed/cancelled calls). Ignores
   * negative and non-finite samples (a clock that went backwards).
   */
  observe(latencyMs: number, nowMs: number, mayLower: boolean): void {
    if (!(latencyMs >= 0) || latencyMs === Infinity) return;
    const estimate = this.estimateMs;
    if (Number.isNaN(estimate)) {
      // With nothing to compare it to, a failure says nothing about speed (the failure penalty covers it).
      if (!mayLower) return;
      this.set(latencyMs, nowMs);
    } else if (latencyMs >= estimate) {
      this.set(latencyMs, nowMs);
    } else if (!mayLower) {
      return;
    } else if (!this.sampled) {
      this.set(latencyMs, nowMs);
    } else {
      const keep = Math.exp(-Math.max(0, nowMs - this.stampMs) / this.decayMs);
      this.set(estimate * keep + latencyMs * (1 - keep), nowMs);
    }
  }

  private set(estimateMs: number, nowMs: number): void {
    this.estimateMs = estimateMs;
    this.stampMs = nowMs;
    this.sampled = true;
  }
}
