/**
 * Test-only helpers for the resolver tests: a spy LB policy that records what
 * the resolver hands to the LB (and delegates to round_robin), a resolver
 * driven directly with a recording listener, and endpoint writers.
 */
import * as grpc from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import {
  ChildLoadBalancerHandler, parseLoadBalancingConfig, registerLoadBalancerType,
  type ChannelControlHelper, type Endpoint, type GrpcUri, type LoadBalancer, type StatusOr, type TypedLoadBalancingConfig,
} from '../../../src/common/grpc-experimental';
import { endpointAttributesFrom, type EndpointAttributes } from '../../../src/discovery/endpoint-attributes';
import { encodeEndpointValue, endpointKey } from '../../../src/backends/etcd/endpoint-codec';
import { resolverClassFor, type DiscoveryResolver } from '../../../src/discovery/discovery-resolver';
import { etcdBackend } from '../../../src/backends/etcd/etcd-backend';
import { type EtcdOptions } from '../../../src/backends/etcd/connection';
import { type EtcdTarget } from '../../../src/backends/etcd/target';
import { loadEcho, type EchoClient } from '../../support/echo-proto';

export const ROUND_ROBIN_SERVICE_CONFIG = JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] });
export const SPY_POLICY_NAME = 'test_attribute_spy';
export const SPY_SERVICE_CONFIG = JSON.stringify({ loadBalancingConfig: [{ [SPY_POLICY_NAME]: {} }] });

/** One `updateAddressList` call as the LB policy saw it. */
export interface LbUpdate {
  readonly ok: boolean;
  readonly addresses: string[];
  readonly attributes: ReadonlyMap<string, EndpointAttributes> | undefined;
  readonly note: string;
  readonly errorDetails: string | undefined;
  readonly atMs: number;
}

/** Every update any spy policy instance received, newest last. Tests filter by address. */
export const spyUpdates: LbUpdate[] = [];

function toUpdate(endpoints: StatusOr<Endpoint[]>, attributes: ReadonlyMap<string, EndpointAttributes> | undefined, note: string): LbUpdate {
  return {
    ok: endpoints.ok,
    addresses: endpoints.ok ? endpoints.value.map(e => e.addresses.map(a => ('host' in a ? `${a.host}:${a.port}` : a.path)).join('|')) : [],
    attributes,
    note,
    errorDetails: endpoints.ok ? undefined : endpoints.error.details,
    atMs: Date.now(),
  };
}

class SpyConfig implements TypedLoadBalancingConfig {
  getLoadBalancerName(): string { return SPY_POLICY_NAME; }
  toJsonObject(): object { return { [SPY_POLICY_NAME]: {} }; }
  static createFromJson(): SpyConfig { return new SpyConfig(); }
}

class SpyBalancer implements LoadBalancer {
  private readonly child: InstanceType<typeof ChildLoadBalancerHandler>;
  private readonly roundRobin = parseLoadBalancingConfig({ round_robin: {} });
  constructor(helper: ChannelControlHelper) {
    this.child = new ChildLoadBalancerHandler(helper);
  }
  updateAddressList(endpoints: StatusOr<Endpoint[]>, _config: TypedLoadBalancingConfig, options: grpc.ChannelOptions, note: string): boolean {
    spyUpdates.push(toUpdate(endpoints, endpointAttributesFrom(options), note));
    return this.child.updateAddressList(endpoints, this.roundRobin, options, note);
  }
  exitIdle(): void { this.child.exitIdle(); }
  resetBackoff(): void { this.child.resetBackoff(); }
  destroy(): void { this.child.destroy(); }
  getTypeName(): string { return SPY_POLICY_NAME; }
}

/** Registers the spy policy (idempotent). */
export function registerSpyPolicy(): void {
  registerLoadBalancerType(SPY_POLICY_NAME, SpyBalancer, SpyConfig);
}

/** The GrpcUri of `etcd://<hosts>/<service>` (hosts omitted: `etcd:///<service>`). */
export function etcdUri(service: string, hosts?: string[]): GrpcUri {
  return { scheme: 'etcd', authority: hosts ? hosts.join(',') : '', path: service };
}

/** `etcd://<hosts>/<service>` as a target string. */
export function etcdTarget(service: string, hosts: string[]): string {
  return `etcd://${hosts.join(',')}/${service}`;
}

/** A resolver driven directly (no channel), recording every listener call. */
export interface RecordingResolver {
  readonly resolver: DiscoveryResolver<EtcdOptions, EtcdTarget>;
  readonly updates: LbUpdate[];
  last(): LbUpdate | undefined;
  /** Set while the listener runs inside updateResolution() or the constructor (must never happen). */
  readonly syncCalls: number;
  destroy(): void;
}

export function recordingResolver(uri: GrpcUri): RecordingResolver {
  const updates: LbUpdate[] = [];
  let inside = false;
  let syncCalls = 0;
  const listener = (endpoints: StatusOr<Endpoint[]>, attributes: { [key: string]: unknown }, _config: unknown, note: string): boolean => {
    if (inside) syncCalls++;
    updates.push(toUpdate(endpoints, endpointAttributesFrom(attributes as grpc.ChannelOptions), note));
    return true;
  };
  inside = true;
  const resolver = new (resolverClassFor(etcdBackend))(uri, listener, {});
  inside = false;
  const wrapped = {
    resolver,
    updates,
    last: () => updates[updates.length - 1],
    get syncCalls() { return syncCalls; },
    destroy: () => resolver.destroy(),
  };
  const update = resolver.updateResolution.bind(resolver);
  resolver.updateResolution = () => {
    inside = true;
    try {
      update();
    } finally {
      inside = false;
    }
  };
  return wrapped;
}

/** A plain etcd3 client for writing keys (not from the pool, so pool counts stay the resolver's). */
export function writerClient(hosts: string[]): Etcd3 {
  return new Etcd3({ hosts });
}

/** Puts an endpoint in the Go-compatible format, optionally under a lease. */
export async function putEndpoint(
  client: Etcd3, service: string, address: string,
  fields: { weight?: number; priority?: number; metadata?: Record<string, unknown>; lease?: string } = {},
): Promise<void> {
  const put = client.put(endpointKey(service, address)).value(encodeEndpointValue({ address, ...fields }));
  if (fields.lease !== undefined) put.lease(fields.lease);
  await put.exec();
}

/** A client of the echo service on `target` (round_robin unless `serviceConfig` says otherwise). */
export function echoClient(target: string, options: grpc.ChannelOptions = {}): EchoClient {
  const { Client } = loadEcho();
  return new Client(target, grpc.credentials.createInsecure(), {
    'grpc.service_config': ROUND_ROBIN_SERVICE_CONFIG,
    ...options,
  });
}
