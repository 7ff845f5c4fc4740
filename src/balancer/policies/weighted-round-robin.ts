/**
 * `etcd_weighted_round_robin`: smooth weighted round robin over the active
 * priority tier. With integer weights and every endpoint ready, each window of
 * ΣW consecutive picks gives endpoint i exactly W(i) picks, spread out;
 * fractional weights are exactly proportional up to 6 decimals; equal weights
 * are plain round robin. O(1) per pick from a precomputed period when ΣW ≤ 65,536
 * and the set has been stable for a period, else O(log n) from an incremental
 * EDF heap, with add/remove/re-weight in O(log n) (`WeightedRoundRobinScheduler`).
 *
 * Service config: `{"loadBalancingConfig":[{"etcd_weighted_round_robin":{}}]}`,
 * optional `healthCheck: {"serviceName": "..."}`.
 */
import { registerLoadBalancerType, tracer, type ChannelControlHelper, type TypedLoadBalancingConfig } from '../../common/grpc-experimental';
import { EndpointPoolBalancer } from '../pool/endpoint-pool-balancer';
import { type EndpointPoolOptions, type PoolPolicy } from '../pool/pool-policy';
import { EtcdPolicyConfig, parsePolicyConfig, parseHealthCheck, type HealthCheckConfig } from './policy-config';
import { type PickStrategy, type TierScheduler } from '../schedulers/pick-strategy';
import { WeightedRoundRobinScheduler } from '../schedulers/weighted-round-robin-scheduler';

const TYPE_NAME = 'etcd_weighted_round_robin';
const trace = tracer('etcd_weighted_round_robin');

export class EtcdWeightedRoundRobinConfig extends EtcdPolicyConfig {
  constructor(healthCheck?: HealthCheckConfig) {
    super(healthCheck);
  }

  getLoadBalancerName(): string {
    return TYPE_NAME;
  }

  protected ownJson(): Record<string, unknown> {
    return {};
  }

  /** Validates the service-config body; errors name the policy. */
  static createFromJson(json: unknown): EtcdWeightedRoundRobinConfig {
    return parsePolicyConfig(TYPE_NAME, json, [], body => new EtcdWeightedRoundRobinConfig(parseHealthCheck(body)));
  }
}

class SmoothWeightedStrategy implements PickStrategy {
  readonly tracksCalls = false;
  constructor(private readonly random: () => number) {}
  createScheduler(_endpoints: unknown, weights: readonly number[]): TierScheduler {
    return new WeightedRoundRobinScheduler(weights, this.random);
  }
}

const POLICY: PoolPolicy<EtcdWeightedRoundRobinConfig> = {
  typeName: TYPE_NAME,
  trace,
  isConfig: (config: TypedLoadBalancingConfig): config is EtcdWeightedRoundRobinConfig => config instanceof EtcdWeightedRoundRobinConfig,
  createStrategy: (_config, random) => new SmoothWeightedStrategy(random),
};

export class EtcdWeightedRoundRobinLoadBalancer extends EndpointPoolBalancer<EtcdWeightedRoundRobinConfig> {
  constructor(helper: ChannelControlHelper, options?: EndpointPoolOptions) {
    super(helper, POLICY, options);
  }
}

export function setupWeightedRoundRobin(): void {
  registerLoadBalancerType(TYPE_NAME, EtcdWeightedRoundRobinLoadBalancer, EtcdWeightedRoundRobinConfig);
}
