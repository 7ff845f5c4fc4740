/** `zk:///<service>` (default connection) and `zk://h1:2181,h2:2181/<service>` (those hosts, default's base path). */
import { checkServiceName } from '../../discovery/endpoint-record';
import { authorityForService, targetToString, type TargetUri } from '../../discovery/target-uri';
import {
  DEFAULT_ZOOKEEPER_BASE_PATH, getDefaultZookeeperOptions, parseZookeeperHosts, type ResolvedZookeeperOptions,
} from './connection';

/** The URI scheme of ZooKeeper targets. */
export const ZOOKEEPER_SCHEME = 'zk';

export interface ZookeeperTarget {
  readonly service: string;
  /** Hosts named in the target, or undefined for the default connection. */
  readonly hosts: readonly string[] | undefined;
  readonly authority: string;
}

/** Parses a `zk` target; throws an error naming the target and what is wrong with it. */
export function parseZookeeperTarget(target: TargetUri): ZookeeperTarget {
  const text = targetToString(target);
  const fail = (why: string): never => {
    throw new Error(`zookeeper resolver: bad target '${text}': ${why}`);
  };
  if (target.scheme !== ZOOKEEPER_SCHEME) fail(`scheme must be '${ZOOKEEPER_SCHEME}'`);
  if (target.authority === undefined && target.path.startsWith('//')) {
    fail('the service name is missing: use zk:///<service> (default connection) or zk://host:2181/<service>');
  }
  const serviceError = checkServiceName(target.path);
  if (serviceError) fail(serviceError);
  let hosts: string[] | undefined;
  if (target.authority !== undefined && target.authority !== '') {
    const parsed = parseZookeeperHosts(target.authority);
    if (typeof parsed === 'string') fail(parsed);
    hosts = parsed as string[];
  }
  return { service: target.path, hosts, authority: authorityForService(target.path) };
}

/** The connection of a target, or an error message when there is none. */
export function zookeeperConnectionForTarget(
  target: ZookeeperTarget,
  defaults: ResolvedZookeeperOptions | undefined = getDefaultZookeeperOptions(),
): ResolvedZookeeperOptions | string {
  if (target.hosts) return { hosts: target.hosts, basePath: defaults?.basePath ?? DEFAULT_ZOOKEEPER_BASE_PATH };
  if (defaults) return defaults;
  return `no ZooKeeper connection for service '${target.service}': name hosts in the target ` +
    `(zk://127.0.0.1:2181/${target.service}), call register({ zookeeper: { hosts: '127.0.0.1:2181' } }), or set ZOOKEEPER_ENDPOINTS`;
}

/** The ZooKeeper path of a service's instances. */
export function servicePath(basePath: string, service: string): string {
  return basePath === '/' ? `/${service}` : `${basePath}/${service}`;
}
