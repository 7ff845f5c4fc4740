/**
 * `etcd_subset` as a policy: which endpoints its child gets (per tier, A68 order,
 * aperture slices with fractional weights), what a fleet change changes, config
 * validation, and, over a real channel, `outlier_detection` as its parent.
 */
import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import { inspectBalancers } from '../../../src/balancer/pool/balancer-diagnostics';
import { DEFAULT_ENDPOINT_ATTRIBUTES, ENDPOINT_ATTRIBUTES_KEY, type EndpointAttributes } from '../../../src/discovery/endpoint-attributes';
import { apertureSlice } from '../../../src/balancer/subset/subset-aperture';
import { EtcdSubsetLoadBalancer } from '../../../src/balancer/subset/subset-balancer';
import { EtcdSubsetConfig } from '../../../src/balancer/subset/subset-config';
import { xxhash64 } from '../../../src/balancer/subset/xxhash64';
import { CLIENT_REGISTRY_SOURCE_KEY } from '../../../src/discovery/client-registry-source';
import { statusOrFromValue, type ChannelControlHelper, type Endpoint, type SubchannelInterface } from '../../../src/common/grpc-experimental';
import { createRetryInterceptor } from '../../../src/interceptor/retry-interceptor';
import { register } from '../../../src/register';
import { FakeClientRegistrySource, FakeSubchannelPool } from '../../../bench/fake-channel';
import { startEchoServer, type EchoServer } from '../../support/echo-server';
import { unary } from '../../support/echo-proto';
import { captureGrpcLog } from '../../support/grpc-log';
import { waitFor } from '../../support/wait';
import { startHealthEchoServer, type HealthEchoServer } from '../support/health-service';
import { makeClient, runCalls } from '../support/load';
import { createStaticTarget } from '../support/static-resolver';

const CHILD = [{ etcd_weighted_round_robin: {} }];

function address(i: number): string {
  return `127.0.0.1:${20_000 + i}`;
}

function endpointsOf(indexes: number[]): Endpoint[] {
  return indexes.map(i => ({ addresses: [{ host: '127.0.0.1', port: 20_000 + i }] }));
}

/** The first k of `addresses` in (XXH64(address, seed) >> 11, address) order. */
function hashOrder(addresses: string[], seed: bigint): string[] {
  const rank = (a: string): bigint => xxhash64(a, seed) >> 11n;
  return [...addresses].sort((a, b) => (rank(a) < rank(b) ? -1 : rank(a) > rank(b) ? 1 : a < b ? -1 : 1));
}

const view = FakeClientRegistrySource.view;

