/**
 * The Kubernetes backend: `kubernetes:///<service>[.<namespace>]:<port>` resolved from
 * `discovery.k8s.io/v1` EndpointSlices. One list + watch per (cluster, namespace, Service),
 * shared by every channel and port; one endpoint table per port. Kubernetes registers pods
 * itself, so this backend takes no registrations.
 */
import { tracer } from '../../common/grpc-experimental';
import { WarnOnce } from '../../common/warn-once';
import { WarningLimiter } from '../../common/warning-limiter';
import { type DiscoveryBackend } from '../../discovery/backend';
import { type ResolvedResolverOptions } from '../../discovery/resolver-options';
import { SharedWatches, type WatchLease } from '../../discovery/shared-watches';
import {
  AUTOMATIC_KUBERNETES_OPTIONS, getDefaultKubernetesOptions, kubernetesConnectionKey, setDefaultKubernetesOptions, validateKubernetesOptions,
  type KubernetesOptions, type ResolvedKubernetesOptions,
} from './connection';
import { KubeClient } from './kube-client';
import { loadClusterAccess } from './kube-config';
import { SliceInformer } from './slice-informer';
import { SliceWatch } from './slice-watch';
import { KUBERNETES_SCHEME, parseKubernetesService, parseKubernetesTarget, type KubernetesTarget } from './target';

const trace = tracer('kubernetes_resolver');
const warnings = new WarningLimiter('kubernetes resolver');
/** RBAC, credential and port errors: one ERROR line each, not one per retry. */
const errors = new WarnOnce();
const watches = new SharedWatches<SliceWatch>();
const informers = new SharedWatches<SliceInformer>();

/** Takes a reference on the shared watch of `<service>[.<namespace>]:<port>` on `connection`. */
export function acquireSliceWatch(connection: ResolvedKubernetesOptions, service: string, options: ResolvedResolverOptions): WatchLease<SliceWatch> {
  const target = parseKubernetesService(service, why => {
    throw new Error(`kubernetes resolver: bad service '${service}': ${why}`);
  });
  const access = loadClusterAccess(connection);
  const namespace = target.namespace ?? access.namespace;
  const clusterKey = `${kubernetesConnectionKey(connection)}|${access.server}`;
  const label = `${target.name}.${namespace}:${target.port}`;
  return watches.acquire(`${clusterKey}\n${label}`, () => {
    const informer = informers.acquire(`${clusterKey}\n${namespace}/${target.name}`, () => ({
      watch: new SliceInformer(new KubeClient(access), namespace, target.name, options, text => trace(text)),
    }));
    const watch = new SliceWatch(label, informer.watch, target.port, options,
      (text, key) => (key === undefined ? warnings.warn(text) : errors.warn(`kubernetes resolver: ${text}`, key)),
      (text, key) => errors.warn(text, key),
      key => errors.forget(key));
    return { watch, onClosed: () => informer.release() };
  });
}

/** Live shared watches and list+watch loops (leak tests). */
export function activeKubernetesResolverCounts(): { watches: number; informers: number } {
  return { watches: watches.size, informers: informers.size };
}

export const kubernetesBackend: DiscoveryBackend<'kubernetes', KubernetesOptions, ResolvedKubernetesOptions, KubernetesTarget> = {
  name: 'kubernetes',
  scheme: KUBERNETES_SCHEME,
  validateConnection: validateKubernetesOptions,
  connectionKey: kubernetesConnectionKey,
  defaultConnection: getDefaultKubernetesOptions,
  setDefaultConnection: setDefaultKubernetesOptions,
  targetExample: 'kubernetes:///<service>.<namespace>:<port>',
  connectionHint: 'Kubernetes registers pods itself (readiness probes): no registerEndpoint() is needed there',
  defaultDescription: 'a Kubernetes default (register({ kubernetes }))',
  parseTarget: parseKubernetesTarget,
  connectionForTarget: () => getDefaultKubernetesOptions() ?? AUTOMATIC_KUBERNETES_OPTIONS,
  acquireWatch: acquireSliceWatch,
  describeList: (service, revision) => `kubernetes service '${service}' at resourceVersion ${revision}`,
};
