/**
 * The hedge budget: a token bucket that bounds the share of calls hedged. Every
 * hedgeable call deposits `ratio` tokens when it starts, every hedge takes one, and a
 * hedge is sent only while the bucket is positive: over N calls at most
 * `cap + ratio × N + 1` hedges, whatever the latency does.
 *
 * It starts empty (a new client's calls have paid for no hedges, but the first call's
 * own deposit pays for its hedge). The cap bounds the burst after a quiet spell. Hedges
 * are also gated by the retry budget, so a failing service is not sent copies on top.
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
