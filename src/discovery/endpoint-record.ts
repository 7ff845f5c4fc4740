/** An endpoint as every backend hands it to the core, its checks, and the error for an unreadable value. */
import { type HostPort } from './address';

export const DEFAULT_WEIGHT = 1;
export const DEFAULT_PRIORITY = 0;
/** Upper bound on weights, so that sums stay exact in double precision. */
export const MAX_WEIGHT = 1_000_000;
export const MAX_PRIORITY = 1_000_000;
/** Values above this size are rejected unread (a resolver must stay bounded in memory). */
export const MAX_VALUE_BYTES = 64 * 1024;

/** One endpoint as a registry holds it (decoded from etcd, ZooKeeper, …). */
export interface EndpointRecord {
  /** Canonical `host:port` / `[v6]:port`. */
  address: string;
  /** The address, parsed. */
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
  /** Always `'EndpointDecodeError'`. */
  override readonly name = 'EndpointDecodeError';
  constructor(
    /** Where the value was found (the etcd key, the ZooKeeper path). */
    readonly key: string,
    /** What is wrong with it. */
    readonly reason: string,
  ) {
    super(`bad endpoint value at key '${key}': ${reason}`);
  }
}

/** What a backend's decoder returns; `quiet`: valid but not to be used (Curator `enabled: false`). */
export type DecodeResult =
  | {
    /** Read. */
    ok: true;
    /** What was read. */
    endpoint: EndpointRecord;
  }
  | {
    /** Not usable. */
    ok: false;
    /** Why. */
    error: EndpointDecodeError;
    /** Left out without a warning. */
    quiet?: boolean;
  };

/** A backend's value reader: `key` names the value in warnings. Never throws. */
export type EndpointDecoder = (key: string, value: Buffer | string) => DecodeResult;

/** Validates a service name; returns an error message or undefined. */
export function checkServiceName(service: unknown): string | undefined {
  if (typeof service !== 'string' || service.length === 0) return `service must be a non-empty string, got ${JSON.stringify(service)}`;
  if (service.startsWith('/') || service.endsWith('/')) return `service '${service}' must not start or end with '/'`;
  if (service.includes('//')) return `service '${service}' must not contain '//'`;
  // eslint-disable-next-line no-control-regex -- rejecting control characters is the point
  if (/[\s\u0000-\u001f]/.test(service)) return `service '${service}' must not contain whitespace or control characters`;
  return undefined;
}

/** JSON, but `NaN`/`Infinity` as themselves (JSON.stringify would say null). */
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

/** Absent → default; numeric strings (Go frameworks write strings) → number; anything else as is. */
export function numberField(value: unknown, fallback: number): unknown {
  if (value === undefined || value === null) return fallback;
  if (typeof value === 'string' && /^\s*-?\d+(\.\d+)?([eE][+-]?\d+)?\s*$/.test(value)) return Number(value);
  return value;
}

/** A registry value as a JSON object (at most `MAX_VALUE_BYTES`), or why it is not one. */
export function parseJsonObject(value: Buffer | string, noun: string): Record<string, unknown> | string {
  const size = typeof value === 'string' ? Buffer.byteLength(value) : value.length;
  if (size === 0) return `empty ${noun}`;
  if (size > MAX_VALUE_BYTES) return `${noun} of ${size} bytes exceeds ${MAX_VALUE_BYTES}`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof value === 'string' ? value : value.toString('utf8'));
  } catch (err) {
    return `not JSON (${(err as Error).message})`;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return `${noun} is not a JSON object`;
  return parsed as Record<string, unknown>;
}

/** Takes `weight` and `priority` out of `metadata`, checked; returns them or why they are bad. */
export function takeWeightAndPriority(metadata: Record<string, unknown>, where = ''): { weight: number; priority: number } | string {
  const weight = numberField(metadata.weight, DEFAULT_WEIGHT);
  const weightError = checkWeight(weight);
  if (weightError) return `${where}${weightError}`;
  const priority = numberField(metadata.priority, DEFAULT_PRIORITY);
  const priorityError = checkPriority(priority);
  if (priorityError) return `${where}${priorityError}`;
  delete metadata.weight;
  delete metadata.priority;
  return { weight: weight as number, priority: priority as number };
}
