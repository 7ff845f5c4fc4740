/**
 * One unary server call under the idempotency interceptor; its request is held until the
 * key is settled in the store. Claimed here: the handler runs and its result is recorded
 * before the status is sent (a retry after a lost answer finds it), unless retryable
 * (released instead). Running elsewhere: watch until the deadline, claim again if the
 * claim lapses. Recorded: replay. Another request under the key: INVALID_ARGUMENT. Our
 * own answers go to `next`, so interceptors listed before ours see them.
 */
import {
  Metadata,
  type ServerInterceptingCallInterface,
  type ServerListener,
  type StatusObject,
  status,
} from '@grpc/grpc-js';
import { type IdempotencyClaim, type IdempotencyResult } from './idempotency-store';
import { type ResolvedIdempotencyOptions } from './idempotency-options';
import { decodeMetadata, decodeResponse, encodeMetadata, encodeResponse, hashRequest, recordedResult, replayTrailers } from './result-encoding';

/** Statuses that mean "not done, try again": never recorded, the claim is released. */
const RETRYABLE_CODES: ReadonlySet<number> = new Set([status.UNAVAILABLE, status.RESOURCE_EXHAUSTED, status.ABORTED]);
/** Rounds of claim → wait → claim again (claims lapsing one after the other); the deadline bounds it too. */
const MAX_CLAIM_ROUNDS = 20;
/** Longest key accepted: keys are stored as store keys. */
const MAX_KEY_LENGTH = 256;

/** What a call needs from the interceptor that made it. */
export interface KeyedCallScope {
  readonly options: ResolvedIdempotencyOptions;
  /** Logs a problem, rate-limited (seen at default verbosity). */
  warn(text: string): void;
  trace(text: string): void;
}

type PartialStatus = Pick<StatusObject, 'code' | 'details'> & { metadata?: Metadata | null };

const enum Phase {
  /** Waiting for the headers. */
  Start,
  /** No key (or not deduplicated): everything passes through. */
  PassThrough,
  /** Key read; holding the request while the store decides. */
  Holding,
  /** The handler runs (claim held, or failing open). */
  Running,
  /** We answered ourselves (replay, refusal): the handler never sees the call. */
  Answered,
}

/** Per-call state; `listener` and the responder methods are handed to grpc-js's `ServerInterceptingCall`. */
export class KeyedServerCall {
  private phase = Phase.Start;
  private key = '';
  private metadata: Metadata | undefined;
  private forwardMetadata: ((metadata: Metadata) => void) | undefined;
  private request: unknown = undefined;
  private forwardMessage: ((message: unknown) => void) | undefined;
  private forwardHalfClose: (() => void) | undefined;
  private claim: IdempotencyClaim | undefined;
  private response: unknown = undefined;
  private hasResponse = false;
  private headers: Array<readonly [string, string]> | undefined;
  private cancelled = false;
  private readonly abort = new AbortController();

  constructor(
    private readonly scope: KeyedCallScope,
    private readonly path: string,
    private readonly responseSerialize: (value: unknown) => Buffer,
    private readonly next: ServerInterceptingCallInterface,
  ) {}

  readonly listener: ServerListener = {
    onReceiveMetadata: (metadata, forward) => {
      const value = metadata.get(this.scope.options.header)[0];
      if (value === undefined) {
        this.phase = Phase.PassThrough;
        forward(metadata);
        return;
      }
      const key = String(value);
      if (key.length === 0 || key.length > MAX_KEY_LENGTH) {
        this.answer({ code: status.INVALID_ARGUMENT, details: `idempotency key must be 1..${MAX_KEY_LENGTH} characters, got ${key.length}`, metadata: null });
        return;
      }
      this.phase = Phase.Holding;
      this.key = key;
      this.metadata = metadata;
      this.forwardMetadata = forward;
      // The handler asks for the message only once it has the headers: we need it first (its hash).
      this.next.startRead();
    },
    onReceiveMessage: (message, forward) => {
      if (this.phase !== Phase.Holding) {
        if (this.phase !== Phase.Answered) forward(message);
        return;
      }
      if (this.forwardMessage !== undefined) return; // a unary call has one message
      this.request = message;
      this.forwardMessage = forward;
      // Read the half-close now too: delivered while the handler's headers are being
      // processed, grpc-js would hand it to the handler before the held message.
      this.next.startRead();
      void this.settle();
    },
    onReceiveHalfClose: forward => {
      if (this.phase === Phase.Holding) this.forwardHalfClose = forward;
      else if (this.phase !== Phase.Answered) forward();
    },
    onCancel: () => {
      this.cancelled = true;
      this.abort.abort();
    },
  };

  sendMetadata(metadata: Metadata, forward: (metadata: Metadata) => void): void {
    if (this.phase === Phase.Running) {
      const pairs = encodeMetadata(metadata);
      if (pairs.length > 0) this.headers = pairs;
    }
    forward(metadata);
  }

  sendMessage(message: unknown, forward: (message: unknown) => void): void {
    if (this.phase === Phase.Running) {
      this.response = message;
      this.hasResponse = true;
    }
    forward(message);
  }

  sendStatus(finalStatus: PartialStatus, forward: (status: PartialStatus) => void): void {
    const claim = this.claim;
    if (this.phase !== Phase.Running || claim === undefined) {
      forward(finalStatus);
      return;
    }
    this.claim = undefined;
    void this.record(claim, finalStatus).then(() => forward(finalStatus));
  }

  // ---- deciding ----

