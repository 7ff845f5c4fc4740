/**
 * Channels on one service and connection share one `ServiceWatch`. The resolver's client
 * has its own pool: a failing watch must not open the breaker lease keep-alives use.
 */
import { circuitBreaker, ConsecutiveBreaker, ExponentialBackoff, handleWhen, retry } from 'cockatiel';
import { GRPCResourceExhastedError, isRecoverableError } from 'etcd3';
import {
  acquireEtcdClient, connectionKey, normalizeHosts, DEFAULT_CIRCUIT_HALF_OPEN_AFTER_MS, DEFAULT_WATCH_BACKOFF_INITIAL_MS,
  DEFAULT_WATCH_BACKOFF_MAX_MS, type EtcdOptions,
} from './connection';
import { type ResolvedResolverOptions } from '../../discovery/resolver-options';
import { ServiceWatch } from './service-watch';
import { SharedWatches, type WatchLease } from '../../discovery/shared-watches';
import { WarningLimiter } from '../../common/warning-limiter';

/** Pool name of the resolver's etcd clients (see `acquireEtcdClient`). */
export const RESOLVER_POOL_NAME = 'resolver';

/** One warning budget for all services, so many bad keys print a few lines. */
const warnings = new WarningLimiter('etcd resolver');

const watches = new SharedWatches<ServiceWatch>();

/** A reference on a shared service watch. `release()` is idempotent; the last one closes the watch. */
export type ServiceWatchLease = WatchLease<ServiceWatch>;

/** Takes a reference on the shared watch of `service` on `connection`, starting it if new. */
export function acquireServiceWatch(connection: EtcdOptions, service: string, options: ResolvedResolverOptions): ServiceWatchLease {
  const clientOptions = resolverClientOptions(connection, options);
  return watches.acquire(`${connectionKey(clientOptions, RESOLVER_POOL_NAME)}\n${service}`, () => {
    const clientLease = acquireEtcdClient(clientOptions, RESOLVER_POOL_NAME);
    const label = normalizeHosts(connection.hosts).join(',');
    const watch = new ServiceWatch(service, clientLease.client, label, options, text => warnings.warn(text));
    return { watch, onClosed: () => clientLease.release() };
  });
}

/** Live shared service watches (leak tests). */
export function activeServiceWatchCount(): number {
  return watches.size;
}

/**
 * The caller's options plus keepalive and fast fault handling (unless configured). A page
 * over the receive limit is neither retried nor counted by the breaker: the lister shrinks it.
 */
export function resolverClientOptions(connection: EtcdOptions, options: ResolvedResolverOptions): EtcdOptions {
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
