/**
 * The LB policies the bench compares. Ours are found, not listed: every known
 * `etcd_*` name that is registered after `register()` takes part, so a policy
 * added later (e.g. `etcd_peak_ewma`) is benchmarked without touching the
 * scenarios. grpc-js's own `round_robin` (the baseline) and `pick_first` are
 * always there.
 */
import { register } from '../src';
import { isLoadBalancerNameRegistered } from '../src/common/grpc-experimental';

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

/** grpc-js's own load-aware policy, fed by the replicas' ORCA reports (every bench replica serves them). */
export const WRR_ORCA = 'weighted_round_robin+ORCA';

/**
 * Its config: out-of-band reports (per-call ones would make grpc-js re-parse orca.proto on every
 * call, ~20 ms of client CPU each: see src/server/orca-load-report.ts) every 250 ms, weights
 * recomputed every 250 ms, a 500 ms blackout (default 10 s: longer than a bench run).
 */
export const WRR_ORCA_CONFIG: Readonly<Record<string, object>> = Object.freeze({
  weighted_round_robin: { enable_oob_load_report: true, oob_load_reporting_period: '0.25s', weight_update_period: '0.25s', blackout_period: '0.5s' },
});
