/**
 * Smooth weighted round robin in O(1) per pick: the exact periodic sequence of
 * `SmoothWeightedScheduler` (ΣW picks, each endpoint W(i) times, interleaved)
 * computed once per endpoint-list update, then read in a circle. Used when the
 * period is short enough to store; the heap scheduler serves longer periods.
 */
import { SmoothWeightedScheduler, toIntegerWeights } from './smooth-weighted-scheduler';

/** Longest period stored (Int32Array: 256 KiB per tier at most). */
export const MAX_PRECOMPUTED_PERIOD = 65_536;

/** The period (ΣW after integer conversion) of `weights`. */
export function weightedPeriod(weights: readonly number[]): number {
  let period = 0;
  for (const w of toIntegerWeights(weights)) period += w;
  return period;
}

/** A fixed schedule (no add/remove): `WeightedRoundRobinScheduler` builds it for a stable set. */
export class PrecomputedWeightedScheduler {
  private readonly schedule: Int32Array;
  private position: number;

  /** `weights` must be positive; `random` sets the start phase. */
  constructor(weights: readonly number[], random: () => number) {
    const heap = new SmoothWeightedScheduler(weights, () => 0);
    const period = heap.period;
    this.schedule = new Int32Array(period);
    for (let i = 0; i < period; i++) this.schedule[i] = heap.pick(undefined);
    this.position = Math.floor(random() * period) % period;
  }

  /**
   * Moves the rotation to where it best continues `recent` (the last picks made by
   * another scheduler, oldest first): the place whose preceding entries match most of
   * them, so switching to this table does not break the windows in progress.
   * O(period × recent.length), once per build.
   */
  continueAfter(recent: readonly number[]): void {
    const schedule = this.schedule;
    const period = schedule.length;
    let best = this.position;
    let bestMatches = -1;
    for (let p = 0; p < period && bestMatches < recent.length; p++) {
      let matches = 0;
      for (let k = 1; k <= recent.length && matches === k - 1; k++) {
        if (schedule[(((p - k) % period) + period) % period] === recent[recent.length - k]) matches++;
      }
      if (matches > bestMatches) {
        best = p;
        bestMatches = matches;
      }
    }
    this.position = best;
  }

  pick(excluded: Uint8Array | undefined): number {
    const schedule = this.schedule;
    if (excluded === undefined) {
      const chosen = schedule[this.position];
      if (++this.position === schedule.length) this.position = 0;
      return chosen;
    }
    // A pick that must avoid some endpoints (a retry) is an extra pick: it takes the next
    // allowed entry without moving the rotation, so the windows of ordinary picks stay exact.
    for (let step = 0, i = this.position; step < schedule.length; step++) {
      if (excluded[schedule[i]] !== 1) return schedule[i];
      if (++i === schedule.length) i = 0;
    }
    return schedule[this.position];
  }
}
