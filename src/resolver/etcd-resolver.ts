/**
 * The grpc-js resolver for `etcd:///<service>` and `etcd://host:2379,…/<service>`.
 *
 * What the LB policy receives, per update:
 * - the endpoint list (one endpoint per registered address, in etcd key order);
 * - the channel attribute `ENDPOINT_ATTRIBUTES_KEY` (src/balancer/endpoint-attributes.ts):
 *   a `ReadonlyMap<"host:port", { weight, priority, metadata }>`, merged by grpc-js
 *   into the options passed to `updateAddressList` (grpc-js's own policies ignore it);
 * - the channel attribute `FLEET_SOURCE_KEY` (src/fleet/fleet-source.ts): this target's
 *   client registry, for policies that need the calling fleet (lazy: see client-registry.ts);
 * - when everything is deregistered: an empty list, then an UNAVAILABLE error
 *   `no endpoints registered for service '<svc>'` (also the resolution note), so a
 *   policy drops its endpoints and then fails calls fast with that message;
 * - an UNAVAILABLE error only when no list was ever obtained (no connection, etcd
 *   unreachable from the start); afterwards the last good list keeps serving.
 * No service config (`null`): the channel's `grpc.service_config` chooses the policy.
 */
import { Metadata, status, type ChannelOptions } from '@grpc/grpc-js';
import {
  log, logVerbosity, registerResolver, statusOrFromError, statusOrFromValue, tracer,
  type GrpcUri, type Resolver, type ResolverListener,
} from '../grpc-experimental';
import { ENDPOINT_ATTRIBUTES_KEY } from '../balancer/endpoint-attributes';
import { clientFleetSource } from '../fleet/client-registry';
import { FLEET_SOURCE_KEY, type FleetSource } from '../fleet/fleet-source';
import { connectionForTarget, ETCD_SCHEME, parseEtcdTarget, targetToString, type EtcdTarget } from '../etcd/target';
import { DEFAULT_ETCD_RESOLVER_OPTIONS, type ResolvedEtcdResolverOptions } from './etcd-resolver-options';
import { acquireServiceWatch, type ServiceWatchLease } from './service-watch-registry';
import { type ResolutionState } from './service-watch';

const trace = tracer('etcd_resolver');

let resolverOptions: ResolvedEtcdResolverOptions = DEFAULT_ETCD_RESOLVER_OPTIONS;

/** Sets the options used by service watches started from now on (see `register({ resolver })`). */
export function setEtcdResolverOptions(options: ResolvedEtcdResolverOptions): void {
  resolverOptions = options;
}

/** One per channel; the list and watch behind it are shared (see service-watch-registry.ts). */
export class EtcdResolver implements Resolver {
  private readonly target: EtcdTarget | undefined;
  private readonly targetError: string | undefined;
  private lease: ServiceWatchLease | undefined;
  private unsubscribe: (() => void) | undefined;
  private pendingDelivery: NodeJS.Immediate | undefined;
  private latest: ResolutionState | undefined;
  /** The client registry for this target, passed to policies; lazy (nothing happens until one subscribes). */
  private fleetSource: FleetSource | undefined;

  constructor(private readonly uri: GrpcUri, private readonly listener: ResolverListener, _channelOptions: ChannelOptions) {
    try {
      this.target = parseEtcdTarget(uri);
    } catch (err) {
      // Channels normally never get here: getDefaultAuthority already threw at channel creation.
      this.targetError = (err as Error).message;
    }
  }

  /** A valid `:authority` for the target (`foo/bar/svc` → `foo.bar.svc`); throws on a bad target. */
  static getDefaultAuthority(target: GrpcUri): string {
    return parseEtcdTarget(target).authority;
  }

  /**
   * Starts following the service (first call, and after `destroy()` on channel
   * idle). While following, changes are pushed as they happen, so there is
   * nothing more to ask etcd for.
   */
  updateResolution(): void {
    if (this.lease) return;
    if (!this.target) {
      this.deliverLater({ ok: false, details: this.targetError ?? 'etcd resolver: bad target' });
      return;
    }
    const connection = connectionForTarget(this.target);
    if (typeof connection === 'string') {
      this.deliverLater({ ok: false, details: `etcd resolver: ${connection}` });
      return;
    }
    try {
      this.lease = acquireServiceWatch(connection, this.target.service, resolverOptions);
    } catch (err) {
      this.deliverLater({ ok: false, details: `etcd resolver: cannot use etcd connection for '${targetToString(this.uri)}': ${(err as Error).message}` });
      return;
    }
    this.fleetSource ??= clientFleetSource(connection, this.target.service, () => resolverOptions);
    trace(`${targetToString(this.uri)}: following service '${this.target.service}'`);
    this.unsubscribe = this.lease.watch.subscribe(state => this.deliverLater(state));
    const current = this.lease.watch.current;
    if (current) this.deliverLater(current);
  }

  /** Stops following (channel idle or closed); `updateResolution()` starts again. */
  destroy(): void {
    if (this.pendingDelivery) clearImmediate(this.pendingDelivery);
    this.pendingDelivery = undefined;
    this.latest = undefined;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.lease?.release();
    this.lease = undefined;
  }

  /** Never synchronous with the constructor or `updateResolution()`; only the newest state is delivered. */
  private deliverLater(state: ResolutionState): void {
    this.latest = state;
    this.pendingDelivery ??= setImmediate(() => {
      this.pendingDelivery = undefined;
      const latest = this.latest;
      this.latest = undefined;
      if (latest) this.deliver(latest);
    });
  }

  private deliver(state: ResolutionState): void {
    try {
      this.callListener(state);
    } catch (err) {
      // A throwing LB policy must not take the process down from a timer callback.
      log(logVerbosity.ERROR, `etcd resolver: ${targetToString(this.uri)}: the channel rejected an update: ${(err as Error)?.stack ?? String(err)}`);
    }
  }

  private callListener(state: ResolutionState): void {
    if (!state.ok) {
      trace(`${targetToString(this.uri)}: ${state.details}`);
      this.listener(statusOrFromError({ code: status.UNAVAILABLE, details: state.details, metadata: new Metadata() }), {}, null, state.details);
      return;
    }
    const service = this.target?.service ?? '';
    const { endpoints, attributes } = state.resolved;
    const note = endpoints.length === 0
      ? `no endpoints registered for service '${service}'`
      : `etcd service '${service}' at revision ${state.revision}`;
    const channelAttributes = { [ENDPOINT_ATTRIBUTES_KEY]: attributes, [FLEET_SOURCE_KEY]: this.fleetSource };
    // A copy per channel: a policy may reorder its list.
    this.listener(statusOrFromValue(endpoints.slice()), channelAttributes, null, note);
    if (endpoints.length === 0) {
      // The empty list made the policy drop its endpoints; grpc-js's round_robin then sits
      // in IDLE and queues calls until their deadline. An error on top of an empty policy
      // makes every policy fail calls fast with this note (policies ignore errors while
      // they still have endpoints, which is why the empty list goes first).
      this.listener(statusOrFromError({ code: status.UNAVAILABLE, details: note, metadata: new Metadata() }), channelAttributes, null, note);
    }
  }
}

/** Registers the `etcd` resolver scheme with grpc-js. Idempotent. */
export function registerEtcdResolver(): void {
  registerResolver(ETCD_SCHEME, EtcdResolver);
}
