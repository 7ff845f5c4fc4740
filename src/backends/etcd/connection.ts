/** etcd connections: validation, the default, and a reference-counted pool of etcd3 clients. */
import { Etcd3, isRecoverableError, type IOptions } from 'etcd3';
import { circuitBreaker, ConsecutiveBreaker, ExponentialBackoff, handleWhen } from 'cockatiel';

/** Connection options for etcd: exactly etcd3's `IOptions` (`{ hosts, auth?, credentials?, ... }`). */
export type EtcdOptions = IOptions;

/**
 * Fault handling installed unless the caller passes `faultHandling`: etcd3's defaults
 * kept a watch down for seconds after an etcd restart.
 */
export const DEFAULT_CIRCUIT_HALF_OPEN_AFTER_MS = 500;
export const DEFAULT_WATCH_BACKOFF_INITIAL_MS = 100;
export const DEFAULT_WATCH_BACKOFF_MAX_MS = 1000;

function withFaultHandling(options: EtcdOptions): EtcdOptions {
  if (options.faultHandling) return options;
  return {
    ...options,
    faultHandling: {
      host: () => circuitBreaker(handleWhen(isRecoverableError), {
        halfOpenAfter: DEFAULT_CIRCUIT_HALF_OPEN_AFTER_MS,
        breaker: new ConsecutiveBreaker(3),
      }),
      // etcd3's .d.ts types this as IBackoff<unknown>; cockatiel's ExponentialBackoff fits at runtime.
      watchBackoff: new ExponentialBackoff({
        initialDelay: DEFAULT_WATCH_BACKOFF_INITIAL_MS,
        maxDelay: DEFAULT_WATCH_BACKOFF_MAX_MS,
      }) as unknown as NonNullable<IOptions['faultHandling']>['watchBackoff'],
    },
  };
}

/** Splits `hosts` (array or comma-separated string) into trimmed, non-empty `host:port` entries. */
export function normalizeHosts(hosts: string[] | string | undefined): string[] {
  const list = Array.isArray(hosts) ? hosts : typeof hosts === 'string' ? hosts.split(',') : [];
  return list.map(h => h.trim()).filter(h => h.length > 0);
}

/** Throws a clear error when `options` is not a usable etcd connection. `component` names the caller. */
export function validateEtcdOptions(options: unknown, component: string): EtcdOptions {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`${component}: etcd options must be an object like { hosts: ['127.0.0.1:2379'] }, got ${describe(options)}`);
  }
  const o = options as EtcdOptions;
  const hosts = normalizeHosts(o.hosts);
  if (hosts.length === 0) {
    throw new TypeError(`${component}: etcd options need at least one host in 'hosts', got ${describe(o.hosts)}`);
  }
  if (o.auth !== undefined && (typeof o.auth.username !== 'string' || typeof o.auth.password !== 'string')) {
    throw new TypeError(`${component}: etcd 'auth' needs string 'username' and 'password'`);
  }
  if (o.credentials !== undefined && !Buffer.isBuffer(o.credentials.rootCertificate)) {
    throw new TypeError(`${component}: etcd 'credentials.rootCertificate' must be a Buffer (PEM)`);
  }
  return { ...o, hosts };
}

function describe(value: unknown): string {
  try {
    return value === undefined ? 'undefined' : JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

let defaultConnection: EtcdOptions | undefined;

/** Sets the connection used by targets and registrations that name none (set by `register()`). */
export function setDefaultEtcdOptions(options: EtcdOptions | undefined): void {
  defaultConnection = options;
}

/** What `register({ etcd })` set, else `ETCD_ENDPOINTS` (comma-separated `host:port`), else undefined. */
export function getDefaultEtcdOptions(): EtcdOptions | undefined {
  if (defaultConnection) return defaultConnection;
  const env = normalizeHosts(process.env.ETCD_ENDPOINTS);
  return env.length > 0 ? { hosts: env } : undefined;
}

/** A handle on a pooled etcd3 client. `release()` is idempotent. */
export interface EtcdClientLease {
  readonly client: Etcd3;
  release(): void;
}

interface PoolEntry {
  client: Etcd3;
  refs: number;
}

const pool = new Map<string, PoolEntry>();

/** Stable identity of a connection config (Buffers hashed by content, functions by position). */
export function connectionKey(options: EtcdOptions, poolName = 'default'): string {
  return poolName + '|' + JSON.stringify({ ...options, hosts: normalizeHosts(options.hosts) }, (_k, v: unknown) => {
    if (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer') return `buf:${Buffer.from((v as { data: number[] }).data).toString('base64')}`;
    if (typeof v === 'function') return 'fn';
    return v;
  });
}

/** A reference on the shared client; `poolName` keeps apart users that must not trip each other's breakers. */
export function acquireEtcdClient(options: EtcdOptions, poolName = 'default'): EtcdClientLease {
  const key = connectionKey(options, poolName);
  let entry = pool.get(key);
  if (!entry) {
    entry = { client: new Etcd3(withFaultHandling(options)), refs: 0 };
    pool.set(key, entry);
  }
  entry.refs++;
  const held = entry;
  let released = false;
  return {
    client: held.client,
    release() {
      if (released) return;
      released = true;
      held.refs--;
      if (held.refs === 0) {
        pool.delete(key);
        held.client.close();
      }
    },
  };
}

/** Number of pooled etcd3 clients still open (for leak tests). */
export function openEtcdClientCount(): number {
  return pool.size;
}
