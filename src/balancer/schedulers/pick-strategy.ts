/**
 * The seam between the shared endpoint layer and each policy: a policy is a
 * `PickStrategy` that builds one `TierScheduler` per priority tier. The shared
 * layer owns children, readiness, tiers, call accounting and the skip hook; a
 * scheduler only answers "which index of this tier next".
 */
import { type Metadata, type status } from '@grpc/grpc-js';
import { type CallLoad } from '../pool/call-load';

/** What a scheduler may read of an endpoint. */
export interface SchedulableEndpoint {
  /** Outstanding calls and failure penalty (maintained only when the strategy `tracksCalls`). */
  readonly load: CallLoad;
  /** The endpoint's identity (its addresses), for traces; absent in unit tests. */
  readonly key?: string;
}

/** Per-call hooks, as grpc-js runs them on a pick result: each exactly once for a started call. */
export interface CallHooks {
  readonly onCallStarted: () => void;
  readonly onCallEnded: (code: status) => void;
}

/**
 * Chooses among the usable endpoints of one tier. Built once per tier and then
 * kept up to date one endpoint at a time (`add`, `remove`, `setWeight`, each
 * O(1) or O(log n)): a connectivity flip or a weight change never rebuilds it.
 */
export interface TierScheduler {
  /**
   * Returns the index (into the tier's endpoint list) of the endpoint to use.
   * `excluded`, when given, flags indices to avoid with 1; at least one index is
   * then not flagged. `nowMs` is the pick's clock reading (0 when the strategy
   * does not track calls). `metadata` is the call's (a copy that is sent; for
   * schedulers that read a key from it, e.g. ring hash). Must not throw and
   * should not allocate.
   */
  pick(excluded: Uint8Array | undefined, nowMs: number, metadata?: Metadata): number;
  /**
   * Optional, for strategies that measure calls (peak-EWMA latency): called
   * right after `pick` returned `index` and the pick completed, with the call
   * accounting's hooks for this call. Returns the hooks grpc-js gets instead,
   * which must run `started` and `ended` exactly when they themselves run.
   * Only called when the strategy `tracksCalls`. Must not throw and should not
   * allocate (pool the hook objects).
   */
  observeCall?(index: number, started: () => void, ended: (code: status) => void): CallHooks;
  /** Appends `endpoint` with `weight` (> 0) at the next index (the current count). */
  add(endpoint: SchedulableEndpoint, weight: number): void;
  /** Removes `index`; the endpoint at the last index takes its place (swap-remove, as the tier's list does). */
  remove(index: number): void;
  /** Sets the weight (> 0) of `index`. */
  setWeight(index: number, weight: number): void;
}

/** A load-balancing algorithm, independent of connection handling. */
export interface PickStrategy {
  /** Whether picks must be counted (outstanding calls, failure penalty): costs two hooks per call. */
  readonly tracksCalls: boolean;
  /**
   * Builds the scheduler for one tier. `weights[i] > 0` is the weight of
   * `endpoints[i]`; the arrays are read, not kept (the balancer starts every
   * tier empty and adds endpoints one by one).
   */
  createScheduler(endpoints: readonly SchedulableEndpoint[], weights: readonly number[]): TierScheduler;
  /** The strategy's latency estimate of `endpoint` in ms, for strategies that keep one (diagnostics, metrics). */
  latencyEstimateMs?(endpoint: SchedulableEndpoint): number | undefined;
}
