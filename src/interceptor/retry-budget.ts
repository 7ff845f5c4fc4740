/**
 * The retry budget: gRFC A6 retryThrottling's token bucket, one per channel target.
 * A failed call takes a token, a successful attempt gives back `tokenRatio`; retries
 * (and hedges) are allowed only while more than half the bucket is left.
 *
 * What counts (A6: "every failed RPC decrements by 1"; a failure is a retryable or,
 * for hedging, non-fatal status, or pushback): the logical call's first retryable
 * failure takes the token (logical-call.ts), not each attempt's, so a burst in which
 * retries also land on dead replicas (churn: few replicas usable) costs one token per
 * call. Sending a hedge costs nothing, and answers that are not failures of the
 * replica (NOT_FOUND, UNIMPLEMENTED, ...) neither take nor give: hedged reads that
 * often say NOT_FOUND must not turn retries off.
 *
 * Why this bucket and not Envoy's budget (retries ≤ 20 % of *active* requests): a
 * bucket remembers, so a total outage stops retries after maxTokens / 2 failed calls
 * (with the defaults 50 calls, each retried at most maxAttempts − 1 times) and then
 * costs one attempt per call; Envoy's budget keeps retrying 20 % forever, and a
 * burst of simultaneous failures cannot exhaust it. The bucket's weakness is such a
 * burst: more than maxTokens / 2 calls failing at once (e.g. in flight on one replica
 * that dies) turns retries off until successes refill it. Size maxTokens above twice
 * the calls in flight on one replica. With the defaults one dead replica of four
 * never drains it (a call retried once nets 0).
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
