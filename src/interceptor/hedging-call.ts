/**
 * One hedged unary call, in place of `RetryingCall` and with its contract
 * (logical-call.ts): another copy each hedging delay with no answer, within the attempt
 * limits; the first OK or non-retryable status wins, the rest are cancelled. Our picker's
 * choice joins the tried-set at pick time (hedge-attempt.ts), so hedges avoid every
 * replica tried. A retryable failure with another attempt in flight is replaced at once,
 * gated like a retry but with no backoff; once all have failed, the call retries as
 * `RetryingCall`. Why, budgets, the delay's samples: docs/retries-and-hedging.md.
 */
import { type InterceptingListener, type InterceptorOptions, type Metadata, type NextCall, status, type StatusObject } from '@grpc/grpc-js';
import { attachSteering } from '../balancer/call-steering';
import { type AttemptKind } from '../metrics/retry-metrics';
import { type AttemptCall, type RetryScope, peerOf, setPreviousAttempts, trace } from './call-scope';
import { HedgeAttempt, type HedgeAttemptOwner } from './hedge-attempt';
import { type HedgeBudget } from './hedge-budget';
import { type HedgeDelayEstimator } from './hedge-delay';
import { type HedgeReason, type ResolvedHedgingOptions } from './hedging-options';
import { ATTEMPTING, type CallerStep, DONE, IDLE, LogicalCall } from './logical-call';
import { NO_PUSHBACK, PUSHBACK_STOP } from './retry-pushback';

const LOSER_DETAILS = 'another attempt of this hedged call won';

/** A hedged unary call (see the file comment); created by the retry interceptor. */
export class HedgingCall extends LogicalCall implements HedgeAttemptOwner {
  private readonly tried = new Set<string>();
  private readonly attempts: HedgeAttempt[] = [];
  private winner: HedgeAttempt | undefined;
  private live = 0;
  /** The call's hedging delay, fixed when it starts; undefined: no hedging (adaptive, too few samples). */
  private delayMs: number | undefined;
  /** What the timer starts in ATTEMPTING: a hedge after the delay, or a failed attempt's replacement after its pushback. */
  private timerReason: HedgeReason = 'delay';
  /** The failed attempt a pending replacement stands in for (its peer, for the event). */
  private replacedPeer: string | undefined;
  private readonly hedging: ResolvedHedgingOptions;
  private readonly hedgeBudget: HedgeBudget;
  private readonly estimator: HedgeDelayEstimator | undefined;

  /** @param keyHeader The idempotency-key header when the call carries a key. */
  constructor(scope: RetryScope, callOptions: InterceptorOptions, nextCall: NextCall, keyHeader?: string) {
    super(scope, callOptions, nextCall, keyHeader);
    this.hedging = scope.options.hedging!;
    this.hedgeBudget = scope.hedgeBudgetFor(this.target);
    this.estimator = this.hedging.delayMs === undefined ? scope.delayEstimatorFor(this.method) : undefined;
  }

  override start(metadata: Metadata, listener?: Partial<InterceptingListener>): void {
    if (this.phase !== IDLE) return;
    this.begin(metadata, listener);
    this.hedgeBudget.recordCall();
    this.delayMs = this.hedging.delayMs ?? this.estimator!.delayMs();
    this.startAttempt('first');
  }

  protected override forward(step: CallerStep): void {
    for (const attempt of this.attempts) if (attempt.live) this.applyStep(attempt.call, step);
  }

  /** The winner once there is one, else the latest attempt. */
  protected override shownCall(): AttemptCall {
    return (this.winner ?? this.attempts[this.attempts.length - 1])?.call ?? this.firstCall;
  }

