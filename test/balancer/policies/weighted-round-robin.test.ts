import { expect } from 'chai';
import { waitFor } from '../../support/wait';
import { EtcdWeightedRoundRobinConfig } from '../../../src/balancer/policies/weighted-round-robin';
import { useBalancerHarness, warmUp } from '../support/harness';
import { balancerFor, failedCount, pct, runCalls } from '../support/load';
import { quietly } from '../../support/grpc-log';

describe('etcd_weighted_round_robin', function () {
  this.timeout(60_000);
  const { serve, connect } = useBalancerHarness();

  it('validates its config and names itself in errors', () => {
    expect(EtcdWeightedRoundRobinConfig.createFromJson({}).toJsonObject()).to.deep.equal({ etcd_weighted_round_robin: {} });
    expect(EtcdWeightedRoundRobinConfig.createFromJson({ healthCheck: { serviceName: 'echo' } }).toJsonObject())
      .to.deep.equal({ etcd_weighted_round_robin: { healthCheck: { serviceName: 'echo' } } });
    expect(() => quietly(() => EtcdWeightedRoundRobinConfig.createFromJson([]))).to.throw(/^config must be an object, got \[\]/);
    expect(() => quietly(() => EtcdWeightedRoundRobinConfig.createFromJson({ healthCheck: 'x' }))).to.throw(/^healthCheck must be an object/);
    expect(() => quietly(() => EtcdWeightedRoundRobinConfig.createFromJson({ healthCheck: { serviceName: 3 } }))).to.throw(/^healthCheck.serviceName must be a string, got 3/);
  });

  it('splits 10,000 calls 1:2:3:4 over real servers (within 0.5 points), then re-balances on a weight change without reconnecting', async () => {
    const servers = await serve(['w1', 'w2', 'w3', 'w4']);
    const addresses = servers.map(s => s.address);
    const { client, target } = connect(servers.map((s, i) => ({ address: s.address, weight: i + 1 })), { etcd_weighted_round_robin: {} });
    await warmUp(client, servers);

    const result = await runCalls(client, 10_000, 32);
    expect(failedCount(result)).to.equal(0);
    console.log(`      wrr 1:2:3:4 over 10,000 calls: ${servers.map(s => `${s.name}=${s.calls} (${pct(s.calls, 10_000)})`).join(' ')}`);
    servers.forEach((s, i) => expect(s.calls / 100).to.be.closeTo((100 * (i + 1)) / 10, 0.5));

    const before = balancerFor(addresses)!.endpoints.map(e => [e.address, e.endpointId, e.timesReady]);
    target.set(servers.map((s, i) => ({ address: s.address, weight: 4 - i })));
    await waitFor('new weights applied', () => balancerFor(addresses)?.endpoints.every(e => e.weight === 4 - addresses.indexOf(e.address)) ?? false);
    servers.forEach(s => { s.calls = 0; });
    const after = await runCalls(client, 2000, 16);
    expect(failedCount(after)).to.equal(0);
    console.log(`      wrr after weight change to 4:3:2:1 (2,000 calls): ${servers.map(s => `${s.name}=${s.calls}`).join(' ')}`);
    servers.forEach((s, i) => expect(s.calls / 20).to.be.closeTo((100 * (4 - i)) / 10, 0.5));
    expect(balancerFor(addresses)!.endpoints.map(e => [e.address, e.endpointId, e.timesReady])).to.deep.equal(before);
  });

  it('treats endpoints without attributes as weight 1 (plain round robin)', async () => {
    const servers = await serve(['rr1', 'rr2', 'rr3']);
    const { client } = connect(servers.map(s => s.address), { etcd_weighted_round_robin: {} });
    await warmUp(client, servers);
    await runCalls(client, 300, 1);
    expect(servers.map(s => s.calls)).to.deep.equal([100, 100, 100]);
  });
});
