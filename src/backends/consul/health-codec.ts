/**
 * One `/v1/health/service` entry ↔ `EndpointRecord`, and our registration body. Weight is
 * `Meta.weight` when our registrar wrote it (exact: 0 and fractions), else Consul's own
 * `Weights.Passing` (integers ≥ 1, as Go clients write them); priority is `Meta.priority`;
 * the other `Meta` keys (`zone`, `tag`, …) are metadata, `Service.Tags` is `metadata.tags`.
 */
import { isIP } from 'node:net';
import { formatAddress, parseIpAddress } from '../../discovery/address';
import { checkPriority, checkWeight, EndpointDecodeError, numberField, parseJsonObject, DEFAULT_PRIORITY, type DecodeResult } from '../../discovery/endpoint-record';

/** The part of a health entry the codec reads (what the watch hands over, re-serialised). */
export interface HealthEntry {
  Node?: { Node?: string; Address?: string; ModifyIndex?: number } | null;
  Service?: {
    ID?: string; Service?: string; Tags?: string[] | null; Address?: string; Port?: number;
    Meta?: Record<string, string> | null; Weights?: { Passing?: number; Warning?: number } | null; ModifyIndex?: number;
  } | null;
}

/** Consul's limits on service `Meta` (agent/structs: 64 pairs, keys ≤ 128, values ≤ 512, no `consul-` prefix). */
export const META_MAX_PAIRS = 64;
export const META_MAX_KEY_LENGTH = 128;
export const META_MAX_VALUE_LENGTH = 512;
const META_KEY = /^[A-Za-z0-9_-]+$/;

/** Decodes one entry (`key` names it in warnings). Never throws. */
export function decodeHealthEntry(key: string, value: Buffer | string): DecodeResult {
  const fail = (reason: string): DecodeResult => ({ ok: false, error: new EndpointDecodeError(key, reason) });
  const entry = parseJsonObject(value, 'health entry') as HealthEntry | string;
  if (typeof entry === 'string') return fail(entry);
  const service = entry.Service;
  if (!service || typeof service !== 'object') return fail("no 'Service'");
  const host = typeof service.Address === 'string' && service.Address !== '' ? service.Address : entry.Node?.Address;
  if (typeof host !== 'string' || host === '') return fail('neither Service.Address nor Node.Address is set');
  const port = service.Port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    return fail(`Service.Port must be an integer in [1, 65535], got ${JSON.stringify(port)}`);
  }
  if (isIP(host) === 0) return fail(`address '${host}' is a hostname; register an IP address (Service.Address, or the agent's -advertise address)`);
  const hostPort = parseIpAddress(isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`);
  if (typeof hostPort === 'string') return fail(hostPort);

  const meta = service.Meta !== null && typeof service.Meta === 'object' && !Array.isArray(service.Meta) ? service.Meta : {};
  const metadata: Record<string, unknown> = { ...meta };
  const passing = service.Weights?.Passing;
  const weight = numberField(metadata.weight, passing ?? 1);
  const weightError = checkWeight(weight);
  if (weightError) return fail(`${metadata.weight === undefined ? 'Weights.Passing: ' : 'Meta.'}${weightError}`);
  const priority = numberField(metadata.priority, DEFAULT_PRIORITY);
  const priorityError = checkPriority(priority);
  if (priorityError) return fail(`Meta.${priorityError}`);
  delete metadata.weight;
  delete metadata.priority;
  if (Array.isArray(service.Tags) && service.Tags.length > 0) metadata.tags = service.Tags.filter(t => typeof t === 'string');
  return { ok: true, endpoint: { address: formatAddress(hostPort), hostPort, weight: weight as number, priority: priority as number, metadata } };
}

/** What the registrar writes with `PUT /v1/agent/service/register`. */
export interface ServiceDefinition {
  ID: string;
  Name: string;
  Address: string;
  Port: number;
  Tags: string[];
  Meta: Record<string, string>;
  Weights: { Passing: number; Warning: number };
  Check: { CheckID: string; Name: string; TTL: string; DeregisterCriticalServiceAfter: string; Status: 'passing' | 'critical'; Notes: string };
}

/** The service ID of a registration: one per (service, address), so a restarted process replaces its own. */
export function consulServiceId(service: string, address: string): string {
  return `${service}:${address}`;
}

/** The TTL check of a service registered with a single `Check` (Consul names it `service:<ID>`). */
export function consulCheckId(serviceId: string): string {
  return `service:${serviceId}`;
}

/** `Meta` from metadata: values as strings (JSON for non-strings), `tags` left out (they are `Tags`), weight and priority added. Throws a TypeError on what Consul would refuse. */
export function encodeMeta(metadata: Record<string, unknown>, weight: number, priority: number, component: string): Record<string, string> {
  const meta: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadata)) {
    if (key === 'tags' && Array.isArray(value)) continue;
    if (!META_KEY.test(key) || key.length > META_MAX_KEY_LENGTH || key.startsWith('consul-')) {
      throw new TypeError(`${component}: metadata key '${key}' is not a valid Consul Meta key (letters, digits, '_' and '-', at most ${META_MAX_KEY_LENGTH}, not 'consul-…')`);
    }
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    if (text.length > META_MAX_VALUE_LENGTH) throw new TypeError(`${component}: metadata '${key}' is ${text.length} characters; Consul Meta values hold at most ${META_MAX_VALUE_LENGTH}`);
    meta[key] = text;
  }
  meta.weight = String(weight);
  meta.priority = String(priority);
  if (Object.keys(meta).length > META_MAX_PAIRS) throw new TypeError(`${component}: metadata has ${Object.keys(meta).length - 2} keys; Consul Meta holds at most ${META_MAX_PAIRS} with weight and priority`);
  return meta;
}

/** `metadata.tags` as Consul `Tags` (strings only), else none. */
export function encodeTags(metadata: Record<string, unknown>, component: string): string[] {
  const tags = metadata.tags;
  if (tags === undefined || !Array.isArray(tags)) return [];
  if (!tags.every(t => typeof t === 'string')) throw new TypeError(`${component}: metadata.tags must be an array of strings (Consul Tags), got ${JSON.stringify(tags)}`);
  return tags as string[];
}