  protected override cancelAttempts(): boolean {
    this.end(undefined);
    if (trace.enabled) trace(`${this.method}: cancelled by the caller (${this.attempts.length} attempts)`);
    return false;
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
    const code = attemptStatus.code;
    const timedOut = attempt.timedOut;
    const retryable = this.recordAttemptEnd(attemptStatus, timedOut, attempt.kind);
    if (attempt.number === 1 && !(retryable && !timedOut)) this.estimator?.record(performance.now() - attempt.startMs);
    if (trace.enabled) trace(`${this.method}: attempt ${attempt.number} on ${attempt.peer ?? '?'} ended with code ${code}${timedOut ? ' (attempt timeout)' : ''}; ${this.live} in flight`);
    if (code === status.OK || !retryable || this.cancelled) {
      this.finish(attempt, attemptStatus);
      return;
    }
    const pushbackMs = this.pushbackOf(attemptStatus);
    if (pushbackMs === PUSHBACK_STOP || !this.scope.shouldRetry(this.method, attemptStatus)) {
      this.finish(attempt, attemptStatus);
      return;
    }
    if (this.live > 0) {
      // Another attempt may still answer: this failure does not end the call.
      this.replaceFailed(attempt, pushbackMs);
      return;
    }
    const delayMs = this.outOfAttempts(this.attempts.length) || !this.retryBudgetAllows() ? -1 : this.backoffDelayMs(pushbackMs);
    if (delayMs < 0) {
      this.finish(attempt, attemptStatus);
      return;
    }
    if (trace.enabled) trace(`${this.method}: every attempt failed; retrying in ${delayMs} ms`);
    this.scheduleRetry(attemptStatus, delayMs, this.attempts.length + 1, attempt.peer, timedOut);
  }

  // ---- internals ----

  private startAttempt(kind: AttemptKind): void {
    const number = this.attempts.length + 1;
    const call = number === 1 ? this.firstCall : this.nextCall(this.callOptions);
    const metadata = this.metadata!.clone();
    setPreviousAttempts(metadata, number - 1);
    const steering = attachSteering(metadata);
    for (const address of this.tried) steering.tried.add(address);
    const attempt = new HedgeAttempt(this, number, call, steering, performance.now());
    attempt.kind = kind;
    this.attempts.push(attempt);
    this.live++;
    this.phase = ATTEMPTING;
    call.start(metadata, attempt);
    // A lower layer may end the attempt synchronously.
    if (!attempt.live || this.phase !== ATTEMPTING) return;
    this.replayTo(call);
    const attemptTimeoutMs = this.attemptTimeoutMs();
    if (attempt.live && attemptTimeoutMs !== undefined) attempt.armTimeout(attemptTimeoutMs, this.scope.options.attemptTimeoutDetails);
    this.armHedge();
  }

  protected override retry(): void {
    this.startAttempt('retry');
  }

  protected override giveUp(finalStatus: StatusObject): void {
    this.finish(undefined, finalStatus);
  }

  /** Whether one more attempt may start now (attempt count, copies in flight, deadline, cancellation). */
  private mayStartAnother(): boolean {
    return this.phase === ATTEMPTING && !this.cancelled
      && !this.outOfAttempts(this.attempts.length)
      && this.live < this.hedging.maxAttempts
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
    if (!call.hedgeBudgetsAllow()) return;
    let latestLive: HedgeAttempt | undefined;
    for (const attempt of call.attempts) if (attempt.live) latestLive = attempt;
    call.startHedge('delay', latestLive?.peer);
  }

  /** Whether a hedge after the delay may start: a retry budget above half and a hedge-budget token (taken). */
  private hedgeBudgetsAllow(): boolean {
    const retryAllows = this.budget.canRetry();
    if (retryAllows && this.hedgeBudget.tryTake()) return true;
    if (trace.enabled) {
      const budget = retryAllows
        ? `hedge budget of ${this.target} (${this.hedgeBudget.tokens.toFixed(2)} tokens)`
        : `retry budget of ${this.target} (${this.budget.tokens} tokens)`;
      trace(`${this.method}: hedge denied by the ${budget}`);
    }
    this.scope.metrics?.budgetExhausted(this.method, 'hedge');
    return false;
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
      if (this.phase !== ATTEMPTING || this.cancelled) return; // the hook cancelled the call
    }
    this.startAttempt('hedge');
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
        setPreviousAttempts(headers, before);
        listener?.onReceiveMetadata?.(headers);
      }
      setPreviousAttempts(finalStatus.metadata, before);
      if (winner.hasHeldMessage) listener?.onReceiveMessage?.(winner.heldMessage);
      else if (winner.heldNull) listener?.onReceiveMessage?.(null);
    }
    this.release();
    this.recordCallEnded(finalStatus.code);
    listener?.onReceiveStatus?.(finalStatus);
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

  protected override release(): void {
    super.release();
    for (const attempt of this.attempts) {
      attempt.heldMessage = undefined;
      attempt.heldMetadata = undefined;
    }
  }
}
