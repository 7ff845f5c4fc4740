/** Options of `registerEndpoint`, their defaults, and the one place they are validated. */
import { formatAddress, parseIpAddress } from './address';
import { checkPriority, checkServiceName, checkWeight, DEFAULT_PRIORITY, DEFAULT_WEIGHT } from './endpoint-record';

/** grpc.health.v1 serving status, as `grpc-health-check` names it. */
export type ServingStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING';

/** What the registration needs from a health service; `grpc-health-check`'s `HealthImplementation` fits. */
export interface HealthStatusSetter {
  /** Sets the status reported for `service` ('' = the whole server). */
  setStatus(service: string, status: ServingStatus): void;
}

/** What `registerEndpoint` takes besides the registry connection. */
export interface EndpointRegistrationOptions {
  /** Service name: the key prefix. Non-empty, may contain `/`, no leading or trailing `/`. Required. */
  service: string;
  /** This server's address as clients dial it: an IP literal with port, `10.0.0.5:50051` or `[::1]:50051`. Required. */
  address: string;
  /** Relative share of traffic, a number ≥ 0 (0 = draining). Defaults to 1. */
  weight?: number;
  /** Tier: integer ≥ 0, 0 = primary, higher = standby. Defaults to 0. */
  priority?: number;
  /** User metadata written next to `weight` and `priority` in the value's `Metadata`. Defaults to none. */
  metadata?: Record<string, unknown>;
  /** Lease TTL in whole seconds, ≥ 1. Defaults to 10. */
  ttlSeconds?: number;
  /** How long `registerEndpoint` (and `update`) wait for the registry to accept the first write before rejecting. Defaults to 10,000. */
  registerTimeoutMs?: number;
  /** Upper bound on `close()` when the registry does not answer; the lease or session is then left to expire. Defaults to 2,000. */
  closeTimeoutMs?: number;
  /** Health service set SERVING after the first put, NOT_SERVING on `close()` (`''` and `service`). Defaults to none. */
  health?: HealthStatusSetter;
}

/** The defaults of `registerEndpoint`'s options. */
export const DEFAULT_REGISTRATION_OPTIONS: Readonly<Required<Pick<EndpointRegistrationOptions, 'weight' | 'priority' | 'ttlSeconds' | 'registerTimeoutMs' | 'closeTimeoutMs'>>> = Object.freeze({
  weight: DEFAULT_WEIGHT,
  priority: DEFAULT_PRIORITY,
  ttlSeconds: 10,
  registerTimeoutMs: 10_000,
  closeTimeoutMs: 2_000,
});

/** Re-registration backoff never exceeds this (nor half the TTL). */
export const MAX_REREGISTER_BACKOFF_MS = 1_000;
/** First re-registration delay (equal jitter: half of it fixed). */
export const REREGISTER_INITIAL_BACKOFF_MS = 100;

/** Options after validation, defaults applied. */
export interface ResolvedRegistrationOptions {
  service: string;
  address: string;
  weight: number;
  priority: number;
  metadata: Record<string, unknown>;
  ttlSeconds: number;
  registerTimeoutMs: number;
  closeTimeoutMs: number;
  health: HealthStatusSetter | undefined;
}

const COMPONENT = 'registerEndpoint';

/** Validates `options` and applies defaults; throws a TypeError naming the bad value. */
export function resolveRegistrationOptions(options: EndpointRegistrationOptions): ResolvedRegistrationOptions {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`${COMPONENT}: options must be an object like { service, address }, got ${show(options)}`);
  }
  const fail = (message: string): never => {
    throw new TypeError(`${COMPONENT}: ${message}`);
  };
  const serviceError = checkServiceName(options.service);
  if (serviceError) fail(serviceError);
  const hostPort = parseIpAddress(options.address);
  if (typeof hostPort === 'string') fail(hostPort);
  const update = resolveEndpointUpdate(options, COMPONENT);
  const ttlSeconds = options.ttlSeconds ?? DEFAULT_REGISTRATION_OPTIONS.ttlSeconds;
  if (typeof ttlSeconds !== 'number' || !Number.isInteger(ttlSeconds) || ttlSeconds < 1) {
    fail(`ttlSeconds must be an integer ≥ 1 (registry leases and sessions count whole seconds), got ${show(ttlSeconds)}`);
  }
  const registerTimeoutMs = positiveMs(options.registerTimeoutMs, DEFAULT_REGISTRATION_OPTIONS.registerTimeoutMs, 'registerTimeoutMs');
  const closeTimeoutMs = positiveMs(options.closeTimeoutMs, DEFAULT_REGISTRATION_OPTIONS.closeTimeoutMs, 'closeTimeoutMs');
  const health = options.health;
  if (health !== undefined && (health === null || typeof (health as HealthStatusSetter).setStatus !== 'function')) {
    fail(`health must be a HealthImplementation from grpc-health-check (an object with setStatus), got ${show(health)}`);
  }
  return {
    service: options.service,
    address: formatAddress(hostPort as Exclude<typeof hostPort, string>),
    weight: update.weight ?? DEFAULT_REGISTRATION_OPTIONS.weight,
    priority: update.priority ?? DEFAULT_REGISTRATION_OPTIONS.priority,
    metadata: update.metadata ?? {},
    ttlSeconds,
    registerTimeoutMs,
    closeTimeoutMs,
    health,
  };
}

/** The mutable part of a registration's value, as `update()` takes it. */
export interface EndpointUpdate {
  /** New weight (≥ 0; 0 = draining). Defaults to unchanged. */
  weight?: number;
  /** New priority (integer ≥ 0). Defaults to unchanged. */
  priority?: number;
  /** New user metadata, replacing the old one as a whole. Defaults to unchanged. */
  metadata?: Record<string, unknown>;
}

/** Validates weight/priority/metadata; `undefined` fields stay undefined. */
export function resolveEndpointUpdate(update: EndpointUpdate, component: string): EndpointUpdate {
  if (update === null || typeof update !== 'object') {
    throw new TypeError(`${component}: expected an object like { weight, priority, metadata }, got ${show(update)}`);
  }
  const fail = (message: string): never => {
    throw new TypeError(`${component}: ${message}`);
  };
  if (update.weight !== undefined) {
    const error = checkWeight(update.weight);
    if (error) fail(error);
  }
  if (update.priority !== undefined) {
    const error = checkPriority(update.priority);
    if (error) fail(error);
  }
  let metadata: Record<string, unknown> | undefined;
  if (update.metadata !== undefined) {
    if (update.metadata === null || typeof update.metadata !== 'object' || Array.isArray(update.metadata)) {
      fail(`metadata must be a plain object, got ${show(update.metadata)}`);
    }
    for (const reserved of ['weight', 'priority']) {
      if (reserved in update.metadata) fail(`metadata must not contain '${reserved}': use the ${reserved} option`);
    }
    try {
      // Round-trip now so a value that JSON cannot carry fails here, not in the put loop.
      metadata = JSON.parse(JSON.stringify(update.metadata)) as Record<string, unknown>;
    } catch (err) {
      fail(`metadata must be JSON-serialisable: ${(err as Error).message}`);
    }
  }
  return { weight: update.weight, priority: update.priority, metadata };
}

function positiveMs(value: unknown, fallback: number, name: string): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw new TypeError(`${COMPONENT}: ${name} must be a positive number of milliseconds, got ${show(v)}`);
  }
  return v;
}

function show(value: unknown): string {
  try {
    return value === undefined ? 'undefined' : typeof value === 'function' ? 'a function' : JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
