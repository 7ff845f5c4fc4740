/**
 * What `RetryingCall` and `HedgingCall` share: one logical call made of attempts, in
 * the place where the retry interceptor's `InterceptingCall` would call `nextCall`. It
 * holds the caller's side (request, half-close, reads, cancellation), the budget key,
 * deadline and backoff, and decides whether and when a failed attempt is retried.
 * Contract: above, grpc-js sees one call (headers, messages, exactly one status); below,
 * each attempt is a fresh `nextCall` (a fresh pick) brought up to where the caller is
 * (`replayTo`), its metadata carrying `CallSteering` (by its options object, never on
 * the wire) with the replicas already tried.
 */
import {
  type InterceptingListener,
  type InterceptorOptions,
  Metadata,
  type NextCall,
  status,
  type StatusObject,
} from '@grpc/grpc-js';
import { type AttemptKind } from '../metrics/retry-metrics';
import { callDeadlineMs } from './call-deadline';
import { type AttemptCall, type MessageContext, NO_CONTEXT, type RetryScope, trace } from './call-scope';
import { RetryBackoff } from './retry-backoff';
import { type RetryBudget } from './retry-budget';
import { isKeyedRetryable, stampIdempotencyKey } from './idempotency-keys';
import { isRetryableCode } from './retry-options';
import { PUSHBACK_STOP, readPushbackMs } from './retry-pushback';

// Phases of a call (a tagged state; the numbers keep the object shape flat).
/** Created, first attempt not started. */
export const IDLE = 0;
/** Attempts in flight. */
export const ATTEMPTING = 1;
/** No attempt in flight, a retry is scheduled. */
export const BACKOFF = 2;
/** Status delivered (or being delivered). */
export const DONE = 3;

/** A caller step forwarded to the attempts in flight. */
export type CallerStep = typeof SEND_MESSAGE | typeof HALF_CLOSE | typeof START_READ;
const SEND_MESSAGE = 0;
const HALF_CLOSE = 1;
const START_READ = 2;

/** The base of the retrying and hedging calls (see the file comment). */
export abstract class LogicalCall implements AttemptCall {
  protected phase = IDLE;
  protected listener: Partial<InterceptingListener> | undefined;
  /** Our copy of the caller's metadata; each retry clones it. */
  protected metadata: Metadata | undefined;
  protected message: unknown = undefined;
  protected hasMessage = false;
  /** Context of a message no attempt has been given yet (its write callback belongs to the first send). */
  protected messageContext: MessageContext | undefined;
  protected halfClosed = false;
  /** A read was requested (and, for a retrying call, no message delivered since): a new attempt must start reading. */
  protected readPending = false;
  protected cancelled = false;
  /** The call's own timer (backoff; for a hedging call also the hedge delay). */
  protected timer: NodeJS.Timeout | undefined;
  /** Status of the failed attempt while waiting to retry (the call's status if the retry is abandoned). */
  protected lastStatus: StatusObject | undefined;
  /** The first attempt, created with the call: before it starts it reports the channel target as its peer. */
  protected readonly firstCall: AttemptCall;
  protected readonly method: string;
  /** The channel target: the budget key. */
  protected readonly target: string;
  protected readonly budget: RetryBudget;
  protected readonly deadlineMs: number;
  /** The call has taken its retry-budget token (its first retryable failure; see retry-budget.ts). */
  private chargedBudget = false;
  /** Created at the first retry (most calls never retry). */
  private backoff: RetryBackoff | undefined;
  /** `performance.now()` at start, set only with metrics on. */
  private startedMs = -1;

  constructor(
    protected readonly scope: RetryScope,
    protected readonly callOptions: InterceptorOptions,
    protected readonly nextCall: NextCall,
    /** The idempotency-key header when this call carries a key (see idempotency-keys.ts). */
    protected readonly keyHeader: string | undefined = undefined,
  ) {
    this.firstCall = nextCall(callOptions);
    this.target = this.firstCall.getPeer();
    this.method = callOptions.method_definition.path;
    this.budget = scope.budgetFor(this.target);
    this.deadlineMs = callDeadlineMs(callOptions);
  }

