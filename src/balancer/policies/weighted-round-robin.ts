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
import { defineWeightOnlyPolicy } from './weight-only-policy';
import { WeightedRoundRobinScheduler } from '../schedulers/weighted-round-robin-scheduler';

const policy = defineWeightOnlyPolicy('etcd_weighted_round_robin', (weights, random) => new WeightedRoundRobinScheduler(weights, random));

/** `etcd_weighted_round_robin`'s config (grpc-js `TypedLoadBalancingConfig`). */
export const EtcdWeightedRoundRobinConfig = policy.Config;
/** `etcd_weighted_round_robin`'s balancer. */
export const EtcdWeightedRoundRobinLoadBalancer = policy.LoadBalancer;
/** Registers `etcd_weighted_round_robin` with grpc-js. */
export const setupWeightedRoundRobin = policy.setup;
