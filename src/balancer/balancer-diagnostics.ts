/**
 * Read-only view of the live etcd_* balancers in this process (for dashboards,
 * the bench, tests): per endpoint its state, weight, priority and outstanding
 * calls. Balancers are held weakly and drop out when destroyed (channel close
 * or idle).
 */

/** One endpoint of a balancer, at the time of the call. */
export interface EndpointSnapshot {
  /** `host:port` (first address of the endpoint). */
  readonly address: string;
  /** Unique per child instance: unchanged while the endpoint stays in the list (a reconnect-free update keeps it). */
  readonly endpointId: number;
  readonly weight: number;
  readonly priority: number;
  /** `READY`, `CONNECTING`, `TRANSIENT_FAILURE`, `IDLE` or `SHUTDOWN`. */
  readonly state: string;
  /** Times the endpoint's connection became READY. */
  readonly timesReady: number;
  /** Calls started and not ended (least-request-style policies only; 0 otherwise). */
  readonly activeCalls: number;
  /** Picks not started yet and not expired. */
  readonly pendingPicks: number;
  /** Decayed failure penalty, in outstanding-call units. */
  readonly failurePenalty: number;
}

export interface BalancerSnapshot {
  /** Policy name, e.g. `etcd_least_request`. */
  readonly policy: string;
  /** The balancer's aggregate connectivity state. */
  readonly state: string;
  readonly endpoints: readonly EndpointSnapshot[];
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
