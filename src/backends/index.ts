/**
 * The discovery backends this package ships. Adding one is a folder under
 * src/backends/ and one entry here (docs/backends.md).
 */
import { type BackendOptionsOf } from '../discovery/backend';
import { etcdBackend } from './etcd/etcd-backend';
import { zookeeperBackend } from './zookeeper/zookeeper-backend';

export const BACKENDS = [etcdBackend, zookeeperBackend] as const;

/** One optional connection option per backend, keyed by its name: `{ etcd?: EtcdOptions; zookeeper?: ZookeeperOptions }`. */
export type BackendConnectionOptions = {
  [B in (typeof BACKENDS)[number] as B['name']]?: BackendOptionsOf<B>;
};
