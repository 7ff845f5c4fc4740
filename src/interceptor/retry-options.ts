/**
 * Options of the retry interceptor: the public `RetryOptions`, their defaults,
 * and the one validation step that turns them into a frozen `ResolvedRetryOptions`.
 */
import { status, type StatusObject } from '@grpc/grpc-js';
import { resolveHedgingOptions, type HedgeEvent, type HedgingOptions, type ResolvedHedgingOptions } from './hedging-options';
import { resolveIdempotencyKeys, type IdempotencyKeysOptions, type ResolvedIdempotencyKeys } from './idempotency-keys';

/** What `onRetry` is told each time a call is about to be retried. */
export interface RetryEvent {
  /** Full method path, e.g. `/pkg.Service/Method`. */
  readonly method: string;
  /** Number of the attempt about to start (2 for the first retry), counting the first attempt. */
  readonly attempt: number;
  /** Status of the attempt that just failed. */
  readonly status: StatusObject;
  /** Address (`host:port`) of the replica that failed, when known; the retry avoids it. */
  readonly peer: string | undefined;
  /** Milliseconds the call waits before the retry starts (jittered backoff or server pushback). */
  readonly delayMs: number;
  /** True when the attempt was cut by `perAttemptTimeoutMs`. */
  readonly attemptTimedOut: boolean;
}

/**
 * Options of `createRetryInterceptor`. All optional; every field says its default.
 *
 * Retry scope: unary and server-streaming calls whose attempt ends with a code in
 * `retryableCodes` are retried. The default, UNAVAILABLE, means the server did not
 * process the call, so retrying is usually safe even for non-idempotent methods; a
 * server or proxy that answers UNAVAILABLE *after* doing the work runs it twice (narrow
 * with `shouldRetry`). Client- and bidi-streaming calls pass through untouched.
 */
export interface RetryOptions {
  /** Attempts per call, counting the first one (as gRFC A6); integer ≥ 1, 1 = never retry. Defaults to 3. */
  maxAttempts?: number;
  /** Status codes that may be retried (never OK). Defaults to `[status.UNAVAILABLE]`. */
  retryableCodes?: readonly status[];
  /** Ceiling of the first retry's delay; each delay is uniform in [0, ceiling) ("full jitter"). Defaults to 25. */
  initialBackoffMs?: number;
  /** Largest backoff ceiling. Defaults to 1000. */
  maxBackoffMs?: number;
  /** The ceiling is multiplied by this after each retry (as gRFC A6). Defaults to 2. */
  backoffMultiplier?: number;
  /**
   * Cut an attempt that has not been answered (unary: no response headers; server-streaming:
   * no headers or message) after this long, and retry it elsewhere: a hung replica then costs
   * one attempt, not the whole deadline. Timed-out attempts end with DEADLINE_EXCEEDED and are
   * retried whatever `retryableCodes` says (still subject to `shouldRetry`, attempts, budget,
   * deadline). The server may have processed a timed-out attempt. Defaults to off (undefined).
   */
  perAttemptTimeoutMs?: number;
  /**
   * Retry budget (gRFC A6 retryThrottling), one token bucket per channel target: each
   * call failing with a retryable code (or timing out) takes 1 token, however many of its
   * attempts fail; each OK attempt gives back `tokenRatio`; other codes and sending a hedge
   * cost nothing. Retries and hedges stop while tokens ≤ maxTokens / 2. Defaults to 100.
   */
  maxTokens?: number;
  /** Tokens given back per successful attempt. Defaults to 1. */
  tokenRatio?: number;
  /**
   * Narrows retries (it can only say no): called with the method path and the failed
   * attempt's status, only for a status that would otherwise be retried. A throw counts
   * as false (and is logged). Defaults to retrying every method.
   */
  shouldRetry?: (method: string, status: StatusObject) => boolean;
  /**
   * Methods safe to run twice (given the method path). A call normally commits, and is no
   * longer retried, on its response headers (gRFC A6), so a replica dying mid-answer fails
   * it; for these methods a unary call commits on its OK status (headers and message held
   * until then) and a server stream on its first message. With `hedging`, their unary calls
   * are hedged too. A throw counts as false. Defaults to none (every method commits on headers).
   */
  isIdempotent?: (method: string) => boolean;
  /**
   * Hedging of slow calls (see `HedgingOptions`): unary calls of the methods `isIdempotent`
   * (or `idempotencyKeys`) names get a second copy on another replica when the first has not answered within the
   * hedging delay; the first answer wins. A hedged call may run twice on the servers.
   * All attempts (first, hedges, retries) count toward `maxAttempts`. Defaults to off (undefined).
   */
  hedging?: HedgingOptions;
  /**
   * Idempotency keys (see `IdempotencyKeysOptions`): unary calls of the methods it names carry
   * one key per logical call (the caller's own when its metadata has the header), and are
   * retried and hedged as if `isIdempotent` named them, plus on connection loss whatever
   * `retryableCodes` says. The servers must run `createIdempotencyInterceptor`, which runs a
   * call once per key. Defaults to off (undefined): no key is sent.
   */
  idempotencyKeys?: IdempotencyKeysOptions;
  /** Called just before each retry is scheduled (metrics, logging). Must not throw (a throw is logged). Defaults to none. */
  onRetry?: (event: RetryEvent) => void;
  /** Called just before each hedge starts (metrics, logging). Must not throw (a throw is logged). Defaults to none. */
  onHedge?: (event: HedgeEvent) => void;
  /** Randomness in [0, 1) for the jitter. Defaults to Math.random. */
  random?: () => number;
}

