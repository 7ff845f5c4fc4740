/**
 * The etcd key/value format of an endpoint, interoperable with etcd's Go
 * `naming/endpoints` Manager and the 3.4 `GRPCResolver`:
 *   key   `<service>/<host:port>`
 *   value `{"Op":0,"Addr":"<host:port>","Metadata":{"priority":0,"weight":1,...}}` (Go's bytes: keys sorted)
 * Reading is tolerant (Addr in any case, Metadata null/absent, numeric strings);
 * a bad value yields an `EndpointDecodeError`, never a throw.
 */
import { formatAddress, parseIpAddress, type HostPort } from './address';

export const DEFAULT_WEIGHT = 1;
export const DEFAULT_PRIORITY = 0;
/** Upper bound on weights, so that sums stay exact in double precision. */
export const MAX_WEIGHT = 1_000_000;
export const MAX_PRIORITY = 1_000_000;
/** Values above this size are rejected unread (a resolver must stay bounded in memory). */
export const MAX_VALUE_BYTES = 64 * 1024;

/** One endpoint as registered in etcd. */
export interface EndpointRecord {
  /** Canonical `host:port` / `[v6]:port`. */
  address: string;
  hostPort: HostPort;
  /** ≥ 0; 0 = draining (no new calls while another endpoint of its tier is ready). */
  weight: number;
  /** Integer ≥ 0; 0 = primary, higher = standby tiers. */
  priority: number;
  /** User metadata (everything in `Metadata` except weight and priority). */
  metadata: Record<string, unknown>;
}

/** A value under the service prefix that could not be read. */
export class EndpointDecodeError extends Error {
  override readonly name = 'EndpointDecodeError';
  constructor(readonly key: string, readonly reason: string) {
    super(`bad endpoint value at key '${key}': ${reason}`);
  }
}

export type DecodeResult = { ok: true; endpoint: EndpointRecord } | { ok: false; error: EndpointDecodeError };

/** Validates a service name; returns an error message or undefined. */
export function checkServiceName(service: unknown): string | undefined {
  if (typeof service !== 'string' || service.length === 0) return `service must be a non-empty string, got ${JSON.stringify(service)}`;
  if (service.startsWith('/') || service.endsWith('/')) return `service '${service}' must not start or end with '/'`;
  if (service.includes('//')) return `service '${service}' must not contain '//'`;
  // eslint-disable-next-line no-control-regex -- rejecting control characters is the point
  if (/[\s\u0000-\u001f]/.test(service)) return `service '${service}' must not contain whitespace or control characters`;
  return undefined;
}

/** The etcd prefix holding a service's endpoints (with the trailing slash). */
export function servicePrefix(service: string): string {
  return `${service}/`;
}

/** The key we write for an endpoint. */
export function endpointKey(service: string, address: string): string {
  return `${servicePrefix(service)}${address}`;
}

/** JSON for most values, but `NaN`/`Infinity` as themselves (JSON.stringify would say null). */
function describeValue(value: unknown): string {
  return typeof value === 'number' && !Number.isFinite(value) ? String(value) : JSON.stringify(value) ?? String(value);
}

/** Returns an error message when `weight` is not a valid weight. */
export function checkWeight(weight: unknown): string | undefined {
  if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0 || weight > MAX_WEIGHT) {
    return `weight must be a finite number in [0, ${MAX_WEIGHT}], got ${describeValue(weight)}`;
  }
  return undefined;
}

/** Returns an error message when `priority` is not a valid priority. */
export function checkPriority(priority: unknown): string | undefined {
  if (typeof priority !== 'number' || !Number.isInteger(priority) || priority < 0 || priority > MAX_PRIORITY) {
    return `priority must be an integer in [0, ${MAX_PRIORITY}], got ${describeValue(priority)}`;
  }
  return undefined;
}

