/**
 * What every etcd_* policy config shares: JSON-object checks, the optional
 * `healthCheck: { serviceName }`, `slowStart: { windowMs, aggression?,
 * minWeightPercent? }` (see slow-start.ts), `tagRouting: { header?, force? }`
 * (see tag-split.ts) and `panicThresholdPercent` (see panic-threshold.ts),
 * parsed here for every policy, and loud reporting of bad configs.
 *
 * grpc-js reports a config its parser rejects only at DEBUG verbosity (and
 * then falls back to the next `loadBalancingConfig` entry or pick_first, so a
 * typo can quietly send every call to one replica), and it re-parses the
 * config on every resolver update. So `parsePolicyConfig` logs each distinct
 * problem once per process at ERROR (printed by default; grpc-js has no WARN):
 * invalid values (the config is then rejected, as grpc-js's contract wants)
 * and unknown fields (ignored, with the known ones named). Thrown messages do
 * not repeat the policy name: grpc-js prefixes it itself.
 */
import { type TypedLoadBalancingConfig } from '../../common/grpc-experimental';
import { WarnOnce } from '../../common/warn-once';
import { parseSlowStart, SLOW_START_FIELDS, type SlowStartConfig } from '../pool/slow-start';
import { type TagRoutingConfig } from '../tiers/tag-split';

/** grpc.health.v1 watching per subchannel. */
export interface HealthCheckConfig {
  /** Service name sent in `HealthCheckRequest`; "" = the whole server. */
  readonly serviceName: string;
}

/** Fields every etcd_* policy accepts besides its own. */
const COMMON_FIELDS = ['healthCheck', 'slowStart', 'tagRouting', 'panicThresholdPercent'] as const;
const HEALTH_CHECK_FIELDS = ['serviceName'] as const;
const TAG_ROUTING_FIELDS = ['header', 'force'] as const;

/** Defaults of `tagRouting` and `panicThresholdPercent`. */
export const DEFAULT_ROUTING_OPTIONS = Object.freeze({
  /** Call-metadata key carrying a call's tag. */
  tagHeader: 'x-route-tag',
  /** A tagged call with no endpoint of its tag falls back to untagged ones. */
  tagForce: false,
  /** Envoy's `healthy_panic_threshold` default. */
  panicThresholdPercent: 50,
});
const HEADER_NAME = /^[0-9a-z_.-]+$/;
/** Config mistakes, each printed once per process. */
const configErrors = new WarnOnce();

function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

function reportOnce(text: string): void {
  configErrors.warn(text);
}

function reportUnknownFields(policy: string, body: Record<string, unknown>, known: readonly string[], path: string): void {
  for (const field of Object.keys(body)) {
    if (known.includes(field)) continue;
    reportOnce(`${policy}: unknown field '${path}${field}' (value ${describe(body[field])}) in its service config, ignored; known fields: ${known.join(', ')}`);
  }
}

function reportUnknownNested(policy: string, body: Record<string, unknown>, field: string, known: readonly string[]): void {
  const value = body[field];
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) reportUnknownFields(policy, value as Record<string, unknown>, known, `${field}.`);
}

/**
 * Runs a policy's `createFromJson` body: reports unknown fields (top level, in
 * `healthCheck` and in `slowStart`), parses `slowStart` onto the config, and on
 * an invalid value logs it naming policy, field and value, then rethrows so
 * grpc-js rejects the config.
 */
export function parsePolicyConfig<T>(
  policy: string,
  json: unknown,
  ownFields: readonly string[],
  parse: (body: Record<string, unknown>) => T,
): T {
  try {
    const body = configObject(json);
    reportUnknownFields(policy, body, [...ownFields, ...COMMON_FIELDS], '');
    reportUnknownNested(policy, body, 'healthCheck', HEALTH_CHECK_FIELDS);
    reportUnknownNested(policy, body, 'slowStart', SLOW_START_FIELDS);
    reportUnknownNested(policy, body, 'tagRouting', TAG_ROUTING_FIELDS);
    if (body.panicThresholdPercent !== undefined && (body.healthCheck === undefined || body.healthCheck === null)) {
      reportOnce(`${policy}: panicThresholdPercent ${describe(body.panicThresholdPercent)} has no effect without healthCheck (the threshold is a share of healthy endpoints)`);
    }
    const slowStart = parseSlowStart(body);
    const tagRouting = parseTagRouting(body);
    const panicThresholdPercent = parsePanicThreshold(body);
    const config = parse(body);
    if (config instanceof EtcdPolicyConfig) {
      config.slowStart = slowStart;
      config.tagRouting = tagRouting;
      config.panicThresholdPercent = panicThresholdPercent;
    }
    return config;
  } catch (err) {
    const message = (err as Error).message;
    reportOnce(`${policy}: invalid service config ${describe(json)}: ${message}; grpc-js ignores this loadBalancingConfig entry ` +
      'and uses the next one, or pick_first if none is left');
    throw new Error(message);
  }
}

