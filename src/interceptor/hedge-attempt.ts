/**
 * One attempt of a hedged call. Several are in flight at once, so each is its own
 * listener: it holds its response headers and message until its status, and only
 * the winner's are ever shown to the application.
 */
import { type InterceptingListener, type Metadata, status as grpcStatus, type StatusObject } from '@grpc/grpc-js';
import { type CallSteering } from '../balancer/call-steering';
import { type AttemptKind } from '../metrics/retry-metrics';
import { type AttemptCall } from './call-scope';

/** What an attempt reports to the call it belongs to. */
export interface HedgeAttemptOwner {
  /** Our picker chose `address` for this attempt (see `watchPicks`). */
  onPicked(attempt: HedgeAttempt, address: string): void;
  onAttemptStatus(attempt: HedgeAttempt, status: StatusObject): void;
}

/** One attempt of a hedged call and its listener: holds its answer until its status (see the file comment). */
export class HedgeAttempt implements InterceptingListener {
  /** Address of the replica: from our picker at pick time, else from grpc-js at the status. */
  peer: string | undefined = undefined;
  /** Until its status (or until the call cancels it as a loser). */
  live = true;
  /** Cut by `perAttemptTimeoutMs`. */
  timedOut = false;
  /** What started it (metrics): the first attempt, a retry after every attempt failed, or a hedge. */
  kind: AttemptKind = 'first';
  timer: NodeJS.Timeout | undefined = undefined;
  heldMetadata: Metadata | undefined = undefined;
  heldMessage: unknown = undefined;
  hasHeldMessage = false;
  /** grpc-js's unary bottom call emits `null` right before a status when no message came. */
  heldNull = false;

  /**
   * @param number 1 for the first attempt, counting every attempt of the call.
   * @param startMs `performance.now()` when it started.
   */
  constructor(
    private readonly owner: HedgeAttemptOwner,
    readonly number: number,
    readonly call: AttemptCall,
    readonly steering: CallSteering,
    readonly startMs: number,
  ) {
    watchPicks(steering, this, owner);
  }

  onReceiveMetadata(metadata: Metadata): void {
    if (this.live) this.heldMetadata = metadata;
  }

  onReceiveMessage(message: unknown): void {
    if (!this.live) return;
    if (message === null) {
      this.heldNull = true;
    } else {
      this.heldMessage = message;
      this.hasHeldMessage = true;
    }
  }

  onReceiveStatus(status: StatusObject): void {
    this.owner.onAttemptStatus(this, status);
  }

  /** Cuts the attempt (DEADLINE_EXCEEDED, `details`) if it is still live after `timeoutMs`. */
  armTimeout(timeoutMs: number, details: string): void {
    this.timer = setTimeout(HedgeAttempt.onTimeout, timeoutMs, this, details);
    this.timer.unref();
  }

  private static onTimeout(this: void, attempt: HedgeAttempt, details: string): void {
    attempt.timer = undefined;
    if (!attempt.live) return;
    attempt.timedOut = true;
    attempt.call.cancelWithStatus(grpcStatus.DEADLINE_EXCEEDED, details);
  }

  clearTimer(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }
}

/**
 * Turns our pickers' `steering.lastPicked = address` (set inside `pick()`) into an event
 * for this attempt, whose own steering object it is. The pick comes after `call.start()`
 * (a filter-stack promise, or a queue for a READY replica), so the call learns the
 * address here, in time for a later hedge to avoid it.
 */
function watchPicks(steering: CallSteering, attempt: HedgeAttempt, owner: HedgeAttemptOwner): void {
  Object.defineProperty(steering, 'lastPicked', {
    get: () => attempt.peer,
    set: (address: string | undefined) => {
      if (address !== undefined) owner.onPicked(attempt, address);
    },
    enumerable: true,
    configurable: true,
  });
}
