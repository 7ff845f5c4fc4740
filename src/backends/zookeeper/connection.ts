/** ZooKeeper connections: validation and the default connection (`register({ zookeeper })`, else `ZOOKEEPER_ENDPOINTS`). */
import { WarnOnce } from '../../common/warn-once';

/** A ZooKeeper connection, as `register({ zookeeper })` and `registerEndpoint({ zookeeper })` take it. */
export interface ZookeeperOptions {
  /** `host:port` list: a comma-separated string or an array (`'10.0.0.1:2181,10.0.0.2:2181'`). */
  hosts: string | string[];
  /** Curator base path: instances are the children of `<basePath>/<service>`. Defaults to `/services` (Spring's). */
  basePath?: string;
}

/** Options after validation. */
export interface ResolvedZookeeperOptions {
  /** Normalised `host:port` entries. */
  readonly hosts: readonly string[];
  readonly basePath: string;
}

/** The Curator base path used when none is given (Spring Cloud Zookeeper's default). */
export const DEFAULT_ZOOKEEPER_BASE_PATH = '/services';

const HOST_PORT = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

/** Validates a base path: absolute, no trailing or double `/`, no `.` segments. Returns an error message. */
export function checkBasePath(path: unknown): string | undefined {
  if (typeof path !== 'string' || !path.startsWith('/')) return `basePath must be an absolute ZooKeeper path like '/services', got ${JSON.stringify(path)}`;
  if (path.length > 1 && path.endsWith('/')) return `basePath '${path}' must not end with '/'`;
  if (path.includes('//')) return `basePath '${path}' must not contain '//'`;
  if (path.split('/').some(s => s === '.' || s === '..')) return `basePath '${path}' must not contain '.' or '..' segments`;
  return undefined;
}

/** Splits and checks `hosts`; returns an error message instead of throwing. */
export function parseZookeeperHosts(hosts: unknown): string[] | string {
  const list = Array.isArray(hosts) ? hosts : typeof hosts === 'string' ? hosts.split(',') : undefined;
  if (!list) return `hosts must be 'host:port,host:port' or an array of 'host:port', got ${JSON.stringify(hosts)}`;
  const trimmed = list.map(h => (typeof h === 'string' ? h.trim() : '')).filter(h => h.length > 0);
  if (trimmed.length === 0) return `hosts needs at least one 'host:port', got ${JSON.stringify(hosts)}`;
  for (const host of trimmed) {
    const match = HOST_PORT.exec(host);
    if (!match || Number(match[1]) < 1 || Number(match[1]) > 65535) return `ZooKeeper host '${host}' must be host:port (e.g. 127.0.0.1:2181)`;
  }
  return trimmed;
}

/** Throws a TypeError naming `component` when `options` is not a usable ZooKeeper connection. */
export function validateZookeeperOptions(options: unknown, component: string): ResolvedZookeeperOptions {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`${component}: zookeeper options must be an object like { hosts: '127.0.0.1:2181' }, got ${JSON.stringify(options)}`);
  }
  const o = options as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (key !== 'hosts' && key !== 'basePath') throw new TypeError(`${component}: unknown zookeeper option '${key}' (known: hosts, basePath)`);
  }
  const hosts = parseZookeeperHosts(o.hosts);
  if (typeof hosts === 'string') throw new TypeError(`${component}: zookeeper ${hosts}`);
  const basePath = o.basePath ?? DEFAULT_ZOOKEEPER_BASE_PATH;
  const pathError = checkBasePath(basePath);
  if (pathError) throw new TypeError(`${component}: zookeeper ${pathError}`);
  return Object.freeze({ hosts: Object.freeze(hosts), basePath: basePath as string });
}

/** The client's connection string (`h1:2181,h2:2181`). */
export function connectionString(options: ResolvedZookeeperOptions): string {
  return options.hosts.join(',');
}

/** Stable identity of a connection (hosts and base path). */
export function zookeeperConnectionKey(options: ResolvedZookeeperOptions): string {
  return `${options.hosts.join(',')}|${options.basePath}`;
}

let defaultConnection: ResolvedZookeeperOptions | undefined;

/** Sets the connection used by `zk:///svc` targets and registrations that name none (set by `register()`). */
export function setDefaultZookeeperOptions(options: ResolvedZookeeperOptions | undefined): void {
  defaultConnection = options;
}

/** A bad `ZOOKEEPER_ENDPOINTS` is said once, not at every lookup. */
const badEnvironment = new WarnOnce();

/**
 * The default connection: what `register({ zookeeper })` set, else `ZOOKEEPER_ENDPOINTS`
 * (comma-separated `host:port`, base path `/services`), else undefined. A malformed variable
 * is reported (ERROR, once) and ignored.
 */
export function getDefaultZookeeperOptions(): ResolvedZookeeperOptions | undefined {
  if (defaultConnection) return defaultConnection;
  const env = process.env.ZOOKEEPER_ENDPOINTS;
  if (env === undefined || env.trim() === '') return undefined;
  const hosts = parseZookeeperHosts(env);
  if (typeof hosts === 'string') {
    badEnvironment.warn(`grpc-etcd-lb: ZOOKEEPER_ENDPOINTS=${JSON.stringify(env)} is ignored: ${hosts}`);
    return undefined;
  }
  return Object.freeze({ hosts: Object.freeze(hosts), basePath: DEFAULT_ZOOKEEPER_BASE_PATH });
}
