/**
 * Exponential backoff with full jitter, as gRFC A6 specifies it: the n-th retry
 * waits uniform[0, min(initial × multiplier^(n-1), max)). Pure functions, and one
 * small state per call (`RetryBackoff`: the current ceiling) shared by the
 * retrying and the hedging call.
 */

/** A delay drawn uniformly in [0, ceilingMs) from `random` (which returns [0, 1)). */
export function fullJitterDelayMs(ceilingMs: number, random: () => number): number {
  const r = random();
  // A bad random source must not produce a negative or unbounded sleep.
  const clamped = r >= 0 && r < 1 ? r : 0;
  return Math.floor(clamped * ceilingMs);
}

/** The ceiling for the retry after one that used `ceilingMs`. */
export function nextBackoffCeilingMs(ceilingMs: number, multiplier: number, maxBackoffMs: number): number {
  return Math.min(ceilingMs * multiplier, maxBackoffMs);
}

/** What `RetryBackoff` reads of the retry options. */
export interface BackoffOptions {
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly backoffMultiplier: number;
  readonly random: () => number;
}

/** One call's backoff: the delay before each retry, the ceiling growing per retry. */
export class RetryBackoff {
  private ceilingMs: number;

  constructor(private readonly options: BackoffOptions) {
    this.ceilingMs = options.initialBackoffMs;
  }

  /** The delay before the next retry: the server's pushback when ≥ 0 (which resets the backoff, gRFC A6), else full jitter. */
  nextDelayMs(pushbackMs: number): number {
    const o = this.options;
    if (pushbackMs >= 0) {
      this.ceilingMs = o.initialBackoffMs;
      return pushbackMs;
    }
    const delayMs = fullJitterDelayMs(this.ceilingMs, o.random);
    this.ceilingMs = nextBackoffCeilingMs(this.ceilingMs, o.backoffMultiplier, o.maxBackoffMs);
    return delayMs;
  }
}
