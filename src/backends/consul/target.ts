/**
 * `consul:///<service>[?tag=t&tag=u&dc=d]` (default agent) and `consul://<host:port>/<service>`
 * (that agent, the default's token). Tags are all required (Consul ANDs repeated `tag`).
 */
import { checkServiceName } from '../../discovery/endpoint-record';
import { authorityForService, targetToString, type TargetUri } from '../../discovery/target-uri';
import { fallbackConsulOptions, getDefaultConsulOptions, parseConsulAddress, type ResolvedConsulOptions } from './connection';

/** The URI scheme of Consul targets. */
export const CONSUL_SCHEME = 'consul';

export interface ConsulTarget {
  readonly service: string;
  /** `http(s)://host:port` named in the target, or undefined for the default agent. */
  readonly baseUrl: string | undefined;
  /** Required tags, sorted, no duplicates. */
  readonly tags: readonly string[];
  readonly datacenter: string | undefined;
  readonly authority: string;
}

/** Parses a `consul` target; throws an error naming the target and what is wrong with it. */
export function parseConsulTarget(target: TargetUri): ConsulTarget {
  const text = targetToString(target);
  const fail = (why: string): never => {
    throw new Error(`consul resolver: bad target '${text}': ${why}`);
  };
  if (target.scheme !== CONSUL_SCHEME) fail(`scheme must be '${CONSUL_SCHEME}'`);
  const queryAt = target.path.indexOf('?');
  const path = queryAt < 0 ? target.path : target.path.slice(0, queryAt);
  if (target.authority === undefined && path.startsWith('//')) {
    fail('the service name is missing: use consul:///<service> (default agent) or consul://127.0.0.1:8500/<service>');
  }
  let service = path;
  try {
    service = decodeURIComponent(path);
  } catch {
    fail(`service '${path}' is not valid percent-encoding`);
  }
  const serviceError = checkServiceName(service);
  if (serviceError) fail(serviceError);
  const tags = new Set<string>();
  let datacenter: string | undefined;
  if (queryAt >= 0) {
    const params = new URLSearchParams(target.path.slice(queryAt + 1));
    for (const [key, value] of params) {
      if (key === 'tag') {
        if (value === '') fail('tag must not be empty');
        tags.add(value);
      } else if (key === 'dc') {
        if (!/^[A-Za-z0-9_.-]+$/.test(value)) fail(`dc must be a datacenter name like 'dc1', got ${JSON.stringify(value)}`);
        if (datacenter !== undefined && datacenter !== value) fail('dc given twice');
        datacenter = value;
      } else {
        fail(`unknown query parameter '${key}' (known: tag, dc)`);
      }
    }
  }
  let baseUrl: string | undefined;
  if (target.authority !== undefined && target.authority !== '') {
    const parsed = parseConsulAddress(target.authority);
    if (typeof parsed !== 'string') fail(parsed.error);
    baseUrl = parsed as string;
  }
  return { service, baseUrl, tags: [...tags].sort(), datacenter, authority: authorityForService(service) };
}

/** The agent connection of a target (its address, else the default's, else 127.0.0.1:8500; the default's token and CA) with its tags and datacenter. */
export function consulConnectionForTarget(
  target: ConsulTarget,
  defaults: ResolvedConsulOptions | undefined = getDefaultConsulOptions(),
): ResolvedConsulOptions | string {
  let base: ResolvedConsulOptions;
  try {
    base = defaults ?? fallbackConsulOptions();
  } catch (err) {
    return (err as Error).message;
  }
  const baseUrl = target.baseUrl ?? base.baseUrl;
  return Object.freeze({
    ...base, baseUrl, ca: baseUrl.startsWith('https:') ? base.ca : undefined,
    datacenter: target.datacenter ?? base.datacenter, tags: target.tags,
  });
}
