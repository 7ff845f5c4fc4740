/**
 * The latency estimate of one endpoint for `etcd_peak_ewma`: a time-weighted
 * moving average that rises faster than it falls (peak-sensitive, as
 * Finagle's and Linkerd's peak-EWMA, but not peak-*replacing*).
 *
 * - A sample below the estimate pulls it down with weight
 *   `1 - exp(-Δt / decayMs)`, Δt being the time since the previous sample, so
 *   `decayMs` is a time constant, not a sample count: over a run of fast
 *   samples the excess shrinks by `exp(-T / decayMs)` after T ms.
 * - A sample above it pushes it up the same way with the shorter time constant
 *   `decayMs / RISE_RATIO` (a quarter of it).
 *
 * Why not replace the estimate with any slower sample (the textbook
 * peak-EWMA): the healthy replicas' own samples are noisy, mostly by causes
 * common to every endpoint at once (the client's event loop stalled, a GC);
 * replaced by such samples, healthy estimates rise toward a slow replica's,
 * which then wins pairings it should lose. Time weighting makes those samples
 * nearly harmless in exactly the way they are common: replies delayed together
 * are handled in one burst, Δt between them is ≈ 0, so the burst weighs what
 * one sample after the gap weighs; and one sample among hundreds per second
 * moves the estimate by its share of the time. Yet an endpoint sampled rarely
 * (a replica kept out of traffic, seen by probes) gets each new sample almost
 * fully: a slow one still reads slow after one answer, and a recovered one reads
 * fast again after one or two probes.
 *
 * - A probe (the scheduler's pick of an endpoint it has not picked for a
 *   while) that answers faster than the estimate replaces it.
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
