/** The discovery backends this package ships; docs/backends.md says how to add one. */
import { type BackendOptionsOf } from '../discovery/backend';
import { type ConsulOptions } from './consul/connection';
import { consulBackend } from './consul/consul-backend';
import { type EtcdOptions } from './etcd/connection';
import { etcdBackend } from './etcd/etcd-backend';
import { type ZookeeperOptions } from './zookeeper/connection';
import { zookeeperBackend } from './zookeeper/zookeeper-backend';
import { type KubernetesOptions } from './kubernetes/connection';
import { kubernetesBackend } from './kubernetes/kubernetes-backend';

export const BACKENDS = [etcdBackend, zookeeperBackend, kubernetesBackend, consulBackend] as const;

/** One optional connection per discovery backend, keyed by the backend's name. */
export interface BackendConnectionOptions {
  /**
   * An etcd connection in etcd3's `IOptions` shape; in `register()` the default for `etcd:///svc`
   * targets and registrations. Defaults to `ETCD_ENDPOINTS` (comma-separated `host:port`).
   */
  etcd?: EtcdOptions;
  /**
   * A ZooKeeper connection (`{ hosts, basePath? }`); in `register()` the default for `zk:///svc`
   * targets and registrations. Defaults to none.
   */
  zookeeper?: ZookeeperOptions;
  /**
   * Where the Kubernetes API server is (`{ kubeconfig?, context? }`), for `kubernetes:///svc.ns:port`
   * targets. Defaults to in-cluster (the pod's service account), else `KUBECONFIG`, else `~/.kube/config`.
   */
  kubernetes?: KubernetesOptions;
  /**
   * A Consul agent (`{ address?, token?, datacenter? }`); in `register()` the default for `consul:///svc`
   * targets and registrations. Defaults to `CONSUL_HTTP_ADDR` / `CONSUL_HTTP_TOKEN`; `consul:///svc`
   * falls back to `http://127.0.0.1:8500`.
   */
  consul?: ConsulOptions;
}

type DerivedConnectionOptions = { [B in (typeof BACKENDS)[number] as B['name']]?: BackendOptionsOf<B> };
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** Fails to compile when `BackendConnectionOptions` and `BACKENDS` disagree (a field missing, extra, or typed differently). */
export const CONNECTION_FIELDS_MATCH_BACKENDS: Same<Required<DerivedConnectionOptions>, Required<BackendConnectionOptions>> = true;
