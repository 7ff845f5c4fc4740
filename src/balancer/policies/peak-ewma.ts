/**
 * `etcd_peak_ewma`: latency-aware balancing (after Finagle's, Linkerd's and
 * go-zero's peak-EWMA) on the shared endpoint pool, one `PeakEwmaScheduler` per
 * tier. Latency is measured per call from grpc-js's pick hooks, no timer per
 * call. The cost and why: docs/policies.md, "Latency-aware balancing".
 *
 * Service config: `{"loadBalancingConfig":[{"etcd_peak_ewma":{"choiceCount":2,"decayMs":500}}]}`,
 * optional `initialLatencyMs`, `probeIntervalMs`, `healthCheck: {"serviceName": "..."}`.
 */
import { type status } from '@grpc/grpc-js';
import { registerLoadBalancerType, tracer, type ChannelControlHelper, type TypedLoadBalancingConfig } from '../../common/grpc-experimental';
import { resolveCallLoadOptions } from '../pool/call-load';
import { EndpointPoolBalancer } from '../pool/endpoint-pool-balancer';
import { type EndpointPoolOptions, type PoolPolicy } from '../pool/pool-policy';
import { PeakEwmaEstimate } from '../schedulers/peak-ewma-estimate';
import { LatencyTracker } from '../schedulers/peak-ewma-latency-tracker';
import { PeakEwmaScheduler } from '../schedulers/peak-ewma-scheduler';
import { EtcdPolicyConfig, parsePolicyConfig, parseHealthCheck, parseIntegerField, type HealthCheckConfig } from './policy-config';
import { type PickStrategy, type SchedulableEndpoint, type TierScheduler } from '../schedulers/pick-strategy';

const TYPE_NAME = 'etcd_peak_ewma';
const trace = tracer('etcd_peak_ewma');

/** The `etcd_peak_ewma` service-config body. */
export interface PeakEwmaOptions {
  /** Endpoints compared per pick (power of d choices); 0 = all. Defaults to 2. */
  choiceCount?: number;
  /**
   * Time constant with which faster samples pull the estimate down (slower ones push it up with a quarter of it).
   * Defaults to 500 (Finagle's and Linkerd's 10 s keep a healthy replica's estimate inflated by one noisy
   * reply for long; 500 ms still averages many replies).
   */
  decayMs?: number;
  /** Estimate of an endpoint before its first answer. Defaults to the median estimate of its tier (none while nothing is measured). */
  initialLatencyMs?: number;
  /** An endpoint not picked for this long is probed (given one pick), so a recovered replica is measured again; probes of an endpoint take at most 1 in 200 of its tier's picks (so a slow replica's probes stay out of the p99). Defaults to 500 (a recovered replica is back within about a second). */
  probeIntervalMs?: number;
  /** grpc.health.v1 watching per subchannel. Defaults to none. */
  healthCheck?: HealthCheckConfig;
}

/** The defaults of `PeakEwmaOptions`. */
export const DEFAULT_PEAK_EWMA_OPTIONS = Object.freeze({
  /** Power of two choices. */
  choiceCount: 2,
  /** Time constant of the estimate's fall. */
  decayMs: 500,
  /** An endpoint not picked this long is probed. */
  probeIntervalMs: 500,
});

const MAX_CHOICE_COUNT = 1_000_000;
const OWN_FIELDS = ['choiceCount', 'decayMs', 'initialLatencyMs', 'probeIntervalMs'] as const;
/** An hour: longer time constants or intervals are surely a unit mistake. */
const MAX_DURATION_MS = 3_600_000;

function parseLatencyField(json: Record<string, unknown>, field: string): number | undefined {
  const value = json[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !(value > 0) || value > MAX_DURATION_MS) {
    throw new Error(`${field} must be a number in (0, ${MAX_DURATION_MS}], got ${typeof value === 'number' ? String(value) : JSON.stringify(value)}`);
  }
  return value;
}

export class EtcdPeakEwmaConfig extends EtcdPolicyConfig {
  readonly choiceCount: number;
  readonly decayMs: number;
  readonly initialLatencyMs: number | undefined;
  readonly probeIntervalMs: number;

  /** Takes validated values (see `createFromJson`); omitted ones get the defaults. */
  constructor(options: PeakEwmaOptions = {}) {
    super(options.healthCheck);
    this.choiceCount = options.choiceCount ?? DEFAULT_PEAK_EWMA_OPTIONS.choiceCount;
    this.decayMs = options.decayMs ?? DEFAULT_PEAK_EWMA_OPTIONS.decayMs;
    this.initialLatencyMs = options.initialLatencyMs;
    this.probeIntervalMs = options.probeIntervalMs ?? DEFAULT_PEAK_EWMA_OPTIONS.probeIntervalMs;
  }

  getLoadBalancerName(): string {
    return TYPE_NAME;
  }

  protected ownJson(): Record<string, unknown> {
    const json: Record<string, unknown> = { choiceCount: this.choiceCount, decayMs: this.decayMs, probeIntervalMs: this.probeIntervalMs };
    if (this.initialLatencyMs !== undefined) json.initialLatencyMs = this.initialLatencyMs;
    return json;
  }

