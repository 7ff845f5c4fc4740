/**
 * `register()`: plugs this package into grpc-js, once per process.
 */
import { BACKENDS, type BackendConnectionOptions } from './backends';
import { registerBalancers } from './balancer/policies/register-balancers';
import { warnIfSeparateGrpcJs } from './common/grpc-js-copy';
import { installBackends, installedBackends, prepareDefaultConnections } from './discovery/backend-registry';
import { getLocality, setLocality, validateLocality, type Locality } from './discovery/locality';
import { registerEndpointOn } from './discovery/register-endpoint';
import { type Registration } from './discovery/registration';
import { type EndpointRegistrationOptions } from './discovery/registration-options';
import { resolveResolverOptions, setResolverOptions, type ResolverOptions } from './discovery/resolver-options';
import { resolveMetricsOptions, setMetricsOptions, type MetricsOptions } from './metrics/metrics-options';

/** `register()`'s options: a default connection per discovery backend, and the process-wide settings. */
export interface RegisterOptions extends BackendConnectionOptions {
  /** Resolver tuning (coalescing, retry backoff, page size), for etcd and ZooKeeper. Defaults to `DEFAULT_RESOLVER_OPTIONS`. */
  resolver?: ResolverOptions;
  /**
   * What the OpenTelemetry metrics record (`{ perEndpoint: true }` adds per-endpoint
   * series). Metrics themselves need `@opentelemetry/api` and a global MeterProvider
   * set before channels are created. Defaults to `DEFAULT_METRICS_OPTIONS`.
   */
  metrics?: MetricsOptions;
  /**
   * Where this process runs (`{ zone: 'eu-west-1a' }`). Turns on zone-aware routing
   * for every `etcd_*` policy (endpoints' zone is their registration `metadata.zone`)
   * and is announced by the client registry. Unset: zone-aware routing is off.
   */
  locality?: Locality;
}

/**
 * Every key `register()` knows. An unknown key is a mistake (a misspelling, or an
 * option of a newer version) that would otherwise do nothing without a word.
 */
const KNOWN_KEYS: ReadonlySet<string> = new Set<string>([...BACKENDS.map(b => b.name), 'resolver', 'metrics', 'locality']);

let registeredResolverKey: string | undefined;
let registeredMetricsKey: string | undefined;

/**
 * Registers the resolver scheme of every discovery backend (`etcd`, `zk`) and every `etcd_*` LB policy with grpc-js.
 * Call it before creating channels: grpc-js silently falls back to pick_first
 * for an LB policy name it does not know.
 *
 * Idempotent: later calls may repeat the same options or omit them; a call with
 * a different backend connection (`etcd`, `zookeeper`), different `resolver`, `metrics` or `locality` options
 * than an earlier one throws (these settings are process-wide). An unknown option key throws a
 * `TypeError` naming the known ones.
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
  registerBalancers();
  warnIfSeparateGrpcJs();
}

/** `registerEndpoint()`'s options: the endpoint, and at most one backend connection (`etcd` or `zookeeper`). */
export interface RegistrationOptions extends EndpointRegistrationOptions, BackendConnectionOptions {}

/**
 * Announces `address` for `service` in a registry and keeps it there until `close()`:
 * in etcd under `<service>/<address>` in Go's `naming/endpoints` format, under a lease of
 * `ttlSeconds` that is kept alive; in ZooKeeper as an ephemeral Curator `ServiceInstance`
 * at `<basePath>/<service>/<id>` in a session of `ttlSeconds`.
 *
 * The registry is the one connection given (`etcd` or `zookeeper`), else the one default
 * set (`register()`, `ETCD_ENDPOINTS`); none, or two defaults, is an error.
 *
 * Resolves after the first successful write (and sets `health`, if given, to SERVING).
 * Rejects with a clear error on invalid options, without a connection, or when the registry
 * has not accepted the write within `registerTimeoutMs` (nothing is left behind then).
 *
 * From then on the registration heals itself: if the lease, session or key is lost it writes
 * the key again, with backoff capped at min(1 s, TTL/2), until `close()`. Watch it with
 * `onLost` / `onRegistered` / `onError`.
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