/**
 * Encodes the value bytes exactly as Go's Manager writes them (`json.Marshal` of
 * `Update{Op, Addr, Metadata map[string]any}`): `weight` and `priority` always
 * present, map keys sorted, `<`, `>`, `&`, U+2028 and U+2029 escaped.
 */
export function encodeEndpointValue(e: { address: string; weight?: number; priority?: number; metadata?: Record<string, unknown> }): string {
  const userMetadata = JSON.parse(JSON.stringify(withoutOwnKeys(e.metadata))) as Record<string, unknown>;
  const metadata = { ...userMetadata, weight: e.weight ?? DEFAULT_WEIGHT, priority: e.priority ?? DEFAULT_PRIORITY };
  return `{"Op":0,"Addr":${goJson(e.address)},"Metadata":${goJson(metadata)}}`;
}

/** JSON text as Go's encoding/json writes a decoded-JSON value (maps with byte-wise sorted keys). */
function goJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(goJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    return `{${keys.map(k => `${goJson(k)}:${goJson(obj[k])}`).join(',')}}`;
  }
  // Go's HTML-safe escaping on top of standard JSON; numbers already match (shortest round-trip, same exponent thresholds).
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function withoutOwnKeys(metadata: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!metadata) return {};
  const { weight: _w, priority: _p, ...rest } = metadata;
  return rest;
}

/** Decodes one key/value under a service prefix. Never throws. */
export function decodeEndpoint(key: string, value: Buffer | string): DecodeResult {
  const fail = (reason: string): DecodeResult => ({ ok: false, error: new EndpointDecodeError(key, reason) });
  const size = typeof value === 'string' ? Buffer.byteLength(value) : value.length;
  if (size === 0) return fail('empty value');
  if (size > MAX_VALUE_BYTES) return fail(`value of ${size} bytes exceeds ${MAX_VALUE_BYTES}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof value === 'string' ? value : value.toString('utf8'));
  } catch (err) {
    return fail(`not JSON (${(err as Error).message})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return fail('value is not a JSON object');
  const obj = parsed as Record<string, unknown>;
  const addr = fieldIgnoringCase(obj, 'addr');
  const hostPort = parseIpAddress(addr);
  if (typeof hostPort === 'string') return fail(addr === undefined ? "no 'Addr' field" : hostPort);

  const rawMetadata = fieldIgnoringCase(obj, 'metadata');
  let metadata: Record<string, unknown> = {};
  if (rawMetadata !== undefined && rawMetadata !== null) {
    // Go's Endpoint.Metadata is interface{}: any JSON value is valid there (etcd's docs use a
    // string). A non-object carries no weight/priority; keep it for the user under `value`.
    metadata = typeof rawMetadata === 'object' && !Array.isArray(rawMetadata)
      ? { ...(rawMetadata as Record<string, unknown>) }
      : { value: rawMetadata };
  }
  const weight = numberField(metadata.weight, DEFAULT_WEIGHT);
  const weightError = checkWeight(weight);
  if (weightError) return fail(weightError);
  const priority = numberField(metadata.priority, DEFAULT_PRIORITY);
  const priorityError = checkPriority(priority);
  if (priorityError) return fail(priorityError);
  delete metadata.weight;
  delete metadata.priority;
  return { ok: true, endpoint: { address: formatAddress(hostPort), hostPort, weight: weight as number, priority: priority as number, metadata } };
}

function fieldIgnoringCase(obj: Record<string, unknown>, lowerName: string): unknown {
  if (lowerName in obj) return obj[lowerName];
  for (const k of Object.keys(obj)) {
    if (k.toLowerCase() === lowerName) return obj[k];
  }
  return undefined;
}

/** Absent → default; numeric strings (Go frameworks write strings) → number; anything else as is. */
function numberField(value: unknown, fallback: number): unknown {
  if (value === undefined || value === null) return fallback;
  if (typeof value === 'string' && /^\s*-?\d+(\.\d+)?([eE][+-]?\d+)?\s*$/.test(value)) return Number(value);
  return value;
}