describe('subset: the etcd_subset policy', () => {
  before(() => register());

  function harness(randomSeed: bigint) {
    const pool = new FakeSubchannelPool(grpc.connectivityState.READY);
    const helper: ChannelControlHelper = {
      createSubchannel: a => pool.obtain('host' in a ? `${a.host}:${a.port}` : a.path) as unknown as SubchannelInterface,
      updateState: () => undefined,
      requestReresolution: () => undefined,
      addChannelzChild: () => undefined,
      removeChannelzChild: () => undefined,
    };
    const balancer = new EtcdSubsetLoadBalancer(helper, { randomSeed });
    return { pool, balancer, inUse: () => pool.inUse().sort() };
  }

  function config(subsetSize: number): EtcdSubsetConfig {
    return EtcdSubsetConfig.createFromJson({ subsetSize, childPolicy: CHILD });
  }

  it('A68 random subsetting without a fleet: the first k by XXH64(address, seed), each priority tier on its own', () => {
    const { balancer, inUse } = harness(42n);
    const primaries = Array.from({ length: 20 }, (_v, i) => i);
    const standbys = Array.from({ length: 20 }, (_v, i) => 100 + i);
    const attributes = new Map<string, EndpointAttributes>();
    for (const i of standbys) attributes.set(address(i), { ...DEFAULT_ENDPOINT_ATTRIBUTES, priority: 1 });
    balancer.updateAddressList(statusOrFromValue(endpointsOf([...primaries, ...standbys])), config(3), { [ENDPOINT_ATTRIBUTES_KEY]: attributes }, 'test');
    const expected = [...hashOrder(primaries.map(address), 42n).slice(0, 3), ...hashOrder(standbys.map(address), 42n).slice(0, 3)].sort();
    expect(inUse()).to.deep.equal(expected);
    expect(balancer.mode).to.equal('random');
    // Another seed, another subset (the point of a per-client seed).
    const other = harness(7n);
    other.balancer.updateAddressList(statusOrFromValue(endpointsOf(primaries)), config(3), {}, 'test');
    expect(other.inUse()).to.deep.equal(hashOrder(primaries.map(address), 7n).slice(0, 3).sort());
    // One endpoint leaves: a random subset loses only what left (replaced by the next in order).
    const kept = hashOrder(primaries.map(address), 42n);
    const gone = Number(kept[0].split(':')[1]) - 20_000;
    balancer.updateAddressList(statusOrFromValue(endpointsOf([...primaries.filter(i => i !== gone), ...standbys])), config(3), { [ENDPOINT_ATTRIBUTES_KEY]: attributes }, 'test');
    expect(inUse().filter(a => primaries.map(address).includes(a))).to.deep.equal(kept.slice(1, 4).sort());
    // One leaves and one joins in the same update (same list length): the leaver is gone for good.
    const swapped = [...primaries.filter(i => i !== gone && i !== Number(kept[1].split(':')[1]) - 20_000), 50];
    balancer.updateAddressList(statusOrFromValue(endpointsOf([...swapped, ...standbys])), config(3), { [ENDPOINT_ATTRIBUTES_KEY]: attributes }, 'test');
    expect(inUse().filter(a => !standbys.map(address).includes(a))).to.deep.equal(hashOrder(swapped.map(address), 42n).slice(0, 3).sort());
    expect(inUse()).to.not.include(kept[1]);
    balancer.destroy();
    other.balancer.destroy();
    expect(inUse()).to.deep.equal([]);
  });

  it('deterministic with a fleet view: the aperture slice over the shared order, fractional weights at its edges', () => {
    const { balancer, inUse } = harness(42n);
    const fleet = new FakeClientRegistrySource(view(1, 3));
    const all = Array.from({ length: 7 }, (_v, i) => i);
    balancer.updateAddressList(statusOrFromValue(endpointsOf(all)), config(2), { [CLIENT_REGISTRY_SOURCE_KEY]: fleet }, 'test');
    expect(balancer.mode).to.equal('deterministic');
    const ring = hashOrder(all.map(address), 0n);
    const slice = apertureSlice(1, 3, 7, 2);
    expect(inUse()).to.deep.equal(slice.map(m => ring[m.index]).sort());
    // The child got the fractions as weights (7/3 backends' worth: 2/3, 1, 2/3).
    const child = inspectBalancers().find(b => b.endpoints.length === slice.length && b.endpoints.every(e => inUse().includes(e.address)));
    const weights = Object.fromEntries(child!.endpoints.map(e => [e.address, e.weight]));
    for (const m of slice) expect(weights[ring[m.index]]).to.be.closeTo(m.fraction, 1e-9);

    // The fleet grows to 7 clients: this one (index 1) now covers exactly 2 whole backends.
    fleet.set(view(1, 7));
    const wider = apertureSlice(1, 7, 7, 2);
    expect(wider.map(m => m.fraction)).to.deep.equal([1, 1]);
    expect(inUse()).to.deep.equal(wider.map(m => ring[m.index]).sort());
    // Back to no view: random subsetting again.
    fleet.set({ selfIndex: undefined, clientCount: 6, zoneCounts: new Map() });
    expect(balancer.mode).to.equal('random');
    expect(inUse()).to.deep.equal(hashOrder(all.map(address), 42n).slice(0, 2).sort());
    balancer.destroy();
  });

  it('validates its config: subsetSize required, childPolicy parsed by grpc-js, unknown fields named once', () => {
    const log = captureGrpcLog();
    try {
      expect(() => EtcdSubsetConfig.createFromJson({ childPolicy: CHILD })).to.throw(/subsetSize must be an integer in \[1, 100000\] \(required\), got undefined/);
      expect(() => EtcdSubsetConfig.createFromJson({ subsetSize: 0, childPolicy: CHILD })).to.throw(/subsetSize/);
      expect(() => EtcdSubsetConfig.createFromJson({ subsetSize: 2 })).to.throw(/childPolicy must be a non-empty list/);
      expect(() => EtcdSubsetConfig.createFromJson({ subsetSize: 2, childPolicy: [{ no_such_policy: {} }] })).to.throw(/no usable childPolicy entry: Unrecognized load balancing config name no_such_policy/);
      expect(() => EtcdSubsetConfig.createFromJson({ subsetSize: 2, childPolicy: [{ etcd_least_request: { choiceCount: -1 } }] })).to.throw(/etcd_least_request: choiceCount/);
      const fallback = EtcdSubsetConfig.createFromJson({ subsetSize: 2, childPolicy: [{ no_such_policy: {} }, { etcd_least_request: {} }] });
      expect(fallback.childPolicy.getLoadBalancerName()).to.equal('etcd_least_request');
      EtcdSubsetConfig.createFromJson({ subsetSize: 2, childPolicy: CHILD, subset_size: 3 });
      EtcdSubsetConfig.createFromJson({ subsetSize: 2, childPolicy: CHILD, subset_size: 3 });
      expect(log.lines.filter(l => l.includes("unknown field 'subset_size'"))).to.have.length(1);
      expect(fallback.toJsonObject()).to.deep.equal({ etcd_subset: { subsetSize: 2, childPolicy: [{ etcd_least_request: { choiceCount: 2 } }] } });
    } finally {
      log.restore();
    }
  });

  describe('over a real channel', () => {
    const servers: EchoServer[] = [];
    const healthServers: HealthEchoServer[] = [];
    afterEach(async () => {
      await Promise.all(servers.splice(0).map(s => s.stop(100)));
      await Promise.all(healthServers.splice(0).map(s => s.echo.stop(100)));
    });

    it('the child\'s health checking and the retry skip hook work inside the subset', async () => {
      for (let i = 0; i < 6; i++) healthServers.push(await startHealthEchoServer({ name: `h${i}` }));
      const target = createStaticTarget(healthServers.map(s => ({ address: s.address })));
      const client = makeClient(target.target, {
        etcd_subset: { subsetSize: 3, childPolicy: [{ etcd_least_request: { healthCheck: { serviceName: '' } } }] },
      }, { interceptors: [createRetryInterceptor()] });
      try {
        const first = await runCalls(client, 90, 3);
        const subset = [...first.byServer.keys()].sort();
        expect(subset, 'a subset of 3').to.have.length(3);
        const byName = (name: string): HealthEchoServer => healthServers.find(s => s.echo.name === name)!;
        // One member NOT_SERVING (the child's health watch drops it), one failing every call (the retry goes elsewhere).
        byName(subset[0]).setStatus('NOT_SERVING');
        byName(subset[1]).echo.setBehaviour({ failRate: 1, failCode: grpc.status.UNAVAILABLE });
        const notServing = byName(subset[0]).echo;
        const failing = byName(subset[1]).echo;
        const failingCalls = failing.calls;
        let okDuringChange = 0;
        let callsDuringChange = 0;
        await waitFor('the NOT_SERVING member out of rotation', async () => {
          const before = notServing.calls;
          okDuringChange += (await runCalls(client, 12, 3)).ok;
          callsDuringChange += 12;
          return notServing.calls === before;
        });
        const result = await runCalls(client, 150, 3);
        expect(failing.calls - failingCalls, 'the failing member was tried').to.be.at.least(1);
        expect(okDuringChange + result.ok, 'no failed call: each failure retried on another member').to.equal(callsDuringChange + 150);
        expect([...result.byServer.keys()]).to.deep.equal([subset[2]]);
        // Only the members of the subset were ever called.
        expect(healthServers.filter(s => !subset.includes(s.echo.name)).every(s => s.echo.calls === 0)).to.equal(true);
        console.log(`      subset ${subset.join(',')}: ${subset[0]} NOT_SERVING, ${subset[1]} failing (tried ${failing.calls - failingCalls}×, every one retried elsewhere)`);
      } finally {
        client.close();
        target.dispose();
      }
    });

    it('under outlier_detection: calls reach exactly subsetSize primaries, and the standby subset when primaries go', async () => {
      for (let i = 0; i < 8; i++) servers.push(await startEchoServer({ name: `s${i}` }));
      const endpoints = servers.map((s, i) => ({ address: s.address, priority: i < 5 ? 0 : 1 }));
      const target = createStaticTarget(endpoints);
      const client = makeClient(target.target, {
        outlier_detection: {
          child_policy: [{ etcd_subset: { subsetSize: 2, childPolicy: [{ etcd_least_request: {} }] } }],
          failurePercentageEjection: {},
        },
      });
      try {
        const result = await runCalls(client, 200, 4);
        expect(result.ok).to.equal(200);
        expect([...result.byServer.keys()].every(name => Number(name.slice(1)) < 5), 'primaries only').to.equal(true);
        expect(result.byServer.size).to.equal(2);
        // Primaries gone: the standby tier's subset (2 of 3) takes over.
        target.set(endpoints.filter(e => e.priority === 1));
        await waitFor('a call on a standby', async () => Number((await unary(client)).server.slice(1)) >= 5);
        const failover = await runCalls(client, 200, 4);
        expect(failover.ok).to.equal(200);
        expect([...failover.byServer.keys()].every(name => Number(name.slice(1)) >= 5)).to.equal(true);
        expect(failover.byServer.size).to.equal(2);
      } finally {
        client.close();
        target.dispose();
      }
    });
  });
});
