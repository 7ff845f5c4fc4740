/**
 * The contract between the retry interceptor and the logical calls it creates
 * (`RetryingCall`, `HedgingCall`): the per-interceptor scope they draw options,
 * budgets and hooks from, and the grpc-js call shapes they stand in for.
 */
import { type Metadata, type NextCall, type StatusObject } from '@grpc/grpc-js';
import { tracer } from '../common/grpc-experimental';
import { type RetryMetrics } from '../metrics/retry-metrics';
import { type HedgeBudget } from './hedge-budget';
import { type HedgeDelayEstimator } from './hedge-delay';
import { type RetryBudget } from './retry-budget';
import { type ResolvedRetryOptions } from './retry-options';

/** What `nextCall` returns: grpc-js does not export the interface by name. */
export type AttemptCall = ReturnType<NextCall>;
/** What grpc-js passes with a request message (its write callback). */
export type MessageContext = Parameters<AttemptCall['sendMessageWithContext']>[0];

/** The context of a message sent with none. */
export const NO_CONTEXT: MessageContext = Object.freeze({});

/** Header and trailer telling how many attempts came before this one (as grpc-js's own retries). */
export const PREVIOUS_ATTEMPTS_KEY = 'grpc-previous-rpc-attempts';

/** The interceptor's tracer: `GRPC_TRACE=etcd_retry`. */
export const trace = tracer('etcd_retry');

/** Per-interceptor state a call needs: the options, the budgets, a rate-limited warning. */
export interface RetryScope {
  readonly options: ResolvedRetryOptions;
  /** The budget of one channel target, created on first use. */
  budgetFor(target: string): RetryBudget;
  /** The hedge budget of one channel target, created on first use (only with `hedging`). */
  hedgeBudgetFor(target: string): HedgeBudget;
  /** The adaptive-delay estimator of one method, created on first use (only with adaptive hedging). */
  delayEstimatorFor(method: string): HedgeDelayEstimator;
  /** Whether `isIdempotent` names `method`; false when unset, and a throw counts as false (and is logged). */
  isIdempotent(method: string): boolean;
  /** The idempotency-key header when calls of `definition` carry a key (unary, named by `idempotencyKeys`), else undefined. */
  keyHeaderFor(definition: { readonly path: string; readonly requestStream: boolean; readonly responseStream: boolean }): string | undefined;
  /** `shouldRetry(method, status)`, true when unset; a throw counts as false (and is logged). */
  shouldRetry(method: string, status: StatusObject): boolean;
  /** An attempt on `target` ended with `attemptStatus`: logs once per target when it says `register()` came too late. */
  checkResolution(target: string, attemptStatus: StatusObject): void;
  /** Logs a problem (e.g. a throwing user hook) at most every few seconds. */
  warn(text: string): void;
  /** Calls the user hook `name` (onRetry, onHedge) with `event`; a throw is warned about (rate-limited) and ignored. */
  runHook<E>(name: string, hook: (event: E) => void, event: E): void;
  /** Where attempts, budget denials, pushbacks and call durations are recorded; null with metrics off. */
  readonly metrics: RetryMetrics | null;
}

/** Sets `grpc-previous-rpc-attempts` on `metadata` when `count` attempts came before (none: untouched). */
export function setPreviousAttempts(metadata: Metadata, count: number): void {
  if (count > 0) metadata.set(PREVIOUS_ATTEMPTS_KEY, String(count));
}

/**
 * The replica an attempt ran on, from grpc-js's `getPeer()`: without a subchannel it
 * reports the channel target (or 'unknown'), which is not a replica.
 */
export function peerOf(seen: string, target: string): string | undefined {
  return seen && seen !== target && seen !== 'unknown' ? seen : undefined;
}
