/**
 * One hedged unary call (a method `isIdempotent` names, with `hedging` set): the
 * first attempt at once, another copy when the hedging delay passes with no answer,
 * while fewer than `hedging.maxAttempts` are in flight and, in all (first, hedges,
 * retries), at most `maxAttempts`. The first OK or non-retryable status wins; every
 * other attempt is then cancelled. It takes the place of `RetryingCall` for these
 * calls and keeps its contract with the layers around it (see retrying-call.ts).
 *
 * - Steering: each attempt carries its own `CallSteering` (a fresh options object on
 *   its metadata clone) holding the call's tried-set; the address our picker chose for
 *   an attempt joins the tried-set at pick time (hedge-attempt.ts), so a hedge goes to
 *   a replica this call has not tried while another READY one exists.
 * - A retryable failure while another attempt is in flight does not fail the call; its
 *   replacement starts at once (after the pushback, if any), as gRFC A6 does for
 *   `nonFatalStatusCodes`, gated like a retry. No jittered backoff there: backoff spaces
 *   out attempts of a call with none in flight; the retry budget is the storm guard.
 * - When every attempt in flight has failed retryably, the call behaves as
 *   `RetryingCall`: backoff or pushback, retry budget, `shouldRetry`, deadline.
 * - Budgets: a hedge needs a positive hedge-budget token and a retry budget above half,
 *   and takes one of each. Each attempt's status is accounted in the retry budget as in
 *   `RetryingCall`; a loser's cancellation is not.
 * - Deadline and cancellation: every attempt carries the call's deadline (grpc-js ends
 *   each one); no attempt starts at or past it; a caller's cancel cancels every attempt.
 * - Adaptive delay: the first attempt's latency (or, when it was cut or lost to a hedge,
 *   its elapsed time as a lower bound) is recorded per method; retryable failures and
 *   caller cancellations are not latencies and are not recorded.
 */
import {
  type InterceptingListener,
  type InterceptorOptions,
  Metadata,
  type NextCall,
  status,
  type StatusObject,
} from '@grpc/grpc-js';
import { attachSteering } from '../balancer/call-steering';
import { tracer } from '../common/grpc-experimental';
import { type AttemptKind } from '../metrics/retry-metrics';
import { RetryBackoff } from './retry-backoff';
import { callDeadlineMs } from './call-deadline';
import { HedgeAttempt, type HedgeAttemptOwner } from './hedge-attempt';
import { type HedgeBudget } from './hedge-budget';
import { type HedgeDelayEstimator } from './hedge-delay';
import { type HedgeReason, type ResolvedHedgingOptions } from './hedging-options';
import { type RetryBudget } from './retry-budget';
import { isRetryableCode } from './retry-options';
import { NO_PUSHBACK, PUSHBACK_STOP, readPushbackMs } from './retry-pushback';
import { type AttemptCall, type MessageContext, NO_CONTEXT, PREVIOUS_ATTEMPTS_KEY, type RetryScope } from './retrying-call';

const trace = tracer('etcd_retry');
const LOSER_DETAILS = 'another attempt of this hedged call won';

const IDLE = 0; // created, first attempt not started
const ACTIVE = 1; // attempts in flight
const BACKOFF = 2; // every attempt failed, a retry is scheduled
const DONE = 3; // status delivered (or being delivered)

export class HedgingCall implements AttemptCall, HedgeAttemptOwner {
  private phase = IDLE;
  private readonly firstCall: AttemptCall;
  private listener: Partial<InterceptingListener> | undefined;
  /** Our copy of the caller's metadata; each attempt clones it and attaches its own steering. */
  private metadata: Metadata | undefined;
  private readonly tried = new Set<string>();
  private readonly attempts: HedgeAttempt[] = [];
  private winner: HedgeAttempt | undefined;
  private live = 0;
  private message: unknown = undefined;
  private hasMessage = false;
  /** The caller's message context (its write callback) goes to the first attempt that sends the message. */
  private messageContext: MessageContext | undefined;
  private halfClosed = false;
  private readPending = false;
  private cancelled = false;
  /** The call's hedging delay, fixed when it starts; undefined: no hedging (adaptive, too few samples). */
  private delayMs: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** What the timer starts in ACTIVE: a hedge after the delay, or a failed attempt's replacement after its pushback. */
  private timerReason: HedgeReason = 'delay';
  /** The failed attempt a pending replacement stands in for (its peer, for the event). */
  private replacedPeer: string | undefined;
  /** Created at the first retry (most calls never retry). */
  private backoff: RetryBackoff | undefined;
  private lastStatus: StatusObject | undefined;
  private readonly hedging: ResolvedHedgingOptions;
  private readonly deadlineMs: number;
  private readonly method: string;
  private readonly target: string;
  private readonly budget: RetryBudget;
  private readonly hedgeBudget: HedgeBudget;
  private readonly estimator: HedgeDelayEstimator | undefined;

