/**
 * The hedge budget: a token bucket bounding the share of calls hedged. Each hedgeable
 * call deposits `ratio` tokens as it starts, each hedge takes one, and hedges go only
 * while the bucket is positive: over N calls at most `cap + ratio × N + 1` hedges. It
 * starts empty (the first call's own deposit pays for its hedge); the cap bounds the
 * burst after a quiet spell. The retry budget gates hedges too (hedging-call.ts).
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
