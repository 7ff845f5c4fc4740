import { setupLeastRequest } from './least-request';
import { setupPeakEwma } from './peak-ewma';
import { setupSubset } from '../subset/subset-balancer';
import { setupWeightedRandom } from './weighted-random';
import { setupWeightedRoundRobin } from './weighted-round-robin';

/**
 * Registers every `etcd_*` LB policy with grpc-js. Idempotent. Must run before
 * channels are created: grpc-js silently falls back to pick_first for a
 * `loadBalancingConfig` name it does not know yet.
 */
export function registerBalancers(): void {
  setupWeightedRoundRobin();
  setupWeightedRandom();
  setupLeastRequest();
  setupPeakEwma();
  setupSubset();
}
