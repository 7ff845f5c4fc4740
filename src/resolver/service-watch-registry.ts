/**
 * Sharing: channels resolving the same service on the same etcd connection
 * share one `ServiceWatch` (one list, one watch) on one pooled etcd client.
 * The resolver's client lives in its own pool, apart from registrations: a
 * failing list or watch must not open the circuit breaker that lease
 * keep-alives go through.
 */
import { acquireEtcdClient, connectionKey, normalizeHosts, type EtcdClientLease, type EtcdOptions } from '../etcd/connection';
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
  const clientOptions = withKeepalive(connection, options);
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

/** Adds HTTP/2 keepalive to the resolver's etcd connection unless the caller configured it. */
function withKeepalive(connection: EtcdOptions, options: ResolvedEtcdResolverOptions): EtcdOptions {
  const grpcOptions = connection.grpcOptions ?? {};
  if (options.keepaliveTimeMs === 0 || grpcOptions['grpc.keepalive_time_ms'] !== undefined) return connection;
  return {
    ...connection,
    grpcOptions: {
      ...grpcOptions,
      'grpc.keepalive_time_ms': options.keepaliveTimeMs,
      'grpc.keepalive_timeout_ms': options.keepaliveTimeoutMs,
    },
  };
}
