/**
 * One logical unary or server-streaming call made of sequential attempts. It sits
 * where the retry interceptor's `InterceptingCall` would forward to `nextCall`, and
 * creates one lower call per attempt (a fresh pick each time).
 *
 * Contract with the layers around it:
 * - Above: grpc-js's client starts it, sends the single request message, half-closes
 *   and (streams) calls `startRead()`; it gets response headers, messages and exactly
 *   one status, as from any call.
 * - Below: at most one attempt is live at a time, so this object is itself the
 *   listener of every attempt (no per-attempt allocation); a stale event cannot
 *   arrive because a new attempt starts only after the previous one's status.
 * - Pickers: the call's metadata carries `CallSteering` (by its options object,
 *   never on the wire); every failed attempt's address goes into `tried`.
 *
 * The call commits (no more retries) on the first response headers or message, as
 * gRFC A6 does. For methods `isIdempotent` names it commits later: a server stream on
 * its first message, a unary call on an OK status (headers and the response message
 * are held until then, so a replica lost after answering but before its status is
 * retried too). A unary failure's synthetic `null` message is held until the status.
 */
import {
  type InterceptingListener,
  type InterceptorOptions,
  Metadata,
  type NextCall,
  status,
  type StatusObject,
} from '@grpc/grpc-js';
import { attachSteering, type CallSteering } from '../balancer/call-steering';
import { tracer } from '../common/grpc-experimental';
import { type RetryMetrics } from '../metrics/retry-metrics';
import { RetryBackoff } from './retry-backoff';
import { callDeadlineMs } from './call-deadline';
import { type HedgeBudget } from './hedge-budget';
import { type HedgeDelayEstimator } from './hedge-delay';
import { type RetryBudget } from './retry-budget';
import { isRetryableCode, type ResolvedRetryOptions } from './retry-options';
import { PUSHBACK_STOP, readPushbackMs } from './retry-pushback';

/** What `nextCall` returns: grpc-js does not export the interface by name. */
export type AttemptCall = ReturnType<NextCall>;
export type MessageContext = Parameters<AttemptCall['sendMessageWithContext']>[0];

/** Per-interceptor state a call needs: the options, the budgets, a rate-limited warning. */
export interface RetryScope {
  readonly options: ResolvedRetryOptions;
  /** The budget of one channel target, created on first use. */
  budgetFor(target: string): RetryBudget;
  /** The hedge budget of one channel target, created on first use (only with `hedging`). */
  hedgeBudgetFor(target: string): HedgeBudget;
  /** The adaptive-delay estimator of one method, created on first use (only with adaptive hedging). */
  delayEstimatorFor(method: string): HedgeDelayEstimator;
  /** `shouldRetry(method, status)`, true when unset; a throw counts as false (and is logged). */
  shouldRetry(method: string, status: StatusObject): boolean;
  /** Logs a problem (e.g. a throwing user hook) at most every few seconds. */
  warn(text: string): void;
  /** Calls the user hook `name` (onRetry, onHedge) with `event`; a throw is warned about (rate-limited) and ignored. */
  runHook<E>(name: string, hook: (event: E) => void, event: E): void;
  /** Where attempts, budget denials, pushbacks and call durations are recorded; null with metrics off. */
  readonly metrics: RetryMetrics | null;
}

export const PREVIOUS_ATTEMPTS_KEY = 'grpc-previous-rpc-attempts';

const trace = tracer('etcd_retry');
export const NO_CONTEXT: MessageContext = Object.freeze({});

// Phases of the call (a tagged state; the numbers keep the object shape flat).
const IDLE = 0; // created, first attempt not started
const ATTEMPT = 1; // an attempt is in flight
const BACKOFF = 2; // between attempts
const DONE = 3; // status delivered (or being delivered)

