/**
 * `grpc_etcd_lb.lb.*`: attribute `policy`, plus `endpoint` with `perEndpoint`. A pick is one
 * integer increment; the observable counter reads tallies kept for the instruments' life,
 * so it stays monotonic while endpoints and channels come and go.
 */
import type { Attributes, Counter, Meter, ObservableResult } from './otel-types';
import { type ResolvedMetricsOptions } from './metrics-options';

export const LB_PICKS = 'grpc_etcd_lb.lb.picks';
export const LB_USABLE_ENDPOINTS = 'grpc_etcd_lb.lb.usable_endpoints';
export const LB_TIER_FAILOVERS = 'grpc_etcd_lb.lb.tier_failovers';
export const LB_HEALTH_CHANGES = 'grpc_etcd_lb.lb.health_changes';
export const LB_PANIC_CHANGES = 'grpc_etcd_lb.lb.panic_changes';
export const LB_ENDPOINT_IN_FLIGHT = 'grpc_etcd_lb.lb.endpoint.in_flight';
export const LB_ENDPOINT_LATENCY_ESTIMATE = 'grpc_etcd_lb.lb.endpoint.latency_estimate';

/** Picks whose call started, for one attribute set. */
export interface PickTally {
  count: number;
}

/** What a balancer shows its instruments at collection time. */
export interface MeteredBalancer {
  /** Once per (priority, draining) group that has usable endpoints. */
  forEachTier(visit: (priority: number, draining: boolean, usable: number) => void): void;
  /** Once per endpoint: its first address, calls in flight, latency estimate (ms) when the policy has one. */
  forEachEndpoint(visit: (address: string, inFlight: number, latencyEstimateMs: number | undefined) => void): void;
}

interface Tally extends PickTally {
  readonly attributes: Attributes;
}

export class BalancerInstruments {
  readonly failovers: Counter;
  readonly healthChanges: Counter;
  readonly panicChanges: Counter;
  private readonly tallies = new Map<string, Tally>();
  private readonly live = new Map<MeteredBalancer, string>();

  constructor(meter: Meter, readonly options: ResolvedMetricsOptions) {
    meter.createObservableCounter(LB_PICKS, { unit: '{pick}', description: 'Picks whose call started (counted at onCallStarted)' })
      .addCallback(result => { for (const t of this.tallies.values()) result.observe(t.count, t.attributes); });
    meter.createObservableGauge(LB_USABLE_ENDPOINTS, { unit: '{endpoint}', description: 'Usable (READY, healthy) endpoints per priority tier; draining = weight 0' })
      .addCallback(result => this.observeTiers(result));
    this.failovers = meter.createCounter(LB_TIER_FAILOVERS, { unit: '{failover}', description: 'Changes of the priority taking the traffic (attribute direction = failover | failback)' });
    this.panicChanges = meter.createCounter(LB_PANIC_CHANGES, { unit: '{change}', description: 'Priority tiers entering or leaving panic (health ignored below panicThresholdPercent; attributes state = entered | left, priority)' });
    this.healthChanges = meter.createCounter(LB_HEALTH_CHANGES, { unit: '{change}', description: 'grpc.health.v1 verdict flips of connected endpoints (attribute health = healthy | unhealthy)' });
    if (options.perEndpoint) {
      meter.createObservableGauge(LB_ENDPOINT_IN_FLIGHT, { unit: '{call}', description: 'Calls started on the endpoint and not ended' })
        .addCallback(result => this.observeEndpoints(result, false));
      meter.createObservableGauge(LB_ENDPOINT_LATENCY_ESTIMATE, { unit: 's', description: 'The policy\'s latency estimate of the endpoint (etcd_peak_ewma: peak-EWMA)' })
        .addCallback(result => this.observeEndpoints(result, true));
    }
  }

  /** The metrics of one balancer, until `close()`. */
  track(policy: string, balancer: MeteredBalancer): BalancerMetrics {
    this.live.set(balancer, policy);
    return new BalancerMetrics(this, policy, () => this.live.delete(balancer));
  }

  /** The shared pick tally of `policy` (and `address`, with `perEndpoint`). */
  tally(policy: string, address: string): PickTally {
    const key = this.options.perEndpoint ? `${policy}\n${address}` : policy;
    let tally = this.tallies.get(key);
    if (tally === undefined) {
      tally = { count: 0, attributes: this.options.perEndpoint ? { policy, endpoint: address } : { policy } };
      this.tallies.set(key, tally);
    }
    return tally;
  }

  private observeTiers(result: ObservableResult): void {
    const sums = new Map<string, { attributes: Attributes; usable: number }>();
    for (const [balancer, policy] of this.live) {
      balancer.forEachTier((priority, draining, usable) => {
        const key = `${policy}\n${priority}\n${draining}`;
        const entry = sums.get(key);
        if (entry === undefined) sums.set(key, { attributes: { policy, priority, draining }, usable });
        else entry.usable += usable;
      });
    }
    for (const { attributes, usable } of sums.values()) result.observe(usable, attributes);
  }

  private observeEndpoints(result: ObservableResult, latency: boolean): void {
    const values = new Map<string, { attributes: Attributes; value: number }>();
    for (const [balancer, policy] of this.live) {
      balancer.forEachEndpoint((address, inFlight, latencyEstimateMs) => {
        if (latency && (latencyEstimateMs === undefined || Number.isNaN(latencyEstimateMs))) return;
        const value = latency ? latencyEstimateMs! / 1000 : inFlight;
        const key = `${policy}\n${address}`;
        const entry = values.get(key);
        // In flight adds up over channels; of two latency estimates, the higher is shown.
        if (entry === undefined) values.set(key, { attributes: { policy, endpoint: address }, value });
        else entry.value = latency ? Math.max(entry.value, value) : entry.value + value;
      });
    }
    for (const { attributes, value } of values.values()) result.observe(value, attributes);
  }
}

/** Recording handle of one balancer. */
export class BalancerMetrics {
  private readonly failover: Attributes;
  private readonly failback: Attributes;
  private readonly healthy: Attributes;
  private readonly unhealthy: Attributes;

  constructor(private readonly instruments: BalancerInstruments, readonly policy: string, private readonly untrack: () => void) {
    this.failover = { policy, direction: 'failover' };
    this.failback = { policy, direction: 'failback' };
    this.healthy = { policy, health: 'healthy' };
    this.unhealthy = { policy, health: 'unhealthy' };
  }

  tallyFor(address: string): PickTally {
    return this.instruments.tally(this.policy, address);
  }

  /** The priority taking the traffic went up (failover) or down (failback). */
  tierChanged(failover: boolean): void {
    this.instruments.failovers.add(1, failover ? this.failover : this.failback);
  }

  /** A priority tier entered (true) or left panic. */
  panicChanged(entered: boolean, priority: number): void {
    this.instruments.panicChanges.add(1, { policy: this.policy, state: entered ? 'entered' : 'left', priority });
  }

  healthChanged(healthy: boolean): void {
    this.instruments.healthChanges.add(1, healthy ? this.healthy : this.unhealthy);
  }

  close(): void {
    this.untrack();
  }
}
