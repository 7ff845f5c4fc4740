/**
 * `register()`: plugs this package into grpc-js, once per process.
 */
import { connectionKey, setDefaultEtcdOptions, validateEtcdOptions, type EtcdOptions } from './backends/etcd/connection';
import { registerBalancers } from './balancer/policies/register-balancers';
import { warnIfSeparateGrpcJs } from './common/grpc-js-copy';
import { getLocality, setLocality, validateLocality, type Locality } from './discovery/locality';
import { resolveMetricsOptions, setMetricsOptions, type MetricsOptions } from './metrics/metrics-options';
import { registerEtcdResolver, setEtcdResolverOptions } from './backends/etcd/etcd-resolver';
import {
  getDefaultZookeeperOptions, setDefaultZookeeperOptions, validateZookeeperOptions, zookeeperConnectionKey, type ZookeeperOptions,
} from './backends/zookeeper/connection';
import { registerZkResolver } from './backends/zookeeper/zk-resolver';
import { resolveResolverOptions, type ResolverOptions } from './discovery/resolver-options';

export interface RegisterOptions {
  /**
   * Default etcd connection for `etcd:///svc` targets and registrations, in etcd3's
   * `IOptions` shape (`{ hosts: ['127.0.0.1:2379'], auth?, credentials?, … }`).
   * `etcd://h1:2379,h2:2379/svc` targets use their own hosts with this connection's
   * auth and TLS. Defaults to `ETCD_ENDPOINTS` (comma-separated `host:port`).
   */
  etcd?: EtcdOptions;
  /**
   * Default ZooKeeper connection for `zk:///svc` targets and registrations:
   * `{ hosts: 'h1:2181,h2:2181', basePath?: '/services' }` (Curator x-discovery layout,
   * Spring Cloud Zookeeper's default base path). `zk://h1:2181/svc` targets use their own
   * hosts with this base path. The client library is loaded only when ZooKeeper is used.
   */
  zookeeper?: ZookeeperOptions;
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
const KNOWN_KEYS: ReadonlySet<string> = new Set<keyof RegisterOptions>(['etcd', 'zookeeper', 'resolver', 'metrics', 'locality']);

let registeredEtcdKey: string | undefined;
let registeredResolverKey: string | undefined;
let registeredMetricsKey: string | undefined;

/**
 * Registers the `etcd` and `zk` resolver schemes and every `etcd_*` LB policy with grpc-js.
 * Call it before creating channels: grpc-js silently falls back to pick_first
 * for an LB policy name it does not know.
 *
 * Idempotent: later calls may repeat the same options or omit them; a call with
 * a different `etcd` or `zookeeper` connection, different `resolver`, `metrics` or `locality` options
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
  let etcd: EtcdOptions | undefined;
  let etcdKey: string | undefined;
  if (options.etcd !== undefined) {
    etcd = validateEtcdOptions(options.etcd, 'register()');
    etcdKey = connectionKey(etcd);
    if (registeredEtcdKey !== undefined && registeredEtcdKey !== etcdKey) {
      throw new Error(`register(): already called with a different etcd connection; got hosts ${JSON.stringify(etcd.hosts)}. ` +
        'The default connection is process-wide: pass the same options, or name the hosts in the target (etcd://host:2379/svc).');
    }
  }
  const zookeeper = options.zookeeper === undefined ? undefined : validateZookeeperOptions(options.zookeeper, 'register()');
  const registeredZookeeper = getDefaultZookeeperOptions();
  if (zookeeper && registeredZookeeper && zookeeperConnectionKey(registeredZookeeper) !== zookeeperConnectionKey(zookeeper)) {
    throw new Error(`register(): already called with a different zookeeper connection; got hosts '${zookeeper.hosts.join(',')}' ` +
      `base path '${zookeeper.basePath}', had '${registeredZookeeper.hosts.join(',')}' '${registeredZookeeper.basePath}'. ` +
      'The default connection is process-wide: pass the same options, or name the hosts in the target (zk://host:2181/svc).');
  }
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
  if (etcd && registeredEtcdKey === undefined) {
    registeredEtcdKey = etcdKey;
    setDefaultEtcdOptions(etcd);
  }
  if (zookeeper && !registeredZookeeper) setDefaultZookeeperOptions(zookeeper);
  if (resolver && registeredResolverKey === undefined) {
    registeredResolverKey = resolverKey;
    setEtcdResolverOptions(resolver);
  }
  if (metrics && registeredMetricsKey === undefined) {
    registeredMetricsKey = metricsKey;
    setMetricsOptions(metrics);
  }
  registerEtcdResolver();
  registerZkResolver();
  registerBalancers();
  warnIfSeparateGrpcJs();
}
