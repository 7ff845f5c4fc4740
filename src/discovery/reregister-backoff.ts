/**
 * Backoff between re-registration attempts: exponential with "equal jitter"
 * (half fixed, half random), capped. A small mutable iterator; the random
 * source is injectable so tests are deterministic.
 */

export interface ReregisterBackoffOptions {
  /** First delay (before jitter). Defaults to 100. */
  initialMs?: number;
  /** Largest delay. Defaults to 1,000. */
  maxMs?: number;
  /** Uniform [0, 1) source. Defaults to Math.random. */
  random?: () => number;
}

export const DEFAULT_REREGISTER_BACKOFF_OPTIONS = Object.freeze({
  initialMs: 100,
  maxMs: 1_000,
});

export class ReregisterBackoff {
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly random: () => number;
  private attempt = 0;

  constructor(options: ReregisterBackoffOptions = {}) {
    this.maxMs = options.maxMs ?? DEFAULT_REREGISTER_BACKOFF_OPTIONS.maxMs;
    this.initialMs = Math.min(options.initialMs ?? DEFAULT_REREGISTER_BACKOFF_OPTIONS.initialMs, this.maxMs);
    this.random = options.random ?? Math.random;
  }

  /** The next delay in ms, in [base/2, base) where base doubles up to `maxMs`. */
  next(): number {
    const base = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return base / 2 + this.random() * (base / 2);
  }

  /** Back to the initial delay (after a success). */
  reset(): void {
    this.attempt = 0;
  }
}
