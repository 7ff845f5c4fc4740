/**
 * Helpers for balancer integration tests: clients with a service config,
 * concurrent call runs, balancer snapshots by address, seeded policy variants.
 */
import * as grpc from '@grpc/grpc-js';
import { inspectBalancers, type BalancerSnapshot } from '../../../src/balancer/pool/balancer-diagnostics';
import { type EndpointPoolOptions } from '../../../src/balancer/pool/pool-policy';
import { registerLoadBalancerType, type ChannelControlHelper, type LoadBalancer, type TypedLoadBalancingConfig } from '../../../src/common/grpc-experimental';
import { runBounded } from '../../support/bounded';
import { loadEcho, type EchoClient } from '../../support/echo-proto';
import { waitFor } from '../../support/wait';

/** A client on `target` whose service config selects `lbConfig` (e.g. `{ etcd_least_request: {} }`). */
export function makeClient(target: string, lbConfig: object, options: grpc.ChannelOptions = {}): EchoClient {
  const { Client } = loadEcho();
  return new Client(target, grpc.credentials.createInsecure(), {
    'grpc.service_config': JSON.stringify({ loadBalancingConfig: [lbConfig] }),
    ...options,
  });
}

export interface RunResult {
  ok: number;
  /** Failed calls by status code. */
  failed: Map<number, number>;
  /** Successful replies by `server` name. */
  byServer: Map<string, number>;
}

/** Runs `total` unary calls, at most `concurrency` at a time. `prepare` may set per-call options and metadata. */
export async function runCalls(
  client: EchoClient,
  total: number,
  concurrency: number,
  prepare: (index: number) => { options?: Partial<grpc.CallOptions>; metadata?: grpc.Metadata; afterStart?: (call: grpc.ClientUnaryCall) => void } = () => ({}),
): Promise<RunResult> {
  const result: RunResult = { ok: 0, failed: new Map(), byServer: new Map() };
  await runBounded(total, concurrency, index => new Promise<void>(resolve => {
    const { options = {}, metadata = new grpc.Metadata(), afterStart } = prepare(index);
    const call = client.unary({ message: 'm' }, metadata, options, (err, reply) => {
      if (err) result.failed.set(err.code, (result.failed.get(err.code) ?? 0) + 1);
      else {
        result.ok++;
        result.byServer.set(reply!.server, (result.byServer.get(reply!.server) ?? 0) + 1);
      }
      resolve();
    });
    afterStart?.(call);
  }));
  return result;
}

export function failedCount(result: RunResult): number {
  let n = 0;
  for (const count of result.failed.values()) n += count;
  return n;
}

/** The live balancer whose endpoints are exactly `addresses` (in any order). */
export function balancerFor(addresses: readonly string[]): BalancerSnapshot | undefined {
  const wanted = [...addresses].sort().join(',');
  return inspectBalancers().find(b => b.endpoints.map(e => e.address).sort().join(',') === wanted);
}

/** The state of `address` in the balancer over `addresses` (undefined without one). */
export function stateOf(addresses: readonly string[], address: string): string | undefined {
  return balancerFor(addresses)?.endpoints.find(e => e.address === address)?.state;
}

/** Waits until the balancer over `addresses` reports every endpoint in `state` (READY by default). */
export async function waitForEndpoints(addresses: readonly string[], state = 'READY', timeoutMs = 10_000): Promise<number> {
  return waitFor(`${addresses.length} endpoints ${state}`, () => balancerFor(addresses)?.endpoints.every(e => e.state === state) ?? false, { timeoutMs });
}

/** Percentage with one decimal, for log lines. */
export function pct(part: number, whole: number): string {
  return `${((100 * part) / whole).toFixed(2)}%`;
}

type BalancerClass<O> = new (helper: ChannelControlHelper, options?: O) => LoadBalancer;
interface ConfigClass {
  new (...args: never[]): TypedLoadBalancingConfig;
  createFromJson(json: unknown): TypedLoadBalancingConfig;
}

/**
 * Registers `name` as a copy of a policy whose balancers get `options` (e.g. a
 * seeded `random`): grpc-js creates balancers with the helper only.
 */
export function registerVariant<O = EndpointPoolOptions>(name: string, Balancer: BalancerClass<O>, Config: ConfigClass, options: () => O): void {
  class VariantBalancer extends Balancer {
    constructor(helper: ChannelControlHelper) {
      super(helper, options());
    }
    override getTypeName(): string {
      return name;
    }
  }
  const VariantConfig = {
    createFromJson(json: unknown): TypedLoadBalancingConfig {
      const config = Config.createFromJson(json);
      // Same class (the balancer's instanceof check passes), another name (grpc-js creates the variant).
      Object.defineProperty(config, 'getLoadBalancerName', { value: () => name });
      return config;
    },
  };
  registerLoadBalancerType(name, VariantBalancer, VariantConfig as unknown as Parameters<typeof registerLoadBalancerType>[2]);
}