export class RetryingCall implements AttemptCall, InterceptingListener {
  private phase = IDLE;
  /** The latest attempt (the live one in ATTEMPT; the failed one in BACKOFF). */
  private call: AttemptCall;
  private listener: Partial<InterceptingListener> | undefined;
  /** Our own copy of the caller's metadata, carrying the steering; each retry clones it. */
  private metadata: Metadata | undefined;
  private steering: CallSteering | undefined;
  private message: unknown = undefined;
  private hasMessage = false;
  /** Context of a message no attempt has been given yet (its write callback belongs to the first send). */
  private messageContext: MessageContext | undefined;
  private halfClosed = false;
  /** A read was requested and no message delivered since: a new attempt must start reading. */
  private readPending = false;
  private committed = false;
  private cancelled = false;
  private heldNullMessage = false;
  /** Response headers of the live attempt of an idempotent call, shown only once it commits. */
  private heldMetadata: Metadata | undefined;
  /** Response message of the live attempt of an idempotent unary call, shown with its OK status. */
  private heldMessage: unknown = undefined;
  private hasHeldMessage = false;
  private readonly idempotent: boolean;
  private attemptTimedOut = false;
  private attempts = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Created at the first retry (most calls never retry). */
  private backoff: RetryBackoff | undefined;
  /** Status of the failed attempt while waiting to retry (the call's status if the retry is abandoned). */
  private lastStatus: StatusObject | undefined;
  private readonly deadlineMs: number;
  private readonly target: string;
  private readonly budget: RetryBudget;
  /** `performance.now()` at start, read only with metrics on. */
  private startedMs = 0;

  /** @param idempotent Whether `isIdempotent` names the method, when the interceptor already asked. */
  constructor(
    private readonly scope: RetryScope,
    private readonly callOptions: InterceptorOptions,
    private readonly nextCall: NextCall,
    idempotent?: boolean,
  ) {
    this.call = nextCall(callOptions);
    // Before it starts, a grpc-js call reports its channel's target as its peer: the budget key.
    this.target = this.call.getPeer();
    this.budget = scope.budgetFor(this.target);
    this.deadlineMs = callDeadlineMs(callOptions);
    this.idempotent = idempotent ?? (scope.options.isIdempotent !== undefined && this.askIsIdempotent(scope.options.isIdempotent));
  }

  start(metadata: Metadata, listener?: Partial<InterceptingListener>): void {
    if (this.phase !== IDLE) return;
    this.listener = listener;
    // A copy: the caller may reuse its Metadata for other calls while we still need ours.
    const own = metadata.clone();
    this.steering = attachSteering(own);
    this.metadata = own;
    if (this.scope.metrics !== null) this.startedMs = performance.now();
    this.startAttempt();
  }

  sendMessageWithContext(context: MessageContext, message: unknown): void {
    if (this.phase === DONE) return;
    this.message = message;
    this.hasMessage = true;
    if (this.phase === ATTEMPT) this.call.sendMessageWithContext(context, message);
    else this.messageContext = context;
  }

  sendMessage(message: unknown): void {
    this.sendMessageWithContext(NO_CONTEXT, message);
  }

  halfClose(): void {
    this.halfClosed = true;
    if (this.phase === ATTEMPT) this.call.halfClose();
  }

  startRead(): void {
    this.readPending = true;
    if (this.phase === ATTEMPT) this.call.startRead();
  }

  cancelWithStatus(code: status, details: string): void {
    if (this.phase === DONE) return;
    this.cancelled = true;
    this.clearTimer();
    if (this.phase === ATTEMPT) {
      // The attempt reports the cancellation as its status, which ends the call.
      this.call.cancelWithStatus(code, details);
      return;
    }
    if (this.phase === IDLE) this.call.cancelWithStatus(code, details);
    this.phase = DONE;
    this.release();
    this.scope.metrics?.callEnded(this.callOptions.method_definition.path, code, performance.now() - this.startedMs);
    // Status is delivered asynchronously, as grpc-js's own calls do on cancel.
    process.nextTick(deliverStatus, this.listener, { code, details, metadata: new Metadata() });
  }

  getPeer(): string {
    return this.call.getPeer();
  }

  getAuthContext(): ReturnType<AttemptCall['getAuthContext']> {
    return this.call.getAuthContext();
  }

  // ---- listener of the live attempt ----

