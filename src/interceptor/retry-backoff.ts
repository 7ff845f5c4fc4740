/** One call's retry delays: gRFC A6's full-jitter backoff, reset by server pushback. */
import { Backoff, fullJitter } from '../common/backoff';

/** What `RetryBackoff` reads of the retry options. */
export interface RetryBackoffOptions {
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly backoffMultiplier: number;
  readonly random: () => number;
}

/** The delays between one call's attempts; created at its first retry. */
export class RetryBackoff {
  private readonly backoff: Backoff;

  constructor(options: RetryBackoffOptions) {
    this.backoff = new Backoff({
      initialMs: options.initialBackoffMs, maxMs: options.maxBackoffMs, multiplier: options.backoffMultiplier,
      jitter: fullJitter, random: options.random,
    });
  }

  /** The delay before the next retry: the server's pushback when ≥ 0 (which resets the backoff, gRFC A6), else full jitter. */
  nextDelayMs(pushbackMs: number): number {
    if (pushbackMs >= 0) {
      this.backoff.reset();
      return pushbackMs;
    }
    return this.backoff.next();
  }
}
