/**
 * The hedge budget: a token bucket that bounds the share of calls hedged. Every
 * hedgeable call deposits `ratio` tokens when it starts, every hedge takes one,
 * and a hedge is sent only while the bucket is positive; so over N calls at most
 * `cap + ratio × N + 1` hedges are sent, whatever the latency does.
 *
 * It starts empty: a new client has no calls that paid for hedges (the first call's
 * own deposit is enough for its hedge, so fixed-delay hedging works from the start).
 * The cap (`HEDGE_BUDGET_CAP_CALLS` calls' deposits, 10 tokens with ratio 0.1) bounds
 * the burst after a quiet spell: when every replica turns slow at once, hedges fall to
 * `ratio` of calls after at most `cap` extra ones.
 *
 * Hedges are also gated by the retry budget (the interceptor checks both), so an
 * overloaded service whose calls fail is not sent copies on top of the failures.
 */

/** One bucket; the interceptor keeps one per channel target. */
export class HedgeBudget {
  private tokenCount = 0;

  constructor(
    private readonly ratio: number,
    private readonly maxTokens: number,
  ) {}

  /** Tokens now, in (-1, maxTokens]. */
  get tokens(): number {
    return this.tokenCount;
  }

  /** A hedgeable call started. */
  recordCall(): void {
    this.tokenCount = Math.min(this.tokenCount + this.ratio, this.maxTokens);
  }

  /** Takes a token for a hedge if the bucket is positive; false: no hedge now. */
  tryTake(): boolean {
    if (this.tokenCount <= 0) return false;
    this.tokenCount -= 1;
    return true;
  }
}
