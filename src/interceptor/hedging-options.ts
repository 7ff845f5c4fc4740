/**
 * The `hedging` option of the retry interceptor and the `onHedge` event: public
 * types, defaults, and their validation (called from `resolveRetryOptions`).
 */

/** Why a hedge was sent. */
export type HedgeReason =
  /** The hedging delay passed with no answer from the attempts in flight. */
  | 'delay'
  /**
   * An attempt failed with a retryable code while another was still in flight: its
   * replacement is sent at once (or after the server's pushback), as gRFC A6 does for
   * `nonFatalStatusCodes`. It is gated like a retry (retry budget, `shouldRetry`,
   * pushback, deadline), not by the hedge budget.
   */
  | 'failure';

/** What `onHedge` is told just before each hedged attempt starts. */
export interface HedgeEvent {
  /** Full method path, e.g. `/pkg.Service/Method`. */
  readonly method: string;
  /** Number of the attempt about to start (2 for the first hedge), counting every attempt of the call. */
  readonly attempt: number;
  /** The call's hedging delay: `hedging.delayMs`, or the adaptive p95 when the call started. */
  readonly delayMs: number;
  /**
   * Address (`host:port`) of the attempt being hedged (the latest one in flight, or the one
   * that failed for `reason: 'failure'`), when known; the hedge avoids it and every other
   * replica this call tried (under the `etcd_*` policies).
   */
  readonly peer: string | undefined;
  /** Why the hedge was sent. */
  readonly reason: HedgeReason;
  /** Attempts of this call in flight when the hedge starts (not counting it). */
  readonly inFlight: number;
}

/**
 * Hedging (`createRetryInterceptor({ hedging })`): a second copy of a slow call is sent to
 * another replica, the first answer wins and the other copies are cancelled. Only unary
 * calls of methods `isIdempotent` or `idempotencyKeys` names are hedged — **a hedged call may
 * run twice** (or up to `maxAttempts` times) on the servers, unless it carries an idempotency
 * key and the servers deduplicate (`createIdempotencyInterceptor`). Every field is optional; `hedging: {}` turns
 * hedging on with the adaptive delay.
 */
export interface HedgingOptions {
  /**
   * Milliseconds to wait for an answer before sending the next copy (0 = send every copy at
   * once). Defaults to adaptive: the p95 of the method's first-attempt latency over its last
   * 1,000 first attempts, at least 2 ms; no hedging until 100 have been seen.
   */
  delayMs?: number;
  /** Copies of a call in flight at once, counting the first; integer 2..5 (gRFC A6's limit). Defaults to 2. */
  maxAttempts?: number;
  /**
   * Hedge budget: every hedgeable call adds this many tokens (capped at 100 calls' worth:
   * 10 tokens with the default), every hedge takes 1, hedges are sent only while tokens are
   * positive. So at most about this fraction of calls is hedged. Defaults to 0.1.
   */
  maxHedgeRatio?: number;
}

/** The defaults of every `HedgingOptions` field (`delayMs` undefined = adaptive). */
export const DEFAULT_HEDGING_OPTIONS = Object.freeze({
  /** No fixed delay: adaptive, from the method's recent latencies. */
  delayMs: undefined as number | undefined,
  /** The first attempt and one hedge. */
  maxAttempts: 2,
  /** At most one hedge per ten calls. */
  maxHedgeRatio: 0.1,
});

/** gRFC A6 caps attempts at 5 (grpc-js's `grpc-node.retry_max_attempts_limit` too). */
export const HEDGING_MAX_ATTEMPTS_LIMIT = 5;
/** The hedge bucket holds at most this many calls' deposits. */
export const HEDGE_BUDGET_CAP_CALLS = 100;

/** Validated hedging options. */
export interface ResolvedHedgingOptions {
  /** Undefined: adaptive. */
  readonly delayMs: number | undefined;
  readonly maxAttempts: number;
  readonly maxHedgeRatio: number;
  /** Largest token count of a hedge bucket: `HEDGE_BUDGET_CAP_CALLS × maxHedgeRatio`, at least 1. */
  readonly maxHedgeTokens: number;
}

const KNOWN_KEYS = new Set(Object.keys(DEFAULT_HEDGING_OPTIONS));

/**
 * Merges `hedging` over the defaults and validates it; `fail(what, value)` throws the
 * interceptor's TypeError. `maxAttempts` is the interceptor's top-level one.
 */
export function resolveHedgingOptions(
  hedging: HedgingOptions,
  maxAttempts: number,
  fail: (what: string, value: unknown) => never,
): ResolvedHedgingOptions {
  if (hedging === null || typeof hedging !== 'object' || Array.isArray(hedging)) fail('hedging must be an object (omit it to turn hedging off)', hedging);
  for (const key of Object.keys(hedging)) {
    if (!KNOWN_KEYS.has(key)) fail(`unknown option 'hedging.${key}' (known: ${[...KNOWN_KEYS].join(', ')})`, (hedging as Record<string, unknown>)[key]);
  }
  const d = DEFAULT_HEDGING_OPTIONS;
  const delayMs = hedging.delayMs ?? d.delayMs;
  if (delayMs !== undefined && (typeof delayMs !== 'number' || !Number.isFinite(delayMs) || delayMs < 0)) {
    fail('hedging.delayMs must be a finite number ≥ 0 (omit it for the adaptive delay)', delayMs);
  }
  const copies = hedging.maxAttempts ?? d.maxAttempts;
  if (!Number.isInteger(copies) || copies < 2 || copies > HEDGING_MAX_ATTEMPTS_LIMIT) {
    fail(`hedging.maxAttempts must be an integer 2..${HEDGING_MAX_ATTEMPTS_LIMIT} (copies in flight, counting the first)`, copies);
  }
  if (maxAttempts < 2) fail('maxAttempts must be ≥ 2 with hedging (it counts the first attempt, hedges and retries)', maxAttempts);
  const maxHedgeRatio = hedging.maxHedgeRatio ?? d.maxHedgeRatio;
  if (typeof maxHedgeRatio !== 'number' || !Number.isFinite(maxHedgeRatio) || maxHedgeRatio <= 0) {
    fail('hedging.maxHedgeRatio must be a finite number > 0', maxHedgeRatio);
  }
  return Object.freeze({
    delayMs,
    maxAttempts: copies,
    maxHedgeRatio,
    maxHedgeTokens: Math.max(1, HEDGE_BUDGET_CAP_CALLS * maxHedgeRatio),
  });
}
