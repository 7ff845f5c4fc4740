/**
 * The per-suite fixture of balancer tests over real servers: registers the
 * policies once, and closes the clients, disposes the static targets and stops
 * the echo servers made through it after each test.
 */
import { type ChannelOptions } from '@grpc/grpc-js';
import { registerBalancers } from '../../../src/balancer/policies/register-balancers';
import { type EchoClient } from '../../support/echo-proto';
import { startEchoServer, type EchoServer, type EchoServerOptions } from '../../support/echo-server';
import { startHealthEchoServer, type HealthEchoServer, type HealthEchoServerOptions } from './health-service';
import { makeClient, runCalls, waitForEndpoints } from './load';
import { createStaticTarget, type StaticEndpoint, type StaticTarget } from './static-resolver';

/** A private subchannel pool: channels of different tests never share connections (or health watches). */
export const LOCAL_SUBCHANNEL_POOL: ChannelOptions = { 'grpc.use_local_subchannel_pool': 1 };

export interface BalancerHarnessOptions {
  /** Options of every client's channel (a call's own options go over them). Defaults to none. */
  channelOptions?: ChannelOptions;
}

export interface BalancerHarness {
  /** Echo servers named `names`, started together. */
  serve(names: readonly string[], options?: (i: number) => EchoServerOptions): Promise<EchoServer[]>;
  /** Echo servers with grpc.health.v1 (see health-service.ts), named `names`, started together. */
  serveHealth(names: readonly string[], options?: (i: number) => HealthEchoServerOptions): Promise<HealthEchoServer[]>;
  /** A static target over `endpoints` (an address stands for `{ address }`). */
  target(endpoints: ReadonlyArray<string | StaticEndpoint>): StaticTarget;
  /** A client on `target` whose service config selects `lbConfig`. */
  client(target: StaticTarget, lbConfig: object, options?: ChannelOptions): EchoClient;
  /** `target(endpoints)` and a client on it. */
  connect(endpoints: ReadonlyArray<string | StaticEndpoint>, lbConfig: object, options?: ChannelOptions): { client: EchoClient; target: StaticTarget };
  /** Closes `client` after the test like the harness's own (for a client made another way). */
  track(client: EchoClient): EchoClient;
}

/** `prefix0` … `prefix{count-1}`. */
export function named(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}${i}`);
}

/** One call, then every server's endpoint READY; the servers' call counts go back to 0. */
export async function warmUp(client: EchoClient, servers: readonly EchoServer[]): Promise<void> {
  await runCalls(client, 1, 1);
  await waitForEndpoints(servers.map(s => s.address));
  for (const s of servers) s.calls = 0;
}

/** Installs the suite's hooks (call it at the top of a `describe`). */
export function useBalancerHarness(options: BalancerHarnessOptions = {}): BalancerHarness {
  const servers: EchoServer[] = [];
  const clients: EchoClient[] = [];
  const targets: StaticTarget[] = [];

  before(() => registerBalancers());
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    for (const t of targets.splice(0)) t.dispose();
    await Promise.all(servers.splice(0).map(s => s.stop(100)));
  });

  const track = (client: EchoClient): EchoClient => {
    clients.push(client);
    return client;
  };
  const target = (endpoints: ReadonlyArray<string | StaticEndpoint>): StaticTarget => {
    const t = createStaticTarget(endpoints.map(e => (typeof e === 'string' ? { address: e } : e)));
    targets.push(t);
    return t;
  };
  const client = (t: StaticTarget, lbConfig: object, channelOptions: ChannelOptions = {}): EchoClient =>
    track(makeClient(t.target, lbConfig, { ...options.channelOptions, ...channelOptions }));

  return {
    async serve(names, serverOptions = () => ({})) {
      const started = await Promise.all(names.map((name, i) => startEchoServer({ name, ...serverOptions(i) })));
      servers.push(...started);
      return started;
    },
    async serveHealth(names, serverOptions = () => ({})) {
      const started = await Promise.all(names.map((name, i) => startHealthEchoServer({ name, ...serverOptions(i) })));
      servers.push(...started.map(r => r.echo));
      return started;
    },
    target,
    client,
    connect(endpoints, lbConfig, channelOptions) {
      const t = target(endpoints);
      return { client: client(t, lbConfig, channelOptions), target: t };
    },
    track,
  };
}
