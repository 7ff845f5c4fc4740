/**
 * `createRetryInterceptor()`: retries a failed call on a *different* replica.
 * Anchors: gRFC A6 (attempts, backoff, retryThrottling, pushback), Envoy's
 * `previous_hosts` retry predicate, Kitex `RetrySameNode=false`, Dubbo failover.
 */
import { InterceptingCall, type Interceptor, type StatusObject } from '@grpc/grpc-js';
import { log, logVerbosity } from '../common/grpc-experimental';
import { currentMetrics } from '../metrics/metrics-binding';
import { retryMetricsOf, type RetryMetrics } from '../metrics/retry-metrics';
import { type RetryScope } from './call-scope';
import { HedgeBudget } from './hedge-budget';
import { HedgeDelayEstimator } from './hedge-delay';
import { HedgingCall } from './hedging-call';
import { RetryBudget } from './retry-budget';
import { resolveRetryOptions, type ResolvedRetryOptions, type RetryOptions } from './retry-options';
import { RetryingCall } from './retrying-call';
import { isUnregisteredTarget, unregisteredTargetMessage } from './unregistered-target';

const WARN_INTERVAL_MS = 10_000;

/** Per-interceptor state: options, budgets per channel target, delay estimators per method, warning rate limit. */
class RetryInterceptorScope implements RetryScope {
  private readonly budgets = new Map<string, RetryBudget>();
  private readonly hedgeBudgets = new Map<string, HedgeBudget>();
  private readonly estimators = new Map<string, HedgeDelayEstimator>();
  /** Targets already reported as used before `register()`. */
  private readonly unregisteredTargets = new Set<string>();
  private lastWarnMs = -Infinity;
  private suppressedWarnings = 0;

  /** Bound when the interceptor is created: set your MeterProvider before. */
  readonly metrics: RetryMetrics | null = retryMetricsOf(currentMetrics());

  constructor(readonly options: ResolvedRetryOptions) {}

  budgetFor(target: string): RetryBudget {
    let budget = this.budgets.get(target);
    if (budget === undefined) {
      budget = new RetryBudget(this.options.maxTokens, this.options.tokenRatio);
      this.budgets.set(target, budget);
      this.metrics?.trackBudget(target, budget);
    }
    return budget;
  }

  hedgeBudgetFor(target: string): HedgeBudget {
    let budget = this.hedgeBudgets.get(target);
    if (budget === undefined) {
      const hedging = this.options.hedging!;
      budget = new HedgeBudget(hedging.maxHedgeRatio, hedging.maxHedgeTokens);
      this.hedgeBudgets.set(target, budget);
    }
    return budget;
  }

  delayEstimatorFor(method: string): HedgeDelayEstimator {
    let estimator = this.estimators.get(method);
    if (estimator === undefined) {
      estimator = new HedgeDelayEstimator();
      this.estimators.set(method, estimator);
    }
    return estimator;
  }

  isIdempotent(method: string): boolean {
    const isIdempotent = this.options.isIdempotent;
    if (isIdempotent === undefined) return false;
    try {
      return isIdempotent(method) === true;
    } catch (err) {
      this.warn(`isIdempotent threw (treated as false): ${(err as Error)?.message ?? String(err)}`);
      return false;
    }
  }

  keyHeaderFor(definition: { readonly path: string; readonly requestStream: boolean; readonly responseStream: boolean }): string | undefined {
    const keys = this.options.idempotencyKeys;
    if (keys === undefined || definition.requestStream || definition.responseStream) return undefined;
    return keys.matches(definition.path, this.warnHook) ? keys.header : undefined;
  }

  private readonly warnHook = (text: string): void => this.warn(text);

  shouldRetry(method: string, attemptStatus: StatusObject): boolean {
    const shouldRetry = this.options.shouldRetry;
    if (shouldRetry === undefined) return true;
    try {
      return shouldRetry(method, attemptStatus) === true;
    } catch (err) {
      this.warn(`shouldRetry threw (treated as false): ${(err as Error)?.message ?? String(err)}`);
      return false;
    }
  }

  checkResolution(target: string, attemptStatus: StatusObject): void {
    if (this.unregisteredTargets.has(target) || !isUnregisteredTarget(target, attemptStatus)) return;
    this.unregisteredTargets.add(target);
    log(logVerbosity.ERROR, unregisteredTargetMessage(target));
  }

  runHook<E>(name: string, hook: (event: E) => void, event: E): void {
    try {
      hook(event);
    } catch (err) {
      this.warn(`${name} threw (ignored): ${(err as Error)?.message ?? String(err)}`);
    }
  }

