/** Options of `createIdempotencyInterceptor`: the public type, defaults, and their one validation step. */
import { checkKeyHeader, DEFAULT_IDEMPOTENCY_KEY_HEADER } from '../common/idempotency-key-header';
import { type IdempotencyStore } from './idempotency-store';

/** Options of `createIdempotencyInterceptor`. Only `store` is required; every other field says its default. */
export interface IdempotencyInterceptorOptions {
  /** Where claims and results live: `createEtcdIdempotencyStore()` across replicas, `createMemoryIdempotencyStore()` for one. */
  store: IdempotencyStore;
  /**
   * How long a recorded result is replayed for its key (AIP-155 asks for at least 60 minutes).
   * The etcd store keeps it between `ttlMs` and `ttlMs` + 1 s. Defaults to 3,600,000 (1 h).
   */
  ttlMs?: number;
  /** Metadata key of the idempotency key; must match the clients' `idempotencyKeys.header`. Defaults to `'idempotency-key'`. */
  header?: string;
  /**
   * Unary methods deduplicated (full paths, or a predicate on the path); calls of other
   * methods pass through, key or not. Defaults to every unary method (a call without a key
   * always passes through).
   */
  methods?: readonly string[] | ((path: string) => boolean);
  /**
   * When the store cannot be reached: false fails the call closed (UNAVAILABLE, handler not
   * run: the client retries later); true runs the handler without deduplication (a warning
   * is logged, rate-limited). Defaults to false.
   */
  failOpen?: boolean;
}

/** The defaults of every optional `IdempotencyInterceptorOptions` field (`methods` undefined = every unary method). */
export const DEFAULT_IDEMPOTENCY_INTERCEPTOR_OPTIONS = Object.freeze({
  /** Results are replayed for an hour (AIP-155: at least 60 minutes). */
  ttlMs: 3_600_000,
  /** The header the clients' `idempotencyKeys` use by default. */
  header: DEFAULT_IDEMPOTENCY_KEY_HEADER,
  /** Every unary method. */
  methods: undefined as IdempotencyInterceptorOptions['methods'],
  /** Fail closed: UNAVAILABLE, handler not run. */
  failOpen: false,
});

/** Validated options. */
export interface ResolvedIdempotencyOptions {
  readonly store: IdempotencyStore;
  readonly ttlMs: number;
  readonly header: string;
  /** Whether calls of `path` are deduplicated (a throwing predicate counts as false). */
  readonly methods: (path: string) => boolean;
  readonly failOpen: boolean;
}

const KNOWN_KEYS = new Set(['store', ...Object.keys(DEFAULT_IDEMPOTENCY_INTERCEPTOR_OPTIONS)]);
const STORE_METHODS = ['claim', 'complete', 'release', 'wait', 'close'] as const;

function fail(what: string, value: unknown): never {
  let shown: string;
  try {
    shown = typeof value === 'function' ? 'a function' : JSON.stringify(value) ?? String(value);
  } catch {
    shown = String(value);
  }
  throw new TypeError(`grpc-etcd-lb idempotency interceptor: ${what}, got ${shown}`);
}

/** Merges `options` over the defaults and validates once; throws a TypeError naming the bad option and value. */
export function resolveIdempotencyOptions(options: IdempotencyInterceptorOptions, warn: (text: string) => void): ResolvedIdempotencyOptions {
  if (options === null || typeof options !== 'object') fail('options must be an object like { store }', options);
  for (const key of Object.keys(options)) {
    if (!KNOWN_KEYS.has(key)) fail(`unknown option '${key}' (known: ${[...KNOWN_KEYS].join(', ')})`, (options as unknown as Record<string, unknown>)[key]);
  }
  const store = options.store;
  if (store === null || typeof store !== 'object' || STORE_METHODS.some(m => typeof (store as unknown as Record<string, unknown>)[m] !== 'function')) {
    fail(`store must be an IdempotencyStore (methods ${STORE_METHODS.join(', ')}), e.g. createEtcdIdempotencyStore()`, store === undefined ? undefined : typeof store);
  }
  const d = DEFAULT_IDEMPOTENCY_INTERCEPTOR_OPTIONS;
  const ttlMs = options.ttlMs ?? d.ttlMs;
  if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs <= 0) fail('ttlMs must be a finite number > 0', ttlMs);
  const header = options.header ?? d.header;
  const headerError = checkKeyHeader(header);
  if (headerError !== undefined) fail(`header ${headerError}`, header);
  const failOpen = options.failOpen ?? d.failOpen;
  if (typeof failOpen !== 'boolean') fail('failOpen must be a boolean', failOpen);
  return Object.freeze({ store, ttlMs, header, methods: resolveMethods(options.methods, warn), failOpen });
}

function resolveMethods(methods: IdempotencyInterceptorOptions['methods'], warn: (text: string) => void): (path: string) => boolean {
  if (methods === undefined) return () => true;
  if (typeof methods === 'function') {
    return path => {
      try {
        return methods(path) === true;
      } catch (err) {
        warn(`methods threw (treated as false: not deduplicated): ${(err as Error)?.message ?? String(err)}`);
        return false;
      }
    };
  }
  if (!Array.isArray(methods)) fail('methods must be an array of method paths or a function (path) => boolean', methods);
  for (const path of methods) {
    if (typeof path !== 'string' || !/^\/[^/]+\/[^/]+$/.test(path)) fail("methods must hold full method paths like '/pkg.Service/Method'", path);
  }
  const set = new Set<string>(methods);
  return path => set.has(path);
}
