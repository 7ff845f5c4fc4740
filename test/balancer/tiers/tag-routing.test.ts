/**
 * Tag routing over real servers, for every etcd_* policy: tagged calls reach
 * only their tag's replicas, untagged calls only untagged ones; fallback to
 * untagged (no failed call) or UNAVAILABLE naming the tag with `force`; inside
 * each priority tier; a tag change of a live endpoint moves it.
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { EtcdLeastRequestConfig } from '../../../src/balancer/policies/least-request';
import { unary } from '../../support/echo-proto';
import { createRetryInterceptor } from '../../../src/interceptor/retry-interceptor';
import { seededRandom, waitFor } from '../../support/wait';
import { LOCAL_SUBCHANNEL_POOL, useBalancerHarness } from '../support/harness';
import { failedCount, runCalls, waitForEndpoints } from '../support/load';
import { type StaticEndpoint } from '../support/static-resolver';

const POLICIES: Array<[string, object]> = [
  ['etcd_weighted_round_robin', {}],
  ['etcd_weighted_random', {}],
  ['etcd_least_request', {}],
  ['etcd_peak_ewma', {}],
  ['etcd_ring_hash', { hashHeader: 'x-user-id' }],
];
const TAG = 'x-route-tag';

function tagged(tag: string | undefined, user = 'u'): grpc.Metadata {
  const metadata = new grpc.Metadata();
  if (tag !== undefined) metadata.set(TAG, tag);
  metadata.set('x-user-id', user);
  return metadata;
}

describe('tag routing (tagRouting) over real servers', function () {
  this.timeout(60_000);
  const { serve, connect } = useBalancerHarness({ channelOptions: LOCAL_SUBCHANNEL_POOL });

  for (const [policy, body] of POLICIES) {
    it(`${policy}: tagged calls reach only their tag, untagged only untagged; no endpoint of the tag → untagged, 0 failed`, async () => {
      const [c1, c2, s1, s2] = await serve(['canary-1', 'canary-2', 'stable-1', 'stable-2']);
      const endpoints: StaticEndpoint[] = [
        { address: c1.address, metadata: { tag: 'canary' } }, { address: c2.address, metadata: { tag: 'canary' } },
        { address: s1.address }, { address: s2.address },
      ];
      const { client, target } = connect(endpoints, { [policy]: { ...body, tagRouting: {} } });
      await runCalls(client, 1, 1);
      await waitForEndpoints(endpoints.map(e => e.address));
      const canary = await runCalls(client, 200, 8, i => ({ metadata: tagged('canary', `u${i}`) }));
      const plain = await runCalls(client, 200, 8, i => ({ metadata: tagged(undefined, `u${i}`) }));
      const unknown = await runCalls(client, 100, 8, i => ({ metadata: tagged('blue', `u${i}`) }));
      expect(failedCount(canary) + failedCount(plain) + failedCount(unknown)).to.equal(0);
      expect([...canary.byServer.keys()].every(s => s.startsWith('canary'))).to.equal(true);
      expect([...plain.byServer.keys()].every(s => s.startsWith('stable'))).to.equal(true);
      expect([...unknown.byServer.keys()].every(s => s.startsWith('stable'))).to.equal(true);
      // The canaries go: tagged calls fall back to untagged ones, none fails.
      target.set(endpoints.slice(2));
      await waitFor('canaries dropped', async () => [...(await runCalls(client, 20, 4, () => ({ metadata: tagged('canary') }))).byServer.keys()].every(s => s.startsWith('stable')));
      const fallback = await runCalls(client, 200, 8, i => ({ metadata: tagged('canary', `u${i}`) }));
      expect(failedCount(fallback)).to.equal(0);
      expect([...fallback.byServer.keys()].every(s => s.startsWith('stable'))).to.equal(true);
    });
  }

  it('force: a tagged call with no endpoint of its tag fails UNAVAILABLE naming the tag; untagged calls use any endpoint when none is untagged', async () => {
    const [c1, s1] = await serve(['canary-1', 'stable-1']);
    const endpoints: StaticEndpoint[] = [{ address: c1.address, metadata: { tag: 'canary' } }, { address: s1.address, metadata: { tag: 'stable' } }];
    const { client } = connect(endpoints, { etcd_least_request: { tagRouting: { force: true } } });
    await runCalls(client, 1, 1, () => ({ metadata: tagged('canary') }));
    await waitForEndpoints(endpoints.map(e => e.address));
    const error = await unary(client, 'x', {}, tagged('blue')).then(() => undefined, (err: grpc.ServiceError) => err);
    expect(error?.code).to.equal(grpc.status.UNAVAILABLE);
    expect(error?.details).to.equal("etcd_least_request: no usable endpoint tagged 'blue' (tagRouting.force)");
    const stable = await runCalls(client, 50, 4, () => ({ metadata: tagged('stable') }));
    expect(stable.byServer.get('stable-1')).to.equal(50);
    // No untagged endpoint: an untagged call goes to one anyway.
    const plain = await runCalls(client, 50, 4, () => ({ metadata: tagged(undefined) }));
    expect(failedCount(plain)).to.equal(0);
  });

  it('applies inside the priority tier: a tag only in the standby tier does not pull calls off the primary; a tag change moves a live endpoint', async () => {
    const [p1, p2, standby] = await serve(['primary-1', 'primary-2', 'standby-canary']);
    const endpoints: StaticEndpoint[] = [
      { address: p1.address }, { address: p2.address }, { address: standby.address, priority: 1, metadata: { tag: 'canary' } },
    ];
    const { client, target } = connect(endpoints, { etcd_weighted_round_robin: { tagRouting: { header: TAG } } });
    await runCalls(client, 1, 1);
    await waitForEndpoints(endpoints.map(e => e.address));
    const canary = await runCalls(client, 100, 4, () => ({ metadata: tagged('canary') }));
    expect(canary.byServer.get('standby-canary') ?? 0).to.equal(0);
    expect(failedCount(canary)).to.equal(0);
    // primary-2 becomes a canary (metadata update, same connection).
    target.set([{ address: p1.address }, { address: p2.address, metadata: { tag: 'canary' } }, endpoints[2]]);
    await waitFor('primary-2 tagged', async () => (await runCalls(client, 10, 2, () => ({ metadata: tagged('canary') }))).byServer.get('primary-2') === 10);
    const after = await runCalls(client, 100, 4, () => ({ metadata: tagged('canary') }));
    const plain = await runCalls(client, 100, 4, () => ({ metadata: tagged(undefined) }));
    expect(after.byServer.get('primary-2')).to.equal(100);
    expect(plain.byServer.get('primary-1')).to.equal(100);
  });

  it('a retry stays within the call\'s tag: a failing canary\'s calls are retried on the other canary, never on an untagged replica', async () => {
    const [bad, good, s1] = await serve(['canary-bad', 'canary-good', 'stable-1']);
    bad.setBehaviour({ failRate: 1 });
    const endpoints: StaticEndpoint[] = [
      { address: bad.address, metadata: { tag: 'canary' } }, { address: good.address, metadata: { tag: 'canary' } }, { address: s1.address },
    ];
    const { client } = connect(endpoints, { etcd_weighted_round_robin: { tagRouting: {} } }, {
      interceptors: [createRetryInterceptor({ random: seededRandom(9), maxTokens: 1000 })],
    });
    await runCalls(client, 1, 1);
    await waitForEndpoints(endpoints.map(e => e.address));
    const result = await runCalls(client, 100, 4, () => ({ metadata: tagged('canary') }));
    expect(failedCount(result)).to.equal(0);
    expect(result.byServer.get('canary-good')).to.equal(100);
    expect(bad.calls).to.be.greaterThan(0);
    expect(s1.calls).to.be.at.most(1);
  });

  it('rejects bad tagRouting values naming the field and value', () => {
    expect(() => EtcdLeastRequestConfig.createFromJson({ tagRouting: { header: 'X-Tag' } })).to.throw(/tagRouting\.header must be .*"X-Tag"/);
    expect(() => EtcdLeastRequestConfig.createFromJson({ tagRouting: { force: 'yes' } })).to.throw(/tagRouting\.force must be a boolean, got "yes"/);
    expect(() => EtcdLeastRequestConfig.createFromJson({ tagRouting: true })).to.throw(/tagRouting must be an object/);
    const config = EtcdLeastRequestConfig.createFromJson({ tagRouting: {} });
    expect(config.toJsonObject()).to.deep.equal({ etcd_least_request: { choiceCount: 2, tagRouting: { header: 'x-route-tag', force: false } } });
  });
});
