import { setupLeastRequest } from './least-request';
import { setupPeakEwma } from './peak-ewma';
import { setupRingHash } from './ring-hash';
import { setupSubset } from '../subset/subset-balancer';
import { setupWeightedRandom } from './weighted-random';
import { setupWeightedRoundRobin } from './weighted-round-robin';

/**
 * Registers every `etcd_*` LB policy with grpc-js. Idempotent. Must run before
 * channels are created: grpc-js silently falls back to pick_first for a
 * `loadBalancingConfig` name it does not know yet. Returns their names.
 */
export function registerBalancers(): readonly string[] {
  setupWeightedRoundRobin();
  setupWeightedRandom();
  setupLeastRequest();
  setupPeakEwma();
  setupRingHash();
  setupSubset();
  return POLICY_NAMES;
}

const POLICY_NAMES = Object.freeze(['etcd_weighted_round_robin', 'etcd_weighted_random', 'etcd_least_request', 'etcd_peak_ewma', 'etcd_ring_hash', 'etcd_subset']);
