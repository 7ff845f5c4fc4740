/** Tuning of the discovery resolvers, etcd and ZooKeeper alike (shared by every channel: set once, with `register({ resolver })`). */

export interface ResolverOptions {
  /**
   * The first change after a quiet window reaches the LB policy at once; changes that
   * follow within the window are delivered together at its end, so a burst is a few
   * updates. 0 delivers every change at once. Defaults to 50 ms.
   */
  coalesceWindowMs?: number;
  /** Delay before listing again after a failed list or a lost watch. Defaults to 100 ms. */
  initialBackoffMs?: number;
  /** Cap of that delay while the registry stays unreachable; kept short so a returning etcd is seen quickly. Defaults to 500 ms. */
  maxBackoffMs?: number;
  /** Keys per list page (halved while a page exceeds grpc-js's 4 MiB receive limit). Defaults to 1,000. */
  pageSize?: number;
  /** Deadline of each list page: a connection that accepts but never answers must not hang the resolver. Defaults to 5,000 ms. */
  listTimeoutMs?: number;
  /**
   * HTTP/2 keepalive ping interval on the resolver's etcd connection, so a silently dead
   * connection is noticed; 0 disables it. Ignored when `grpcOptions` set
   * `grpc.keepalive_time_ms`. Defaults to 10,000 ms (etcd refuses pings more often than every 5 s).
   */
  keepaliveTimeMs?: number;
  /** How long a keepalive ping may go unanswered. Defaults to 5,000 ms. */
  keepaliveTimeoutMs?: number;
}

/** Resolver options with every default applied. */
export type ResolvedResolverOptions = Readonly<Required<ResolverOptions>>;

/** The defaults of `ResolverOptions`. */
export const DEFAULT_RESOLVER_OPTIONS: ResolvedResolverOptions = Object.freeze({
  coalesceWindowMs: 50,
  initialBackoffMs: 100,
  maxBackoffMs: 500,
  pageSize: 1000,
  listTimeoutMs: 5_000,
  keepaliveTimeMs: 10_000,
  keepaliveTimeoutMs: 5_000,
});

/** Merges `options` over the defaults; throws an error naming the bad field. */
export function resolveResolverOptions(options: ResolverOptions = {}): ResolvedResolverOptions {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`resolver options: options must be an object, got ${String(options)}`);
  }
  const merged: Required<ResolverOptions> = {
    coalesceWindowMs: options.coalesceWindowMs ?? DEFAULT_RESOLVER_OPTIONS.coalesceWindowMs,
    initialBackoffMs: options.initialBackoffMs ?? DEFAULT_RESOLVER_OPTIONS.initialBackoffMs,
    maxBackoffMs: options.maxBackoffMs ?? DEFAULT_RESOLVER_OPTIONS.maxBackoffMs,
    pageSize: options.pageSize ?? DEFAULT_RESOLVER_OPTIONS.pageSize,
    listTimeoutMs: options.listTimeoutMs ?? DEFAULT_RESOLVER_OPTIONS.listTimeoutMs,
    keepaliveTimeMs: options.keepaliveTimeMs ?? DEFAULT_RESOLVER_OPTIONS.keepaliveTimeMs,
    keepaliveTimeoutMs: options.keepaliveTimeoutMs ?? DEFAULT_RESOLVER_OPTIONS.keepaliveTimeoutMs,
  };
  for (const [name, value] of Object.entries(merged)) {
    const min = name === 'coalesceWindowMs' || name.startsWith('keepalive') ? 0 : 1;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > 3_600_000) {
      throw new TypeError(`resolver options: '${name}' must be an integer in [${min}, 3600000], got ${JSON.stringify(value)}`);
    }
  }
  if (merged.keepaliveTimeMs !== 0 && merged.keepaliveTimeMs < 5000) {
    throw new TypeError(`resolver options: 'keepaliveTimeMs' must be 0 (off) or ≥ 5000 (etcd's minimum ping interval), got ${merged.keepaliveTimeMs}`);
  }
  if (merged.maxBackoffMs < merged.initialBackoffMs) {
    throw new TypeError(`resolver options: 'maxBackoffMs' (${merged.maxBackoffMs}) must be ≥ 'initialBackoffMs' (${merged.initialBackoffMs})`);
  }
  return Object.freeze(merged);
}

let resolverOptions: ResolvedResolverOptions = DEFAULT_RESOLVER_OPTIONS;

/** Sets the options used by service watches of every backend started from now on (see `register({ resolver })`). */
export function setResolverOptions(options: ResolvedResolverOptions): void {
  resolverOptions = options;
}

/** The options new service watches use. */
export function currentResolverOptions(): ResolvedResolverOptions {
  return resolverOptions;
}
