/** The Consul backend: `consul:///` targets on blocking health queries, registrations with TTL checks on the local agent. */
import { type DiscoveryBackend } from '../../discovery/backend';
import { currentResolverOptions } from '../../discovery/resolver-options';
import { SharedWatches, type WatchLease } from '../../discovery/shared-watches';
import { WarningLimiter } from '../../common/warning-limiter';
import {
  consulConnectionKey, getDefaultConsulOptions, setDefaultConsulOptions, validateConsulOptions,
  type ConsulOptions, type ResolvedConsulOptions,
} from './connection';
import { ConsulRegistration } from './consul-registration';
import { ConsulServiceWatch, DEFAULT_BLOCKING_QUERY_TIMING, type BlockingQueryTiming } from './consul-service-watch';
import { CONSUL_SCHEME, consulConnectionForTarget, parseConsulTarget, type ConsulTarget } from './target';

/** One warning budget for all Consul services (as for etcd). */
const warnings = new WarningLimiter('consul resolver');
const watches = new SharedWatches<ConsulServiceWatch>();
let timing: BlockingQueryTiming = DEFAULT_BLOCKING_QUERY_TIMING;

/** Takes a reference on the one blocking query of (agent, token, datacenter, tags, service), starting it if new. */
export function acquireConsulServiceWatch(connection: ResolvedConsulOptions, service: string): WatchLease<ConsulServiceWatch> {
  return watches.acquire(`${consulConnectionKey(connection)}\n${service}`, () => ({
    watch: new ConsulServiceWatch(service, connection, currentResolverOptions(), text => warnings.warn(text), timing),
  }));
}

/** Live shared watches (leak tests). */
export function activeConsulWatchCount(): number {
  return watches.size;
}

/** Pacing of watches created from now on (tests shorten `wait`); returns the previous one. */
export function setBlockingQueryTiming(next: Partial<BlockingQueryTiming>): BlockingQueryTiming {
  const previous = timing;
  timing = Object.freeze({ ...timing, ...next });
  return previous;
}

export const consulBackend: DiscoveryBackend<'consul', ConsulOptions, ResolvedConsulOptions, ConsulTarget> = {
  name: 'consul',
  scheme: CONSUL_SCHEME,
  validateConnection: validateConsulOptions,
  connectionKey: consulConnectionKey,
  defaultConnection: getDefaultConsulOptions,
  setDefaultConnection: setDefaultConsulOptions,
  targetExample: 'consul://127.0.0.1:8500/<service>',
  connectionHint: "pass { consul: { address: '127.0.0.1:8500' } }, call register({ consul }), or set CONSUL_HTTP_ADDR",
  defaultDescription: 'a Consul default (register({ consul }) or CONSUL_HTTP_ADDR)',
  parseTarget: parseConsulTarget,
  connectionForTarget: target => consulConnectionForTarget(target),
  acquireWatch: (connection, service) => acquireConsulServiceWatch(connection, service),
  describeList: (service, revision) => `consul service '${service}' at index ${revision}`,
  createRegistration: (options, connection) => new ConsulRegistration(options, connection),
};
