/**
 * Consul connections: validation, and the default (`register({ consul })`, else Consul's
 * own `CONSUL_HTTP_ADDR` / `CONSUL_HTTP_TOKEN` / `CONSUL_HTTP_SSL` / `CONSUL_CACERT`).
 */
import { readFileSync } from 'node:fs';
import { WarnOnce } from '../../common/warn-once';

/** A Consul agent, as `register({ consul })` and `registerEndpoint({ consul })` take it. */
export interface ConsulOptions {
  /**
   * The agent's HTTP API: `host:port` or a URL (`http://10.0.0.1:8500`, `https://consul.local:8501`).
   * Defaults to `CONSUL_HTTP_ADDR`, else `http://127.0.0.1:8500`.
   */
  address?: string;
  /** ACL token, sent as `X-Consul-Token`. Defaults to `CONSUL_HTTP_TOKEN`, else none (the agent's anonymous token). */
  token?: string;
  /** Datacenter of health queries (`?dc=`); a target's `?dc=` wins. Registrations go to the local agent's. Defaults to the agent's own. */
  datacenter?: string;
  /**
   * Registrations only: Consul removes a service whose TTL check stayed critical this long
   * (`DeregisterCriticalServiceAfter`; Consul's own floor is 60 s, its reaper runs every 30 s).
   * Defaults to 60.
   */
  deregisterCriticalAfterSeconds?: number;
}

/** Options after validation. */
export interface ResolvedConsulOptions {
  /** `http(s)://host:port`, no trailing slash. */
  readonly baseUrl: string;
  readonly token: string | undefined;
  readonly datacenter: string | undefined;
  readonly deregisterCriticalAfterSeconds: number;
  /** PEM CA bundle for `https` (from `CONSUL_CACERT`), else the system's. */
  readonly ca: string | undefined;
  /** Health queries only: tags every instance must carry (a target's `?tag=`), sorted. */
  readonly tags: readonly string[];
}

/** The agent address used when neither the options nor `CONSUL_HTTP_ADDR` name one (Consul's default). */
export const DEFAULT_CONSUL_ADDRESS = 'http://127.0.0.1:8500';
/** `DeregisterCriticalServiceAfter` of registrations that do not set it (Consul's minimum; Kitex's default). */
export const DEFAULT_DEREGISTER_CRITICAL_AFTER_SECONDS = 60;

const KNOWN = ['address', 'token', 'datacenter', 'deregisterCriticalAfterSeconds'];

/** `host:port` or `http(s)://host:port[/]` → `http(s)://host:port`; an error message otherwise. */
export function parseConsulAddress(address: unknown, https = false): string | { error: string } {
  if (typeof address !== 'string' || address.trim() === '') {
    return { error: `address must be 'host:port' or a URL like 'http://127.0.0.1:8500', got ${JSON.stringify(address)}` };
  }
  const text = address.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `${https ? 'https' : 'http'}://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    return { error: `address '${text}' is not 'host:port' or a URL like 'http://127.0.0.1:8500'` };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { error: `address '${text}': only http:// and https:// are supported (a unix socket is not)` };
  }
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    return { error: `address '${text}' must be scheme://host:port with no path, query or credentials (use token for ACLs)` };
  }
  const port = url.port === '' ? (url.protocol === 'https:' ? '443' : '80') : url.port;
  return `${url.protocol}//${url.hostname}:${port}`;
}