  abstract start(metadata: Metadata, listener?: Partial<InterceptingListener>): void;

  sendMessageWithContext(context: MessageContext, message: unknown): void {
    if (this.phase === DONE) return;
    this.message = message;
    this.hasMessage = true;
    this.messageContext = context;
    this.forward(SEND_MESSAGE);
  }

  sendMessage(message: unknown): void {
    this.sendMessageWithContext(NO_CONTEXT, message);
  }

  halfClose(): void {
    this.halfClosed = true;
    this.forward(HALF_CLOSE);
  }

  startRead(): void {
    this.readPending = true;
    this.forward(START_READ);
  }

  cancelWithStatus(code: status, details: string): void {
    if (this.phase === DONE) return;
    this.cancelled = true;
    this.clearTimer();
    if (this.phase === IDLE) this.firstCall.cancelWithStatus(code, details);
    if (this.cancelAttempts(code, details)) return;
    this.phase = DONE;
    this.recordCallEnded(code);
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

  /** Applies the caller's latest step to every attempt in flight (`applyStep`). */
  protected abstract forward(step: CallerStep): void;
  /** The attempt whose peer and auth context the call shows. */
  protected abstract shownCall(): AttemptCall;
  /** The caller cancelled: cancels the attempts in flight; true when one reports it as its status, which ends the call. */
  protected abstract cancelAttempts(code: status, details: string): boolean;
  /** The backoff passed: starts the next attempt. */
  protected abstract retry(): void;
  /** Ends the call with `finalStatus` (the backoff timer fired at or past the deadline). */
  protected abstract giveUp(finalStatus: StatusObject): void;

  protected begin(metadata: Metadata, listener: Partial<InterceptingListener> | undefined): Metadata {
    this.listener = listener;
    if (this.scope.metrics !== null) this.startedMs = performance.now();
    // A copy: the caller may reuse its Metadata for other calls while we still need ours.
    this.metadata = metadata.clone();
    // Stamped once: every attempt clones this copy, so all carry the same key.
    if (this.keyHeader !== undefined) stampIdempotencyKey(this.metadata, this.keyHeader);
    return this.metadata;
  }

  protected applyStep(call: AttemptCall, step: CallerStep): void {
    if (step === SEND_MESSAGE) call.sendMessageWithContext(this.takeContext(), this.message);
    else if (step === HALF_CLOSE) call.halfClose();
    else call.startRead();
  }

  /** Brings a new attempt up to where the caller is: the message, the half-close, a pending read. */
  protected replayTo(call: AttemptCall): void {
    if (this.hasMessage) call.sendMessageWithContext(this.takeContext(), this.message);
    if (this.halfClosed) call.halfClose();
    if (this.readPending) call.startRead();
  }

  private takeContext(): MessageContext {
    const context = this.messageContext ?? NO_CONTEXT;
    this.messageContext = undefined;
    return context;
  }

  /** `perAttemptTimeoutMs` when set and the timeout ends before the call's deadline, else undefined. */
  protected attemptTimeoutMs(): number | undefined {
    const timeoutMs = this.scope.options.perAttemptTimeoutMs;
    return timeoutMs !== undefined && Date.now() + timeoutMs < this.deadlineMs ? timeoutMs : undefined;
  }

  // ---- may a failed attempt be retried, and after how long ----

  /**
   * Records an attempt's end (metrics, retry budget); true when its failure may be retried
   * (retryable code or timed out). Only the call's first such failure takes a token; other
   * codes (NOT_FOUND, ...) say nothing of the replica and leave the budget alone.
   */
  protected recordAttemptEnd(attemptStatus: StatusObject, timedOut: boolean, kind: AttemptKind): boolean {
    const code = attemptStatus.code;
    this.scope.metrics?.attemptEnded(this.method, code, kind);
    if (code === status.UNAVAILABLE) this.scope.checkResolution(this.target, attemptStatus);
    const retryable = timedOut || isRetryableCode(this.scope.options.retryableCodeMask, code)
      || (this.keyHeader !== undefined && isKeyedRetryable(attemptStatus));
    if (code === status.OK) {
      this.budget.recordSuccess();
    } else if (retryable && !this.chargedBudget) {
      this.chargedBudget = true;
      this.budget.recordFailure();
    }
    return retryable;
  }

  /** Whether no attempt may follow `attempts`: `maxAttempts` reached, or the parent call cancelled. */
  protected outOfAttempts(attempts: number): boolean {
    return attempts >= this.scope.options.maxAttempts || this.callOptions.parent?.cancelled === true;
  }

  /** The server's pushback in a failed attempt's trailers (see retry-pushback.ts), recorded in the metrics. */
  protected pushbackOf(attemptStatus: StatusObject): number {
    const pushbackMs = readPushbackMs(attemptStatus.metadata);
    if (pushbackMs === PUSHBACK_STOP || pushbackMs >= 0) this.scope.metrics?.pushback(this.method, pushbackMs === PUSHBACK_STOP);
    return pushbackMs;
  }

  /** Whether the retry budget allows a retry now (a denial is traced and counted). */
  protected retryBudgetAllows(): boolean {
    if (this.budget.canRetry()) return true;
    if (trace.enabled) trace(`${this.method}: retry denied by the budget of ${this.target}`);
    this.scope.metrics?.budgetExhausted(this.method, 'retry');
    return false;
  }

  /** The backoff (or pushback) before the next attempt, or -1 when it would end at or past the deadline. */
  protected backoffDelayMs(pushbackMs: number): number {
    this.backoff ??= new RetryBackoff(this.scope.options);
    const delayMs = this.backoff.nextDelayMs(pushbackMs);
    // Never sleep past the deadline: the caller gets the real failure now instead.
    return Date.now() + delayMs >= this.deadlineMs ? -1 : delayMs;
  }

  /** BACKOFF: tells `onRetry`, then waits `delayMs` before `retry()`. */
  protected scheduleRetry(attemptStatus: StatusObject, delayMs: number, attempt: number, peer: string | undefined, timedOut: boolean): void {
    this.clearTimer();
    this.phase = BACKOFF;
    this.lastStatus = attemptStatus;
    const onRetry = this.scope.options.onRetry;
    if (onRetry) {
      this.scope.runHook('onRetry', onRetry, { method: this.method, attempt, status: attemptStatus, peer, delayMs, attemptTimedOut: timedOut });
      if (this.phase !== BACKOFF) return; // the hook cancelled the call
    }
    // Not unref'd: with no attempt in flight, this timer may be all that keeps the process
    // alive until the caller gets its answer. It is bounded by the deadline and cleared on cancel.
    this.timer = setTimeout(LogicalCall.onBackoffTimer, delayMs, this);
  }

  private static onBackoffTimer(this: void, call: LogicalCall): void {
    call.timer = undefined;
    if (call.phase !== BACKOFF) return;
    // Timers can fire late: never start an attempt at or past the deadline.
    if (Date.now() >= call.deadlineMs) call.giveUp(call.lastStatus!);
    else call.retry();
  }

  // ---- the end ----

  protected recordCallEnded(code: status): void {
    if (this.startedMs >= 0) this.scope.metrics?.callEnded(this.method, code, performance.now() - this.startedMs);
  }

  /** Drops what a finished call no longer needs (the request may be large). */
  protected release(): void {
    this.message = undefined;
    this.messageContext = undefined;
    this.metadata = undefined;
    this.lastStatus = undefined;
  }

  protected clearTimer(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }
}

function deliverStatus(listener: Partial<InterceptingListener> | undefined, finalStatus: StatusObject): void {
  listener?.onReceiveStatus?.(finalStatus);
}
