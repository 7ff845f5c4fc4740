/**
 * Slow start with real grpc-js servers: a replica joining after the first
 * resolution gets a small share while it warms and its full share after the
 * window; the replicas of the first resolution never warm.
 */
import { expect } from 'chai';
import { inspectBalancers } from '../../../src/balancer/pool/balancer-diagnostics';
import { registerBalancers } from '../../../src/balancer/policies/register-balancers';
import { startEchoServer, type EchoServer } from '../../support/echo-server';
import { type EchoClient } from '../../support/echo-proto';
import { waitFor } from '../../support/wait';
import { balancerFor, failedCount, makeClient, runCalls, waitForEndpoints } from '../support/load';
import { createStaticTarget, type StaticTarget } from '../support/static-resolver';

const WINDOW_MS = 6000;

describe('slow start: a joining replica warms up (real servers)', function () {
  this.timeout(60_000);
  /** What each case started, released after it in reverse order. */
  const started: Array<() => unknown> = [];
  const serve = async (...names: string[]): Promise<EchoServer[]> => {
    const servers = await Promise.all(names.map(name => startEchoServer({ name })));
    started.push(() => Promise.all(servers.map(s => s.stop(100))));
    return servers;
  };
  const connect = (target: StaticTarget, lbConfig: object): EchoClient => {
    const client = makeClient(target.target, lbConfig);
    started.push(() => target.dispose(), () => client.close());
    return client;
  };

  before(() => registerBalancers());
  afterEach(async () => {
    while (started.length > 0) await started.pop()!();
  });

  for (const policy of ['etcd_weighted_round_robin', 'etcd_weighted_random']) {
    it(`${policy}: small share inside the window, full share after; first-resolution replicas at full weight`, async () => {
      const [old1, old2, joining] = await serve('old1', 'old2', 'new');
      const target = createStaticTarget([{ address: old1.address, weight: 2 }, { address: old2.address, weight: 2 }]);
      const client = connect(target, { [policy]: { slowStart: { windowMs: WINDOW_MS } } });
      await runCalls(client, 1, 1);
      const all = [old1.address, old2.address, joining.address];
      await waitForEndpoints([old1.address, old2.address]);
      expect(balancerFor([old1.address, old2.address])!.endpoints.map(e => [e.effectiveWeight, e.warming])).to.deep.equal([[2, false], [2, false]]);

      target.set([{ address: old1.address, weight: 2 }, { address: old2.address, weight: 2 }, { address: joining.address, weight: 2 }]);
      await waitForEndpoints(all);
      const warming = balancerFor(all)!.endpoints.find(e => e.address === joining.address)!;
      expect(warming.warming).to.equal(true);
      expect(warming.effectiveWeight).to.be.lessThan(2 * 0.5);
      const early = await runCalls(client, 300, 4);
      expect(failedCount(early)).to.equal(0);
      // Full share would be 1/3; the factor is 10 % at READY and < 50 % for the first 3 s.
      expect((early.byServer.get('new') ?? 0) / early.ok).to.be.lessThan(0.2);

      await waitFor('warm-up over', () => balancerFor(all)!.endpoints.every(e => !e.warming), { timeoutMs: WINDOW_MS + 5000 });
      expect(balancerFor(all)!.endpoints.map(e => e.effectiveWeight)).to.deep.equal([2, 2, 2]);
      const late = await runCalls(client, 900, 4);
      expect((late.byServer.get('new') ?? 0) / late.ok).to.be.closeTo(1 / 3, policy === 'etcd_weighted_round_robin' ? 0.01 : 0.06);
    });
  }

  it('least_request and peak_ewma take the effective weight too (cost = load / weight)', async () => {
    const [old, joining] = await serve('old', 'new');
    for (const policy of ['etcd_least_request', 'etcd_peak_ewma']) {
      const target = createStaticTarget([{ address: old.address }]);
      const client = connect(target, { [policy]: { slowStart: { windowMs: 30_000, minWeightPercent: 5 } } });
      await runCalls(client, 1, 1);
      target.set([{ address: old.address }, { address: joining.address }]);
      await waitForEndpoints([old.address, joining.address]);
      const endpoint = balancerFor([old.address, joining.address])!.endpoints.find(e => e.address === joining.address)!;
      expect(endpoint.warming).to.equal(true);
      expect(endpoint.effectiveWeight).to.be.closeTo(0.05, 0.01);
      client.close();
    }
  });

  it('a replica down for longer than windowMs warms again when it comes back; a shorter outage does not reset it', async () => {
    const [stays, flaps] = await serve('stays', 'flaps');
    const target = createStaticTarget([{ address: stays.address }, { address: flaps.address }]);
    const long = connect(target, { etcd_weighted_round_robin: { slowStart: { windowMs: 1500 } } });
    const short = connect(target, { etcd_weighted_random: { slowStart: { windowMs: 20_000 } } });
    await Promise.all([runCalls(long, 1, 1), runCalls(short, 1, 1)]);
    const endpointOf = (policy: string) => inspectBalancers().find(b => b.policy === policy)!.endpoints.find(e => e.address === flaps.address)!;
    await waitFor('both READY', () => ['etcd_weighted_round_robin', 'etcd_weighted_random'].every(p => endpointOf(p).state === 'READY'));
    expect(endpointOf('etcd_weighted_round_robin').warming).to.equal(false);
    await flaps.stop(0);
    await waitFor('flaps not READY', () => endpointOf('etcd_weighted_round_robin').state !== 'READY' && endpointOf('etcd_weighted_random').state !== 'READY');
    const downAt = Date.now();
    await new Promise(resolve => setTimeout(resolve, 1600));
    const back = await startEchoServer({ name: 'flaps', address: flaps.address });
    started.push(() => back.stop(100));
    await waitFor('flaps READY again', () => endpointOf('etcd_weighted_round_robin').state === 'READY' && endpointOf('etcd_weighted_random').state === 'READY', { timeoutMs: 15_000 });
    const downMs = Date.now() - downAt;
    // Down > 1.5 s: a cold start for the first; < 20 s: the second keeps it warm.
    expect(endpointOf('etcd_weighted_round_robin').warming, `down ${downMs} ms`).to.equal(true);
    expect(endpointOf('etcd_weighted_random').warming).to.equal(false);
    expect(endpointOf('etcd_weighted_random').effectiveWeight).to.equal(1);
  });
});