/** The config body as an object; null/undefined count as `{}`. */
export function configObject(json: unknown): Record<string, unknown> {
  if (json === undefined || json === null) return {};
  if (typeof json !== 'object' || Array.isArray(json)) throw new Error(`config must be an object, got ${describe(json)}`);
  return json as Record<string, unknown>;
}

/** Parses `healthCheck`, if present. Throws naming the field and the bad value. */
export function parseHealthCheck(json: Record<string, unknown>): HealthCheckConfig | undefined {
  const value = json.healthCheck;
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw new Error(`healthCheck must be an object like {"serviceName":"my.Service"}, got ${describe(value)}`);
  const serviceName = (value as Record<string, unknown>).serviceName ?? '';
  if (typeof serviceName !== 'string') throw new Error(`healthCheck.serviceName must be a string, got ${describe(serviceName)}`);
  return Object.freeze({ serviceName });
}

/** Parses `tagRouting: { header?, force? }`, if present. Throws naming the field and the bad value. */
export function parseTagRouting(json: Record<string, unknown>): TagRoutingConfig | undefined {
  const value = json.tagRouting;
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw new Error(`tagRouting must be an object like {"header":"x-route-tag","force":false}, got ${describe(value)}`);
  const body = value as Record<string, unknown>;
  const header = body.header ?? DEFAULT_ROUTING_OPTIONS.tagHeader;
  if (typeof header !== 'string' || !HEADER_NAME.test(header) || header.endsWith('-bin')) {
    throw new Error(`tagRouting.header must be a lowercase metadata key (0-9 a-z _ . -, not ending in -bin), got ${describe(header)}`);
  }
  const force = body.force ?? DEFAULT_ROUTING_OPTIONS.tagForce;
  if (typeof force !== 'boolean') throw new Error(`tagRouting.force must be a boolean, got ${describe(force)}`);
  return Object.freeze({ header, force });
}

/** Parses `panicThresholdPercent` (a number in [0, 100]; 0 = off). Throws naming the field and the bad value. */
export function parsePanicThreshold(json: Record<string, unknown>): number {
  const value = json.panicThresholdPercent;
  if (value === undefined || value === null) return DEFAULT_ROUTING_OPTIONS.panicThresholdPercent;
  if (typeof value !== 'number' || !(value >= 0 && value <= 100)) throw new Error(`panicThresholdPercent must be a number in [0, 100] (0 = off), got ${describe(value)}`);
  return value;
}

/** Parses an optional integer field in [min, max]. Throws naming the field and the bad value. */
export function parseIntegerField(json: Record<string, unknown>, field: string, defaultValue: number, min: number, max: number): number {
  const value = json[field];
  if (value === undefined || value === null) return defaultValue;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${field} must be an integer in [${min}, ${max}], got ${describe(value)}`);
  }
  return value;
}

/** Base of every etcd_* policy config. */
export abstract class EtcdPolicyConfig implements TypedLoadBalancingConfig {
  /**
   * Slow start, when configured. Set by `parsePolicyConfig` for every policy
   * (so a policy's own constructor need not know it); assign it only when building
   * a config by hand.
   */
  slowStart: SlowStartConfig | undefined;
  /** Tag routing, when configured (set by `parsePolicyConfig`, as `slowStart`). */
  tagRouting: TagRoutingConfig | undefined;
  /**
   * With `healthCheck`: below this share (%) of a tier's READY endpoints being healthy, the
   * tier ignores health (0 = never). Set by `parsePolicyConfig`, as `slowStart`.
   */
  panicThresholdPercent: number = DEFAULT_ROUTING_OPTIONS.panicThresholdPercent;

  constructor(readonly healthCheck: HealthCheckConfig | undefined) {}

  abstract getLoadBalancerName(): string;

  /** The policy's own fields for `toJsonObject` (healthCheck is added by the base). */
  protected abstract ownJson(): Record<string, unknown>;

  toJsonObject(): object {
    const body = this.ownJson();
    if (this.healthCheck !== undefined) body.healthCheck = { serviceName: this.healthCheck.serviceName };
    if (this.slowStart !== undefined) body.slowStart = { ...this.slowStart };
    if (this.tagRouting !== undefined) body.tagRouting = { ...this.tagRouting };
    if (this.panicThresholdPercent !== DEFAULT_ROUTING_OPTIONS.panicThresholdPercent) body.panicThresholdPercent = this.panicThresholdPercent;
    return { [this.getLoadBalancerName()]: body };
  }

  /** What decides the pick strategy: the config without `slowStart` (a slow-start change keeps the schedulers and their state). */
  strategyKey(): string {
    const body = this.ownJson();
    if (this.healthCheck !== undefined) body.healthCheck = this.healthCheck.serviceName;
    if (this.tagRouting !== undefined) body.tagRouting = this.tagRouting;
    body.panicThresholdPercent = this.panicThresholdPercent;
    return JSON.stringify([this.getLoadBalancerName(), body]);
  }
}