  constructor(
    private readonly scope: RetryScope,
    private readonly callOptions: InterceptorOptions,
    private readonly nextCall: NextCall,
  ) {
    this.firstCall = nextCall(callOptions);
    // Before it starts, a grpc-js call reports its channel's target as its peer: the budget key.
    this.target = this.firstCall.getPeer();
    this.method = callOptions.method_definition.path;
    this.hedging = scope.options.hedging!;
    this.budget = scope.budgetFor(this.target);
    this.hedgeBudget = scope.hedgeBudgetFor(this.target);
    this.estimator = this.hedging.delayMs === undefined ? scope.delayEstimatorFor(this.method) : undefined;
    this.deadlineMs = callDeadlineMs(callOptions);
  }

  start(metadata: Metadata, listener?: Partial<InterceptingListener>): void {
    if (this.phase !== IDLE) return;
    this.listener = listener;
    // A copy: the caller may reuse its Metadata for other calls while we still need ours.
    this.metadata = metadata.clone();
    this.hedgeBudget.recordCall();
    this.delayMs = this.hedging.delayMs ?? this.estimator!.delayMs();
    this.startAttempt('first');
  }

  sendMessageWithContext(context: MessageContext, message: unknown): void {
    if (this.phase === DONE) return;
    this.message = message;
    this.hasMessage = true;
    this.messageContext = context;
    for (const attempt of this.attempts) if (attempt.live) attempt.call.sendMessageWithContext(this.takeContext(), message);
  }

  sendMessage(message: unknown): void {
    this.sendMessageWithContext(NO_CONTEXT, message);
  }

  halfClose(): void {
    this.halfClosed = true;
    for (const attempt of this.attempts) if (attempt.live) attempt.call.halfClose();
  }

  startRead(): void {
    this.readPending = true;
    for (const attempt of this.attempts) if (attempt.live) attempt.call.startRead();
  }

  cancelWithStatus(code: status, details: string): void {
    if (this.phase === DONE) return;
    this.cancelled = true;
    if (this.phase === IDLE) this.firstCall.cancelWithStatus(code, details);
    this.end(undefined);
    this.recordCallEnded(code);
    if (trace.enabled) trace(`${this.method}: cancelled by the caller (${this.attempts.length} attempts)`);
    // Delivered asynchronously, as grpc-js's own calls do on cancel.
    process.nextTick(deliverStatus, this.listener, { code, details, metadata: new Metadata() });
    this.release();
  }

  getPeer(): string {
    return this.shownCall().getPeer();
  }

  getAuthContext(): ReturnType<AttemptCall['getAuthContext']> {
    return this.shownCall().getAuthContext();
  }

  /** The winner once there is one, else the latest attempt. */
  private shownCall(): AttemptCall {
    return (this.winner ?? this.attempts[this.attempts.length - 1])?.call ?? this.firstCall;
  }

  // ---- from the attempts ----

  onPicked(attempt: HedgeAttempt, address: string): void {
    attempt.peer = address;
    if (this.phase === DONE) return;
    this.tried.add(address);
    // An attempt started earlier but not yet picked (queued for a READY replica) avoids it too.
    for (const other of this.attempts) if (other !== attempt && other.live && other.peer === undefined) other.steering.tried.add(address);
  }

