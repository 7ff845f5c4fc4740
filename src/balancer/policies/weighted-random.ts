/**
 * `etcd_weighted_random`: each pick independently chooses endpoint i of the
 * active priority tier with probability W(i)/ΣW, in O(1) (alias method, see
 * `WeightedRandomScheduler`). Stateless between picks, so many clients never fall in
 * step, at the price of short-term variance that round robin does not have.
 *
 * Service config: `{"loadBalancingConfig":[{"etcd_weighted_random":{}}]}`,
 * optional `healthCheck: {"serviceName": "..."}`.
 */
import { registerLoadBalancerType, tracer, type ChannelControlHelper, type TypedLoadBalancingConfig } from '../../common/grpc-experimental';
import { EndpointPoolBalancer } from '../pool/endpoint-pool-balancer';
import { type EndpointPoolOptions, type PoolPolicy } from '../pool/pool-policy';
import { EtcdPolicyConfig, parsePolicyConfig, parseHealthCheck, type HealthCheckConfig } from './policy-config';
import { type PickStrategy, type TierScheduler } from '../schedulers/pick-strategy';
import { WeightedRandomScheduler } from '../schedulers/weighted-random-scheduler';

const TYPE_NAME = 'etcd_weighted_random';
const trace = tracer('etcd_weighted_random');

export class EtcdWeightedRandomConfig extends EtcdPolicyConfig {
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
  static createFromJson(json: unknown): EtcdWeightedRandomConfig {
    return parsePolicyConfig(TYPE_NAME, json, [], body => new EtcdWeightedRandomConfig(parseHealthCheck(body)));
  }
}

class WeightedRandomStrategy implements PickStrategy {
  readonly tracksCalls = false;
  constructor(private readonly random: () => number) {}
  createScheduler(_endpoints: unknown, weights: readonly number[]): TierScheduler {
    return new WeightedRandomScheduler(weights, this.random);
  }
}

const POLICY: PoolPolicy<EtcdWeightedRandomConfig> = {
  typeName: TYPE_NAME,
  trace,
  isConfig: (config: TypedLoadBalancingConfig): config is EtcdWeightedRandomConfig => config instanceof EtcdWeightedRandomConfig,
  createStrategy: (_config, random) => new WeightedRandomStrategy(random),
};

export class EtcdWeightedRandomLoadBalancer extends EndpointPoolBalancer<EtcdWeightedRandomConfig> {
  constructor(helper: ChannelControlHelper, options?: EndpointPoolOptions) {
    super(helper, POLICY, options);
  }
}

export function setupWeightedRandom(): void {
  registerLoadBalancerType(TYPE_NAME, EtcdWeightedRandomLoadBalancer, EtcdWeightedRandomConfig);
}
