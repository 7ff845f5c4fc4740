/**
 * etcd_ring_hash over real grpc-js servers: stickiness, movement on removal,
 * the load bound, retries to the next endpoint clockwise, and config errors.
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { EtcdRingHashConfig } from '../../../src/balancer/policies/ring-hash';
import { buildRing, lowerBound, ringHash } from '../../../src/balancer/ring/hash-ring';
import { createRetryInterceptor } from '../../../src/interceptor/retry-interceptor';
import { type EchoClient } from '../../support/echo-proto';
import { seededRandom, waitFor } from '../../support/wait';
import { LOCAL_SUBCHANNEL_POOL, named, useBalancerHarness } from '../support/harness';
import { failedCount, runCalls, waitForEndpoints } from '../support/load';

const HEADER = 'x-user-id';

function keyed(key: string | undefined): grpc.Metadata {
  const metadata = new grpc.Metadata();
  if (key !== undefined) metadata.set(HEADER, key);
  return metadata;
}

describe('etcd_ring_hash over real servers', function () {
  this.timeout(60_000);
  const harness = useBalancerHarness({ channelOptions: LOCAL_SUBCHANNEL_POOL });
  const { serve, connect } = harness;

  /** Which server each key's call reached (8 in flight). */
  function ownersOf(client: EchoClient, keys: string[]): Promise<string[]> {
    return ownersOfConcurrent(client, keys, 8);
  }

  async function ownersOfConcurrent(client: EchoClient, keys: string[], concurrency: number): Promise<string[]> {
    const owners = new Array<string>(keys.length);
    let next = 0;
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < keys.length) {
        const i = next++;
        owners[i] = await new Promise<string>((resolve, reject) => {
          client.unary({ message: 'm' }, keyed(keys[i]), (err, reply) => (err ? reject(err) : resolve(reply!.server)));
        });
      }
    }));
    return owners;
  }

  it('sends every call of a key to one replica while the set is stable; removing one moves only its keys', async () => {
    const replicas = await serve(named('r', 5));
    const addresses = replicas.map(r => r.address);
    const { client, target } = connect(addresses, { etcd_ring_hash: { hashHeader: HEADER } });
    await runCalls(client, 1, 1);
    await waitForEndpoints(addresses);
    const keys = Array.from({ length: 400 }, (_, i) => `user-${i}`);
    const first = await ownersOf(client, keys);
    const second = await ownersOf(client, keys);
    expect(second).to.deep.equal(first);
    expect(new Set(first).size).to.equal(5);

    const removed = replicas[2];
    target.set(addresses.filter(a => a !== removed.address).map(address => ({ address })));
    await waitFor('4 endpoints', async () => (await ownersOf(client, keys.slice(0, 50))).every(o => o !== removed.name));
    const after = await ownersOf(client, keys);
    const moved = keys.filter((_, i) => after[i] !== first[i]).length;
    const owned = first.filter(o => o === removed.name).length;
    console.log(`      400 keys over 5 replicas: stable; one removed: ${moved} keys moved, all ${owned} of its own`);
    keys.forEach((k, i) => {
      if (first[i] !== removed.name) expect(after[i], `key ${k}`).to.equal(first[i]);
    });
    expect(moved).to.equal(owned);
  });

  it('a call without the header goes to a random replica', async () => {
    const replicas = await serve(named('r', 3));
    const { client } = connect(replicas.map(r => r.address), { etcd_ring_hash: { hashHeader: HEADER } });
    const result = await runCalls(client, 300, 6);
    expect(failedCount(result)).to.equal(0);
    for (const r of replicas) expect(result.byServer.get(r.name) ?? 0).to.be.greaterThan(50);
  });

  it('loadBound 1.25 keeps a hot key (60 % of calls, 20 in flight) from overloading its owner: busiest ≤ 1.6× the mean; unbounded ≥ 3×', async () => {
    const replicas = await serve(named('r', 5), () => ({ latencyMs: 4 }));
    const addresses = replicas.map(r => r.address);
    const keys = Array.from({ length: 20 }, (_, i) => `key-${i}`);
    const measure = async (config: object): Promise<{ ratio: number; stayed: number }> => {
      const { client } = connect(addresses, { etcd_ring_hash: config });
      await runCalls(client, 20, 5, () => ({ metadata: keyed('warm-up') }));
      await waitForEndpoints(addresses);
      // Each cold key's owner: where its call goes on an idle channel.
      const owners = await ownersOf(client, keys);
      for (const r of replicas) r.calls = 0;
      const random = seededRandom(11);
      const calls = Array.from({ length: 1500 }, () => (random() < 0.6 ? 0 : 1 + Math.floor(random() * 19)));
      const landed = await ownersOfConcurrent(client, calls.map(k => keys[k]), 20);
      const served = replicas.map(r => r.calls);
      const mean = served.reduce((a, b) => a + b, 0) / served.length;
      const cold = calls.map((k, i) => [k, i]).filter(([k]) => k !== 0);
      const stayed = cold.filter(([k, i]) => landed[i] === owners[k]).length / cold.length;
      return { ratio: Math.max(...served) / mean, stayed };
    };
    const bounded = await measure({ hashHeader: HEADER, loadBound: 1.25 });
    const unbounded = await measure({ hashHeader: HEADER });
    console.log(`      busiest / mean: loadBound 1.25 ${bounded.ratio.toFixed(2)}× (other keys on their owner ${(100 * bounded.stayed).toFixed(1)} %), unbounded ${unbounded.ratio.toFixed(2)}× (${(100 * unbounded.stayed).toFixed(1)} %)`);
    expect(bounded.ratio).to.be.at.most(1.6);
    // The hot key alone is 60 % = 3× the mean (± sampling; ports, so the ring, differ per run): the bench checks ≥ 3× on a fixed ring.
    expect(unbounded.ratio).to.be.at.least(2.8);
    expect(unbounded.stayed).to.equal(1);
  });

  it('retries a failed call on the next distinct replica clockwise from the key', async () => {
    const replicas = await serve(named('r', 4));
    const addresses = replicas.map(r => r.address);
    const ring = buildRing([...addresses].sort().map(address => ({ address, weight: 1 })));
    const sorted = [...addresses].sort();
    const key = 'user-7';
    const start = lowerBound(ring.hashes, ringHash(key));
    const owner = sorted[ring.owners[start]];
    const next = sorted[ring.owners[ring.nextOwnerChange[start]]];
    replicas.find(r => r.address === owner)!.setBehaviour({ failRate: 1 });
    const { client } = connect(addresses, { etcd_ring_hash: { hashHeader: HEADER } }, { interceptors: [createRetryInterceptor({ random: seededRandom(3), maxTokens: 1000 })] });
    await runCalls(client, 1, 1, () => ({ metadata: keyed('warm-up') }));
    await waitForEndpoints(addresses);
    for (const r of replicas) r.calls = 0;
    const result = await runCalls(client, 50, 4, () => ({ metadata: keyed(key) }));
    expect(failedCount(result)).to.equal(0);
    expect(result.byServer.get(replicas.find(r => r.address === next)!.name)).to.equal(50);
    expect(replicas.find(r => r.address === owner)!.calls).to.equal(50);
  });

  it('skips a draining endpoint (weight 0) on the ring, and works as the child of etcd_subset', async () => {
    const replicas = await serve(named('r', 4));
    const addresses = replicas.map(r => r.address);
    const target = harness.target(addresses.map((address, i) => ({ address, weight: i === 0 ? 0 : 1 })));
    const client = harness.client(target, { etcd_ring_hash: { hashHeader: HEADER } });
    const keys = Array.from({ length: 200 }, (_, i) => `user-${i}`);
    const owners = await ownersOf(client, keys);
    expect(owners.filter(o => o === replicas[0].name)).to.have.length(0);

    const subset = harness.client(target, { etcd_subset: { subsetSize: 2, childPolicy: [{ etcd_ring_hash: { hashHeader: HEADER } }] } });
    const first = await ownersOf(subset, keys);
    const second = await ownersOf(subset, keys);
    expect(second).to.deep.equal(first);
    expect(new Set(first).size).to.be.at.most(2);
  });

  it('rejects bad configs naming the field and value', () => {
    expect(() => EtcdRingHashConfig.createFromJson({})).to.throw(/hashHeader must be .*got undefined/);
    expect(() => EtcdRingHashConfig.createFromJson({ hashHeader: 'X-User' })).to.throw(/hashHeader .*"X-User"/);
    expect(() => EtcdRingHashConfig.createFromJson({ hashHeader: 'k-bin' })).to.throw(/not ending in -bin/);
    expect(() => EtcdRingHashConfig.createFromJson({ hashHeader: 'k', loadBound: 0.9 })).to.throw(/loadBound must be a number in \[1, 100\].*0\.9/);
    expect(() => EtcdRingHashConfig.createFromJson({ hashHeader: 'k', minRingSize: 2048, maxRingSize: 1024 })).to.throw(/minRingSize \(2048\) must not exceed maxRingSize \(1024\)/);
    expect(() => EtcdRingHashConfig.createFromJson({ hashHeader: 'k', minRingSize: 0 })).to.throw(/minRingSize must be an integer in \[1, 8388608\], got 0/);
    const config = EtcdRingHashConfig.createFromJson({ hashHeader: 'k', loadBound: 1.25 });
    expect(config.toJsonObject()).to.deep.equal({ etcd_ring_hash: { hashHeader: 'k', minRingSize: 1024, maxRingSize: 8388608, loadBound: 1.25 } });
  });
});