  onAttemptStatus(attempt: HedgeAttempt, attemptStatus: StatusObject): void {
    if (!attempt.live) return;
    attempt.live = false;
    this.live--;
    attempt.clearTimer();
    if (attempt.peer === undefined) attempt.peer = peerOf(attempt.call.getPeer(), this.target);
    if (attempt.peer !== undefined) this.tried.add(attempt.peer);
    const o = this.scope.options;
    const code = attemptStatus.code;
    const timedOut = attempt.timedOut;
    this.scope.metrics?.attemptEnded(this.method, code, attempt.kind);
    const retryable = timedOut || isRetryableCode(o.retryableCodeMask, code);
    if (code === status.OK) this.budget.recordSuccess();
    else if (retryable) this.budget.recordFailure();
    if (attempt.number === 1 && !(retryable && !timedOut)) this.estimator?.record(performance.now() - attempt.startMs);
    if (trace.enabled) trace(`${this.method}: attempt ${attempt.number} on ${attempt.peer ?? '?'} ended with code ${code}${timedOut ? ' (attempt timeout)' : ''}; ${this.live} in flight`);
    if (code === status.OK || !retryable || this.cancelled) {
      this.finish(attempt, attemptStatus);
      return;
    }
    const pushbackMs = readPushbackMs(attemptStatus.metadata);
    if (pushbackMs === PUSHBACK_STOP || pushbackMs >= 0) this.scope.metrics?.pushback(this.method, pushbackMs === PUSHBACK_STOP);
    if (pushbackMs === PUSHBACK_STOP || !this.scope.shouldRetry(this.method, attemptStatus)) {
      this.finish(attempt, attemptStatus);
      return;
    }
    if (this.live > 0) {
      // Another attempt may still answer: this failure does not end the call.
      this.replaceFailed(attempt, pushbackMs);
      return;
    }
    const delayMs = this.retryDelayMs(pushbackMs);
    if (delayMs < 0) {
      this.finish(attempt, attemptStatus);
      return;
    }
    this.scheduleRetry(attempt, attemptStatus, delayMs);
  }

  // ---- internals ----

  private startAttempt(kind: AttemptKind): void {
    const number = this.attempts.length + 1;
    const call = number === 1 ? this.firstCall : this.nextCall(this.callOptions);
    const metadata = this.metadata!.clone();
    if (number > 1) metadata.set(PREVIOUS_ATTEMPTS_KEY, String(number - 1));
    const steering = attachSteering(metadata);
    for (const address of this.tried) steering.tried.add(address);
    const attempt = new HedgeAttempt(this, number, call, steering, performance.now());
    attempt.kind = kind;
    this.attempts.push(attempt);
    this.live++;
    this.phase = ACTIVE;
    call.start(metadata, attempt);
    // A lower layer may end the attempt synchronously.
    if (!attempt.live || this.phase !== ACTIVE) return;
    if (this.hasMessage) call.sendMessageWithContext(this.takeContext(), this.message);
    if (this.halfClosed) call.halfClose();
    if (this.readPending) call.startRead();
    const attemptTimeoutMs = this.scope.options.perAttemptTimeoutMs;
    if (attempt.live && attemptTimeoutMs !== undefined && Date.now() + attemptTimeoutMs < this.deadlineMs) {
      attempt.timer = setTimeout(HedgingCall.onAttemptTimer, attemptTimeoutMs, this, attempt);
      attempt.timer.unref();
    }
    this.armHedge();
  }

  private takeContext(): MessageContext {
    const context = this.messageContext ?? NO_CONTEXT;
    this.messageContext = undefined;
    return context;
  }

  /** Whether one more attempt may start now (attempt count, copies in flight, deadline, cancellation). */
  private mayStartAnother(): boolean {
    return this.phase === ACTIVE && !this.cancelled
      && this.attempts.length < this.scope.options.maxAttempts
      && this.live < this.hedging.maxAttempts
      && this.callOptions.parent?.cancelled !== true
      && Date.now() < this.deadlineMs;
  }

