/**
 * `grpc_etcd_lb.registry.*`: the server side. Attribute `service`, plus `endpoint`
 * (`host:port`) with `perEndpoint`.
 */
import type { Attributes, Counter, Histogram, Meter, ObservableResult } from './otel-types';
import { type ResolvedMetricsOptions } from './metrics-options';

export const REGISTRY_REGISTRATIONS = 'grpc_etcd_lb.registry.registrations';
export const REGISTRY_LEASE_LOSSES = 'grpc_etcd_lb.registry.lease_losses';
export const REGISTRY_REREGISTRATIONS = 'grpc_etcd_lb.registry.reregistrations';
export const REGISTRY_DOWNTIME = 'grpc_etcd_lb.registry.downtime';
export const REGISTRY_ERRORS = 'grpc_etcd_lb.registry.errors';

/** The states a live registration is counted in (every one observed, 0 included, so a dashboard sees `lost` go to 0). */
const STATES = ['registering', 'registered', 'lost'] as const;

interface Tracked {
  readonly attributes: Attributes;
  readonly state: () => string;
}

export class RegistryInstruments {
  readonly losses: Counter;
  readonly reregistrations: Counter;
  readonly downtime: Histogram;
  readonly errors: Counter;
  private readonly live = new Set<Tracked>();

  constructor(meter: Meter, private readonly options: ResolvedMetricsOptions) {
    this.losses = meter.createCounter(REGISTRY_LEASE_LOSSES, { unit: '{loss}', description: 'Registrations lost (attribute reason = unreachable | lease-lost | key-deleted)' });
    this.reregistrations = meter.createCounter(REGISTRY_REREGISTRATIONS, { unit: '{registration}', description: 'Keys written again after a loss (attribute lease = kept | new)' });
    this.downtime = meter.createHistogram(REGISTRY_DOWNTIME, {
      unit: 's',
      description: 'Time from noticing a loss to the key being written again',
      advice: { explicitBucketBoundaries: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300] },
    });
    this.errors = meter.createCounter(REGISTRY_ERRORS, { unit: '{error}', description: 'Failed registry operations of registrations (attribute operation)' });
    meter.createObservableGauge(REGISTRY_REGISTRATIONS, { unit: '{registration}', description: 'Live registrations by state (registering | registered | lost)' })
      .addCallback(result => this.observeStates(result));
  }

  /** The metrics of one registration, until `close()`; `state` is read at each collection. */
  track(service: string, address: string, state: () => string): RegistrationMetrics {
    const attributes: Attributes = this.options.perEndpoint ? { service, endpoint: address } : { service };
    const tracked: Tracked = { attributes, state };
    this.live.add(tracked);
    return new RegistrationMetrics(this, attributes, () => this.live.delete(tracked));
  }

  private observeStates(result: ObservableResult): void {
    const groups = new Map<string, { attributes: Attributes; counts: Map<string, number> }>();
    for (const t of this.live) {
      const key = JSON.stringify(t.attributes);
      let group = groups.get(key);
      if (group === undefined) groups.set(key, (group = { attributes: t.attributes, counts: new Map(STATES.map(s => [s, 0])) }));
      const state = t.state();
      group.counts.set(state, (group.counts.get(state) ?? 0) + 1);
    }
    for (const { attributes, counts } of groups.values()) {
      for (const [state, count] of counts) if (state !== 'closed') result.observe(count, { ...attributes, state });
    }
  }
}

/** Recording handle of one registration. */
export class RegistrationMetrics {
  constructor(private readonly instruments: RegistryInstruments, private readonly attributes: Attributes, private readonly untrack: () => void) {}

  lost(reason: string): void {
    this.instruments.losses.add(1, { ...this.attributes, reason });
  }

  reregistered(leaseKept: boolean, downtimeMs: number): void {
    this.instruments.reregistrations.add(1, { ...this.attributes, lease: leaseKept ? 'kept' : 'new' });
    this.instruments.downtime.record(downtimeMs / 1000, this.attributes);
  }

  failed(operation: string): void {
    this.instruments.errors.add(1, { ...this.attributes, operation });
  }

  close(): void {
    this.untrack();
  }
}
