/**
 * One endpoint's latency state for `etcd_peak_ewma`: its `PeakEwmaEstimate` and
 * the per-call hooks that feed it, from the pick (whose clock reading is the
 * start: one reading less per pick) to grpc-js's `onCallEnded`; `onCallStarted`
 * puts the call in the in-flight list. The hooks carry no call identity, so each
 * call gets its own pair of functions, pooled per endpoint and reused once the
 * call ended: no allocation per pick, no timer per call. A pick that never starts
 * keeps its pair, which is then garbage: nothing leaks.
 */
import { status } from '@grpc/grpc-js';
import { type PeakEwmaEstimate } from './peak-ewma-estimate';
import { type CallHooks } from './pick-strategy';

const OK = status.OK;
const CANCELLED = status.CANCELLED;
/** Free pairs kept per endpoint; more concurrent calls than this allocate and leave the excess to the GC. */
const MAX_POOLED_TIMERS = 256;

function noop(): void {}

/** Where a scheduler keeps copies of its endpoints' figures, so that a pick reads flat arrays, not two objects per candidate. */
export interface LatencyMirror {
  /** Copies `tracker`'s estimate and oldest call in flight into `slot`. */
  refresh(slot: number, tracker: LatencyTracker): void;
}

/** Per endpoint, kept across picker rebuilds by the strategy. */
export class LatencyTracker {
  private readonly free: CallTimer[] = [];
  /** The scheduler whose tier holds the endpoint, and its slot there (both set by that scheduler). */
  mirror: LatencyMirror | undefined;
  slot = -1;
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

  /**
   * Hooks for one call (from the pool) that also run the call accounting's
   * `started`/`ended`; `pickedMs`: when it was picked (`nowMs` clock), its
   * latency's start; `probe`: the call is a probe.
   */
  timeCall(started: () => void, ended: (code: status) => void, pickedMs: number, probe = false): CallHooks {
    const timer = this.free.pop() ?? new CallTimer(this);
    timer.arm(started, ended, pickedMs, probe);
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

  /** Tells the mirror (if any) that the estimate or the calls in flight changed. */
  changed(): void {
    if (this.mirror !== undefined) this.mirror.refresh(this.slot, this);
  }

  release(timer: CallTimer): void {
    if (this.free.length < MAX_POOLED_TIMERS) this.free.push(timer);
  }
}

class CallTimer implements CallHooks {
  private armed = false;
  private probe = false;
  private pickedMs = Number.NaN;
  /** The pick's time once the call started; NaN before. */
  startedMs = Number.NaN;
  /** Neighbours in the tracker's in-flight list while started and not ended. */
  prev: CallTimer | undefined;
  next: CallTimer | undefined;
  private linked = false;
  private started: () => void = noop;
  private ended: (code: status) => void = noop;

  readonly onCallStarted = (): void => {
    if (!this.armed) return;
    this.startedMs = this.pickedMs;
    this.link();
    this.tracker.changed();
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
      const mayLower = code === OK || (code !== CANCELLED && !tracker.isFailure(code));
      tracker.estimate.observe(nowMs - this.startedMs, nowMs, mayLower, this.probe);
    }
    tracker.changed();
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

  arm(started: () => void, ended: (code: status) => void, pickedMs: number, probe: boolean): void {
    this.armed = true;
    this.probe = probe;
    this.pickedMs = pickedMs;
    this.startedMs = Number.NaN;
    this.started = started;
    this.ended = ended;
  }
}