  warn(text: string): void {
    const now = Date.now();
    if (now - this.lastWarnMs < WARN_INTERVAL_MS) {
      this.suppressedWarnings++;
      return;
    }
    const suppressed = this.suppressedWarnings ? ` (${this.suppressedWarnings} similar warnings suppressed)` : '';
    this.lastWarnMs = now;
    this.suppressedWarnings = 0;
    log(logVerbosity.ERROR, `grpc-etcd-lb retry interceptor: ${text}${suppressed}`);
  }
}

/**
 * Returns a grpc-js client `Interceptor` that retries failed calls, each retry on a
 * replica the call has not tried yet. Add it with the `interceptors` client option
 * (`new Client(target, creds, { interceptors: [createRetryInterceptor()] })`) or call option.
 *
 * With no options: every unary and server-streaming call is retried on UNAVAILABLE
 * (the server did not process it), up to 3 attempts in all, with full-jitter
 * exponential backoff (25 ms, then 50 ms ceilings), within a retry budget of 100 tokens
 * per channel target. See `RetryOptions` for each knob and the retry-scope caveat:
 * a server that answers UNAVAILABLE after doing the work gets the call twice; narrow
 * with `shouldRetry` (e.g. to idempotent methods) when that matters.
 *
 * Behaviour:
 * - Replica avoidance: each retry carries the set of replicas this call already tried;
 *   the `etcd_*` pickers skip them while another READY replica exists, and reuse one
 *   (after the backoff) only when none does. Under grpc-js's own policies a retry is
 *   simply a new pick: with `round_robin` that is normally the next replica in the
 *   rotation (not guaranteed under concurrency); with `pick_first` it is the same one.
 * - Deadline: never sleeps or starts an attempt past the call's deadline (its own or a
 *   propagated parent's); when the backoff would cross it, the caller gets the last
 *   failure at once. Cancelling the call cancels the attempt in flight or the pending
 *   retry; no attempt starts after that.
 * - Server pushback: a `grpc-retry-pushback-ms` trailer ≥ 0 replaces the backoff;
 *   a negative or invalid one stops retrying (gRFC A6). Retries carry
 *   `grpc-previous-rpc-attempts`.
 * - Commit: once response headers or a message arrive, the call is never retried (so
 *   a server stream is retried only before its first message).
 * - Pass-through: client-streaming and bidi-streaming calls are not retried or touched.
 * - Nothing internal reaches a server: the tried-set travels in the call's metadata
 *   *options* object, which grpc-js never serialises, whatever the LB policy.
 * - Budget scope: one token bucket per interceptor instance and channel target
 *   (the target string, e.g. `etcd:///svc`), so clients sharing an interceptor and a
 *   target share a budget, as calls on one grpc-js channel do in gRFC A6.
 * - Hedging (with `hedging`, see `HedgingOptions`): unary calls of the methods
 *   `isIdempotent` names get another copy on a replica the call has not tried when no
 *   answer came within the hedging delay; the first OK or non-retryable answer wins and
 *   the other copies are cancelled. A hedged call may run more than once on the servers.
 *   Hedges share the call's attempts (`maxAttempts`), deadline, cancellation, pushback,
 *   tried-set and retry budget, and have their own budget (`maxHedgeRatio`) per target.
 * - Idempotency keys (with `idempotencyKeys`, see `IdempotencyKeysOptions`): unary calls of
 *   the methods it names carry one key on every attempt and hedge, and are retried and
 *   hedged as idempotent ones; servers running `createIdempotencyInterceptor` run each key once.
 *
 * Per call it allocates a copy of the metadata and the steering state; per retry,
 * one more metadata copy and the next attempt.
 *
 * @throws TypeError naming the option and value when `options` is invalid.
 */
export function createRetryInterceptor(options: RetryOptions = {}): Interceptor {
  const scope = new RetryInterceptorScope(resolveRetryOptions(options));
  const hedging = scope.options.hedging !== undefined;
  if (!hedging && scope.options.idempotencyKeys === undefined) {
    return (callOptions, nextCall) =>
      callOptions.method_definition.requestStream
        ? new InterceptingCall(nextCall(callOptions))
        : new InterceptingCall(new RetryingCall(scope, callOptions, nextCall));
  }
  return (callOptions, nextCall) => {
    const definition = callOptions.method_definition;
    if (definition.requestStream) return new InterceptingCall(nextCall(callOptions));
    // Asked once per call; the call gets the answers rather than asking again.
    const keyHeader = scope.keyHeaderFor(definition);
    const idempotent = keyHeader !== undefined || scope.isIdempotent(definition.path);
    return hedging && idempotent && !definition.responseStream
      ? new InterceptingCall(new HedgingCall(scope, callOptions, nextCall, keyHeader))
      : new InterceptingCall(new RetryingCall(scope, callOptions, nextCall, idempotent, keyHeader));
  };
}
