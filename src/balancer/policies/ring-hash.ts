/**
 * `etcd_ring_hash`: consistent hashing on a call-metadata key (gRFC A76's
 * `request_hash_header`, without xDS), with optional bounded loads. The key is
 * XXH64 of the call's `hashHeader` values joined by ','; a call without it goes
 * to a random endpoint (as A76 says). One ring per priority tier (hash-ring.ts),
 * bounded loads and retries in `RingHashScheduler`. Zone-aware routing is off
 * for this policy: a key must land on the same replica from every zone.
 *
 * Service config: `{"loadBalancingConfig":[{"etcd_ring_hash":{"hashHeader":"x-user-id","loadBound":1.25}}]}`.
 */
import { registerLoadBalancerType, tracer, type ChannelControlHelper, type TypedLoadBalancingConfig } from '../../common/grpc-experimental';
import { EndpointPoolBalancer } from '../pool/endpoint-pool-balancer';
import { type EndpointPoolOptions, type PoolPolicy } from '../pool/pool-policy';
import { DEFAULT_MAX_RING_SIZE, DEFAULT_MIN_RING_SIZE } from '../ring/hash-ring';
import { RingHashScheduler } from '../ring/ring-hash-scheduler';
import { type PickStrategy, type TierScheduler } from '../schedulers/pick-strategy';
import { EtcdPolicyConfig, parseHealthCheck, parseIntegerField, parsePolicyConfig, type HealthCheckConfig } from './policy-config';

const TYPE_NAME = 'etcd_ring_hash';
const trace = tracer(TYPE_NAME);

/** The `etcd_ring_hash` service-config body. */
export interface RingHashOptions {
  /** Call-metadata key whose value is hashed (lowercase, not `-bin`). Required. */
  hashHeader: string;
  /** Fewest points on a tier's ring. Defaults to 1024 (gRFC A42). */
  minRingSize?: number;
  /** Most points on a tier's ring. Defaults to 8,388,608 (gRFC A42). */
  maxRingSize?: number;
  /** c ≥ 1 of consistent hashing with bounded loads (Envoy's `hash_balance_factor` / 100). Defaults to none (no bound). */
  loadBound?: number;
  /** grpc.health.v1 watching per subchannel. Defaults to none. */
  healthCheck?: HealthCheckConfig;
}

/** The defaults of `RingHashOptions`. */
export const DEFAULT_RING_HASH_OPTIONS = Object.freeze({
  /** gRFC A42's default. */
  minRingSize: DEFAULT_MIN_RING_SIZE,
  /** gRFC A42's default (and bound). */
  maxRingSize: DEFAULT_MAX_RING_SIZE,
});

const OWN_FIELDS = ['hashHeader', 'minRingSize', 'maxRingSize', 'loadBound'] as const;
/** A bound this loose is no bound at all; larger values are surely a mistake (a percentage?). */
const MAX_LOAD_BOUND = 100;
const HEADER_NAME = /^[0-9a-z_.-]+$/;

function parseHashHeader(body: Record<string, unknown>): string {
  const value = body.hashHeader;
  if (typeof value !== 'string' || !HEADER_NAME.test(value) || value.endsWith('-bin')) {
    throw new Error(`hashHeader must be a lowercase metadata key (0-9 a-z _ . -, not ending in -bin), required, got ${JSON.stringify(value) ?? 'undefined'}`);
  }
  return value;
}

function parseLoadBound(body: Record<string, unknown>): number | undefined {
  const value = body.loadBound;
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !(value >= 1) || value > MAX_LOAD_BOUND) {
    throw new Error(`loadBound must be a number in [1, ${MAX_LOAD_BOUND}] (e.g. 1.25 = 25 % over the mean), got ${JSON.stringify(value)}`);
  }
  return value;
}

export class EtcdRingHashConfig extends EtcdPolicyConfig {
  readonly hashHeader: string;
  readonly minRingSize: number;
  readonly maxRingSize: number;
  readonly loadBound: number | undefined;

  /** Takes validated values (see `createFromJson`); omitted ones get the defaults. */
  constructor(options: RingHashOptions) {
    super(options.healthCheck);
    this.hashHeader = options.hashHeader;
    this.minRingSize = options.minRingSize ?? DEFAULT_RING_HASH_OPTIONS.minRingSize;
    this.maxRingSize = options.maxRingSize ?? DEFAULT_RING_HASH_OPTIONS.maxRingSize;
    this.loadBound = options.loadBound;
  }

  getLoadBalancerName(): string {
    return TYPE_NAME;
  }

  protected ownJson(): Record<string, unknown> {
    const json: Record<string, unknown> = { hashHeader: this.hashHeader, minRingSize: this.minRingSize, maxRingSize: this.maxRingSize };
    if (this.loadBound !== undefined) json.loadBound = this.loadBound;
    return json;
  }

  /** Validates the service-config body; errors name the field and the bad value. */
  static createFromJson(json: unknown): EtcdRingHashConfig {
    return parsePolicyConfig(TYPE_NAME, json, OWN_FIELDS, body => {
      const minRingSize = parseIntegerField(body, 'minRingSize', DEFAULT_RING_HASH_OPTIONS.minRingSize, 1, DEFAULT_MAX_RING_SIZE);
      const maxRingSize = parseIntegerField(body, 'maxRingSize', DEFAULT_RING_HASH_OPTIONS.maxRingSize, 1, DEFAULT_MAX_RING_SIZE);
      if (minRingSize > maxRingSize) throw new Error(`minRingSize (${minRingSize}) must not exceed maxRingSize (${maxRingSize})`);
      return new EtcdRingHashConfig({
        hashHeader: parseHashHeader(body), minRingSize, maxRingSize, loadBound: parseLoadBound(body), healthCheck: parseHealthCheck(body),
      });
    });
  }
}

class RingHashStrategy implements PickStrategy {
  readonly tracksCalls: boolean;
  constructor(private readonly config: EtcdRingHashConfig, private readonly random: () => number) {
    // Only the bound reads calls in flight.
    this.tracksCalls = config.loadBound !== undefined;
  }

  createScheduler(): TierScheduler {
    const { hashHeader, minRingSize, maxRingSize, loadBound } = this.config;
    return new RingHashScheduler({ hashHeader, minRingSize, maxRingSize, loadBound, random: this.random });
  }
}

const POLICY: PoolPolicy<EtcdRingHashConfig> = {
  typeName: TYPE_NAME,
  trace,
  zoneAware: false,
  isConfig: (config: TypedLoadBalancingConfig): config is EtcdRingHashConfig => config instanceof EtcdRingHashConfig,
  createStrategy: (config, random) => new RingHashStrategy(config, random),
};

/** `etcd_ring_hash`'s balancer. */
export class EtcdRingHashLoadBalancer extends EndpointPoolBalancer<EtcdRingHashConfig> {
  constructor(helper: ChannelControlHelper, options?: EndpointPoolOptions) {
    super(helper, POLICY, options);
  }
}

/** Registers `etcd_ring_hash` with grpc-js. */
export function setupRingHash(): void {
  registerLoadBalancerType(TYPE_NAME, EtcdRingHashLoadBalancer, EtcdRingHashConfig);
}
