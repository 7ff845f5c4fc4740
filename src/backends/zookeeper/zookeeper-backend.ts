/** The ZooKeeper backend: one session per connection, shared watches, ephemeral Curator registrations. */
import { tracer } from '../../common/grpc-experimental';
import { type DiscoveryBackend } from '../../discovery/backend';
import { currentResolverOptions } from '../../discovery/resolver-options';
import { SharedWatches, type WatchLease } from '../../discovery/shared-watches';
import { WarningLimiter } from '../../common/warning-limiter';
import {
  connectionString, getDefaultZookeeperOptions, setDefaultZookeeperOptions, validateZookeeperOptions, zookeeperConnectionKey,
  type ResolvedZookeeperOptions, type ZookeeperOptions,
} from './connection';
import { ZkRegistration } from './zk-registration';
import { parseZookeeperTarget, servicePath, zookeeperConnectionForTarget, ZOOKEEPER_SCHEME, type ZookeeperTarget } from './target';
import { ZkServiceWatch } from './zk-service-watch';
import { ZkSession } from './zk-session';

const trace = tracer('zookeeper_resolver');

/** The session timeout the resolver asks for (the server clamps it: 2-20 ticks by default). */
export const RESOLVER_SESSION_TIMEOUT_MS = 10_000;

/** One warning budget for all ZooKeeper services (as for etcd). */
const warnings = new WarningLimiter('zookeeper resolver');
const watches = new SharedWatches<ZkServiceWatch>();
/** Sessions by connection string: every service resolved on one ZooKeeper shares one session. */
const sessions = new SharedWatches<ZkSession>();

/** Takes a reference on the shared watch of `service` on `connection`, starting it (and the session) if new. */
export function acquireZkServiceWatch(connection: ResolvedZookeeperOptions, service: string): WatchLease<ZkServiceWatch> {
  return watches.acquire(`${zookeeperConnectionKey(connection)}\n${service}`, () => {
    const session = sessions.acquire(connectionString(connection), () => ({
      watch: new ZkSession(connection, RESOLVER_SESSION_TIMEOUT_MS, text => trace(text)),
    }));
    const watch = new ZkServiceWatch(service, servicePath(connection.basePath, service), session.watch, currentResolverOptions(), text => warnings.warn(text));
    return { watch, onClosed: () => session.release() };
  });
}

/** Live shared watches and sessions (for leak tests). */
export function activeZkResolverCounts(): { watches: number; sessions: number } {
  return { watches: watches.size, sessions: sessions.size };
}

export const zookeeperBackend: DiscoveryBackend<'zookeeper', ZookeeperOptions, ResolvedZookeeperOptions, ZookeeperTarget> = {
  name: 'zookeeper',
  scheme: ZOOKEEPER_SCHEME,
  validateConnection: validateZookeeperOptions,
  connectionKey: zookeeperConnectionKey,
  defaultConnection: getDefaultZookeeperOptions,
  setDefaultConnection: setDefaultZookeeperOptions,
  targetExample: 'zk://127.0.0.1:2181/<service>',
  connectionHint: "pass { zookeeper: { hosts: '127.0.0.1:2181' } }, call register({ zookeeper }), or set ZOOKEEPER_ENDPOINTS",
  defaultDescription: 'a ZooKeeper default (register({ zookeeper }) or ZOOKEEPER_ENDPOINTS)',
  parseTarget: parseZookeeperTarget,
  connectionForTarget: target => zookeeperConnectionForTarget(target),
  acquireWatch: (connection, service) => acquireZkServiceWatch(connection, service),
  describeList: (service, revision) => `zookeeper service '${service}' at zxid 0x${revision.toString(16)}`,
  createRegistration: (options, connection) => new ZkRegistration(options, connection),
};
