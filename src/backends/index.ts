/**
 * The discovery backends this package ships. Adding one is a folder under
 * src/backends/ and its entry here: in `BACKENDS`, and its documented connection
 * field in `BackendConnectionOptions` (the compiler checks that the two agree).
 * docs/backends.md has the walk-through.
 */
import { type BackendOptionsOf } from '../discovery/backend';
import { type EtcdOptions } from './etcd/connection';
import { etcdBackend } from './etcd/etcd-backend';
import { type ZookeeperOptions } from './zookeeper/connection';
import { zookeeperBackend } from './zookeeper/zookeeper-backend';

export const BACKENDS = [etcdBackend, zookeeperBackend] as const;

/** One optional connection per discovery backend, keyed by the backend's name. */
export interface BackendConnectionOptions {
  /**
   * An etcd connection in etcd3's `IOptions` shape (`{ hosts: ['127.0.0.1:2379'], auth?, credentials?, … }`).
   * In `register()`: the default for `etcd:///svc` targets and registrations; `etcd://h1:2379,h2:2379/svc`
   * targets use their own hosts with its auth and TLS. Defaults to `ETCD_ENDPOINTS` (comma-separated `host:port`).
   */
  etcd?: EtcdOptions;
  /**
   * A ZooKeeper connection: `{ hosts: 'h1:2181,h2:2181', basePath?: '/services' }` (Curator x-discovery layout).
   * In `register()`: the default for `zk:///svc` targets and registrations; `zk://h1:2181/svc` targets use
   * their own hosts with its base path. The client library is loaded only when ZooKeeper is used.
   */
  zookeeper?: ZookeeperOptions;
}

type DerivedConnectionOptions = { [B in (typeof BACKENDS)[number] as B['name']]?: BackendOptionsOf<B> };
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** Fails to compile when `BackendConnectionOptions` and `BACKENDS` disagree (a field missing, extra, or typed differently). */
export const CONNECTION_FIELDS_MATCH_BACKENDS: Same<Required<DerivedConnectionOptions>, Required<BackendConnectionOptions>> = true;
