/**
 * `register()`: plugs this package into grpc-js, once per process.
 */
import { BACKENDS, type BackendConnectionOptions } from './backends';
import { registerBalancers } from './balancer/policies/register-balancers';
import { warnIfSeparateGrpcJs } from './common/grpc-js-copy';
import { installBackends, installedBackends, prepareDefaultConnections } from './discovery/backend-registry';
import { getLocality, setLocality, validateLocality, type Locality } from './discovery/locality';
import { registerEndpointOn } from './discovery/register-endpoint';
import { setKnownPolicyNames } from './discovery/service-config-check';
import { type Registration } from './discovery/registration';
import { type EndpointRegistrationOptions } from './discovery/registration-options';
import { resolveResolverOptions, setResolverOptions, type ResolverOptions } from './discovery/resolver-options';
import { resolveMetricsOptions, setMetricsOptions, type MetricsOptions } from './metrics/metrics-options';

/** `register()`'s options: a default connection per discovery backend, and the process-wide settings. */
export interface RegisterOptions extends BackendConnectionOptions {
  /** Resolver tuning (coalescing, retry backoff, page size), for every backend. Defaults to `DEFAULT_RESOLVER_OPTIONS`. */
  resolver?: ResolverOptions;
  /** What the metrics record; they need a global MeterProvider set before channels. Defaults to `DEFAULT_METRICS_OPTIONS`. */
  metrics?: MetricsOptions;
  /** Where this process runs (`{ zone }`): turns on zone-aware routing against endpoints' `metadata.zone`. Defaults to none (off). */
  locality?: Locality;
}

/** An unknown key (a misspelling, a newer version's option) would otherwise do nothing silently. */
const KNOWN_KEYS: ReadonlySet<string> = new Set<string>([...BACKENDS.map(b => b.name), 'resolver', 'metrics', 'locality']);

let registeredResolverKey: string | undefined;
let registeredMetricsKey: string | undefined;

/**
 * Registers every backend's resolver scheme and every `etcd_*` policy with grpc-js. Call it
 * before creating channels: grpc-js silently falls back to pick_first for an unknown policy.
 * Idempotent; different process-wide settings than an earlier call, or an unknown key, throw.
 */
export function register(options: RegisterOptions = {}): void {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`register(): options must be an object like { etcd: { hosts: ['127.0.0.1:2379'] } }, got ${String(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN_KEYS.has(key)) {
      throw new TypeError(`register(): unknown option '${key}' (known: ${[...KNOWN_KEYS].join(', ')})`);
    }
  }
  const commitConnections = prepareDefaultConnections(options as Record<string, unknown>, BACKENDS, 'register()');
  const resolver = options.resolver === undefined ? undefined : resolveResolverOptions(options.resolver);
  const resolverKey = resolver && JSON.stringify(resolver);
  if (resolverKey !== undefined && registeredResolverKey !== undefined && registeredResolverKey !== resolverKey) {
    throw new Error(`register(): already called with different resolver options; got ${resolverKey}, had ${registeredResolverKey}`);
  }
  const metrics = options.metrics === undefined ? undefined : resolveMetricsOptions(options.metrics);
  const metricsKey = metrics && JSON.stringify(metrics);
  if (metricsKey !== undefined && registeredMetricsKey !== undefined && registeredMetricsKey !== metricsKey) {
    throw new Error(`register(): already called with different metrics options; got ${metricsKey}, had ${registeredMetricsKey}`);
  }
  const locality = options.locality === undefined ? undefined : validateLocality(options.locality, 'register()');
  const registeredLocality = getLocality();
  if (locality && registeredLocality && registeredLocality.zone !== locality.zone) {
    throw new Error(`register(): already called with locality zone '${registeredLocality.zone}'; got '${locality.zone}'`);
  }
  // Everything validated: commit.
  if (locality && !registeredLocality) setLocality(locality);
  commitConnections();
  if (resolver && registeredResolverKey === undefined) {
    registeredResolverKey = resolverKey;
    setResolverOptions(resolver);
  }
  if (metrics && registeredMetricsKey === undefined) {
    registeredMetricsKey = metricsKey;
    setMetricsOptions(metrics);
  }
  installBackends(BACKENDS);
  setKnownPolicyNames(registerBalancers());
  warnIfSeparateGrpcJs();
}

/** `registerEndpoint()`'s options: the endpoint, and at most one backend connection (`etcd`, `zookeeper` or `consul`). */
export interface RegistrationOptions extends EndpointRegistrationOptions, BackendConnectionOptions {}

/**
 * Announces `address` for `service` in a registry (etcd: `<service>/<address>` under a
 * lease; ZooKeeper: an ephemeral Curator instance; Consul: an agent service with a TTL
 * check) until `close()`, on the connection given, else the one default set (none, or
 * two, is an error). Resolves after the first write (setting `health` SERVING); rejects
 * on bad options or after `registerTimeoutMs`, leaving nothing behind. Then it heals
 * itself: a lost lease, session, key or service is written again with backoff until `close()`.
 *
 * @example
 * const health = new HealthImplementation();
 * health.addToServer(server);
 * const registration = await registerEndpoint({ service: 'echo', address: '10.0.0.5:50051', health });
 * shutdownOnSignals(server, registration);
 */
export function registerEndpoint(options: RegistrationOptions): Promise<Registration> {
  installBackends(BACKENDS);
  return registerEndpointOn(options, installedBackends());
}
