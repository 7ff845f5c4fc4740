/**
 * The grpc-js resolver for `etcd:///<service>` and `etcd://host:2379,…/<service>`:
 * the discovery core's resolver (src/discovery/discovery-resolver.ts: what the LB
 * policy receives, channel attributes, last good list) over etcd's shared
 * list + watch (service-watch.ts, service-watch-registry.ts), plus the client
 * registry's `CLIENT_REGISTRY_SOURCE_KEY` attribute (src/backends/etcd/client-registry.ts).
 */
import { type ChannelOptions } from '@grpc/grpc-js';
import { registerResolver, tracer, type GrpcUri, type ResolverListener } from '../../common/grpc-experimental';
import { DiscoveryResolver } from '../../discovery/discovery-resolver';
import { type ResolvedEndpoints } from '../../discovery/endpoint-table';
import { clientRegistrySource } from './client-registry';
import { CLIENT_REGISTRY_SOURCE_KEY, type ClientRegistrySource } from '../../discovery/client-registry-source';
import { type DiscoveryWatch } from '../../discovery/discovery-watch';
import { currentResolverOptions, setResolverOptions, type ResolvedResolverOptions } from '../../discovery/resolver-options';
import { type WatchLease } from '../../discovery/shared-watches';
import { connectionForTarget, ETCD_SCHEME, parseEtcdTarget, targetToString, type EtcdTarget } from './target';
import { acquireServiceWatch } from './service-watch-registry';

const trace = tracer('etcd_resolver');

/** Sets the options used by service watches started from now on (see `register({ resolver })`); both backends use them. */
export function setEtcdResolverOptions(options: ResolvedResolverOptions): void {
  setResolverOptions(options);
}

/** One per channel; the list and watch behind it are shared (see service-watch-registry.ts). */
export class EtcdResolver extends DiscoveryResolver {
  private readonly target: EtcdTarget | undefined;
  private readonly targetError: string | undefined;
  /** The client registry for this target, passed to policies; lazy (nothing happens until one subscribes). */
  private fleetSource: ClientRegistrySource | undefined;

  constructor(uri: GrpcUri, listener: ResolverListener, channelOptions: ChannelOptions) {
    super(uri, listener, channelOptions, 'etcd resolver', trace);
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

  protected get service(): string {
    return this.target?.service ?? '';
  }

  protected acquireWatch(): WatchLease<DiscoveryWatch> | string {
    if (!this.target) return this.targetError ?? 'etcd resolver: bad target';
    const connection = connectionForTarget(this.target);
    if (typeof connection === 'string') return connection;
    this.fleetSource ??= clientRegistrySource(connection, this.target.service, currentResolverOptions);
    try {
      return acquireServiceWatch(connection, this.target.service, currentResolverOptions());
    } catch (err) {
      return `cannot use etcd connection for '${targetToString(this.uri)}': ${(err as Error).message}`;
    }
  }

  /** Adds `CLIENT_REGISTRY_SOURCE_KEY` (src/backends/etcd/client-registry-source.ts): this target's client registry, for policies that need the calling fleet. */
  protected override channelAttributes(attributes: ResolvedEndpoints['attributes']): ChannelOptions {
    return { ...super.channelAttributes(attributes), [CLIENT_REGISTRY_SOURCE_KEY]: this.fleetSource };
  }

  protected describeList(revision: number): string {
    return `etcd service '${this.service}' at revision ${revision}`;
  }
}

/** Registers the `etcd` resolver scheme with grpc-js. Idempotent. */
export function registerEtcdResolver(): void {
  registerResolver(ETCD_SCHEME, EtcdResolver);
}