/** The defaults of every `RetryOptions` field. */
export const DEFAULT_RETRY_OPTIONS = Object.freeze({
  /** Attempts per call, the first included. */
  maxAttempts: 3,
  /** Codes retried: UNAVAILABLE ("not processed"). */
  retryableCodes: Object.freeze([status.UNAVAILABLE]) as readonly status[],
  /** Ceiling of the first retry's delay. */
  initialBackoffMs: 25,
  /** Largest delay ceiling. */
  maxBackoffMs: 1000,
  /** Growth of the ceiling per retry. */
  backoffMultiplier: 2,
  /** No per-attempt timeout: an attempt may use the call's whole deadline. */
  perAttemptTimeoutMs: undefined as number | undefined,
  /** Retry budget size (gRFC A6 `retryThrottling.maxTokens`). */
  maxTokens: 100,
  /** Tokens a success puts back. */
  tokenRatio: 1,
  /** No extra condition. */
  shouldRetry: undefined as RetryOptions['shouldRetry'],
  /** No method is idempotent unless named. */
  isIdempotent: undefined as RetryOptions['isIdempotent'],
  /** Hedging off. */
  hedging: undefined as HedgingOptions | undefined,
  /** No idempotency keys. */
  idempotencyKeys: undefined as IdempotencyKeysOptions | undefined,
  /** No hook. */
  onRetry: undefined as RetryOptions['onRetry'],
  /** No hook. */
  onHedge: undefined as RetryOptions['onHedge'],
  /** The random source of the backoff. */
  random: Math.random,
});

/** Validated options, plus what the per-call path needs precomputed. */
export interface ResolvedRetryOptions {
  readonly maxAttempts: number;
  /** Bit `1 << code` set for each retryable code: a lookup with no allocation. */
  readonly retryableCodeMask: number;
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly backoffMultiplier: number;
  readonly perAttemptTimeoutMs: number | undefined;
  /** Status details of an attempt cut by `perAttemptTimeoutMs`. */
  readonly attemptTimeoutDetails: string;
  readonly maxTokens: number;
  readonly tokenRatio: number;
  readonly shouldRetry: RetryOptions['shouldRetry'];
  readonly isIdempotent: RetryOptions['isIdempotent'];
  /** Undefined: no hedging. */
  readonly hedging: ResolvedHedgingOptions | undefined;
  /** Undefined: no idempotency keys. */
  readonly idempotencyKeys: ResolvedIdempotencyKeys | undefined;
  readonly onRetry: RetryOptions['onRetry'];
  readonly onHedge: RetryOptions['onHedge'];
  readonly random: () => number;
}

/** Whether `code` is in the retryable mask. */
export function isRetryableCode(mask: number, code: number): boolean {
  return code > 0 && code < 31 && (mask & (1 << code)) !== 0;
}

const KNOWN_KEYS = new Set(Object.keys(DEFAULT_RETRY_OPTIONS));

