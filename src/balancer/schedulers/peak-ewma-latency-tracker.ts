/**
 * One endpoint's latency state for `etcd_peak_ewma`: its `PeakEwmaEstimate`
 * and the per-call timers that feed it.
 *
 * Measures each call's latency from grpc-js's pick hooks (`onCallStarted` →
 * `onCallEnded`) and feeds it to the endpoint's `PeakEwmaEstimate`. No timer
 * runs per call: two clock readings.
 *
 * grpc-js's hooks carry no call identity, so each call needs its own pair of
 * functions. The pairs are pooled per endpoint and reused once their call has
 * ended, so a pick allocates nothing in steady state. A pick that never starts
 * (cancelled before it started, or re-picked) never returns its pair, which is
 * then simply garbage: nothing leaks, the pool only holds free pairs.
 */
import { status } from '@grpc/grpc-js';
import { type PeakEwmaEstimate } from './peak-ewma-estimate';
import { type CallHooks } from './pick-strategy';

/** Free pairs kept per endpoint; more concurrent calls than this allocate and leave the excess to the GC. */
const MAX_POOLED_TIMERS = 256;

function noop(): void {}

/** Per endpoint, kept across picker rebuilds by the strategy. */
export class LatencyTracker {
  private readonly free: CallTimer[] = [];
  /** Calls started and not ended, oldest first (a doubly-linked list through the timers: O(1) both ways, no allocation). */
  head: CallTimer | undefined;
  tail: CallTimer | undefined;

  /**
   * @param estimate Where latencies go.
   * @param nowMs Monotonic clock in ms (the balancer's).
   * @param isFailure Status codes counted as replica failures: such calls (and cancelled ones) may only raise the estimate.
   * @param label The endpoint, for traces.
   */
  constructor(
    readonly estimate: PeakEwmaEstimate,
    readonly nowMs: () => number,
    readonly isFailure: (code: status) => boolean,
    readonly label = '',
  ) {}

  /** Hooks for one call (from the pool) that also run the call accounting's `started`/`ended`; `probe`: the call is a probe. */
  timeCall(started: () => void, ended: (code: status) => void, probe = false): CallHooks {
    const timer = this.free.pop() ?? new CallTimer(this);
    timer.arm(started, ended, probe);
    return timer;
  }

  /** When the oldest call still in flight started (`nowMs` clock); NaN if none is. */
  oldestStartedMs(): number {
    return this.head === undefined ? Number.NaN : this.head.startedMs;
  }

  /** Free pairs (tests). */
  get pooled(): number {
    return this.free.length;
  }

  release(timer: CallTimer): void {
    if (this.free.length < MAX_POOLED_TIMERS) this.free.push(timer);
  }
}

class CallTimer implements CallHooks {
  private armed = false;
  private probe = false;
  startedMs = Number.NaN;
  /** Neighbours in the tracker's in-flight list while started and not ended. */
  prev: CallTimer | undefined;
  next: CallTimer | undefined;
  private linked = false;
  private started: () => void = noop;
  private ended: (code: status) => void = noop;

  readonly onCallStarted = (): void => {
    if (!this.armed) return;
    this.startedMs = this.tracker.nowMs();
    this.link();
    this.started();
  };

  readonly onCallEnded = (code: status): void => {
    // grpc-js runs each hook once per started call; the flag keeps a stray second run from touching a reused pair.
    if (!this.armed) return;
    this.armed = false;
    const tracker = this.tracker;
    this.unlink();
    this.ended(code);
    if (!Number.isNaN(this.startedMs)) {
      const nowMs = tracker.nowMs();
      const mayLower = code !== status.CANCELLED && !tracker.isFailure(code);
      tracker.estimate.observe(nowMs - this.startedMs, nowMs, mayLower, this.probe);
    }
    this.started = noop;
    this.ended = noop;
    this.startedMs = Number.NaN;
    tracker.release(this);
  };

  constructor(private readonly tracker: LatencyTracker) {}

  private link(): void {
    if (this.linked) return;
    const tracker = this.tracker;
    this.prev = tracker.tail;
    this.next = undefined;
    if (tracker.tail === undefined) tracker.head = this;
    else tracker.tail.next = this;
    tracker.tail = this;
    this.linked = true;
  }

  private unlink(): void {
    if (!this.linked) return;
    const tracker = this.tracker;
    if (this.prev === undefined) tracker.head = this.next;
    else this.prev.next = this.next;
    if (this.next === undefined) tracker.tail = this.prev;
    else this.next.prev = this.prev;
    this.prev = undefined;
    this.next = undefined;
    this.linked = false;
  }

  arm(started: () => void, ended: (code: status) => void, probe: boolean): void {
    this.armed = true;
    this.probe = probe;
    this.startedMs = Number.NaN;
    this.started = started;
    this.ended = ended;
  }
}
