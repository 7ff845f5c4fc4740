/**
 * The skeleton of a policy whose scheduler reads weights only (no call load, no
 * config of its own beyond the common fields): its config class, its balancer
 * class and its registration, so `etcd_weighted_round_robin` and
 * `etcd_weighted_random` differ only in their scheduler.
 */
import { registerLoadBalancerType, tracer, type ChannelControlHelper, type TypedLoadBalancingConfig } from '../../common/grpc-experimental';
import { EndpointPoolBalancer } from '../pool/endpoint-pool-balancer';
import { type EndpointPoolOptions, type PoolPolicy } from '../pool/pool-policy';
import { EtcdPolicyConfig, parsePolicyConfig, parseHealthCheck, type HealthCheckConfig } from './policy-config';
import { type PickStrategy, type TierScheduler } from '../schedulers/pick-strategy';

/** Builds one tier's scheduler from its weights. */
export type WeightScheduler = (weights: readonly number[], random: () => number) => TierScheduler;

/** A weight-only policy's classes, and the call that registers them with grpc-js. */
export interface WeightOnlyPolicy {
  readonly Config: {
    new (healthCheck?: HealthCheckConfig): EtcdPolicyConfig;
    createFromJson(json: unknown): EtcdPolicyConfig;
  };
  readonly LoadBalancer: new (helper: ChannelControlHelper, options?: EndpointPoolOptions) => EndpointPoolBalancer<EtcdPolicyConfig>;
  setup(): void;
}

export function defineWeightOnlyPolicy(typeName: string, createScheduler: WeightScheduler): WeightOnlyPolicy {
  const trace = tracer(typeName);

  class Config extends EtcdPolicyConfig {
    getLoadBalancerName(): string {
      return typeName;
    }

    protected ownJson(): Record<string, unknown> {
      return {};
    }

    /** Validates the service-config body; errors name the policy. */
    static createFromJson(json: unknown): Config {
      return parsePolicyConfig(typeName, json, [], body => new Config(parseHealthCheck(body)));
    }
  }

  const strategy = (random: () => number): PickStrategy => ({
    tracksCalls: false,
    createScheduler: (_endpoints, weights) => createScheduler(weights, random),
  });

  const policy: PoolPolicy<Config> = {
    typeName,
    trace,
    isConfig: (config: TypedLoadBalancingConfig): config is Config => config instanceof Config,
    createStrategy: (_config, random) => strategy(random),
  };

  class LoadBalancer extends EndpointPoolBalancer<Config> {
    constructor(helper: ChannelControlHelper, options?: EndpointPoolOptions) {
      super(helper, policy, options);
    }
  }

  return { Config, LoadBalancer, setup: () => registerLoadBalancerType(typeName, LoadBalancer, Config) };
}
