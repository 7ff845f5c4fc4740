/**
 * The retry budget: gRFC A6 retryThrottling's token bucket. A failed attempt
 * takes a token, a successful one gives back `tokenRatio`; retries are allowed
 * only while more than half the bucket is left. With the defaults (100, 1) one
 * dead replica out of four never drains it (a call retried once nets 0), and a
 * total outage costs at most `maxTokens / 2` = 50 failed attempts before retries
 * stop (33 of them retries with maxAttempts 3); after that each call makes one attempt.
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

  /** An attempt ended with a retryable code or timed out. */
  recordFailure(): void {
    this.tokenCount = Math.max(this.tokenCount - 1, 0);
  }

  /**
   * A hedge was sent: it costs a token like a failure, so hedges stop, with retries,
   * while the bucket is at half or below (the service is failing, copies would add load).
   */
  recordHedge(): void {
    this.tokenCount = Math.max(this.tokenCount - 1, 0);
  }

  /** Whether a retry may start now (tokens strictly above half, as gRFC A6). */
  canRetry(): boolean {
    return this.tokenCount > this.maxTokens / 2;
  }
}
