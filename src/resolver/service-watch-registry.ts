/**
 * Sharing: channels resolving the same service on the same etcd connection
 * share one `ServiceWatch` (one list, one watch) on one pooled etcd client.
 * The resolver's client lives in its own pool, apart from registrations: a
 * failing list or watch must not open the circuit breaker that lease
 * keep-alives go through.
 */
import { circuitBreaker, ConsecutiveBreaker, ExponentialBackoff, handleWhen, retry } from 'cockatiel';
import { GRPCResourceExhastedError, isRecoverableError } from 'etcd3';
import {
  acquireEtcdClient, connectionKey, normalizeHosts, DEFAULT_CIRCUIT_HALF_OPEN_AFTER_MS, DEFAULT_WATCH_BACKOFF_INITIAL_MS,
  DEFAULT_WATCH_BACKOFF_MAX_MS, type EtcdClientLease, type EtcdOptions,
} from '../etcd/connection';
import { type ResolvedEtcdResolverOptions } from './etcd-resolver-options';
import { ServiceWatch } from './service-watch';
import { WarningLimiter } from './warning-limiter';

/** Pool name of the resolver's etcd clients (see `acquireEtcdClient`). */
export const RESOLVER_POOL_NAME = 'resolver';

/** One warning budget for all services: 10,000 bad keys anywhere print a few lines. */
const warnings = new WarningLimiter('etcd resolver');

interface RegistryEntry {
  readonly watch: ServiceWatch;
  readonly clientLease: EtcdClientLease;
  refs: number;
}

const entries = new Map<string, RegistryEntry>();

/** A reference on a shared service watch. `release()` is idempotent; the last one closes the watch. */
export interface ServiceWatchLease {
  readonly watch: ServiceWatch;
  release(): void;
}

/** Takes a reference on the shared watch of `service` on `connection`, starting it if new. */
export function acquireServiceWatch(connection: EtcdOptions, service: string, options: ResolvedEtcdResolverOptions): ServiceWatchLease {
  const clientOptions = resolverClientOptions(connection, options);
  const key = `${connectionKey(clientOptions, RESOLVER_POOL_NAME)}\n${service}`;
  let entry = entries.get(key);
  if (!entry) {
    const clientLease = acquireEtcdClient(clientOptions, RESOLVER_POOL_NAME);
    const label = normalizeHosts(connection.hosts).join(',');
    const watch = new ServiceWatch(service, clientLease.client, label, options, text => warnings.warn(text));
    entry = { watch, clientLease, refs: 0 };
    entries.set(key, entry);
    watch.start();
  }
  entry.refs++;
  const held = entry;
  let released = false;
  return {
    watch: held.watch,
    release() {
      if (released) return;
      released = true;
      held.refs--;
      if (held.refs === 0) {
        entries.delete(key);
        held.watch.close();
        held.clientLease.release();
      }
    },
  };
}

/** Number of live shared service watches (for leak tests and diagnostics). */
export function activeServiceWatchCount(): number {
  return entries.size;
}

/**
 * The resolver's connection: the caller's options plus
 * - HTTP/2 keepalive (unless configured), so a silently dead connection ends the watch;
 * - the pool's fast fault handling (unless configured), except that a list page over
 *   the receive limit is neither retried as is (etcd3 retries it 3 times, moving the
 *   same megabytes) nor counted by the circuit breaker (3 of them open it): the
 *   lister shrinks the page and asks again at once.
 */
export function resolverClientOptions(connection: EtcdOptions, options: ResolvedEtcdResolverOptions): EtcdOptions {
  const grpcOptions = connection.grpcOptions ?? {};
  const withKeepalive = options.keepaliveTimeMs === 0 || grpcOptions['grpc.keepalive_time_ms'] !== undefined
    ? connection
    : {
      ...connection,
      grpcOptions: {
        ...grpcOptions,
        'grpc.keepalive_time_ms': options.keepaliveTimeMs,
        'grpc.keepalive_timeout_ms': options.keepaliveTimeoutMs,
      },
    };
  if (connection.faultHandling) return withKeepalive;
  return { ...withKeepalive, faultHandling: RESOLVER_FAULT_HANDLING };
}

const isTransient = (err: Error): boolean => isRecoverableError(err) && !(err instanceof GRPCResourceExhastedError);

/** One object, so every resolver connection to the same hosts maps to one pooled client. */
const RESOLVER_FAULT_HANDLING: NonNullable<EtcdOptions['faultHandling']> = Object.freeze({
  host: () => circuitBreaker(handleWhen(isTransient), {
    halfOpenAfter: DEFAULT_CIRCUIT_HALF_OPEN_AFTER_MS,
    breaker: new ConsecutiveBreaker(3),
  }),
  global: retry(handleWhen(isTransient), { maxAttempts: 3 }),
  // etcd3's .d.ts types this as IBackoff<unknown>; cockatiel's ExponentialBackoff fits at runtime.
  watchBackoff: new ExponentialBackoff({
    initialDelay: DEFAULT_WATCH_BACKOFF_INITIAL_MS,
    maxDelay: DEFAULT_WATCH_BACKOFF_MAX_MS,
  }) as unknown as NonNullable<EtcdOptions['faultHandling']>['watchBackoff'],
});
