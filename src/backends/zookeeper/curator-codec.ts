/**
 * Curator x-discovery `ServiceInstance` JSON, as Spring Cloud Zookeeper and Dubbo write it.
 * Curator has no weight: weight, priority and zone come from `payload.metadata` (strings
 * in Spring, or numbers). Reading never throws.
 */
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { formatAddress, parseIpAddress } from '../../discovery/address';
import { EndpointDecodeError, parseJsonObject, takeWeightAndPriority, type DecodeResult } from '../../discovery/endpoint-record';

/** Spring Cloud Zookeeper's payload class: Spring clients deserialise our payload with it. */
export const SPRING_PAYLOAD_CLASS = 'org.springframework.cloud.zookeeper.discovery.ZookeeperInstance';

/** The Spring setting that makes a Spring service register its IP instead of its hostname. */
export const SPRING_PREFER_IP = 'spring.cloud.zookeeper.discovery.prefer-ip-address=true';

/** Curator's serialised form of Spring's default uriSpec `{scheme}://{address}:{port}`. */
const URI_SPEC = Object.freeze({
  parts: [
    { value: 'scheme', variable: true }, { value: '://', variable: false }, { value: 'address', variable: true },
    { value: ':', variable: false }, { value: 'port', variable: true },
  ],
});

/** UUID-shaped, derived from service and address, so a restarted process replaces its own stale node. */
export function instanceId(service: string, address: string): string {
  const h = createHash('sha1').update(`${service}\n${address}`).digest('hex');
  // RFC 4122 name-based layout (version 5, variant 10xx).
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16], 16) & 0x3) | 0x8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** Our instance JSON: Curator's fields, Spring's payload, metadata as strings, weight and priority always written. */
export function encodeCuratorInstance(e: {
  service: string; id: string; address: string; weight: number; priority: number; metadata: Record<string, unknown>; registrationTimeUTC: number;
}): string {
  const hostPort = parseIpAddress(e.address);
  if (typeof hostPort === 'string') throw new TypeError(`zookeeper: ${hostPort}`);
  const metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(e.metadata)) {
    metadata[key] = typeof value === 'string' ? value : JSON.stringify(value);
  }
  metadata.weight = String(e.weight);
  metadata.priority = String(e.priority);
  return JSON.stringify({
    name: e.service,
    id: e.id,
    address: hostPort.host,
    port: hostPort.port,
    sslPort: null,
    payload: { '@class': SPRING_PAYLOAD_CLASS, id: e.service, name: e.service, metadata },
    registrationTimeUTC: e.registrationTimeUTC,
    serviceType: 'DYNAMIC',
    uriSpec: URI_SPEC,
    enabled: true,
  });
}

/** Decodes one instance node (`key` names it in warnings). Never throws. */
export function decodeCuratorInstance(key: string, value: Buffer | string): DecodeResult {
  const fail = (reason: string): DecodeResult => ({ ok: false, error: new EndpointDecodeError(key, reason) });
  const instance = parseJsonObject(value, 'node data');
  if (typeof instance === 'string') return fail(instance);
  if (instance.enabled === false) return { ok: false, error: new EndpointDecodeError(key, 'disabled'), quiet: true };
  const host = instance.address;
  if (typeof host !== 'string' || host.length === 0) return fail("no 'address' field");
  const port = instance.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    return fail(`'port' must be an integer in [1, 65535], got ${JSON.stringify(port)}`);
  }
  if (isIP(host) === 0) {
    return fail(`address '${host}' is a hostname; register an IP address (Spring: ${SPRING_PREFER_IP})`);
  }
  const hostPort = parseIpAddress(isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`);
  if (typeof hostPort === 'string') return fail(hostPort);

  const payload = instance.payload;
  const rawMetadata = payload !== null && typeof payload === 'object' ? (payload as Record<string, unknown>).metadata : undefined;
  const metadata: Record<string, unknown> = rawMetadata !== null && typeof rawMetadata === 'object' && !Array.isArray(rawMetadata)
    ? { ...(rawMetadata as Record<string, unknown>) }
    : {};
  const fields = takeWeightAndPriority(metadata, 'payload.metadata ');
  if (typeof fields === 'string') return fail(fields);
  return { ok: true, endpoint: { address: formatAddress(hostPort), hostPort, ...fields, metadata } };
}
