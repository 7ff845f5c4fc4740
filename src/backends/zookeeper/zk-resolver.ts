/**
 * The grpc-js resolver for `zk:///<service>` and `zk://h1:2181,h2:2181/<service>`:
 * the discovery core's resolver over ZooKeeper's shared child/data watches
 * (zk-service-watch.ts). One session per connection (its hosts) for every
 * resolved service, one watch per (connection, service) shared by channels.
 */
import { type ChannelOptions } from '@grpc/grpc-js';
import { registerResolver, tracer, type GrpcUri, type ResolverListener } from '../../common/grpc-experimental';
import { DiscoveryResolver } from '../../discovery/discovery-resolver';
import { type DiscoveryWatch } from '../../discovery/discovery-watch';
import { currentResolverOptions } from '../../discovery/resolver-options';
import { SharedWatches, type WatchLease } from '../../discovery/shared-watches';
import { WarningLimiter } from '../../common/warning-limiter';
import { connectionString, zookeeperConnectionKey, type ResolvedZookeeperOptions } from './connection';
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

/** One per channel; the session and watches behind it are shared. */
export class ZkResolver extends DiscoveryResolver {
  private readonly target: ZookeeperTarget | undefined;
  private readonly targetError: string | undefined;

  constructor(uri: GrpcUri, listener: ResolverListener, channelOptions: ChannelOptions) {
    super(uri, listener, channelOptions, 'zookeeper resolver', trace);
    try {
      this.target = parseZookeeperTarget(uri);
    } catch (err) {
      this.targetError = (err as Error).message;
    }
  }

  static getDefaultAuthority(target: GrpcUri): string {
    return parseZookeeperTarget(target).authority;
  }

  protected get service(): string {
    return this.target?.service ?? '';
  }

  protected acquireWatch(): WatchLease<DiscoveryWatch> | string {
    if (!this.target) return this.targetError ?? 'zookeeper resolver: bad target';
    const connection = zookeeperConnectionForTarget(this.target);
    if (typeof connection === 'string') return connection;
    return acquireZkServiceWatch(connection, this.target.service);
  }

  protected describeList(revision: number): string {
    return `zookeeper service '${this.service}' at zxid 0x${revision.toString(16)}`;
  }
}

/** Registers the `zk` resolver scheme with grpc-js. Idempotent; loads no ZooKeeper client until a target is resolved. */
export function registerZkResolver(): void {
  registerResolver(ZOOKEEPER_SCHEME, ZkResolver);
}
