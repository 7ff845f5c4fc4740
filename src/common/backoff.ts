/** The package's one backoff: exponential to a cap, with a jitter strategy. */

/** Turns the current exponential step `baseMs` into a delay, drawing from `random` ([0, 1)). */
export type Jitter = (baseMs: number, random: () => number) => number;

/** A random source that returns something outside [0, 1) must not produce a negative or unbounded delay. */
function draw(random: () => number): number {
  const r = random();
  return r >= 0 && r < 1 ? r : 0;
}

/** uniform[0, base): gRFC A6's retry backoff. */
export const fullJitter: Jitter = (baseMs, random) => Math.floor(draw(random) * baseMs);

/** uniform[base/2, base): half fixed, half random. */
export const equalJitter: Jitter = (baseMs, random) => baseMs / 2 + draw(random) * (baseMs / 2);

/** base less up to `fraction` of it. */
export function proportionalJitter(fraction: number): Jitter {
  return (baseMs, random) => Math.round(baseMs * (1 - fraction * draw(random)));
}

export interface BackoffOptions {
  /** The first step. */
  readonly initialMs: number;
  /** The largest step (the initial step is clamped to it). */
  readonly maxMs: number;
  /** Growth per attempt. Defaults to 2. */
  readonly multiplier?: number;
  /** How a step becomes a delay. */
  readonly jitter: Jitter;
  /** Uniform [0, 1) source. Defaults to Math.random. */
  readonly random?: () => number;
}

/** A small mutable iterator: `next()` gives the delay before the next attempt, `reset()` after a success. */
export class Backoff {
  private readonly initialMs: number;
  private readonly multiplier: number;
  private readonly random: () => number;
  private stepMs: number;

  constructor(private readonly options: BackoffOptions) {
    this.initialMs = Math.min(options.initialMs, options.maxMs);
    this.multiplier = options.multiplier ?? 2;
    this.random = options.random ?? Math.random;
    this.stepMs = this.initialMs;
  }

  next(): number {
    const delayMs = this.options.jitter(this.stepMs, this.random);
    this.stepMs = Math.min(this.stepMs * this.multiplier, this.options.maxMs);
    return delayMs;
  }

  reset(): void {
    this.stepMs = this.initialMs;
  }
}
