/**
 * One unary or server-streaming call made of sequential attempts (contract:
 * logical-call.ts). One attempt is live at a time and the next starts only after the
 * previous one's status, so this object is every attempt's listener (no per-attempt
 * allocation, no stale events). Failed attempts' addresses join the steering's tried-set.
 * It commits on the first response headers or message (gRFC A6); for `isIdempotent`
 * methods a server stream on its first message and a unary call on its OK status, its
 * headers and message held until then. A unary failure's synthetic `null` message is
 * held until the status.
 */
import { type InterceptingListener, type InterceptorOptions, type Metadata, type NextCall, status, type StatusObject } from '@grpc/grpc-js';
import { attachSteering, type CallSteering } from '../balancer/call-steering';
import { type AttemptCall, type RetryScope, peerOf, setPreviousAttempts, trace } from './call-scope';
import { ATTEMPTING, type CallerStep, DONE, IDLE, LogicalCall } from './logical-call';
import { PUSHBACK_STOP } from './retry-pushback';

/**
 * Added to the details of a committed call's failure that would otherwise have been
 * retried: the caller learns the server may have done the work, and what to change.
 */
export const COMMITTED_SUFFIX = ' (not retried: the call was committed when the server sent headers/a message, '
  + 'so the server may have processed it; mark the method idempotent with isIdempotent, or use idempotency keys)';

/** A unary or server-streaming call retried attempt after attempt (see the file comment); created by the retry interceptor. */
export class RetryingCall extends LogicalCall implements InterceptingListener {
  /** The latest attempt (the live one in ATTEMPTING; the failed one in BACKOFF). */
  private call: AttemptCall;
  private steering: CallSteering | undefined;
  private committed = false;
  private heldNullMessage = false;
  /** Response headers of the live attempt of an idempotent call, shown only once it commits. */
  private heldMetadata: Metadata | undefined;
  /** Response message of the live attempt of an idempotent unary call, shown with its OK status. */
  private heldMessage: unknown = undefined;
  private hasHeldMessage = false;
  private readonly idempotent: boolean;
  private attemptTimedOut = false;
  private attempts = 0;

  /**
   * @param idempotent Whether `isIdempotent` names the method (or it carries a key), when the interceptor already asked.
   * @param keyHeader The idempotency-key header when the call carries a key.
   */
  constructor(scope: RetryScope, callOptions: InterceptorOptions, nextCall: NextCall, idempotent?: boolean, keyHeader?: string) {
    super(scope, callOptions, nextCall, keyHeader);
    this.call = this.firstCall;
    this.idempotent = idempotent ?? scope.isIdempotent(this.method);
  }

  override start(metadata: Metadata, listener?: Partial<InterceptingListener>): void {
    if (this.phase !== IDLE) return;
    this.steering = attachSteering(this.begin(metadata, listener));
    this.startAttempt();
  }

  protected override forward(step: CallerStep): void {
    if (this.phase === ATTEMPTING) this.applyStep(this.call, step);
  }

  protected override shownCall(): AttemptCall {
    return this.call;
  }

  protected override cancelAttempts(code: status, details: string): boolean {
    if (this.phase !== ATTEMPTING) return false;
    // The attempt reports the cancellation as its status, which ends the call.
    this.call.cancelWithStatus(code, details);
    return true;
  }

  // ---- listener of the live attempt ----

  onReceiveMetadata(metadata: Metadata): void {
    if (this.phase !== ATTEMPTING) return;
    if (this.idempotent && !this.committed) {
      this.heldMetadata = metadata;
      return;
    }
    this.commit();
    this.deliverMetadata(metadata);
  }

  private deliverMetadata(metadata: Metadata): void {
    // As grpc-js's own retries do: the application can see how many attempts came before.
    setPreviousAttempts(metadata, this.attempts - 1);
    this.listener?.onReceiveMetadata?.(metadata);
  }

  /** Shows the held headers of an idempotent call (at its commit, or with its final status). */
  private releaseHeldMetadata(): void {
    const held = this.heldMetadata;
    if (held === undefined) return;
    this.heldMetadata = undefined;
    this.deliverMetadata(held);
  }

  onReceiveMessage(message: unknown): void {
    if (this.phase !== ATTEMPTING) return;
    if (!this.committed) {
      // grpc-js's unary bottom call emits `null` right before a status when no message came.
      if (!this.callOptions.method_definition.responseStream) {
        if (message === null) {
          this.heldNullMessage = true;
          return;
        }
        if (this.idempotent) {
          this.heldMessage = message;
          this.hasHeldMessage = true;
          return;
        }
      }
      this.commit();
      this.releaseHeldMetadata();
    }
    this.readPending = false;
    this.listener?.onReceiveMessage?.(message);
  }

