/**
 * `etcd_weighted_random`: each pick independently chooses endpoint i of the
 * active priority tier with probability W(i)/ΣW, in O(1) (alias method, see
 * `WeightedRandomScheduler`). Stateless between picks, so many clients never fall in
 * step, at the price of short-term variance that round robin does not have.
 *
 * Service config: `{"loadBalancingConfig":[{"etcd_weighted_random":{}}]}`,
 * optional `healthCheck: {"serviceName": "..."}`.
 */
import { defineWeightOnlyPolicy } from './weight-only-policy';
import { WeightedRandomScheduler } from '../schedulers/weighted-random-scheduler';

const policy = defineWeightOnlyPolicy('etcd_weighted_random', (weights, random) => new WeightedRandomScheduler(weights, random));

/** `etcd_weighted_random`'s config (grpc-js `TypedLoadBalancingConfig`). */
export const EtcdWeightedRandomConfig = policy.Config;
/** `etcd_weighted_random`'s balancer. */
export const EtcdWeightedRandomLoadBalancer = policy.LoadBalancer;
/** Registers `etcd_weighted_random` with grpc-js. */
export const setupWeightedRandom = policy.setup;