  private async settle(): Promise<void> {
    const { store } = this.scope.options;
    let requestHash: string;
    try {
      requestHash = hashRequest(this.request);
    } catch (err) {
      this.answer({ code: status.INTERNAL, details: `idempotency: cannot hash the request of ${this.path}: ${(err as Error)?.message}`, metadata: null });
      return;
    }
    const deadlineMs = this.deadlineMs();
    for (let round = 0; round < MAX_CLAIM_ROUNDS && !this.cancelled; round++) {
      let outcome;
      try {
        outcome = await store.claim(this.key, requestHash);
      } catch (err) {
        this.storeFailed(err);
        return;
      }
      if (outcome.state === 'claimed') {
        if (this.cancelled) {
          // Nobody is listening: give the key back rather than hold it until the handler would have run.
          store.release(outcome.claim).catch(() => undefined);
          return;
        }
        this.claim = outcome.claim;
        this.run();
        return;
      }
      if (outcome.state === 'done') {
        this.replay(outcome.result, requestHash);
        return;
      }
      if (outcome.requestHash !== requestHash) {
        this.refuseMismatch();
        return;
      }
      this.scope.trace(`${this.path}: key ${this.key} is running elsewhere; waiting`);
      let result: IdempotencyResult | undefined;
      const timer = Number.isFinite(deadlineMs) ? setTimeout(() => this.abort.abort(), Math.max(0, deadlineMs - Date.now())) : undefined;
      try {
        result = await store.wait(this.key, this.abort.signal);
      } catch (err) {
        this.storeFailed(err);
        return;
      } finally {
        clearTimeout(timer);
      }
      if (this.cancelled) return;
      if (result !== undefined) {
        this.replay(result, requestHash);
        return;
      }
      if (this.abort.signal.aborted || Date.now() >= deadlineMs) {
        this.answer({ code: status.DEADLINE_EXCEEDED, details: `idempotency key '${this.key}' was still running on another attempt at the deadline`, metadata: null });
        return;
      }
      // The claim lapsed (its owner died or released it): claim again.
    }
    if (!this.cancelled) {
      this.answer({ code: status.UNAVAILABLE, details: `idempotency key '${this.key}': claimed and released ${MAX_CLAIM_ROUNDS} times while waiting`, metadata: null });
    }
  }

  private storeFailed(err: unknown): void {
    if (this.cancelled) return;
    const why = (err as Error)?.message ?? String(err);
    if (this.scope.options.failOpen) {
      this.scope.warn(`store unreachable, running ${this.path} without deduplication (failOpen): ${why}`);
      this.run();
      return;
    }
    this.answer({ code: status.UNAVAILABLE, details: `idempotency store unavailable, call not run (key '${this.key}'): ${why}`, metadata: null });
  }

  private run(): void {
    this.phase = Phase.Running;
    const metadata = this.metadata!;
    this.metadata = undefined;
    this.forwardMetadata!(metadata);
    this.forwardMessage!(this.request);
    this.request = undefined;
    this.forwardHalfClose?.();
  }

  private replay(result: IdempotencyResult, requestHash: string): void {
    if (result.requestHash !== requestHash) {
      this.refuseMismatch();
      return;
    }
    this.scope.trace(`${this.path}: key ${this.key} replayed (code ${result.code})`);
    let response: unknown;
    try {
      response = result.response === undefined ? undefined : decodeResponse(result.response);
    } catch (err) {
      this.answer({ code: status.INTERNAL, details: `idempotency key '${this.key}': recorded response unreadable: ${(err as Error)?.message}`, metadata: null });
      return;
    }
    const headers = result.headers === undefined ? undefined : decodeMetadata(result.headers);
    this.answer({ code: result.code, details: result.details, metadata: replayTrailers(result.trailers) }, result.response !== undefined, response, headers);
  }

  private refuseMismatch(): void {
    this.answer({
      code: status.INVALID_ARGUMENT,
      details: `idempotency key '${this.key}' was already used with a different request (use a new key per distinct request)`,
      metadata: null,
    });
  }

  /** Answers without the handler (replay, refusal, fail closed); `headers` as the handler sent them. */
  private answer(finalStatus: PartialStatus, hasMessage = false, message: unknown = undefined, headers?: Metadata): void {
    this.phase = Phase.Answered;
    this.metadata = undefined;
    this.request = undefined;
    if (this.cancelled) return;
    const next = this.next;
    if (hasMessage || headers !== undefined) next.sendMetadata(headers ?? new Metadata());
    if (hasMessage) next.sendMessage(message, () => next.sendStatus(finalStatus));
    else next.sendStatus(finalStatus);
  }

  // ---- recording ----

  private async record(claim: IdempotencyClaim, finalStatus: PartialStatus): Promise<void> {
    const { store, ttlMs } = this.scope.options;
    if (RETRYABLE_CODES.has(finalStatus.code)) {
      await store.release(claim).catch((err: unknown) => this.scope.warn(`could not release key '${claim.key}' after code ${finalStatus.code}: ${(err as Error)?.message}`));
      return;
    }
    let response: Buffer | undefined;
    if (this.hasResponse) {
      const encoded = encodeResponse(this.response, this.responseSerialize);
      this.response = undefined;
      if (typeof encoded === 'string') {
        this.scope.warn(`the response of ${this.path} cannot be replayed (${encoded}); key '${claim.key}' not recorded, a retry runs the handler again`);
        await store.release(claim).catch(() => undefined);
        return;
      }
      response = encoded;
    }
    try {
      await store.complete(claim, recordedResult(claim.requestHash, finalStatus, response, this.headers), ttlMs);
    } catch (err) {
      this.scope.warn(`could not record the result of key '${claim.key}' (${this.path}); a retry may run it again: ${(err as Error)?.message}`);
      await store.release(claim).catch(() => undefined);
    }
  }

  private deadlineMs(): number {
    const deadline = this.next.getDeadline();
    return deadline instanceof Date ? deadline.getTime() : deadline;
  }
}
