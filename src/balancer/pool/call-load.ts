/**
 * Per-endpoint call accounting for load-aware pickers: outstanding calls and a
 * decaying failure penalty. Outstanding = started and not ended calls (grpc-js
 * runs each hook exactly once per started attempt) + picks not started yet, since
 * `onCallStarted` runs after an async credentials step and a burst would
 * otherwise see 0. grpc-js has no "pick abandoned" hook, so un-started picks live
 * in two time buckets and are forgotten after `pendingPickExpiryMs`…2×. Each
 * failure adds `failurePenalty` outstanding-call units, halving every
 * `failurePenaltyHalfLifeMs`, so a replica failing fast does not look idle.
 */
import { status } from '@grpc/grpc-js';
import { performance } from 'node:perf_hooks';
import { type PickTally } from '../../metrics/balancer-metrics';

/** Read once: under some loaders `status.OK` is a getter call per access. */
const OK = status.OK;

export interface CallLoadOptions {
  /** Un-started picks are forgotten after this long (up to twice this). Defaults to 1000. */
  pendingPickExpiryMs?: number;
  /** Penalty added per failed call, in outstanding-call units. Defaults to 1. */
  failurePenalty?: number;
  /** Half-life of the failure penalty. Defaults to 1000. */
  failurePenaltyHalfLifeMs?: number;
  /** A penalty below this counts as 0, so a recovered replica gets its full share again. Defaults to 0.05. */
  penaltyFloor?: number;
  /** Status codes that count as a replica failure. Defaults to UNAVAILABLE, UNKNOWN, INTERNAL, DATA_LOSS, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED. */
  failureCodes?: ReadonlySet<status>;
  /** Monotonic clock in milliseconds. Defaults to `performance.now`. */
  nowMs?: () => number;
}

export const DEFAULT_FAILURE_CODES: ReadonlySet<status> = Object.freeze(new Set([
  status.UNAVAILABLE, status.UNKNOWN, status.INTERNAL, status.DATA_LOSS, status.RESOURCE_EXHAUSTED, status.DEADLINE_EXCEEDED,
]));

export const DEFAULT_CALL_LOAD_OPTIONS: Readonly<Required<CallLoadOptions>> = Object.freeze({
  pendingPickExpiryMs: 1000,
  failurePenalty: 1,
  failurePenaltyHalfLifeMs: 1000,
  penaltyFloor: 0.05,
  failureCodes: DEFAULT_FAILURE_CODES,
  // perf_hooks' object, not the global: the global `performance` is a getter, a third of the clock's cost.
  nowMs: () => performance.now(),
});

/** Fills in defaults; throws naming the bad field. */
export function resolveCallLoadOptions(options: CallLoadOptions = {}): Readonly<Required<CallLoadOptions>> {
  const merged: Required<CallLoadOptions> = {
    pendingPickExpiryMs: options.pendingPickExpiryMs ?? DEFAULT_CALL_LOAD_OPTIONS.pendingPickExpiryMs,
    failurePenalty: options.failurePenalty ?? DEFAULT_CALL_LOAD_OPTIONS.failurePenalty,
    failurePenaltyHalfLifeMs: options.failurePenaltyHalfLifeMs ?? DEFAULT_CALL_LOAD_OPTIONS.failurePenaltyHalfLifeMs,
    penaltyFloor: options.penaltyFloor ?? DEFAULT_CALL_LOAD_OPTIONS.penaltyFloor,
    failureCodes: options.failureCodes ?? DEFAULT_CALL_LOAD_OPTIONS.failureCodes,
    nowMs: options.nowMs ?? DEFAULT_CALL_LOAD_OPTIONS.nowMs,
  };
  for (const key of ['pendingPickExpiryMs', 'failurePenaltyHalfLifeMs'] as const) {
    if (!(merged[key] > 0) || !Number.isFinite(merged[key])) throw new Error(`CallLoad: ${key} must be a positive number, got ${merged[key]}`);
  }
  for (const key of ['failurePenalty', 'penaltyFloor'] as const) {
    if (!(merged[key] >= 0) || !Number.isFinite(merged[key])) throw new Error(`CallLoad: ${key} must be a non-negative number, got ${merged[key]}`);
  }
  return Object.freeze(merged);
}

