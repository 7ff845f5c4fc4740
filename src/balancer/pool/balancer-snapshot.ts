/**
 * What `inspectBalancers()` returns: plain read-only records, no behaviour. A
 * module of its own so the parts that fill them (pool, tiers, health) import
 * the shapes without importing each other.
 */

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
  /** Its registered weight (0 = draining). */
  readonly weight: number;
  /** The weight its scheduler uses now: `weight` scaled by slow start while warming (0 when draining). */
  readonly effectiveWeight: number;
  /** Inside its slow-start window (`slowStart` configured, joined or came back recently). */
  readonly warming: boolean;
  /** Its tier: 0 = primary. */
  readonly priority: number;
  /** `READY`, `CONNECTING`, `TRANSIENT_FAILURE`, `IDLE` or `SHUTDOWN`. */
  readonly state: string;
  /** Its grpc.health.v1 status as the balancer sees it. */
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

/** One etcd_* balancer (one channel), at the time of the call. */
export interface BalancerSnapshot {
  /** Policy name, e.g. `etcd_least_request`. */
  readonly policy: string;
  /** The balancer's aggregate connectivity state. */
  readonly state: string;
  /** Every endpoint of the latest resolution. */
  readonly endpoints: readonly EndpointSnapshot[];
  /**
   * Some priority tier is in panic: fewer than `panicThresholdPercent` of its READY endpoints
   * are healthy, so it picks among all of them, health ignored (always false without `healthCheck`).
   */
  readonly panic: boolean;
  /** Zone-aware routing, when the process declared a zone. */
  readonly zoneRouting?: ZoneRoutingSnapshot;
}

/** Zone-aware routing of one balancer. */
export interface ZoneRoutingSnapshot {
  /** This process's zone (`register({ locality })`). */
  readonly localZone: string;
  /** Where the callers' spread over zones comes from: `fleet` = the client registry, `endpoints` = the endpoint census (no client registry, or not answered yet). */
  readonly callersFrom: 'fleet' | 'endpoints';
  /** Share of new calls per zone in the tier taking the traffic (sums to 1; empty when no tier is usable). With `tagRouting`: of the tier a call without a tag goes to. */
  readonly shares: Readonly<Record<string, number>>;
  /** With `tagRouting`: the shares of each tag's tier ('' = the untagged endpoints), for tags with usable endpoints. */
  readonly sharesByTag?: Readonly<Record<string, Readonly<Record<string, number>>>>;
}
