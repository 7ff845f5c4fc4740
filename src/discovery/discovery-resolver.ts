/**
 * The grpc-js `Resolver` every discovery backend shares: one per channel, over the
 * backend's shared watch for the channel's target. The policy gets the list in key
 * order plus `ENDPOINT_ATTRIBUTES_KEY` in the channel attributes; an empty list is
 * followed by an UNAVAILABLE error so calls fail fast; an error before any list was
 * obtained, never after. No service config: `grpc.service_config` picks the policy.
 */
import { Metadata, status, type ChannelOptions } from '@grpc/grpc-js';
import {
  log, logVerbosity, statusOrFromError, statusOrFromValue,
  type GrpcUri, type Resolver, type ResolverConstructor, type ResolverListener, tracer,
} from '../common/grpc-experimental';
import { type BackendTarget, type DiscoveryBackend } from './backend';
import { ENDPOINT_ATTRIBUTES_KEY } from './endpoint-attributes';
import { type ResolvedEndpoints } from './endpoint-table';
import { checkServiceConfig } from './service-config-check';
import { currentResolverOptions } from './resolver-options';
import { type DiscoveryWatch, type ResolutionState } from './discovery-watch';
import { type WatchLease } from './shared-watches';
import { targetToString } from './target-uri';

/** One per channel, for the backend of its scheme (see `resolverClassFor`). */
export class DiscoveryResolver<Connection, Target extends BackendTarget> implements Resolver {
  private lease: WatchLease<DiscoveryWatch> | undefined;
  private unsubscribe: (() => void) | undefined;
  private pendingDelivery: NodeJS.Immediate | undefined;
  private latest: ResolutionState | undefined;
  private readonly target: Target | undefined;
  private readonly targetError: string | undefined;
  /** The backend's extra channel attributes, computed on first use and kept for the channel's life. */
  private extraAttributes: ChannelOptions | undefined;
  private readonly component: string;
  private readonly trace: (text: string) => void;

  constructor(
    private readonly backend: DiscoveryBackend<string, unknown, Connection, Target>,
    private readonly uri: GrpcUri,
    private readonly listener: ResolverListener,
    protected readonly channelOptions: ChannelOptions,
  ) {
    this.component = `${backend.name} resolver`;
    this.trace = resolverTracer(backend.name);
    try {
      this.target = backend.parseTarget(uri);
    } catch (err) {
      // Channels normally never get here: getDefaultAuthority already threw at channel creation.
      this.targetError = (err as Error).message;
    }
    checkServiceConfig(channelOptions, targetToString(uri));
  }

  private get service(): string {
    return this.target?.service ?? '';
  }

  /** The backend's shared watch for this channel's target, or why there is none (bad target, no connection). */
  private acquireWatch(): WatchLease<DiscoveryWatch> | string {
    if (!this.target) return this.targetError ?? 'bad target';
    const connection = this.backend.connectionForTarget(this.target);
    if (typeof connection === 'string') return connection;
    this.extraAttributes ??= this.backend.channelAttributes?.(connection, this.target.service) ?? {};
    return this.backend.acquireWatch(connection, this.target.service, currentResolverOptions());
  }

  /** What every policy receives next to the list: the endpoint attributes, and the backend's own. */
  private channelAttributes(attributes: ResolvedEndpoints['attributes']): ChannelOptions {
    return { ...this.extraAttributes, [ENDPOINT_ATTRIBUTES_KEY]: attributes };
  }

  /** Starts following the service; while following, changes are pushed, so further calls do nothing. */
  updateResolution(): void {
    if (this.lease) return;
    let lease: WatchLease<DiscoveryWatch> | string;
    try {
      lease = this.acquireWatch();
    } catch (err) {
      lease = `cannot use the connection for '${targetToString(this.uri)}': ${(err as Error).message}`;
    }
    if (typeof lease === 'string') {
      this.deliverLater({ ok: false, details: lease.startsWith(this.component) ? lease : `${this.component}: ${lease}` });
      return;
    }
    this.lease = lease;
    this.trace(`${targetToString(this.uri)}: following service '${this.service}'`);
    this.unsubscribe = lease.watch.subscribe(state => this.deliverLater(state));
    const current = lease.watch.current;
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
      log(logVerbosity.ERROR, `${this.component}: ${targetToString(this.uri)}: the channel rejected an update: ${(err as Error)?.stack ?? String(err)}`);
    }
  }

  private callListener(state: ResolutionState): void {
    if (!state.ok) {
      this.trace(`${targetToString(this.uri)}: ${state.details}`);
      this.listener(statusOrFromError({ code: status.UNAVAILABLE, details: state.details, metadata: new Metadata() }), {}, null, state.details);
      return;
    }
    const { endpoints, attributes } = state.resolved;
    const note = endpoints.length === 0
      ? `no endpoints registered for service '${this.service}'`
      : this.backend.describeList(this.service, state.revision);
    const channelAttributes = this.channelAttributes(attributes);
    // A copy per channel: a policy may reorder its list.
    this.listener(statusOrFromValue(endpoints.slice()), channelAttributes, null, note);
    if (endpoints.length === 0) {
      // Policies ignore errors while they have endpoints, so the empty list goes first;
      // without the error, round_robin would queue calls in IDLE until their deadline.
      this.listener(statusOrFromError({ code: status.UNAVAILABLE, details: note, metadata: new Metadata() }), channelAttributes, null, note);
    }
  }
}

const tracers = new Map<string, (text: string) => void>();

/** The grpc-js tracer of a backend's resolver (`GRPC_TRACE=etcd_resolver`). */
function resolverTracer(name: string): (text: string) => void {
  let trace = tracers.get(name);
  if (!trace) {
    const t = tracer(`${name}_resolver`);
    trace = text => t(text);
    tracers.set(name, trace);
  }
  return trace;
}

/** A backend's resolver class: what grpc-js's `registerResolver` takes. */
export type DiscoveryResolverClass<Connection, Target extends BackendTarget> =
  (new (uri: GrpcUri, listener: ResolverListener, channelOptions: ChannelOptions) => DiscoveryResolver<Connection, Target>) &
  Pick<ResolverConstructor, 'getDefaultAuthority'>;

const classes = new WeakMap<object, ResolverConstructor>();

/** The grpc-js resolver class of a backend (one class per backend, so registering twice is a no-op). */
export function resolverClassFor<Connection, Target extends BackendTarget>(
  backend: DiscoveryBackend<string, unknown, Connection, Target>,
): DiscoveryResolverClass<Connection, Target> {
  let cls = classes.get(backend);
  if (!cls) {
    cls = class extends DiscoveryResolver<Connection, Target> {
      constructor(uri: GrpcUri, listener: ResolverListener, channelOptions: ChannelOptions) {
        super(backend, uri, listener, channelOptions);
      }

      /** A valid `:authority` for the target (`foo/bar/svc` → `foo.bar.svc`); throws on a bad target. */
      static getDefaultAuthority(target: GrpcUri): string {
        return backend.parseTarget(target).authority;
      }
    };
    classes.set(backend, cls);
  }
  return cls as DiscoveryResolverClass<Connection, Target>;
}