/** Picks made in one time slice that have not started yet. */
class PendingBucket {
  count = 0;
  expired = false;
  /** Bound once per bucket (not per pick): the pick's hook for grpc-js. */
  readonly onCallStarted: () => void;
  /** The same, also counting the pick in the load's `pickTally` (metrics on). */
  readonly onCountedCallStarted: () => void;
  constructor(readonly startMs: number, load: CallLoad) {
    this.onCallStarted = () => {
      if (!this.expired) this.count--;
      load.active++;
    };
    this.onCountedCallStarted = () => {
      if (!this.expired) this.count--;
      load.active++;
      load.pickTally!.count++;
    };
  }
}

/** Call accounting of one endpoint. Not shared between endpoints. */
export class CallLoad {
  /** Calls started and not ended. */
  active = 0;
  /** Where started picks are counted for `grpc_etcd_lb.lb.picks`; set only while metrics are on. */
  pickTally: PickTally | undefined;
  private current: PendingBucket;
  private previous: PendingBucket;
  private penalty = 0;
  private penaltyAtMs = 0;
  private readonly decayPerMs: number;
  /** Bound once: every pick of this endpoint shares it. */
  readonly onCallEnded: (code: status) => void;

  constructor(private readonly options: Readonly<Required<CallLoadOptions>>) {
    const now = options.nowMs();
    this.current = new PendingBucket(now, this);
    this.previous = new PendingBucket(now, this);
    this.previous.expired = true;
    this.decayPerMs = Math.LN2 / options.failurePenaltyHalfLifeMs;
    this.onCallEnded = code => {
      this.active--;
      if (code !== OK && options.failureCodes.has(code)) this.addFailure(options.nowMs());
    };
  }

  /** Counts a pick as outstanding until it starts (or expires); returns the hook to run when it starts. */
  recordPick(nowMs: number): () => void {
    this.roll(nowMs);
    this.current.count++;
    return this.current.onCallStarted;
  }

  /** `recordPick`, whose hook also counts the started pick in `pickTally` (which must be set). */
  recordCountedPick(nowMs: number): () => void {
    this.roll(nowMs);
    this.current.count++;
    return this.current.onCountedCallStarted;
  }

  /** Picks not yet started (and not expired). */
  pending(nowMs: number): number {
    this.roll(nowMs);
    return this.current.count + (this.previous.expired ? 0 : this.previous.count);
  }

  /** Started + un-started calls. */
  outstanding(nowMs: number): number {
    return this.active + this.pending(nowMs);
  }

  /** The decayed failure penalty (0 once below the floor). */
  failurePenalty(nowMs: number): number {
    if (this.penalty === 0) return 0;
    const decayed = this.penalty * Math.exp(-this.decayPerMs * Math.max(0, nowMs - this.penaltyAtMs));
    if (decayed < this.options.penaltyFloor) {
      this.penalty = 0;
      return 0;
    }
    return decayed;
  }

  /** Outstanding calls plus failure penalty: what least-request compares (before dividing by weight). */
  score(nowMs: number): number {
    return this.outstanding(nowMs) + this.failurePenalty(nowMs);
  }

  /** Records one failed call (also used by tests and by future health signals). */
  addFailure(nowMs: number): void {
    if (this.options.failurePenalty === 0) return;
    this.penalty = this.failurePenalty(nowMs) + this.options.failurePenalty;
    this.penaltyAtMs = nowMs;
  }

  private roll(nowMs: number): void {
    const expiry = this.options.pendingPickExpiryMs;
    if (nowMs - this.current.startMs < expiry) return;
    // Un-started picks of the bucket before `previous` are given up on.
    this.previous.expired = true;
    if (nowMs - this.current.startMs >= 2 * expiry) this.current.expired = true;
    this.previous = this.current;
    this.current = new PendingBucket(nowMs, this);
  }
}
