/** `etcd:///<service>` (default connection) and `etcd://h1:2379,h2:2379/<service>` (those hosts, default's auth/TLS). */
import { checkServiceName } from './endpoint-codec';
import { checkNotReserved } from './client-registry-keys';
import { getDefaultEtcdOptions, normalizeHosts, type EtcdOptions } from './connection';
import { authorityForService, targetToString, type TargetUri } from '../../discovery/target-uri';

export { authorityForService, targetToString, type TargetUri } from '../../discovery/target-uri';

/** The URI scheme this package registers with grpc-js. */
export const ETCD_SCHEME = 'etcd';

/** A parsed `etcd` target. */
export interface EtcdTarget {
  /** The service name: the etcd prefix is `<service>/`. */
  readonly service: string;
  /** etcd hosts named in the target, or undefined for the default connection. */
  readonly hosts: readonly string[] | undefined;
  /** A valid HTTP/2 `:authority` derived from the service name. */
  readonly authority: string;
}

const HOST_PORT = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

/** Parses an `etcd` target; throws an error naming the target and what is wrong with it. */
export function parseEtcdTarget(target: TargetUri): EtcdTarget {
  const text = targetToString(target);
  const fail = (why: string): never => {
    throw new Error(`etcd resolver: bad target '${text}': ${why}`);
  };
  if (target.scheme !== ETCD_SCHEME) fail(`scheme must be '${ETCD_SCHEME}'`);
  // grpc-js's URI grammar needs a non-empty path after `//authority/`: `etcd:///` and
  // `etcd://h:2379` parse as a path starting with `//`, i.e. no service at all.
  if (target.authority === undefined && target.path.startsWith('//')) {
    fail('the service name is missing: use etcd:///<service> (default connection) or etcd://host:2379/<service>');
  }
  const serviceError = checkServiceName(target.path) ?? checkNotReserved(target.path);
  if (serviceError) fail(serviceError);
  let hosts: string[] | undefined;
  if (target.authority !== undefined && target.authority !== '') {
    hosts = target.authority.split(',').map(h => h.trim());
    for (const host of hosts) {
      const match = HOST_PORT.exec(host);
      if (!match || Number(match[1]) < 1 || Number(match[1]) > 65535) {
        fail(`etcd host '${host}' must be host:port (e.g. 127.0.0.1:2379)`);
      }
    }
  }
  return { service: target.path, hosts, authority: authorityForService(target.path) };
}

/** A target's own hosts with the default's other options, or the default; an error message when none. */
export function connectionForTarget(target: EtcdTarget, defaults: EtcdOptions | undefined = getDefaultEtcdOptions()): EtcdOptions | string {
  if (target.hosts) {
    // etcd3 turns TLS on for `https://` hosts even without `credentials`: keep that too.
    const tls = normalizeHosts(defaults?.hosts).some(h => h.startsWith('https://'));
    return { ...defaults, hosts: target.hosts.map(h => (tls ? `https://${h}` : h)) };
  }
  if (defaults) return defaults;
  return `no etcd connection for service '${target.service}': name hosts in the target ` +
    `(etcd://127.0.0.1:2379/${target.service}), call register({ etcd: { hosts: [...] } }), or set ETCD_ENDPOINTS`;
}
