/**
 * The LB policies the bench compares. Ours are found, not listed: every known
 * `etcd_*` name that is registered after `register()` takes part, so a policy
 * added later (e.g. `etcd_peak_ewma`) is benchmarked without touching the
 * scenarios. grpc-js's own `round_robin` (the baseline) and `pick_first` are
 * always there.
 */
import { register } from '../src';
import { isLoadBalancerNameRegistered } from '../src/grpc-experimental';

/** Every `etcd_*` policy name the project defines or plans, in report order. */
export const ETCD_POLICY_CANDIDATES: readonly string[] = Object.freeze([
  'etcd_weighted_round_robin',
  'etcd_weighted_random',
  'etcd_least_request',
  'etcd_peak_ewma',
]);

export const ROUND_ROBIN = 'round_robin';
export const PICK_FIRST = 'pick_first';
export const PEAK_EWMA = 'etcd_peak_ewma';
export const LEAST_REQUEST = 'etcd_least_request';

/** Registers our resolver and policies (idempotent) and returns the `etcd_*` policies grpc-js now knows. */
export function registeredEtcdPolicies(): string[] {
  register();
  return ETCD_POLICY_CANDIDATES.filter(name => isLoadBalancerNameRegistered(name));
}

/** The service-config `loadBalancingConfig` entry of a policy with its default settings. */
export function lbConfigOf(policy: string): Record<string, object> {
  return { [policy]: {} };
}
