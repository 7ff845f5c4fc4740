/**
 * EndpointSlice → endpoints for one port. `ready` (nil means ready) → weight 1;
 * `serving && terminating` → weight 0 (draining: no new calls while another endpoint is
 * usable); anything else is gone. Zone, node and pod go to the metadata.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { formatAddress, parseIpAddress } from '../../discovery/address';
import { EndpointDecodeError, parseJsonObject, type DecodeResult } from '../../discovery/endpoint-record';

/** The fields of a `discovery.k8s.io/v1` EndpointSlice this backend reads. */
export interface EndpointSlice {
  readonly metadata?: { readonly name?: string; readonly resourceVersion?: string };
  readonly addressType?: string;
  readonly ports?: ReadonlyArray<{ readonly name?: string; readonly port?: number; readonly protocol?: string }> | null;
  readonly endpoints?: ReadonlyArray<SliceEndpoint> | null;
}

export interface SliceEndpoint {
  readonly addresses?: readonly string[];
  readonly conditions?: { readonly ready?: boolean | null; readonly serving?: boolean | null; readonly terminating?: boolean | null };
  readonly zone?: string;
  readonly nodeName?: string;
  readonly hostname?: string;
  readonly targetRef?: { readonly kind?: string; readonly name?: string; readonly namespace?: string };
}

/** What a slice gives one port: encoded endpoints by address, or why it gives none. */
export type SliceResult =
  | { readonly kind: 'endpoints'; readonly byAddress: ReadonlyMap<string, string> }
  /** An FQDN slice: not dialable as an IP. */
  | { readonly kind: 'fqdn' }
  /** The slice has no port of that name. */
  | { readonly kind: 'no-port' };

/** `value` if it is an array, else empty: a malformed object from the API must not throw. */
function list<T>(value: ReadonlyArray<T> | null | undefined): ReadonlyArray<T> {
  return Array.isArray(value) ? value : [];
}

/** The port of `slice` for a target port (a number is used as is; a name is looked up in the slice's TCP ports). */
export function slicePort(slice: EndpointSlice, port: number | string): number | undefined {
  if (typeof port === 'number') return port;
  for (const p of list(slice.ports)) {
    if (p !== null && typeof p === 'object' && (p.name ?? '') === port && (p.protocol === undefined || p.protocol === 'TCP') && typeof p.port === 'number') return p.port;
  }
  return undefined;
}

/** `name=port` of every port of a slice, for messages. */
export function describePorts(slice: EndpointSlice): string[] {
  return list(slice.ports).filter(p => p !== null && typeof p === 'object').map(p => `${p.name === undefined || p.name === '' ? '(unnamed)' : p.name}=${p.port ?? '?'}`);
}

/**
 * The endpoints of one slice for `port`, each encoded for the endpoint table (the value
 * doubles as its version: the same text is the same endpoint). Malformed addresses are
 * kept: the table's decoder reports them.
 */
export function sliceEndpoints(slice: EndpointSlice, port: number | string): SliceResult {
  if (slice.addressType === 'FQDN') return { kind: 'fqdn' };
  const portNumber = slicePort(slice, port);
  if (portNumber === undefined) return { kind: 'no-port' };
  const byAddress = new Map<string, string>();
  const v6 = slice.addressType === 'IPv6';
  for (const endpoint of list(slice.endpoints)) {
    if (endpoint === null || typeof endpoint !== 'object') continue;
    const conditions = endpoint.conditions ?? {};
    const ready = conditions.ready !== false;
    const draining = !ready && conditions.serving === true && conditions.terminating === true;
    if (!ready && !draining) continue;
    const host = list(endpoint.addresses)[0];
    if (typeof host !== 'string') continue;
    const address = v6 || isIPv6(host) ? `[${host}]:${portNumber}` : `${host}:${portNumber}`;
    const metadata: Record<string, unknown> = {};
    if (endpoint.zone) metadata.zone = endpoint.zone;
    if (endpoint.nodeName) metadata.nodeName = endpoint.nodeName;
    if (endpoint.targetRef?.name) metadata.targetRef = `${endpoint.targetRef.kind ?? 'Pod'}/${endpoint.targetRef.name}`;
    if (draining) metadata.terminating = true;
    // Weight first: `isReadyValue` reads it from the text.
    byAddress.set(address, JSON.stringify({ weight: draining ? 0 : 1, address, metadata }));
  }
  return { kind: 'endpoints', byAddress };
}

/** Whether an encoded endpoint (a `sliceEndpoints` value) is ready rather than draining. */
export function isReadyValue(value: string): boolean {
  return value.startsWith('{"weight":1');
}

/** The table's decoder of `sliceEndpoints`' values; `key` is the address. Never throws. */
export function decodeSliceEndpoint(key: string, value: Buffer | string): DecodeResult {
  const fail = (reason: string): DecodeResult => ({ ok: false, error: new EndpointDecodeError(key, reason) });
  const parsed = parseJsonObject(value, 'endpoint');
  if (typeof parsed === 'string') return fail(parsed);
  const hostPort = parseIpAddress(parsed.address);
  if (typeof hostPort === 'string') return fail(hostPort);
  if (!isIPv4(hostPort.host) && !isIPv6(hostPort.host)) return fail(`'${String(parsed.address)}' is not an IP address`);
  return {
    ok: true,
    endpoint: { address: formatAddress(hostPort), hostPort, weight: parsed.weight === 0 ? 0 : 1, priority: 0, metadata: { ...(parsed.metadata as Record<string, unknown>) } },
  };
}
