/**
 * The contract between the idempotency interceptor and a deduplication store. The
 * interceptor does the gRPC side (hashing the request, encoding the response, replaying);
 * a store only keeps, per key, either a claim (someone is running it) or a result, and
 * tells a waiter when that changes. etcd and memory stores ship; Redis or SQL ones can be
 * written against this interface (docs/idempotency.md says how).
 */

/** The recorded outcome of a call, as the interceptor replays it. Opaque to a store beyond storing it. */
export interface IdempotencyResult {
  /** Hash of the request (hex SHA-256 of its encoded form): a key reused with another request is refused. */
  readonly requestHash: string;
  /** gRPC status code. */
  readonly code: number;
  /** Status details. */
  readonly details: string;
  /** The response message in the interceptor's encoding; undefined when none was sent. */
  readonly response: Buffer | undefined;
  /** Trailing metadata, `[key, value]` pairs in order; values of `-bin` keys are base64. */
  readonly trailers: ReadonlyArray<readonly [string, string]>;
  /** Response headers the handler sent, as `trailers`; absent when it sent none (a store must keep it when present). */
  readonly headers?: ReadonlyArray<readonly [string, string]>;
}

/** A claim this process holds on a key: proof of ownership for `complete` and `release`. */
export interface IdempotencyClaim {
  /** The idempotency key claimed. */
  readonly key: string;
  /** Hash of the request that claimed it. */
  readonly requestHash: string;
  /** Store-specific (e.g. etcd's revision of the claim). */
  readonly token: string;
}

/** What `claim` found. */
export type IdempotencyClaimOutcome =
  | {
    /** The key was free: this process now owns it and runs the handler. */
    readonly state: 'claimed';
    /** Proof of ownership for `complete` and `release`. */
    readonly claim: IdempotencyClaim;
  }
  | {
    /** Another attempt holds the key and is running the handler. */
    readonly state: 'running';
    /** Hash of the request that claimed it (another request under the key is refused). */
    readonly requestHash: string;
  }
  | {
    /** The key has a recorded result. */
    readonly state: 'done';
    /** The result to replay. */
    readonly result: IdempotencyResult;
  };

/**
 * A shared deduplication store. Every method may reject (store unreachable): the
 * interceptor then fails the call closed (UNAVAILABLE) or, with `failOpen`, runs it
 * without deduplication. Implementations must make `claim` atomic across every replica
 * that shares the store, and must let a claim lapse when its owner dies (a lease, a TTL
 * refreshed while the owner lives), or a crashed replica blocks its keys.
 */
export interface IdempotencyStore {
  /**
   * Atomically: when `key` is absent, stores a claim owned by this process (it must lapse
   * if the process dies) and returns `claimed`; otherwise returns what is there.
   */
  claim(key: string, requestHash: string): Promise<IdempotencyClaimOutcome>;
  /**
   * Replaces this process's claim by `result`, kept at least `ttlMs`. If the claim is no
   * longer ours (it lapsed and another attempt claimed the key), leaves the key alone.
   */
  complete(claim: IdempotencyClaim, result: IdempotencyResult, ttlMs: number): Promise<void>;
  /** Deletes this process's claim (if still ours) without a result: the next attempt runs the handler. */
  release(claim: IdempotencyClaim): Promise<void>;
  /**
   * Waits until `key` has a result (resolves to it) or no claim (resolves undefined: claim
   * again). Resolves undefined at once when `signal` aborts. Must not miss a change made
   * between the caller's `claim` and this call (read after the watch is in place).
   */
  wait(key: string, signal: AbortSignal): Promise<IdempotencyResult | undefined>;
  /** Releases the store's resources (connections, timers). Claims held lapse by themselves. */
  close(): Promise<void>;
}
