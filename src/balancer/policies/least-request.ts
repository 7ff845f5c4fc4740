/**
 * `etcd_least_request`: fewest outstanding calls per unit of weight, by power
 * of d choices over candidates drawn in proportion to weight (`choiceCount`,
 * default 2; 0 or ≥ n = scan all = least connections; 1 = weighted random,
 * ignoring load). Idle, the shares follow the weights exactly; see
 * `LeastRequestScheduler`.
 * Outstanding counts un-started picks too (bursts), expires picks that never
 * start (no leak), and adds a decaying penalty per failed call so that a
 * replica failing fast does not attract traffic by looking idle (see
 * `CallLoad`). Picks are O(d).
 *
 * Service config: `{"loadBalancingConfig":[{"etcd_least_request":{"choiceCount":2}}]}`,
 * optional `healthCheck: {"serviceName": "..."}`.
 */
import { registerLoadBalancerType, tracer, type ChannelControlHelper, type TypedLoadBalancingConfig } from '../../common/grpc-experimental';
import { EndpointPoolBalancer } from '../pool/endpoint-pool-balancer';
import { type EndpointPoolOptions, type PoolPolicy } from '../pool/pool-policy';
import { LeastRequestScheduler } from '../schedulers/least-request-scheduler';
import { EtcdPolicyConfig, parsePolicyConfig, parseHealthCheck, parseIntegerField, type HealthCheckConfig } from './policy-config';
import { type PickStrategy, type SchedulableEndpoint, type TierScheduler } from '../schedulers/pick-strategy';

const TYPE_NAME = 'etcd_least_request';
const trace = tracer('etcd_least_request');

/** Candidates compared per pick. */
export const DEFAULT_CHOICE_COUNT = 2;
/** Larger values are pointless (they scan everything), but accepted up to this bound. */
const MAX_CHOICE_COUNT = 1_000_000;

export class EtcdLeastRequestConfig extends EtcdPolicyConfig {
  /** @param choiceCount d of power-of-d-choices; 0 = all. */
  constructor(readonly choiceCount: number = DEFAULT_CHOICE_COUNT, healthCheck?: HealthCheckConfig) {
    super(healthCheck);
  }

  getLoadBalancerName(): string {
    return TYPE_NAME;
  }

  protected ownJson(): Record<string, unknown> {
    return { choiceCount: this.choiceCount };
  }

  /** Validates the service-config body; errors name the policy and the bad value. */
  static createFromJson(json: unknown): EtcdLeastRequestConfig {
    return parsePolicyConfig(TYPE_NAME, json, ['choiceCount'], body => new EtcdLeastRequestConfig(
      parseIntegerField(body, 'choiceCount', DEFAULT_CHOICE_COUNT, 0, MAX_CHOICE_COUNT),
      parseHealthCheck(body),
    ));
  }
}

class LeastRequestStrategy implements PickStrategy {
  readonly tracksCalls = true;
  constructor(private readonly choiceCount: number, private readonly random: () => number) {}
  createScheduler(endpoints: readonly SchedulableEndpoint[], weights: readonly number[]): TierScheduler {
    return new LeastRequestScheduler(endpoints, weights, this.choiceCount, this.random);
  }
}

const POLICY: PoolPolicy<EtcdLeastRequestConfig> = {
  typeName: TYPE_NAME,
  trace,
  isConfig: (config: TypedLoadBalancingConfig): config is EtcdLeastRequestConfig => config instanceof EtcdLeastRequestConfig,
  createStrategy: (config, random) => new LeastRequestStrategy(config.choiceCount, random),
};

export class EtcdLeastRequestLoadBalancer extends EndpointPoolBalancer<EtcdLeastRequestConfig> {
  constructor(helper: ChannelControlHelper, options?: EndpointPoolOptions) {
    super(helper, POLICY, options);
  }
}

export function setupLeastRequest(): void {
  registerLoadBalancerType(TYPE_NAME, EtcdLeastRequestLoadBalancer, EtcdLeastRequestConfig);
}