  onReceiveStatus(attemptStatus: StatusObject): void {
    if (this.phase !== ATTEMPTING) return;
    this.clearTimer();
    const timedOut = this.attemptTimedOut;
    const retryable = this.recordAttemptEnd(attemptStatus, timedOut, this.attempts === 1 ? 'first' : 'retry');
    if (attemptStatus.code !== status.OK && retryable && !this.committed && !this.cancelled) {
      const delayMs = this.retryDelayMs(attemptStatus);
      if (delayMs >= 0) {
        this.heldMetadata = undefined;
        this.heldMessage = undefined;
        this.hasHeldMessage = false;
        const peer = this.markTried();
        trace(`${this.method}: attempt ${this.attempts} on ${peer ?? '?'} ended with code ${attemptStatus.code}${timedOut ? ' (attempt timeout)' : ''}; retrying in ${delayMs} ms`);
        this.scheduleRetry(attemptStatus, delayMs, this.attempts + 1, peer, timedOut);
        return;
      }
    } else if (retryable && this.committed && !this.cancelled && !this.outOfAttempts(this.attempts) && this.budget.canRetry()) {
      this.finish({ ...attemptStatus, details: attemptStatus.details + COMMITTED_SUFFIX });
      return;
    }
    this.finish(attemptStatus);
  }

  // ---- internals ----

  private startAttempt(): void {
    const call = this.attempts === 0 ? this.call : (this.call = this.nextCall(this.callOptions));
    this.attempts++;
    this.phase = ATTEMPTING;
    this.attemptTimedOut = false;
    this.heldNullMessage = false;
    this.lastStatus = undefined;
    this.steering!.lastPicked = undefined;
    let metadata = this.metadata!;
    if (this.attempts > 1) {
      metadata = metadata.clone();
      setPreviousAttempts(metadata, this.attempts - 1);
    }
    call.start(metadata, this);
    // A lower layer may end the attempt synchronously.
    if (this.phase !== ATTEMPTING || this.call !== call) return;
    this.replayTo(call);
    const attemptTimeoutMs = this.attemptTimeoutMs();
    if (this.phase === ATTEMPTING && attemptTimeoutMs !== undefined) {
      this.timer = setTimeout(RetryingCall.onAttemptTimer, attemptTimeoutMs, this);
      this.timer.unref();
    }
  }

  protected override retry(): void {
    this.startAttempt();
  }

  protected override giveUp(finalStatus: StatusObject): void {
    this.finish(finalStatus);
  }

  /** The delay before the next attempt, or -1 when this retryable failure must end the call. */
  private retryDelayMs(attemptStatus: StatusObject): number {
    if (this.outOfAttempts(this.attempts)) return -1;
    const pushbackMs = this.pushbackOf(attemptStatus);
    if (pushbackMs === PUSHBACK_STOP || !this.retryBudgetAllows()) return -1;
    if (!this.scope.shouldRetry(this.method, attemptStatus)) return -1;
    return this.backoffDelayMs(pushbackMs);
  }

  /** Adds the failed attempt's replica to the tried-set (the peer rule: our picker's choice, else grpc-js's peer). */
  private markTried(): string | undefined {
    const steering = this.steering!;
    const peer = peerOf(steering.lastPicked ?? this.call.getPeer(), this.target);
    if (peer !== undefined) steering.tried.add(peer);
    return peer;
  }

  private static onAttemptTimer(this: void, call: RetryingCall): void {
    call.timer = undefined;
    if (call.phase !== ATTEMPTING || call.committed) return;
    call.attemptTimedOut = true;
    call.call.cancelWithStatus(status.DEADLINE_EXCEEDED, call.scope.options.attemptTimeoutDetails);
  }

  private commit(): void {
    if (this.committed) return;
    this.committed = true;
    this.clearTimer(); // the per-attempt timeout guards only the wait for an answer
    this.message = undefined;
  }

  private finish(finalStatus: StatusObject): void {
    this.releaseHeldMetadata();
    this.phase = DONE;
    if (!this.committed) setPreviousAttempts(finalStatus.metadata, this.attempts - 1);
    const heldNull = this.heldNullMessage;
    const hasHeldMessage = this.hasHeldMessage;
    const heldMessage = this.heldMessage;
    const listener = this.listener;
    this.release();
    this.recordCallEnded(finalStatus.code);
    if (hasHeldMessage) listener?.onReceiveMessage?.(heldMessage);
    else if (heldNull) listener?.onReceiveMessage?.(null);
    listener?.onReceiveStatus?.(finalStatus);
  }

  protected override release(): void {
    super.release();
    this.heldMessage = undefined;
  }
}