function resolve(o: Record<string, unknown>, component: string): ResolvedConsulOptions {
  const fail = (message: string): never => {
    throw new TypeError(`${component}: consul ${message}`);
  };
  const env = process.env;
  const https = /^(1|true)$/i.test(env.CONSUL_HTTP_SSL ?? '');
  const addressText = o.address ?? (env.CONSUL_HTTP_ADDR?.trim() || undefined) ?? DEFAULT_CONSUL_ADDRESS;
  const baseUrl = parseConsulAddress(addressText, https);
  if (typeof baseUrl !== 'string') {
    fail(`${baseUrl.error}${o.address === undefined && env.CONSUL_HTTP_ADDR ? ' (from CONSUL_HTTP_ADDR)' : ''}`);
  }
  const token = o.token ?? (env.CONSUL_HTTP_TOKEN || undefined);
  if (token !== undefined && (typeof token !== 'string' || token === '' || /[\r\n]/.test(token))) {
    fail(`token must be a non-empty string without line breaks, got ${typeof token === 'string' ? 'a bad string' : JSON.stringify(token)}`);
  }
  const datacenter = o.datacenter;
  if (datacenter !== undefined && (typeof datacenter !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(datacenter))) {
    fail(`datacenter must be a datacenter name like 'dc1', got ${JSON.stringify(datacenter)}`);
  }
  const deregister = o.deregisterCriticalAfterSeconds ?? DEFAULT_DEREGISTER_CRITICAL_AFTER_SECONDS;
  if (typeof deregister !== 'number' || !Number.isInteger(deregister) || deregister < 1) {
    fail(`deregisterCriticalAfterSeconds must be an integer ≥ 1, got ${JSON.stringify(deregister)}`);
  }
  let ca: string | undefined;
  if ((baseUrl as string).startsWith('https:') && env.CONSUL_CACERT) {
    try {
      ca = readFileSync(env.CONSUL_CACERT, 'utf8');
    } catch (err) {
      fail(`CONSUL_CACERT=${env.CONSUL_CACERT} cannot be read: ${(err as Error).message}`);
    }
  }
  return Object.freeze({
    baseUrl: baseUrl as string, token: token as string | undefined, datacenter: datacenter as string | undefined,
    deregisterCriticalAfterSeconds: deregister as number, ca, tags: Object.freeze([]),
  });
}

/** Throws a TypeError naming `component` when `options` is not a usable Consul connection. */
export function validateConsulOptions(options: unknown, component: string): ResolvedConsulOptions {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`${component}: consul options must be an object like { address: '127.0.0.1:8500' }, got ${JSON.stringify(options)}`);
  }
  const o = options as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!KNOWN.includes(key)) throw new TypeError(`${component}: unknown consul option '${key}' (known: ${KNOWN.join(', ')})`);
  }
  return resolve(o, component);
}

/** Stable identity of a connection: agent, token, datacenter, tags (a different token may see a different list). */
export function consulConnectionKey(options: ResolvedConsulOptions): string {
  return JSON.stringify([options.baseUrl, options.token ?? '', options.datacenter ?? '', options.deregisterCriticalAfterSeconds, options.tags, options.ca ?? '']);
}

let defaultConnection: ResolvedConsulOptions | undefined;

/** Sets the connection of `consul:///svc` targets and registrations that name none (set by `register()`). */
export function setDefaultConsulOptions(options: ResolvedConsulOptions | undefined): void {
  defaultConnection = options;
}

const badEnvironment = new WarnOnce();

/**
 * The default connection: what `register({ consul })` set, else one from `CONSUL_HTTP_ADDR`
 * (with `CONSUL_HTTP_TOKEN`) when that is set, else undefined. A malformed variable is
 * reported (ERROR, once) and ignored. Without either, `consul:///svc` still uses
 * `http://127.0.0.1:8500` (see `consulConnectionForTarget`), but registrations do not pick
 * Consul unless asked.
 */
export function getDefaultConsulOptions(): ResolvedConsulOptions | undefined {
  if (defaultConnection) return defaultConnection;
  if (!process.env.CONSUL_HTTP_ADDR?.trim()) return undefined;
  try {
    return resolve({}, 'CONSUL_HTTP_ADDR');
  } catch (err) {
    badEnvironment.warn(`grpc-etcd-lb: ${(err as Error).message}; ignored`);
    return undefined;
  }
}

/** The connection of `consul:///svc` with no default set: the environment's token, Consul's default address. */
export function fallbackConsulOptions(): ResolvedConsulOptions {
  return resolve({}, 'consul resolver');
}
