/**
 * The retry budget: gRFC A6 retryThrottling's token bucket, one per channel target.
 * A failed call takes a token once, at its first retryable failure (logical-call.ts),
 * however many attempts fail; an OK attempt gives back `tokenRatio`; other codes and
 * sending a hedge neither take nor give. Retries and hedges run only while more than
 * half is left. Why A6's bucket and not Envoy's budget, and how to size it:
 * docs/retries-and-hedging.md, "Budget".
 */

/** One token bucket; the interceptor keeps one per channel target. */
export class RetryBudget {
  private tokenCount: number;

  constructor(
    private readonly maxTokens: number,
    private readonly tokenRatio: number,
  ) {
    this.tokenCount = maxTokens;
  }

  /** Tokens left, in [0, maxTokens]. */
  get tokens(): number {
    return this.tokenCount;
  }

  /** An attempt ended OK. */
  recordSuccess(): void {
    this.tokenCount = Math.min(this.tokenCount + this.tokenRatio, this.maxTokens);
  }

  /** A call's first attempt to end with a retryable code or time out (later ones of the call do not count). */
  recordFailure(): void {
    this.tokenCount = Math.max(this.tokenCount - 1, 0);
  }

  /** Whether a retry may start now (tokens strictly above half, as gRFC A6). */
  canRetry(): boolean {
    return this.tokenCount > this.maxTokens / 2;
  }
}
