import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { type ServingStatus } from 'grpc-health-check';
import { inspectBalancers } from '../../../src/balancer/pool/balancer-diagnostics';
import { registerResolver, statusOrFromValue, type Endpoint, type GrpcUri, type Resolver, type ResolverListener } from '../../../src/common/grpc-experimental';
import { loadEcho, unary, type EchoClient } from '../../support/echo-proto';
import { waitFor } from '../../support/wait';
import { LOCAL_SUBCHANNEL_POOL, named, useBalancerHarness } from '../support/harness';
import { failedCount, runCalls, stateOf, waitForEndpoints } from '../support/load';
import { type StaticTarget } from '../support/static-resolver';

describe('client-side health checking: the Watch stream per subchannel', function () {
  this.timeout(60_000);
  const harness = useBalancerHarness();
  const { serve, serveHealth, target } = harness;

  /** Panic threshold off: these tests are about what health alone decides. */
  function client(t: StaticTarget, serviceName: string, options: grpc.ChannelOptions = LOCAL_SUBCHANNEL_POOL): EchoClient {
    return harness.client(t, { etcd_weighted_round_robin: { healthCheck: { serviceName }, panicThresholdPercent: 0 } }, options);
  }

  it('treats a server without the health service (UNIMPLEMENTED) as healthy, with one warning for it', async () => {
    const [withHealth] = await serveHealth(named('r', 1));
    const [without] = await serve(['no-health']);
    const addresses = [withHealth.address, without.address];
    const lines: string[] = [];
    grpc.setLogger({ ...console, error: (...args: unknown[]) => lines.push(args.map(String).join(' ')) });
    try {
      const t = target(addresses);
      // Two channels with their own subchannels: two streams get UNIMPLEMENTED, one line is printed.
      const clientA = client(t, '');
      const clientB = client(t, '');
      await Promise.all([runCalls(clientA, 1, 1), runCalls(clientB, 1, 1)]);
      await waitFor('both endpoints READY in both channels', () => balancersOver(addresses).length === 2 && allReady(addresses));
      const result = await runCalls(clientA, 100, 4);
      expect(failedCount(result)).to.equal(0);
      expect(result.byServer.get('no-health')).to.equal(50);
    } finally {
      grpc.setLogger(console);
    }
    const warnings = lines.filter(l => l.includes('has no grpc.health.v1 service'));
    console.log(`      warning: ${warnings[0]}`);
    expect(warnings).to.have.length(1);
    expect(warnings[0]).to.include(without.address);
  });

  it('does not pick a replica that does not know the service name (SERVICE_UNKNOWN)', async () => {
    const SERVICE = 'grpc_etcd_lb.echo.Echo';
    const statuses: Record<string, ServingStatus>[] = [{ '': 'SERVING', [SERVICE]: 'SERVING' }, { '': 'SERVING' }];
    const [knows, unknown] = await serveHealth(named('r', 2), i => ({ statuses: statuses[i] }));
    const addresses = [knows.address, unknown.address];
    const c = client(target(addresses), SERVICE);
    const result = await runCalls(c, 200, 8);
    expect(failedCount(result)).to.equal(0);
    expect(unknown.echo.calls).to.equal(0);
    expect(stateOf(addresses, unknown.address)).to.equal('TRANSIENT_FAILURE');

    const alone = client(target([unknown.address]), SERVICE);
    const error = await unary(alone, 'x', { deadline: Date.now() + 5000 }).then(() => undefined, (err: grpc.ServiceError) => err);
    console.log(`      only a SERVICE_UNKNOWN replica: "${error?.details}"`);
    expect(error?.code).to.equal(grpc.status.UNAVAILABLE);
    expect(error?.details).to.include('health SERVICE_UNKNOWN');
    expect(unknown.echo.calls).to.equal(0);
  });

  it('re-opens a failed Watch with backoff (not pickable meanwhile), and at once after a stream that had answered', async () => {
    const [flaky, steady] = await serveHealth(named('r', 2), i => ({ failWatches: i === 0 ? 2 : 0 }));
    const addresses = [flaky.address, steady.address];
    const c = client(target(addresses), '');
    const startedAt = Date.now();
    await runCalls(c, 1, 1);
    const states = new Set<string>();
    const healthyMs = await waitFor('flaky replica healthy', () => {
      states.add(stateOf(addresses, flaky.address) ?? 'none');
      return stateOf(addresses, flaky.address) === 'READY';
    }, { timeoutMs: 15_000 });
    const elapsedMs = Date.now() - startedAt;
    expect(flaky.watchesOpened).to.equal(3);
    expect(flaky.echo.calls, 'calls while its health was unknown').to.equal(0);
    expect(states.has('TRANSIENT_FAILURE')).to.equal(true);

    // A stream that had delivered SERVING and then fails is re-opened without backoff.
    flaky.endWatches(grpc.status.INTERNAL);
    const reopenedMs = await waitFor('Watch re-opened', () => flaky.watchesOpened === 4 && flaky.activeWatches === 1, { intervalMs: 1 });
    await waitFor('flaky replica healthy again', () => stateOf(addresses, flaky.address) === 'READY');
    console.log(`      2 failed Watch calls: healthy ${elapsedMs} ms after the first call (backoff ~0.5-1 s then ~1-2 s; saw ${[...states].join(', ')}; waited ${healthyMs} ms); after an answered stream failed: re-opened in ${reopenedMs} ms`);
    const result = await runCalls(c, 100, 4);
    expect(failedCount(result)).to.equal(0);
    expect(flaky.echo.calls).to.equal(50);
  });

  it('opens one Watch per subchannel (shared by channels), cancels it when the endpoint goes or the channel closes', async () => {
    const servers = await serveHealth(named('r', 2));
    const addresses = servers.map(s => s.address);
    const t = target(addresses);
    // The global subchannel pool: two channels with equal options share each connection.
    const first = client(t, '', {});
    const second = client(t, '', {});
    await Promise.all([runCalls(first, 1, 1), runCalls(second, 1, 1)]);
    await waitForEndpoints(addresses);
    await waitFor('both channels READY', () => balancersOver(addresses).length === 2 && allReady(addresses));
    expect(servers.map(s => s.activeWatches)).to.deep.equal([1, 1]);
    expect(servers.map(s => s.watchesOpened)).to.deep.equal([1, 1]);

    t.set([{ address: servers[0].address }]);
    const removedMs = await waitFor('Watch cancelled on the removed endpoint', () => servers[1].activeWatches === 0);
    first.close();
    await new Promise(resolve => setImmediate(resolve));
    expect(servers[0].activeWatches, 'still watched for the other channel').to.equal(1);
    second.close();
    const closedMs = await waitFor('Watch cancelled after the last channel closed', () => servers[0].activeWatches === 0);
    console.log(`      2 channels, 2 endpoints: 1 Watch per server; cancelled ${removedMs} ms after the endpoint was removed, ${closedMs} ms after the last channel closed`);
    expect(servers.map(s => s.watchesOpened)).to.deep.equal([1, 1]);
  });

  it('cancels the Watch when the connection goes (GOAWAY), so a server draining with tryShutdown is not held up', async () => {
    const [server] = await serveHealth(named('r', 1));
    const addresses = [server.address];
    const c = client(target(addresses), '');
    await runCalls(c, 1, 1);
    await waitForEndpoints(addresses);
    expect(server.activeWatches).to.equal(1);
    let forced = false;
    const started = Date.now();
    await new Promise<void>(resolve => {
      const timer = setTimeout(() => {
        forced = true;
        server.echo.server.forceShutdown();
        resolve();
      }, 10_000);
      server.echo.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    console.log(`      tryShutdown with an open Watch: done in ${Date.now() - started} ms, forced: ${forced}`);
    expect(forced).to.equal(false);
    expect(server.activeWatches).to.equal(0);
  });

  it('follows healthCheck changes on a live channel: on, another service name, off (old watches cancelled)', async () => {
    const SERVICE = 'grpc_etcd_lb.echo.Echo';
    const servers = await serveHealth(named('r', 2), i => ({ statuses: i === 0 ? { '': 'NOT_SERVING', [SERVICE]: 'SERVING' } : { '': 'SERVING', [SERVICE]: 'SERVING' } }));
    const addresses = servers.map(s => s.address);
    const resolver = configResolver(addresses);
    const { Client } = loadEcho();
    const c = new Client(resolver.target, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
    harness.track(c);
    const share = async (): Promise<number> => {
      const before = servers[0].echo.calls;
      expect(failedCount(await runCalls(c, 100, 4))).to.equal(0);
      return servers[0].echo.calls - before;
    };

    resolver.push({});
    await runCalls(c, 1, 1);
    await waitFor('both READY', () => allReady(addresses));
    expect(await share(), 'health checking off: NOT_SERVING is not looked at').to.equal(50);

    resolver.push({ healthCheck: { serviceName: '' } });
    await waitFor('NOT_SERVING seen', () => stateOf(addresses, servers[0].address) === 'TRANSIENT_FAILURE');
    expect(await share()).to.equal(0);

    resolver.push({ healthCheck: { serviceName: SERVICE } });
    await waitFor('SERVING for the service seen', () => allReady(addresses));
    await waitFor('one Watch per server, for the new name', () => servers.every(s => s.activeWatches === 1));
    expect(await share()).to.equal(50);

    resolver.push({});
    const offMs = await waitFor('Watches cancelled', () => servers.every(s => s.activeWatches === 0));
    console.log(`      healthCheck toggled on a live channel: off -> '' -> '${SERVICE}' -> off; Watch calls per server ${servers.map(s => s.watchesOpened).join(', ')}; cancelled ${offMs} ms after turning it off`);
    expect(servers.map(s => s.watchesOpened)).to.deep.equal([2, 2]);
    await waitFor('both READY', () => allReady(addresses));
    expect(await share()).to.equal(50);
  });

  function balancersOver(addresses: string[]): ReturnType<typeof inspectBalancers> {
    const wanted = [...addresses].sort().join(',');
    return inspectBalancers().filter(b => b.endpoints.map(e => e.address).sort().join(',') === wanted);
  }

  function allReady(addresses: string[]): boolean {
    return balancersOver(addresses).every(b => b.endpoints.every(e => e.state === 'READY'));
  }
});

const CONFIG_SCHEME = 'hcconfig';
const configTargets = new Map<string, { addresses: string[]; listeners: Set<(body: object) => void>; body: object }>();
let nextConfigTarget = 1;

/** A resolver whose service config (etcd_weighted_round_robin with `body`) the test changes on a live channel. */
class ConfigResolver implements Resolver {
  private readonly state;
  private readonly onPush = (): void => this.updateResolution();
  constructor(uri: GrpcUri, private readonly listener: ResolverListener) {
    this.state = configTargets.get(uri.path)!;
    this.state.listeners.add(this.onPush);
  }
  static getDefaultAuthority(): string {
    return 'localhost';
  }
  updateResolution(): void {
    setImmediate(() => {
      const endpoints: Endpoint[] = this.state.addresses.map(a => ({ addresses: [{ host: '127.0.0.1', port: Number(a.split(':')[1]) }] }));
      const serviceConfig = statusOrFromValue({ loadBalancingConfig: [{ etcd_weighted_round_robin: this.state.body }], methodConfig: [] });
      this.listener(statusOrFromValue(endpoints), {}, serviceConfig as Parameters<ResolverListener>[2], 'config test');
    });
  }
  destroy(): void {
    this.state.listeners.delete(this.onPush);
  }
}

function configResolver(addresses: string[]): { target: string; push(body: object): void } {
  if (configTargets.size === 0) registerResolver(CONFIG_SCHEME, ConfigResolver);
  const name = `c${nextConfigTarget++}`;
  const state = { addresses, listeners: new Set<(body: object) => void>(), body: {} };
  configTargets.set(name, state);
  return {
    target: `${CONFIG_SCHEME}:///${name}`,
    push(body) {
      state.body = body;
      for (const listener of state.listeners) listener(body);
    },
  };
}
