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
 * replica the call has not tried yet (the `etcd_*` pickers skip tried replicas while
 * another READY one exists; under grpc-js's own policies a retry is just a new pick).
 * Add it with the `interceptors` client or call option.
 *
 * With no options: unary and server-streaming calls are retried on UNAVAILABLE, up to 3
 * attempts, with full-jitter backoff from 25 ms, within a retry budget of 100 tokens per
 * interceptor and channel target; client- and bidi-streaming calls pass through. A server
 * that answers UNAVAILABLE after doing the work gets the call twice: narrow with
 * `shouldRetry` when that matters. A call is not retried once response headers or a
 * message arrived (unless `isIdempotent` or `idempotencyKeys` names it), nor past its
 * deadline or cancellation; server pushback is honoured. Each option: `RetryOptions`;
 * hedging, idempotency keys and the budget: docs/retries-and-hedging.md.
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