function fail(what: string, value: unknown): never {
  let shown: string;
  try {
    shown = typeof value === 'function' ? 'a function' : typeof value === 'number' ? String(value) : JSON.stringify(value) ?? String(value);
  } catch {
    shown = String(value);
  }
  throw new TypeError(`grpc-etcd-lb retry interceptor: ${what}, got ${shown}`);
}

function finiteAtLeast(name: string, value: number, min: number, inclusive: boolean): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || (inclusive ? value < min : value <= min)) {
    fail(`${name} must be a finite number ${inclusive ? '≥' : '>'} ${min}`, value);
  }
  return value;
}

function optionalFunction<F>(name: string, value: F | undefined): F | undefined {
  if (value !== undefined && typeof value !== 'function') fail(`${name} must be a function`, value);
  return value;
}

/** Merges `options` over the defaults and validates once; throws a TypeError naming the bad option and value. */
export function resolveRetryOptions(options: RetryOptions = {}): ResolvedRetryOptions {
  if (options === null || typeof options !== 'object') fail('options must be an object', options);
  for (const key of Object.keys(options)) {
    if (!KNOWN_KEYS.has(key)) fail(`unknown option '${key}' (known: ${[...KNOWN_KEYS].join(', ')})`, (options as Record<string, unknown>)[key]);
  }
  const d = DEFAULT_RETRY_OPTIONS;
  const maxAttempts = options.maxAttempts ?? d.maxAttempts;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) fail('maxAttempts must be an integer ≥ 1 (it counts the first attempt)', maxAttempts);

  const codes = options.retryableCodes ?? d.retryableCodes;
  if (!Array.isArray(codes)) fail('retryableCodes must be an array of grpc status codes', codes);
  let retryableCodeMask = 0;
  for (const code of codes) {
    if (!Number.isInteger(code) || code < 1 || code > 16) fail('retryableCodes must hold grpc status codes 1..16 (OK cannot be retried)', code);
    retryableCodeMask |= 1 << code;
  }

  const initialBackoffMs = finiteAtLeast('initialBackoffMs', options.initialBackoffMs ?? d.initialBackoffMs, 0, true);
  const maxBackoffMs = finiteAtLeast('maxBackoffMs', options.maxBackoffMs ?? d.maxBackoffMs, 0, true);
  if (maxBackoffMs < initialBackoffMs) fail(`maxBackoffMs must be ≥ initialBackoffMs (${initialBackoffMs})`, maxBackoffMs);
  const backoffMultiplier = finiteAtLeast('backoffMultiplier', options.backoffMultiplier ?? d.backoffMultiplier, 0, false);

  const perAttemptTimeoutMs = options.perAttemptTimeoutMs ?? d.perAttemptTimeoutMs;
  if (perAttemptTimeoutMs !== undefined) finiteAtLeast('perAttemptTimeoutMs (omit it to turn it off)', perAttemptTimeoutMs, 0, false);

  const maxTokens = finiteAtLeast('maxTokens', options.maxTokens ?? d.maxTokens, 0, false);
  const tokenRatio = finiteAtLeast('tokenRatio', options.tokenRatio ?? d.tokenRatio, 0, false);
  const random = optionalFunction('random', options.random) ?? d.random;
  const hedging = options.hedging === undefined ? undefined : resolveHedgingOptions(options.hedging, maxAttempts, fail);
  const isIdempotent = optionalFunction('isIdempotent', options.isIdempotent);
  const idempotencyKeys = options.idempotencyKeys === undefined ? undefined : resolveIdempotencyKeys(options.idempotencyKeys, fail);
  if (hedging !== undefined && isIdempotent === undefined && idempotencyKeys === undefined) {
    fail('hedging needs isIdempotent or idempotencyKeys: only the methods they name are hedged (a hedged call may run twice)', isIdempotent);
  }

  return Object.freeze({
    maxAttempts,
    retryableCodeMask,
    initialBackoffMs,
    maxBackoffMs,
    backoffMultiplier,
    perAttemptTimeoutMs,
    attemptTimeoutDetails: `attempt timed out after ${perAttemptTimeoutMs} ms (retry perAttemptTimeoutMs)`,
    maxTokens,
    tokenRatio,
    shouldRetry: optionalFunction('shouldRetry', options.shouldRetry),
    isIdempotent,
    hedging,
    idempotencyKeys,
    onRetry: optionalFunction('onRetry', options.onRetry),
    onHedge: optionalFunction('onHedge', options.onHedge),
    random,
  });
}
