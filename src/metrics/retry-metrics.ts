/**
 * `grpc_etcd_lb.retry.*`: attributes `grpc.method`, `grpc.status`, `attempt`, and `grpc.target`
 * on budget tokens. Recorded at attempt and call ends, nothing per attempt start.
 */
import { status as grpcStatus } from '@grpc/grpc-js';
import type { Attributes, Counter, Histogram, Meter, ObservableResult } from './otel-types';

export const RETRY_ATTEMPTS = 'grpc_etcd_lb.retry.attempts';
export const RETRY_BUDGET_TOKENS = 'grpc_etcd_lb.retry.budget_tokens';
export const RETRY_BUDGET_EXHAUSTED = 'grpc_etcd_lb.retry.budget_exhausted';
export const RETRY_PUSHBACKS = 'grpc_etcd_lb.retry.pushbacks';
export const RETRY_CALL_DURATION = 'grpc_etcd_lb.retry.call.duration';

/** Which attempt of a call: the first, a retry after a failure, or a hedge (a copy while another is in flight). */
export type AttemptKind = 'first' | 'retry' | 'hedge';

/** Buckets in seconds, as gRFC A66's latency histograms. */
const DURATION_BUCKETS_S = [0, 0.00001, 0.00005, 0.0001, 0.0003, 0.0006, 0.0008, 0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.008,
  0.01, 0.013, 0.016, 0.02, 0.025, 0.03, 0.04, 0.05, 0.065, 0.08, 0.1, 0.13, 0.16, 0.2, 0.25, 0.3, 0.4, 0.5, 0.65, 0.8, 1, 2, 5, 10, 20, 50, 100];

/** A token bucket as the gauge reads it. */
export interface MeteredBudget {
  readonly tokens: number;
}

export class RetryInstruments {
  readonly attempts: Counter;
  readonly exhausted: Counter;
  readonly pushbacks: Counter;
  readonly duration: Histogram;
  private readonly budgets = new Set<{ readonly target: string; readonly budget: WeakRef<MeteredBudget> }>();
  /** Attribute objects by key: recording allocates nothing once a combination was seen. */
  private readonly attributeCache = new Map<string, Attributes>();

  constructor(meter: Meter) {
    this.attempts = meter.createCounter(RETRY_ATTEMPTS, { unit: '{attempt}', description: 'Attempts the retry interceptor started, counted at their end with their status' });
    this.exhausted = meter.createCounter(RETRY_BUDGET_EXHAUSTED, { unit: '{attempt}', description: 'Retries or hedges not sent because a budget was spent (attribute attempt = retry | hedge)' });
    this.pushbacks = meter.createCounter(RETRY_PUSHBACKS, { unit: '{pushback}', description: 'Server pushbacks (grpc-retry-pushback-ms) obeyed (attribute action = delay | stop)' });
    this.duration = meter.createHistogram(RETRY_CALL_DURATION, {
      unit: 's',
      description: 'Duration of calls through the retry interceptor, every attempt and backoff included',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS_S },
    });
    meter.createObservableGauge(RETRY_BUDGET_TOKENS, { unit: '{token}', description: 'Retry budget tokens left per channel target (the lowest, when several interceptors share a target)' })
      .addCallback(result => this.observeBudgets(result));
  }

  /** Watches `budget` (held weakly) under `target`. */
  trackBudget(target: string, budget: MeteredBudget): void {
    this.budgets.add({ target, budget: new WeakRef(budget) });
  }

  attributes(key: string, make: () => Attributes): Attributes {
    let attributes = this.attributeCache.get(key);
    if (attributes === undefined) this.attributeCache.set(key, (attributes = make()));
    return attributes;
  }

  private observeBudgets(result: ObservableResult): void {
    const lowest = new Map<string, number>();
    for (const entry of this.budgets) {
      const budget = entry.budget.deref();
      if (budget === undefined) {
        this.budgets.delete(entry);
        continue;
      }
      lowest.set(entry.target, Math.min(lowest.get(entry.target) ?? Infinity, budget.tokens));
    }
    for (const [target, tokens] of lowest) result.observe(tokens, { 'grpc.target': target });
  }
}

function statusName(code: number): string {
  return grpcStatus[code] ?? String(code);
}

/** Recording handle of one retry interceptor. */
export class RetryMetrics {
  constructor(private readonly instruments: RetryInstruments) {}

  /** An attempt ended with `code` (a hedge loser cancelled by the interceptor: CANCELLED). */
  attemptEnded(method: string, code: number, kind: AttemptKind): void {
    const attributes = this.instruments.attributes(`a\n${method}\n${code}\n${kind}`, () => ({ 'grpc.method': method, 'grpc.status': statusName(code), attempt: kind }));
    this.instruments.attempts.add(1, attributes);
  }

  /** A retry or hedge was not sent: its budget was spent. */
  budgetExhausted(method: string, kind: 'retry' | 'hedge'): void {
    this.instruments.exhausted.add(1, this.instruments.attributes(`b\n${method}\n${kind}`, () => ({ 'grpc.method': method, attempt: kind })));
  }

  /** The server's pushback delayed the next attempt, or stopped retrying. */
  pushback(method: string, stop: boolean): void {
    const action = stop ? 'stop' : 'delay';
    this.instruments.pushbacks.add(1, this.instruments.attributes(`p\n${method}\n${action}`, () => ({ 'grpc.method': method, action })));
  }

  /** The call ended with `code` after `durationMs`. */
  callEnded(method: string, code: number, durationMs: number): void {
    const attributes = this.instruments.attributes(`d\n${method}\n${code}`, () => ({ 'grpc.method': method, 'grpc.status': statusName(code) }));
    this.instruments.duration.record(durationMs / 1000, attributes);
  }

  trackBudget(target: string, budget: MeteredBudget): void {
    this.instruments.trackBudget(target, budget);
  }
}

/** The retry handle of the current MeterProvider's instruments, or null. Import-cycle free: the binding is passed in. */
export function retryMetricsOf(binding: { readonly retry: RetryInstruments } | null): RetryMetrics | null {
  return binding === null ? null : new RetryMetrics(binding.retry);
}