  /** Sets the hedge timer: the next copy is due `delayMs` after the latest attempt started. */
  private armHedge(): void {
    this.clearTimer();
    if (this.delayMs === undefined || !this.mayStartAnother()) return;
    const latest = this.attempts[this.attempts.length - 1];
    const waitMs = Math.max(0, latest.startMs + this.delayMs - performance.now());
    this.timerReason = 'delay';
    // Unref'd: the attempts in flight keep the process alive.
    this.timer = setTimeout(HedgingCall.onTimer, waitMs, this);
    this.timer.unref();
  }

  private static onTimer(this: void, call: HedgingCall): void {
    call.timer = undefined;
    if (!call.mayStartAnother()) return;
    if (call.timerReason === 'failure') {
      if (call.budget.canRetry()) call.startHedge('failure', call.replacedPeer);
      else call.armHedge();
      return;
    }
    if (!call.budget.canRetry()) {
      if (trace.enabled) trace(`${call.method}: hedge denied by the retry budget of ${call.target} (${call.budget.tokens} tokens)`);
      call.scope.metrics?.budgetExhausted(call.method, 'hedge');
      return;
    }
    if (!call.hedgeBudget.tryTake()) {
      if (trace.enabled) trace(`${call.method}: hedge denied by the hedge budget of ${call.target} (${call.hedgeBudget.tokens.toFixed(2)} tokens)`);
      call.scope.metrics?.budgetExhausted(call.method, 'hedge');
      return;
    }
    call.budget.recordHedge();
    let latestLive: HedgeAttempt | undefined;
    for (const attempt of call.attempts) if (attempt.live) latestLive = attempt;
    call.startHedge('delay', latestLive?.peer);
  }

  /** A retryable failure with another attempt in flight: start its replacement (A6 non-fatal), or re-arm the hedge. */
  private replaceFailed(failed: HedgeAttempt, pushbackMs: number): void {
    this.clearTimer();
    if (!this.mayStartAnother() || !this.budget.canRetry()) {
      this.armHedge();
      return;
    }
    if (pushbackMs === NO_PUSHBACK) {
      this.startHedge('failure', failed.peer);
      return;
    }
    this.timerReason = 'failure';
    this.replacedPeer = failed.peer;
    this.timer = setTimeout(HedgingCall.onTimer, pushbackMs, this);
    this.timer.unref();
  }

  private startHedge(reason: HedgeReason, peer: string | undefined): void {
    const attempt = this.attempts.length + 1;
    const delayMs = this.delayMs ?? 0;
    if (trace.enabled) trace(`${this.method}: hedge (attempt ${attempt}, ${reason}) after ${delayMs.toFixed(1)} ms; avoiding ${[...this.tried].join(', ') || 'none known'}`);
    const onHedge = this.scope.options.onHedge;
    if (onHedge) {
      this.scope.runHook('onHedge', onHedge, { method: this.method, attempt, delayMs, peer, reason, inFlight: this.live });
      if (this.phase !== ACTIVE || this.cancelled) return; // the hook cancelled the call
    }
    this.startAttempt('hedge');
  }

  /** The backoff before a retry once no attempt is in flight, or -1 when the call must end. */
  private retryDelayMs(pushbackMs: number): number {
    const o = this.scope.options;
    if (this.attempts.length >= o.maxAttempts) return -1;
    if (this.callOptions.parent?.cancelled) return -1;
    if (!this.budget.canRetry()) {
      if (trace.enabled) trace(`${this.method}: retry denied by the budget of ${this.target}`);
      this.scope.metrics?.budgetExhausted(this.method, 'retry');
      return -1;
    }
    this.backoff ??= new RetryBackoff(o);
    const delayMs = this.backoff.nextDelayMs(pushbackMs);
    if (Date.now() + delayMs >= this.deadlineMs) return -1;
    return delayMs;
  }

  private scheduleRetry(failed: HedgeAttempt, attemptStatus: StatusObject, delayMs: number): void {
    this.clearTimer();
    this.phase = BACKOFF;
    this.lastStatus = attemptStatus;
    if (trace.enabled) trace(`${this.method}: every attempt failed; retrying in ${delayMs} ms`);
    const onRetry = this.scope.options.onRetry;
    if (onRetry) {
      this.scope.runHook('onRetry', onRetry, { method: this.method, attempt: this.attempts.length + 1, status: attemptStatus, peer: failed.peer, delayMs, attemptTimedOut: failed.timedOut });
      if (this.phase !== BACKOFF) return; // the hook cancelled the call
    }
    // Not unref'd: with no attempt in flight this timer may be all that keeps the process alive.
    this.timer = setTimeout(HedgingCall.onBackoffTimer, delayMs, this);
  }

