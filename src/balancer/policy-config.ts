/**
 * What every etcd_* policy config shares: JSON-object checks with errors that
 * name the policy, and the optional `healthCheck: { serviceName }` (accepted
 * and validated now, applied by client-side health checking later).
 */
import { type TypedLoadBalancingConfig } from '../grpc-experimental';

/** grpc.health.v1 watching per subchannel. */
export interface HealthCheckConfig {
  /** Service name sent in `HealthCheckRequest`; "" = the whole server. */
  readonly serviceName: string;
}

function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** The config body as an object; null/undefined count as `{}`. Throws naming the policy. */
export function configObject(policy: string, json: unknown): Record<string, unknown> {
  if (json === undefined || json === null) return {};
  if (typeof json !== 'object' || Array.isArray(json)) throw new Error(`${policy}: config must be an object, got ${describe(json)}`);
  return json as Record<string, unknown>;
}

/** Parses `healthCheck`, if present. Throws naming the policy and the bad value. */
export function parseHealthCheck(policy: string, json: Record<string, unknown>): HealthCheckConfig | undefined {
  const value = json.healthCheck;
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw new Error(`${policy}: healthCheck must be an object like {"serviceName":"my.Service"}, got ${describe(value)}`);
  const serviceName = (value as Record<string, unknown>).serviceName ?? '';
  if (typeof serviceName !== 'string') throw new Error(`${policy}: healthCheck.serviceName must be a string, got ${describe(serviceName)}`);
  return Object.freeze({ serviceName });
}

/** Parses an optional integer field in [min, max]. Throws naming the policy, the field and the bad value. */
export function parseIntegerField(policy: string, json: Record<string, unknown>, field: string, defaultValue: number, min: number, max: number): number {
  const value = json[field];
  if (value === undefined || value === null) return defaultValue;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${policy}: ${field} must be an integer in [${min}, ${max}], got ${describe(value)}`);
  }
  return value;
}

/** Base of every etcd_* policy config. */
export abstract class EtcdPolicyConfig implements TypedLoadBalancingConfig {
  constructor(readonly healthCheck: HealthCheckConfig | undefined) {}

  abstract getLoadBalancerName(): string;

  /** The policy's own fields for `toJsonObject` (healthCheck is added by the base). */
  protected abstract ownJson(): Record<string, unknown>;

  toJsonObject(): object {
    const body = this.ownJson();
    if (this.healthCheck !== undefined) body.healthCheck = { serviceName: this.healthCheck.serviceName };
    return { [this.getLoadBalancerName()]: body };
  }
}
