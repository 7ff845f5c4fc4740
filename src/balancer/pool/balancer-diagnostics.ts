/**
 * Read-only view of the live etcd_* balancers in this process (for dashboards,
 * the bench, tests): per endpoint its state, health, weight, priority, tier,
 * draining state, outstanding calls and latency estimate. Balancers are held
 * weakly and drop out when destroyed (channel close or idle).
 */
import { type EndpointState } from './endpoint-state';
import { type EndpointHealthChecks } from '../health/health-checks';
import { type PickStrategy } from '../schedulers/pick-strategy';

/**
 * grpc.health.v1 as the balancer sees it: `not-checked` (no `healthCheck` in the
 * config), `unknown` (no connection to ask on), `pending` (no answer yet), `healthy`, `unhealthy`.
 */
export type EndpointHealth = 'not-checked' | 'unknown' | 'pending' | 'healthy' | 'unhealthy';

/** One endpoint of a balancer, at the time of the call. */
export interface EndpointSnapshot {
  /** `host:port` (first address of the endpoint). */
  readonly address: string;
  /** Unique per child instance: unchanged while the endpoint stays in the list (a reconnect-free update keeps it). */
  readonly endpointId: number;
  /** Its registration `metadata.zone` ('' when none), what zone-aware routing groups by. */
  readonly zone: string;
  readonly weight: number;
  /** The weight its scheduler uses now: `weight` scaled by slow start while warming (0 when draining). */
  readonly effectiveWeight: number;
  /** Inside its slow-start window (`slowStart` configured, joined or came back recently). */
  readonly warming: boolean;
  readonly priority: number;
  /** `READY`, `CONNECTING`, `TRANSIENT_FAILURE`, `IDLE` or `SHUTDOWN`. */
  readonly state: string;
  readonly health: EndpointHealth;
  /** May be picked now: READY (and healthy, with health checking). */
  readonly usable: boolean;
  /** Weight 0: gets no new calls while an endpoint of positive weight is usable. */
  readonly draining: boolean;
  /**
   * Rank of the active tier holding it: 0 takes the traffic, 1 is the first standby, …;
   * -1 when in none (not usable, or draining while others serve).
   */
  readonly tier: number;
  /** The policy's latency estimate in ms (`etcd_peak_ewma`: peak-EWMA); undefined for other policies or before a sample. */
  readonly latencyEstimateMs: number | undefined;
  /** Times the endpoint's connection became READY. */
  readonly timesReady: number;
  /** Calls started and not ended (least-request-style policies, or any with metrics on; 0 otherwise). */
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
  /** Zone-aware routing, when the process declared a zone. */
  readonly zoneRouting?: ZoneRoutingSnapshot;
}

export interface ZoneRoutingSnapshot {
  readonly localZone: string;
  /** Where the callers' spread over zones comes from: the client registry, or the endpoints (no fleet source, or not answered yet). */
  readonly callersFrom: 'fleet' | 'endpoints';
  /** Share of new calls per zone in the tier taking the traffic (sums to 1; empty when no tier is usable). */
  readonly shares: Readonly<Record<string, number>>;
}

/** The snapshot fields read from the endpoint's health, tier and the policy's strategy. */
export function snapshotHealthAndTier(
  endpoint: EndpointState,
  health: EndpointHealthChecks | undefined,
  strategy: PickStrategy | undefined,
): Pick<EndpointSnapshot, 'health' | 'usable' | 'draining' | 'tier' | 'latencyEstimateMs'> {
  return {
    health: health === undefined ? 'not-checked' : health.verdict(endpoint) ?? 'unknown',
    usable: endpoint.usable,
    draining: endpoint.weight === 0,
    tier: endpoint.tier?.rank ?? -1,
    latencyEstimateMs: strategy?.latencyEstimateMs?.(endpoint),
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
