import { expect } from 'chai';
import { seededRandom } from '../../support/wait';
import { EtcdWeightedRandomConfig, EtcdWeightedRandomLoadBalancer } from '../../../src/balancer/policies/weighted-random';
import { useBalancerHarness, warmUp } from '../support/harness';
import { failedCount, pct, registerVariant, runCalls } from '../support/load';
import { quietly } from '../../support/grpc-log';

const SEEDED = 'test_seeded_etcd_weighted_random';

describe('etcd_weighted_random', function () {
  this.timeout(60_000);
  const { serve, connect } = useBalancerHarness();
  before(() => registerVariant(SEEDED, EtcdWeightedRandomLoadBalancer, EtcdWeightedRandomConfig, () => ({ random: seededRandom(2024) })));

  it('validates its config and names itself in errors', () => {
    expect(EtcdWeightedRandomConfig.createFromJson(null).toJsonObject()).to.deep.equal({ etcd_weighted_random: {} });
    expect(() => quietly(() => EtcdWeightedRandomConfig.createFromJson('fast'))).to.throw(/^config must be an object, got "fast"/);
    expect(() => quietly(() => EtcdWeightedRandomConfig.createFromJson({ healthCheck: [] }))).to.throw(/^healthCheck must be an object/);
  });

  it('splits 10,000 calls over real servers with P(i) = W(i)/ΣW (seeded, within 2 points)', async () => {
    const servers = await serve(['r1', 'r2', 'r3', 'r4']);
    const { client } = connect(servers.map((s, i) => ({ address: s.address, weight: i + 1 })), { [SEEDED]: {} });
    await warmUp(client, servers);
    const result = await runCalls(client, 10_000, 32);
    expect(failedCount(result)).to.equal(0);
    console.log(`      weighted random 1:2:3:4 over 10,000 calls: ${servers.map(s => `${s.name}=${pct(s.calls, 10_000)}`).join(' ')}`);
    servers.forEach((s, i) => expect(s.calls / 100).to.be.closeTo((100 * (i + 1)) / 10, 2));
  });
});
