/**
 * Exponential backoff with full jitter, as gRFC A6 specifies it: the n-th retry
 * waits uniform[0, min(initial × multiplier^(n-1), max)). Pure functions, so the
 * retrying call holds only one number (the current ceiling) per call.
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
