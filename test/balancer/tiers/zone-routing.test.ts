/**
 * Zone-aware routing with real grpc-js servers and an in-process ClientRegistrySource
 * (issue 16's cases): zones a and b, 3 replicas each. The client's zone is the
 * process locality (register({ locality })), set per case; the fleet view
 * stands for the client registry. Multi-process runs with the real registry
 * are separate.
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { registerBalancers } from '../../../src/balancer/policies/register-balancers';
import { createRetryInterceptor } from '../../../src/interceptor/retry-interceptor';
import { getLocality, resetLocalityForTests, setLocality } from '../../../src/discovery/locality';
import { startEchoServer, type EchoServer } from '../../support/echo-server';
import { type EchoClient } from '../../support/echo-proto';
import { seededRandom, waitFor } from '../../support/wait';
import { testFleet, type TestFleet } from '../support/fleet';
import { balancerFor, failedCount, makeClient, runCalls, waitForEndpoints, type RunResult } from '../support/load';
import { createStaticTarget, type StaticTarget } from '../support/static-resolver';

function withTag(tag: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set('x-route-tag', tag);
  return metadata;
}

const POLICIES = ['etcd_weighted_round_robin', 'etcd_weighted_random', 'etcd_least_request', 'etcd_peak_ewma'];

describe('zone-aware routing: real servers in zones a and b, in-process fleet source', function () {
  this.timeout(90_000);
  let servers: EchoServer[] = [];
  let clients: EchoClient[] = [];
  let targets: StaticTarget[] = [];

  before(async () => {
    registerBalancers();
    servers = await Promise.all(['a1', 'a2', 'a3', 'b1', 'b2', 'b3'].map(name => startEchoServer({ name })));
  });
  afterEach(() => {
    for (const c of clients) c.close();
    for (const t of targets) t.dispose();
    clients = [];
    targets = [];
    resetLocalityForTests();
  });
  after(async () => {
    await Promise.all(servers.map(s => s.stop(100)));
  });

  const addresses = (): string[] => servers.map(s => s.address);

  /** A client in `zone` over the six replicas, the fleet view from `fleet` (or none). */
  async function clientIn(zone: string, policy: string | object, fleet: TestFleet | undefined, options: Parameters<typeof makeClient>[2] = {}, weights: Record<string, number> = {}): Promise<EchoClient> {
    resetLocalityForTests();
    setLocality({ zone });
    const target = createStaticTarget(
      servers.map(s => ({ address: s.address, weight: weights[s.name], metadata: { zone: s.name[0] } })),
      { attributes: fleet?.attributes },
    );
    const client = makeClient(target.target, typeof policy === 'string' ? { [policy]: {} } : policy, options);
    targets.push(target);
    clients.push(client);
    await runCalls(client, 1, 1);
    await waitForEndpoints(addresses());
    return client;
  }

  function zoneShare(result: RunResult, zone: string): number {
    let n = 0;
    for (const [server, count] of result.byServer) if (server.startsWith(zone)) n += count;
    return n / result.ok;
  }

  for (const policy of POLICIES) {
    it(`${policy}: clients split evenly over a and b → every client's calls stay in its zone`, async () => {
      const fleet = testFleet({ a: 4, b: 4 });
      for (const zone of ['a', 'b']) {
        const client = await clientIn(zone, policy, fleet);
        const result = await runCalls(client, 600, 8);
        expect(failedCount(result)).to.equal(0);
        expect(zoneShare(result, zone)).to.be.at.least(0.95);
        const snapshot = balancerFor(addresses())!;
        expect(snapshot.zoneRouting).to.deep.equal({ localZone: zone, callersFrom: 'fleet', shares: { [zone]: 1 } });
        client.close();
      }
      expect(fleet.subscribers).to.equal(0, 'closed channels release their subscription');
    });
  }

  it('all clients in a → 50 % ± 5 pp of their calls local (Envoy\'s rule), the rest to b', async () => {
    const fleet = testFleet({ a: 8 });
    const client = await clientIn('a', 'etcd_weighted_round_robin', fleet);
    const result = await runCalls(client, 2000, 8);
    expect(failedCount(result)).to.equal(0);
    expect(zoneShare(result, 'a')).to.be.closeTo(0.5, 0.05);
    expect(balancerFor(addresses())!.zoneRouting!.shares).to.deep.equal({ a: 0.5, b: 0.5 });
  });

  it('the fleet answers late and changes: shares follow (endpoint census until then)', async () => {
    const fleet = testFleet();
    const client = await clientIn('a', 'etcd_least_request', fleet);
    expect(balancerFor(addresses())!.zoneRouting).to.deep.equal({ localZone: 'a', callersFrom: 'endpoints', shares: { a: 1 } });
    expect(zoneShare(await runCalls(client, 300, 4), 'a')).to.equal(1);
    fleet.set({ a: 9, b: 1 });
    await waitFor('fleet view applied', () => balancerFor(addresses())!.zoneRouting!.callersFrom === 'fleet');
    // up(a) = 50 % < 90 %: local 5/9, spill 4/9 to b.
    expect(balancerFor(addresses())!.zoneRouting!.shares.a).to.be.closeTo(5 / 9, 1e-9);
    const result = await runCalls(client, 2000, 8);
    expect(zoneShare(result, 'a')).to.be.closeTo(5 / 9, 0.05);
  });

  it('2 of zone a\'s 3 replicas gone, clients split evenly → no failed call, the survivor gets ≈ 50 % of zone a\'s calls', async () => {
    const fleet = testFleet({ a: 4, b: 4 });
    const client = await clientIn('a', 'etcd_weighted_round_robin', fleet);
    const [a1, a2, a3] = servers;
    // Load runs while the two go down (each is drained gracefully, as a registry shutdown would).
    let running = true;
    const during: RunResult[] = [];
    const load = (async () => {
      while (running) during.push(await runCalls(client, 100, 4));
    })();
    await Promise.all([a1.stop(2000), a2.stop(2000)]);
    await waitFor('a1, a2 not READY', () => balancerFor(addresses())!.endpoints.filter(e => e.state === 'READY').length === 4);
    running = false;
    await load;
    expect(during.reduce((n, r) => n + failedCount(r), 0)).to.equal(0);
    const result = await runCalls(client, 2000, 8);
    expect(failedCount(result)).to.equal(0);
    expect(result.byServer.get('a3')! / result.ok).to.be.closeTo(0.5, 0.05);
    expect(zoneShare(result, 'b')).to.be.closeTo(0.5, 0.05);
    expect(balancerFor(addresses())!.zoneRouting!.shares).to.deep.equal({ a: 0.5, b: 0.5 });
    // Restart them for later cases (same ports).
    servers[0] = await startEchoServer({ name: 'a1', address: a1.address });
    servers[1] = await startEchoServer({ name: 'a2', address: a2.address });
    expect(a3.calls).to.be.greaterThan(0);
  });

  it('composes: draining, a failing replica skipped by retries, outlier_detection as parent', async () => {
    const fleet = testFleet({ a: 4, b: 4 });
    const [a1, a2] = servers;
    a2.setBehaviour({ failRate: 1 });
    const before = new Map(servers.map(s => [s.name, s.calls]));
    const lbConfig = { outlier_detection: { child_policy: [{ etcd_weighted_round_robin: {} }] } };
    const interceptors = [createRetryInterceptor({ random: seededRandom(7), maxTokens: 1000 })];
    try {
      const client = await clientIn('a', lbConfig, fleet, { interceptors }, { a1: 0 });
      const result = await runCalls(client, 900, 8);
      expect(failedCount(result)).to.equal(0);
      expect(a1.calls - before.get('a1')!).to.equal(0, 'a1 drains');
      expect(result.byServer.get('a2') ?? 0).to.equal(0);
      // Serving in a: a2, a3 of 5 serving (40 %) < 50 % of callers → 80 % local, 20 % spill to b.
      expect(balancerFor(addresses())!.zoneRouting!.shares.a).to.be.closeTo(0.8, 1e-9);
      const b = zoneShare(result, 'b');
      expect(b).to.be.greaterThan(0.1);
      expect(b).to.be.lessThan(0.35);
    } finally {
      a2.setBehaviour({});
    }
  });

  it('no zone declared: zone routing is off (calls spread over every zone, no fleet subscription)', async () => {
    const fleet = testFleet({ a: 8 });
    const target = createStaticTarget(servers.map(s => ({ address: s.address, metadata: { zone: s.name[0] } })), { attributes: fleet.attributes });
    targets.push(target);
    expect(getLocality()).to.equal(undefined);
    const client = makeClient(target.target, { etcd_weighted_round_robin: {} });
    clients.push(client);
    await runCalls(client, 1, 1);
    await waitForEndpoints(addresses());
    const result = await runCalls(client, 600, 8);
    expect(zoneShare(result, 'a')).to.be.closeTo(0.5, 0.02);
    expect(fleet.subscribers).to.equal(0);
    expect(balancerFor(addresses())!.zoneRouting).to.equal(undefined);
  });

  it('with tagRouting: each tag\'s tier is split by zone, and inspectBalancers() shows every tag\'s shares', async () => {
    resetLocalityForTests();
    setLocality({ zone: 'a' });
    const fleet = testFleet({ a: 8 });
    // Canaries only in zone b (b1, b2); untagged: a1, a2, a3 and b3.
    const canary = new Set(['b1', 'b2']);
    const target = createStaticTarget(
      servers.map(s => ({ address: s.address, metadata: { zone: s.name[0], ...(canary.has(s.name) ? { tag: 'canary' } : {}) } })),
      { attributes: fleet.attributes },
    );
    const client = makeClient(target.target, { etcd_weighted_round_robin: { tagRouting: {} } });
    targets.push(target);
    clients.push(client);
    await runCalls(client, 1, 1);
    await waitForEndpoints(addresses());
    await waitFor('fleet view applied', () => balancerFor(addresses())!.zoneRouting!.callersFrom === 'fleet');
    // Every caller in a: untagged, up(a) = 3/4 < 100 % keeps 3/4 local; the canaries have no endpoint in a.
    expect(balancerFor(addresses())!.zoneRouting).to.deep.equal({
      localZone: 'a', callersFrom: 'fleet', shares: { a: 0.75, b: 0.25 }, sharesByTag: { '': { a: 0.75, b: 0.25 }, canary: { b: 1 } },
    });
    const tagged = await runCalls(client, 200, 4, () => ({ metadata: withTag('canary') }));
    expect(failedCount(tagged)).to.equal(0);
    expect([...tagged.byServer.keys()].sort()).to.deep.equal(['b1', 'b2']);
    const plain = await runCalls(client, 2000, 8);
    expect(failedCount(plain)).to.equal(0);
    expect(plain.byServer.has('b1') || plain.byServer.has('b2')).to.equal(false);
    expect(zoneShare(plain, 'a')).to.be.closeTo(0.75, 0.05);
  });
});