  /** Validates the service-config body; errors name the policy and the bad value. */
  static createFromJson(json: unknown): EtcdPeakEwmaConfig {
    return parsePolicyConfig(TYPE_NAME, json, OWN_FIELDS, body => new EtcdPeakEwmaConfig({
      choiceCount: parseIntegerField(body, 'choiceCount', DEFAULT_PEAK_EWMA_OPTIONS.choiceCount, 0, MAX_CHOICE_COUNT),
      decayMs: parseIntegerField(body, 'decayMs', DEFAULT_PEAK_EWMA_OPTIONS.decayMs, 1, MAX_DURATION_MS),
      initialLatencyMs: parseLatencyField(body, 'initialLatencyMs'),
      probeIntervalMs: parseIntegerField(body, 'probeIntervalMs', DEFAULT_PEAK_EWMA_OPTIONS.probeIntervalMs, 1, MAX_DURATION_MS),
      healthCheck: parseHealthCheck(body),
    }));
  }
}

/**
 * Keeps one `LatencyTracker` per endpoint for as long as the endpoint exists
 * (across picker rebuilds, tier moves and reconnects) and builds the tiers'
 * schedulers on them. A config change makes a new strategy: estimates restart.
 */
export class PeakEwmaStrategy implements PickStrategy {
  readonly tracksCalls = true;
  private readonly trackers = new WeakMap<SchedulableEndpoint, LatencyTracker>();

  /**
   * @param nowMs The balancer's clock (the one its call accounting uses).
   * @param isFailure The balancer's failure codes (those its failure penalty counts).
   */
  constructor(
    private readonly config: EtcdPeakEwmaConfig,
    private readonly random: () => number,
    private readonly nowMs: () => number,
    private readonly isFailure: (code: status) => boolean,
  ) {}

  createScheduler(endpoints: readonly SchedulableEndpoint[], weights: readonly number[]): TierScheduler {
    return new PeakEwmaScheduler(endpoints, weights, {
      choiceCount: this.config.choiceCount,
      probeIntervalMs: this.config.probeIntervalMs,
      random: this.random,
      onProbe: (tracker, idleMs) => trace(`probe ${tracker.label}: not picked for ${idleMs.toFixed(0)} ms, estimate ${tracker.estimate.estimateMs.toFixed(3)} ms`),
      trackerFor: (endpoint, tierMedianMs) => this.trackerFor(endpoint, tierMedianMs),
    });
  }

  /** The endpoint's tracker; a new one starts from `initialLatencyMs`, else the median of the tier it joins. */
  private trackerFor(endpoint: SchedulableEndpoint, tierMedianMs: () => number): LatencyTracker {
    const existing = this.trackers.get(endpoint);
    if (existing !== undefined) return existing;
    const priorMs = this.config.initialLatencyMs ?? tierMedianMs();
    const tracker = new LatencyTracker(new PeakEwmaEstimate(this.config.decayMs, priorMs, this.nowMs()), this.nowMs, this.isFailure, endpoint.key);
    this.trackers.set(endpoint, tracker);
    if (trace.enabled) trace(`${tracker.label}: first estimate ${Number.isNaN(priorMs) ? 'unknown (nothing measured yet)' : `${priorMs.toFixed(3)} ms`}`);
    return tracker;
  }

  /** The latency state of an endpoint this strategy has scheduled (diagnostics, tests). */
  trackerOf(endpoint: SchedulableEndpoint): LatencyTracker | undefined {
    return this.trackers.get(endpoint);
  }

  /** The endpoint's peak-EWMA estimate; undefined before it has one. */
  latencyEstimateMs(endpoint: SchedulableEndpoint): number | undefined {
    const estimateMs = this.trackers.get(endpoint)?.estimate.estimateMs;
    return estimateMs === undefined || Number.isNaN(estimateMs) ? undefined : estimateMs;
  }
}

function policyWith(nowMs: () => number, isFailure: (code: status) => boolean): PoolPolicy<EtcdPeakEwmaConfig> {
  return {
    typeName: TYPE_NAME,
    trace,
    isConfig: (config: TypedLoadBalancingConfig): config is EtcdPeakEwmaConfig => config instanceof EtcdPeakEwmaConfig,
    createStrategy: (config, random) => new PeakEwmaStrategy(config, random, nowMs, isFailure),
  };
}

export class EtcdPeakEwmaLoadBalancer extends EndpointPoolBalancer<EtcdPeakEwmaConfig> {
  /** `options` inject clock, randomness and failure codes (tests); the latency clock is the call accounting's. */
  constructor(helper: ChannelControlHelper, options: EndpointPoolOptions = {}) {
    const callLoad = resolveCallLoadOptions(options);
    super(helper, policyWith(callLoad.nowMs, code => callLoad.failureCodes.has(code)), options);
  }
}

export function setupPeakEwma(): void {
  registerLoadBalancerType(TYPE_NAME, EtcdPeakEwmaLoadBalancer, EtcdPeakEwmaConfig);
}
