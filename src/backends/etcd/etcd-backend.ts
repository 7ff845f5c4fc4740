/** The etcd backend: targets, shared watches, leased registrations, and the client registry. */
import { type DiscoveryBackend } from '../../discovery/backend';
import { CLIENT_REGISTRY_SOURCE_KEY } from '../../discovery/client-registry-source';
import { currentResolverOptions } from '../../discovery/resolver-options';
import { clientRegistrySource } from './client-registry';
import { connectionKey, getDefaultEtcdOptions, setDefaultEtcdOptions, validateEtcdOptions, type EtcdOptions } from './connection';
import { EtcdRegistration } from './etcd-registration';
import { acquireServiceWatch } from './service-watch-registry';
import { connectionForTarget, ETCD_SCHEME, parseEtcdTarget, type EtcdTarget } from './target';

export const etcdBackend: DiscoveryBackend<'etcd', EtcdOptions, EtcdOptions, EtcdTarget> = {
  name: 'etcd',
  scheme: ETCD_SCHEME,
  validateConnection: validateEtcdOptions,
  connectionKey: connection => connectionKey(connection),
  defaultConnection: getDefaultEtcdOptions,
  setDefaultConnection: setDefaultEtcdOptions,
  targetExample: 'etcd://127.0.0.1:2379/<service>',
  connectionHint: "pass { etcd: { hosts: [...] } }, call register({ etcd }), or set ETCD_ENDPOINTS",
  defaultDescription: 'an etcd default (register({ etcd }) or ETCD_ENDPOINTS)',
  parseTarget: parseEtcdTarget,
  connectionForTarget: target => connectionForTarget(target),
  acquireWatch: acquireServiceWatch,
  describeList: (service, revision) => `etcd service '${service}' at revision ${revision}`,
  channelAttributes: (connection, service) => ({
    [CLIENT_REGISTRY_SOURCE_KEY]: clientRegistrySource(connection, service, currentResolverOptions),
  }),
  createRegistration: (options, connection) => new EtcdRegistration(options, connection),
};
