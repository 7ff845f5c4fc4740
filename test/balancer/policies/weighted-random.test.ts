import { expect } from 'chai';
import { startEchoServer, type EchoServer } from '../../support/echo-server';
import { type EchoClient } from '../../support/echo-proto';
import { seededRandom } from '../../support/wait';
import { registerBalancers } from '../../../src/balancer/policies/register-balancers';
import { EtcdWeightedRandomConfig, EtcdWeightedRandomLoadBalancer } from '../../../src/balancer/policies/weighted-random';
import { failedCount, makeClient, pct, registerVariant, runCalls, waitForEndpoints } from '../support/load';
import { createStaticTarget, type StaticTarget } from '../support/static-resolver';
import { quietly } from '../../support/grpc-log';

const SEEDED = 'test_seeded_etcd_weighted_random';

describe('etcd_weighted_random', function () {
  this.timeout(60_000);
  let servers: EchoServer[] = [];
  let client: EchoClient | undefined;
  let target: StaticTarget | undefined;

  before(() => {
    registerBalancers();
    registerVariant(SEEDED, EtcdWeightedRandomLoadBalancer, EtcdWeightedRandomConfig, () => ({ random: seededRandom(2024) }));
  });
  afterEach(async () => {
    client?.close();
    client = undefined;
    target?.dispose();
    target = undefined;
    await Promise.all(servers.map(s => s.stop(100)));
    servers = [];
  });

  it('validates its config and names itself in errors', () => {
    expect(EtcdWeightedRandomConfig.createFromJson(null).toJsonObject()).to.deep.equal({ etcd_weighted_random: {} });
    expect(() => quietly(() => EtcdWeightedRandomConfig.createFromJson('fast'))).to.throw(/^config must be an object, got "fast"/);
    expect(() => quietly(() => EtcdWeightedRandomConfig.createFromJson({ healthCheck: [] }))).to.throw(/^healthCheck must be an object/);
  });

  it('splits 10,000 calls over real servers with P(i) = W(i)/ΣW (seeded, within 2 points)', async () => {
    servers = await Promise.all([1, 2, 3, 4].map(i => startEchoServer({ name: `r${i}` })));
    target = createStaticTarget(servers.map((s, i) => ({ address: s.address, weight: i + 1 })));
    client = makeClient(target.target, { [SEEDED]: {} });
    await runCalls(client, 1, 1);
    await waitForEndpoints(servers.map(s => s.address));
    servers.forEach(s => { s.calls = 0; });
    const result = await runCalls(client, 10_000, 32);
    expect(failedCount(result)).to.equal(0);
    console.log(`      weighted random 1:2:3:4 over 10,000 calls: ${servers.map(s => `${s.name}=${pct(s.calls, 10_000)}`).join(' ')}`);
    servers.forEach((s, i) => expect(s.calls / 100).to.be.closeTo((100 * (i + 1)) / 10, 2));
  });
});