  onReceiveMetadata(metadata: Metadata): void {
    if (this.phase !== ATTEMPT) return;
    if (this.idempotent && !this.committed) {
      this.heldMetadata = metadata;
      return;
    }
    this.commit();
    this.deliverMetadata(metadata);
  }

  private deliverMetadata(metadata: Metadata): void {
    // As grpc-js's own retries do: the application can see how many attempts came before.
    if (this.attempts > 1) metadata.set(PREVIOUS_ATTEMPTS_KEY, String(this.attempts - 1));
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
    if (this.phase !== ATTEMPT) return;
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
    if (this.phase !== ATTEMPT) return;
    this.clearTimer();
    const timedOut = this.attemptTimedOut;
    const code = attemptStatus.code;
    this.scope.metrics?.attemptEnded(this.callOptions.method_definition.path, code, this.attempts === 1 ? 'first' : 'retry');
    if (code === status.OK) this.budget.recordSuccess();
    else if (timedOut || isRetryableCode(this.scope.options.retryableCodeMask, code)) this.budget.recordFailure();
    if (code !== status.OK && !this.committed && !this.cancelled) {
      const delayMs = this.retryDelayMs(attemptStatus, timedOut);
      if (delayMs >= 0) {
        this.heldMetadata = undefined;
        this.heldMessage = undefined;
        this.hasHeldMessage = false;
        this.scheduleRetry(attemptStatus, delayMs, timedOut);
        return;
      }
    }
    this.finish(attemptStatus);
  }

  // ---- internals ----

  private startAttempt(): void {
    const call = this.attempts === 0 ? this.call : (this.call = this.nextCall(this.callOptions));
    this.attempts++;
    this.phase = ATTEMPT;
    this.attemptTimedOut = false;
    this.heldNullMessage = false;
    this.lastStatus = undefined;
    const steering = this.steering!;
    steering.lastPicked = undefined;
    let metadata = this.metadata!;
    if (this.attempts > 1) {
      metadata = metadata.clone();
      metadata.set(PREVIOUS_ATTEMPTS_KEY, String(this.attempts - 1));
    }
    call.start(metadata, this);
    // A lower layer may end the attempt synchronously.
    if (this.phase !== ATTEMPT || this.call !== call) return;
    if (this.hasMessage) {
      const context = this.messageContext ?? NO_CONTEXT;
      this.messageContext = undefined;
      call.sendMessageWithContext(context, this.message);
    }
    if (this.halfClosed) call.halfClose();
    if (this.readPending) call.startRead();
    const attemptTimeoutMs = this.scope.options.perAttemptTimeoutMs;
    if (this.phase === ATTEMPT && attemptTimeoutMs !== undefined && Date.now() + attemptTimeoutMs < this.deadlineMs) {
      this.timer = setTimeout(RetryingCall.onAttemptTimer, attemptTimeoutMs, this);
      this.timer.unref();
    }
  }

  /** The delay before the next attempt, or -1 when the call must not be retried. */
  private retryDelayMs(attemptStatus: StatusObject, timedOut: boolean): number {
    const o = this.scope.options;
    if (this.attempts >= o.maxAttempts) return -1;
    if (!timedOut && !isRetryableCode(o.retryableCodeMask, attemptStatus.code)) return -1;
    // A cancelled parent does not cancel a new attempt (its listener fired already).
    if (this.callOptions.parent?.cancelled) return -1;
    const pushbackMs = readPushbackMs(attemptStatus.metadata);
    if (pushbackMs === PUSHBACK_STOP || pushbackMs >= 0) this.scope.metrics?.pushback(this.callOptions.method_definition.path, pushbackMs === PUSHBACK_STOP);
    if (pushbackMs === PUSHBACK_STOP) return -1;
    if (!this.budget.canRetry()) {
      trace(`${this.callOptions.method_definition.path}: retry denied by the budget of ${this.target}`);
      this.scope.metrics?.budgetExhausted(this.callOptions.method_definition.path, 'retry');
      return -1;
    }
    if (o.shouldRetry && !this.askShouldRetry(o.shouldRetry, attemptStatus)) return -1;
    this.backoff ??= new RetryBackoff(o);
    const delayMs = this.backoff.nextDelayMs(pushbackMs);
    // Never sleep past the deadline: the caller gets the real failure now instead.
    if (Date.now() + delayMs >= this.deadlineMs) return -1;
    return delayMs;
  }

