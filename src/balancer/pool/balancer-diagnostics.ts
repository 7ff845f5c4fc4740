/**
 * Read-only view of the live etcd_* balancers in this process (for dashboards,
 * the bench, tests): per endpoint its state, health, weight, priority, tier,
 * draining state, outstanding calls and latency estimate. Balancers are held
 * weakly and drop out when destroyed (channel close or idle).
 */
import { connectivityState as ConnectivityState } from '@grpc/grpc-js';
import { type EndpointState } from './endpoint-state';
import { type EndpointHealthChecks } from '../health/health-checks';
import { type PickStrategy } from '../schedulers/pick-strategy';
import { type BalancerSnapshot, type EndpointSnapshot } from './balancer-snapshot';

export { type BalancerSnapshot, type EndpointHealth, type EndpointSnapshot, type ZoneRoutingSnapshot } from './balancer-snapshot';

/** One endpoint's snapshot; `nowMs` for the decaying call accounting. */
export function snapshotEndpoint(
  endpoint: EndpointState,
  health: EndpointHealthChecks | undefined,
  strategy: PickStrategy | undefined,
  nowMs: number,
): EndpointSnapshot {
  return {
    health: health === undefined ? 'not-checked' : health.verdict(endpoint) ?? 'unknown',
    usable: endpoint.usable,
    draining: endpoint.weight === 0,
    tier: endpoint.tier?.rank ?? -1,
    latencyEstimateMs: strategy?.latencyEstimateMs?.(endpoint),
    address: endpoint.addresses[0],
    endpointId: endpoint.id,
    zone: endpoint.zone,
    weight: endpoint.weight,
    effectiveWeight: endpoint.weight === 0 ? 0 : endpoint.effectiveWeight,
    warming: endpoint.warmStartMs !== undefined,
    priority: endpoint.priority,
    state: ConnectivityState[endpoint.state],
    timesReady: endpoint.timesReady,
    activeCalls: endpoint.load.active,
    pendingPicks: endpoint.load.pending(nowMs),
    failurePenalty: endpoint.load.failurePenalty(nowMs),
  };
}

interface Inspectable {
  snapshot(): BalancerSnapshot;
}

const live = new Set<WeakRef<Inspectable>>();

/** Adds a balancer; returns the handle to pass to `untrackBalancer`. */
export function trackBalancer(balancer: Inspectable): WeakRef<Inspectable> {
  const ref = new WeakRef(balancer);
  live.add(ref);
  return ref;
}

/** Removes a balancer added by `trackBalancer` (it was destroyed). */
export function untrackBalancer(ref: WeakRef<Inspectable>): void {
  live.delete(ref);
}

/** Snapshots of every live etcd_* balancer in this process (one per channel using one). */
export function inspectBalancers(): BalancerSnapshot[] {
  const result: BalancerSnapshot[] = [];
  for (const ref of live) {
    const balancer = ref.deref();
    if (balancer === undefined) live.delete(ref);
    else result.push(balancer.snapshot());
  }
  return result;
}
