/** `kubernetes:///<service>.<namespace>:<port>` and `kubernetes:///<service>:<port>` (the default namespace). */
import { targetToString, type TargetUri } from '../../discovery/target-uri';

/** The URI scheme of Kubernetes targets. */
export const KUBERNETES_SCHEME = 'kubernetes';

const FORM = 'kubernetes:///<service>.<namespace>:<port> or kubernetes:///<service>:<port> (port: a number or an EndpointSlice port name)';
/** A Service name (DNS-1035 label). */
const SERVICE_NAME = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** A namespace (DNS-1123 label). */
const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** A Service port name, as EndpointSlices carry it (a DNS-1123 label with a letter). */
const PORT_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export interface KubernetesTarget {
  /** The watch key the core shares and names in messages: `<service>.<namespace>:<port>` or `<service>:<port>`. */
  readonly service: string;
  readonly name: string;
  /** Undefined: the default namespace (the pod's, the kubeconfig context's, else `default`). */
  readonly namespace: string | undefined;
  /** A port number or an EndpointSlice port name. */
  readonly port: number | string;
  /** `<service>.<namespace>` / `<service>`: a valid host (a port name is not a valid `:authority` port). */
  readonly authority: string;
}

/** Parses a `kubernetes` target; throws naming the target and the expected form. */
export function parseKubernetesTarget(target: TargetUri): KubernetesTarget {
  const text = targetToString(target);
  const fail = (why: string): never => {
    throw new Error(`kubernetes resolver: bad target '${text}': ${why}; expected ${FORM}`);
  };
  if (target.scheme !== KUBERNETES_SCHEME) fail(`scheme must be '${KUBERNETES_SCHEME}'`);
  if (target.authority !== undefined && target.authority !== '') fail(`an authority ('${target.authority}') is not supported: the cluster comes from register({ kubernetes }), in-cluster or KUBECONFIG`);
  return parseKubernetesService(target.path, fail);
}

/** Parses `<service>[.<namespace>]:<port>`; `fail` throws. */
export function parseKubernetesService(path: string, fail: (why: string) => never): KubernetesTarget {
  const colon = path.lastIndexOf(':');
  if (colon < 0) fail('the port is missing');
  const host = path.slice(0, colon);
  const portText = path.slice(colon + 1);
  // `<service>.<namespace>.svc[.<cluster domain>]`, the Service's DNS name, names the same Service.
  const parts = host.split('.');
  const name = parts[0];
  const namespace = parts.length === 1 ? undefined : parts[1];
  if (parts.length > 2 && parts[2] !== 'svc') fail(`'${host}' is not <service>.<namespace> (or <service>.<namespace>.svc[.<cluster domain>])`);
  if (!SERVICE_NAME.test(name)) fail(`'${name}' is not a Service name (lower-case letters, digits and '-', starting with a letter, at most 63)`);
  if (namespace !== undefined && !NAMESPACE.test(namespace)) fail(`'${namespace}' is not a namespace name (lower-case letters, digits and '-', at most 63)`);
  let port: number | string;
  if (/^\d+$/.test(portText)) {
    port = Number(portText);
    if (port < 1 || port > 65535) fail(`port ${portText} is out of range 1-65535`);
  } else {
    if (!PORT_NAME.test(portText) || !/[a-z]/.test(portText)) fail(`'${portText}' is not a port number or port name`);
    port = portText;
  }
  return { service: path, name, namespace, port, authority: host };
}