  private askIsIdempotent(isIdempotent: NonNullable<ResolvedRetryOptions['isIdempotent']>): boolean {
    try {
      return isIdempotent(this.callOptions.method_definition.path) === true;
    } catch (err) {
      this.scope.warn(`isIdempotent threw (treated as false): ${(err as Error)?.message ?? String(err)}`);
      return false;
    }
  }

  private askShouldRetry(shouldRetry: NonNullable<ResolvedRetryOptions['shouldRetry']>, attemptStatus: StatusObject): boolean {
    try {
      return shouldRetry(this.callOptions.method_definition.path, attemptStatus) === true;
    } catch (err) {
      this.scope.warn(`shouldRetry threw (treated as false): ${(err as Error)?.message ?? String(err)}`);
      return false;
    }
  }

  private scheduleRetry(attemptStatus: StatusObject, delayMs: number, timedOut: boolean): void {
    const steering = this.steering!;
    const seen = steering.lastPicked ?? this.call.getPeer();
    // Without a subchannel, grpc-js reports the channel target (or 'unknown'): not a replica.
    const peer = seen && seen !== this.target && seen !== 'unknown' ? seen : undefined;
    if (peer !== undefined) steering.tried.add(peer);
    this.phase = BACKOFF;
    this.lastStatus = attemptStatus;
    const method = this.callOptions.method_definition.path;
    trace(`${method}: attempt ${this.attempts} on ${peer ?? '?'} ended with code ${attemptStatus.code}${timedOut ? ' (attempt timeout)' : ''}; retrying in ${delayMs} ms`);
    const onRetry = this.scope.options.onRetry;
    if (onRetry) {
      this.scope.runHook('onRetry', onRetry, { method, attempt: this.attempts + 1, status: attemptStatus, peer, delayMs, attemptTimedOut: timedOut });
      if (this.phase !== BACKOFF) return; // the hook cancelled the call
    }
    // Not unref'd: with no attempt in flight, this timer may be all that keeps the process
    // alive until the caller gets its answer. It is bounded by the deadline and cleared on cancel.
    this.timer = setTimeout(RetryingCall.onBackoffTimer, delayMs, this);
  }

  private static onBackoffTimer(this: void, call: RetryingCall): void {
    call.timer = undefined;
    if (call.phase !== BACKOFF) return;
    // Timers can fire late: never start an attempt at or past the deadline.
    if (Date.now() >= call.deadlineMs) {
      call.finish(call.lastStatus!);
      return;
    }
    call.startAttempt();
  }

  private static onAttemptTimer(this: void, call: RetryingCall): void {
    call.timer = undefined;
    if (call.phase !== ATTEMPT || call.committed) return;
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
    if (this.attempts > 1 && !this.committed) finalStatus.metadata.set(PREVIOUS_ATTEMPTS_KEY, String(this.attempts - 1));
    const heldNull = this.heldNullMessage;
    const hasHeldMessage = this.hasHeldMessage;
    const heldMessage = this.heldMessage;
    const listener = this.listener;
    this.release();
    this.scope.metrics?.callEnded(this.callOptions.method_definition.path, finalStatus.code, performance.now() - this.startedMs);
    if (hasHeldMessage) listener?.onReceiveMessage?.(heldMessage);
    else if (heldNull) listener?.onReceiveMessage?.(null);
    listener?.onReceiveStatus?.(finalStatus);
  }

  /** Drops what a finished call no longer needs (the request may be large). */
  private release(): void {
    this.message = undefined;
    this.heldMessage = undefined;
    this.messageContext = undefined;
    this.metadata = undefined;
    this.lastStatus = undefined;
  }

  private clearTimer(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }
}

function deliverStatus(listener: Partial<InterceptingListener> | undefined, finalStatus: StatusObject): void {
  listener?.onReceiveStatus?.(finalStatus);
}