  private static onBackoffTimer(this: void, call: HedgingCall): void {
    call.timer = undefined;
    if (call.phase !== BACKOFF) return;
    if (Date.now() >= call.deadlineMs) {
      call.finish(undefined, call.lastStatus!);
      return;
    }
    call.startAttempt('retry');
  }

  private static onAttemptTimer(this: void, call: HedgingCall, attempt: HedgeAttempt): void {
    attempt.timer = undefined;
    if (!attempt.live) return;
    attempt.timedOut = true;
    attempt.call.cancelWithStatus(status.DEADLINE_EXCEEDED, call.scope.options.attemptTimeoutDetails);
  }

  /** Ends the call with `winner`'s answer (or `finalStatus` alone), cancelling every other attempt. */
  private finish(winner: HedgeAttempt | undefined, finalStatus: StatusObject): void {
    this.end(winner);
    this.winner = winner;
    const listener = this.listener;
    if (winner !== undefined) {
      if (trace.enabled) trace(`${this.method}: attempt ${winner.number} of ${this.attempts.length} won with code ${finalStatus.code}`);
      const before = winner.number - 1;
      const headers = winner.heldMetadata;
      if (headers !== undefined) {
        // As grpc-js's own retries do: the application can see how many attempts came before.
        if (before > 0) headers.set(PREVIOUS_ATTEMPTS_KEY, String(before));
        listener?.onReceiveMetadata?.(headers);
      }
      if (before > 0) finalStatus.metadata.set(PREVIOUS_ATTEMPTS_KEY, String(before));
      if (winner.hasHeldMessage) listener?.onReceiveMessage?.(winner.heldMessage);
      else if (winner.heldNull) listener?.onReceiveMessage?.(null);
    }
    this.release();
    this.recordCallEnded(finalStatus.code);
    listener?.onReceiveStatus?.(finalStatus);
  }

  private recordCallEnded(code: status): void {
    const first = this.attempts[0];
    if (this.scope.metrics !== null && first !== undefined) this.scope.metrics.callEnded(this.method, code, performance.now() - first.startMs);
  }

  /** DONE: stops the timers and cancels every attempt still in flight (the losers). */
  private end(winner: HedgeAttempt | undefined): void {
    this.phase = DONE;
    this.clearTimer();
    const losers = this.live > 0 ? this.attempts.filter(a => a.live) : [];
    this.live = 0;
    for (const loser of losers) {
      loser.live = false;
      loser.clearTimer();
      // A first attempt that lost to a hedge was at least this slow: its delay must not shrink.
      if (loser.number === 1 && winner !== undefined) this.estimator?.record(performance.now() - loser.startMs);
    }
    const details = winner === undefined ? 'hedged call cancelled' : LOSER_DETAILS;
    for (const loser of losers) {
      // Its status no longer reaches onAttemptStatus (not live): counted here, as the cancellation it gets.
      this.scope.metrics?.attemptEnded(this.method, status.CANCELLED, loser.kind);
      loser.call.cancelWithStatus(status.CANCELLED, details);
    }
  }

  private release(): void {
    this.message = undefined;
    this.messageContext = undefined;
    this.metadata = undefined;
    this.lastStatus = undefined;
    for (const attempt of this.attempts) {
      attempt.heldMessage = undefined;
      attempt.heldMetadata = undefined;
    }
  }

  private clearTimer(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }
}

/** Without a subchannel, grpc-js reports the channel target (or 'unknown'): not a replica. */
function peerOf(seen: string, target: string): string | undefined {
  return seen && seen !== target && seen !== 'unknown' ? seen : undefined;
}

function deliverStatus(listener: Partial<InterceptingListener> | undefined, finalStatus: StatusObject): void {
  listener?.onReceiveStatus?.(finalStatus);
}
