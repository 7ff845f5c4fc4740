/** `grpc_etcd_lb.resolver.*`: what each service watch serves. Attribute `service` only (bounded). */
import type { Attributes, Counter, Meter, ObservableResult } from './otel-types';

export const RESOLVER_ENDPOINTS = 'grpc_etcd_lb.resolver.endpoints';
export const RESOLVER_UPDATES = 'grpc_etcd_lb.resolver.updates';
export const RESOLVER_RELISTS = 'grpc_etcd_lb.resolver.relists';
export const RESOLVER_ERRORS = 'grpc_etcd_lb.resolver.errors';
export const RESOLVER_SKIPPED_VALUES = 'grpc_etcd_lb.resolver.skipped_values';
export const RESOLVER_CONTACT_AGE = 'grpc_etcd_lb.resolver.contact_age';

/** What etcd operation failed. */
export type ResolverOperation = 'list' | 'watch';

export class ResolverInstruments {
  readonly updates: Counter;
  readonly relists: Counter;
  readonly errors: Counter;
  readonly skipped: Counter;
  private readonly watches = new Set<ServiceWatchMetrics>();

  constructor(meter: Meter) {
    this.updates = meter.createCounter(RESOLVER_UPDATES, { unit: '{update}', description: 'Endpoint lists published to the channels (after coalescing)' });
    this.relists = meter.createCounter(RESOLVER_RELISTS, { unit: '{list}', description: 'Lists of the service prefix after the first (each watch failure re-lists)' });
    this.errors = meter.createCounter(RESOLVER_ERRORS, { unit: '{error}', description: 'Failed lists and watches (attribute operation = list | watch)' });
    this.skipped = meter.createCounter(RESOLVER_SKIPPED_VALUES, { unit: '{value}', description: 'Values under the service prefix skipped as invalid' });
    meter.createObservableGauge(RESOLVER_ENDPOINTS, { unit: '{endpoint}', description: 'Endpoints the resolver currently serves' })
      .addCallback(result => this.observeEndpoints(result));
    meter.createObservableGauge(RESOLVER_CONTACT_AGE, { unit: 's', description: 'Seconds since the resolver last knew it was current with its registry (0 while its watch is connected)' })
      .addCallback(result => this.observeContactAge(result));
  }

  /** The metrics of one service watch, until `close()`. */
  track(service: string): ServiceWatchMetrics {
    const watch = new ServiceWatchMetrics(this, service, () => this.watches.delete(watch));
    this.watches.add(watch);
    return watch;
  }

  private observeEndpoints(result: ObservableResult): void {
    const byService = new Map<string, number>();
    for (const w of this.watches) byService.set(w.service, (byService.get(w.service) ?? 0) + w.endpoints);
    for (const [service, count] of byService) result.observe(count, { service });
  }

  private observeContactAge(result: ObservableResult): void {
    const nowMs = Date.now();
    const byService = new Map<string, number>();
    for (const w of this.watches) byService.set(w.service, Math.max(byService.get(w.service) ?? 0, w.contactAgeMs(nowMs)));
    for (const [service, ageMs] of byService) result.observe(ageMs / 1000, { service });
  }
}

/** Recording handle of one `ServiceWatch`. */
export class ServiceWatchMetrics {
  endpoints = 0;
  private readonly attributes: Attributes;
  private readonly listAttributes: Attributes;
  private readonly watchAttributes: Attributes;
  private watching = false;
  /** When the watch was last known current; undefined before the first good list. */
  private lastContactMs: number | undefined;
  private readonly startedMs = Date.now();

  constructor(private readonly instruments: ResolverInstruments, readonly service: string, private readonly untrack: () => void) {
    this.attributes = { service };
    this.listAttributes = { service, operation: 'list' };
    this.watchAttributes = { service, operation: 'watch' };
  }

  /** A list succeeded: contact now. */
  listed(): void {
    this.lastContactMs = Date.now();
  }

  /** The watch stream is connected (or delivered events): current until it fails. */
  watchConnected(): void {
    this.watching = true;
    this.lastContactMs = Date.now();
  }

  /** The watch was abandoned (failure, or a re-list): the view was current until now. */
  watchEnded(): void {
    if (this.watching) this.lastContactMs = Date.now();
    this.watching = false;
  }

  published(endpoints: number): void {
    this.endpoints = endpoints;
    this.instruments.updates.add(1, this.attributes);
  }

  relisted(): void {
    this.instruments.relists.add(1, this.attributes);
  }

  failed(operation: ResolverOperation): void {
    this.instruments.errors.add(1, operation === 'list' ? this.listAttributes : this.watchAttributes);
  }

  skipped(): void {
    this.instruments.skipped.add(1, this.attributes);
  }

  contactAgeMs(nowMs: number): number {
    if (this.watching) return 0;
    return Math.max(0, nowMs - (this.lastContactMs ?? this.startedMs));
  }

  close(): void {
    this.untrack();
  }
}
