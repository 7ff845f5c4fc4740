/**
 * The `idempotencyKeys` option of the retry interceptor: which unary methods carry an
 * idempotency key, in which header, and the key itself (one per logical call, the same
 * on every attempt and hedge). A server running `createIdempotencyInterceptor` then runs
 * the call once per key, so these methods may be retried and hedged like idempotent ones.
 */
import { randomUUID } from 'node:crypto';
import { type Metadata, status, type StatusObject } from '@grpc/grpc-js';
import { checkKeyHeader, DEFAULT_IDEMPOTENCY_KEY_HEADER } from '../common/idempotency-key-header';

/**
 * `createRetryInterceptor({ idempotencyKeys })`: unary calls of `methods` get an idempotency
 * key (a random UUID, or the caller's own value when the call's metadata already has the
 * header) on every attempt and hedge, and are retried on UNAVAILABLE, on a timed-out attempt
 * (`perAttemptTimeoutMs`) and on connection loss even after the server answered in part, and
 * hedged when `hedging` is set. Needs `createIdempotencyInterceptor` on the servers: without
 * it, a retried call may run twice.
 */
export interface IdempotencyKeysOptions {
  /** Full method paths (`/pkg.Service/Method`), or a predicate on the path. Required. */
  methods: readonly string[] | ((path: string) => boolean);
  /** Metadata key of the idempotency key (lower case, not `-bin`). Defaults to `'idempotency-key'`. */
  header?: string;
}

/** Validated `idempotencyKeys`. */
export interface ResolvedIdempotencyKeys {
  readonly header: string;
  /** Whether calls of `path` carry a key (a throwing predicate counts as false, reported through `warn`). */
  matches(path: string, warn: (text: string) => void): boolean;
}

const KNOWN_KEYS = new Set(['methods', 'header']);
/** Validates `idempotencyKeys`; `fail(what, value)` throws the interceptor's TypeError. */
export function resolveIdempotencyKeys(value: IdempotencyKeysOptions, fail: (what: string, value: unknown) => never): ResolvedIdempotencyKeys {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail('idempotencyKeys must be an object like { methods: [...] } (omit it to turn keys off)', value);
  for (const key of Object.keys(value)) {
    if (!KNOWN_KEYS.has(key)) fail(`unknown option 'idempotencyKeys.${key}' (known: ${[...KNOWN_KEYS].join(', ')})`, (value as unknown as Record<string, unknown>)[key]);
  }
  const header = value.header ?? DEFAULT_IDEMPOTENCY_KEY_HEADER;
  const headerError = checkKeyHeader(header);
  if (headerError !== undefined) fail(`idempotencyKeys.header ${headerError}`, header);
  const methods = value.methods;
  if (typeof methods === 'function') {
    return Object.freeze({
      header,
      matches(path: string, warn: (text: string) => void): boolean {
        try {
          return methods(path) === true;
        } catch (err) {
          warn(`idempotencyKeys.methods threw (treated as false): ${(err as Error)?.message ?? String(err)}`);
          return false;
        }
      },
    });
  }
  if (!Array.isArray(methods)) fail('idempotencyKeys.methods must be an array of method paths or a function (path) => boolean', methods);
  for (const path of methods) {
    if (typeof path !== 'string' || !/^\/[^/]+\/[^/]+$/.test(path)) fail("idempotencyKeys.methods must hold full method paths like '/pkg.Service/Method'", path);
  }
  const set = new Set<string>(methods);
  return Object.freeze({ header, matches: (path: string) => set.has(path) });
}

/** Gives `metadata` a key unless the caller set one: the same key then goes on every attempt (they clone it). */
export function stampIdempotencyKey(metadata: Metadata, header: string): void {
  if (metadata.get(header).length === 0) metadata.set(header, randomUUID());
}

/**
 * Whether a keyed call's failed attempt may be retried whatever `retryableCodes` says:
 * UNAVAILABLE (grpc-js's code for a refused stream and a dropped connection) and a stream
 * reset without a gRPC status (the server went away mid-answer).
 */
export function isKeyedRetryable(attemptStatus: StatusObject): boolean {
  return attemptStatus.code === status.UNAVAILABLE
    || (attemptStatus.code === status.INTERNAL && attemptStatus.details.startsWith('Received RST_STREAM'));
}
