/**
 * An endpoint's etcd key/value in Go's `naming/endpoints` format: key `<service>/<host:port>`,
 * value `{"Op":0,"Addr":…,"Metadata":{…}}`. Reading is tolerant and never throws.
 */
import { formatAddress, parseIpAddress } from '../../discovery/address';
import {
  DEFAULT_PRIORITY, DEFAULT_WEIGHT, EndpointDecodeError, parseJsonObject, takeWeightAndPriority, type DecodeResult,
} from '../../discovery/endpoint-record';

// The backend-independent parts of an endpoint record live in the discovery core; etcd users import them from here.
export {
  checkPriority, checkServiceName, checkWeight, DEFAULT_PRIORITY, DEFAULT_WEIGHT, EndpointDecodeError, MAX_PRIORITY, MAX_VALUE_BYTES, MAX_WEIGHT,
  type DecodeResult, type EndpointRecord,
} from '../../discovery/endpoint-record';

/** The etcd prefix holding a service's endpoints (with the trailing slash). */
export function servicePrefix(service: string): string {
  return `${service}/`;
}

/** The key we write for an endpoint. */
export function endpointKey(service: string, address: string): string {
  return `${servicePrefix(service)}${address}`;
}

/** The value bytes exactly as Go's Manager writes them (`json.Marshal`: keys sorted, HTML-safe escapes). */
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
  const obj = parseJsonObject(value, 'value');
  if (typeof obj === 'string') return fail(obj);
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
  const fields = takeWeightAndPriority(metadata);
  if (typeof fields === 'string') return fail(fields);
  return { ok: true, endpoint: { address: formatAddress(hostPort), hostPort, ...fields, metadata } };
}

function fieldIgnoringCase(obj: Record<string, unknown>, lowerName: string): unknown {
  if (lowerName in obj) return obj[lowerName];
  for (const k of Object.keys(obj)) {
    if (k.toLowerCase() === lowerName) return obj[k];
  }
  return undefined;
}
