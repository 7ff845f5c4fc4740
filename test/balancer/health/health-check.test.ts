import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { createRetryInterceptor } from '../../../src/interceptor/retry-interceptor';
import { unary } from '../../support/echo-proto';
import { seededRandom, waitFor } from '../../support/wait';
import { LOCAL_SUBCHANNEL_POOL, named, useBalancerHarness } from '../support/harness';
import { balancerFor, failedCount, runCalls, stateOf, waitForEndpoints } from '../support/load';

const POLICIES = ['etcd_weighted_round_robin', 'etcd_weighted_random', 'etcd_least_request', 'etcd_peak_ewma'];
const HEALTH = { healthCheck: { serviceName: '' } };

describe('client-side health checking: pickers use READY and healthy endpoints only', function () {
  this.timeout(60_000);
  const { serveHealth, connect } = useBalancerHarness({ channelOptions: LOCAL_SUBCHANNEL_POOL });

  for (const policy of POLICIES) {
    it(`${policy}: a replica flipped to NOT_SERVING under load gets no call once the client has seen it, no call fails, and it is used again after SERVING`, async () => {
      const servers = await serveHealth(named('r', 3), () => ({ latencyMs: 1 }));
      const addresses = servers.map(s => s.address);
      const { client } = connect(addresses, { [policy]: HEALTH });
      await runCalls(client, 1, 1);
      await waitForEndpoints(addresses);
      const [flipped, ...others] = servers;

      let running = true;
      let failed = 0;
      let chunks = 0;
      const loading = (async () => {
        while (running) {
          failed += failedCount(await runCalls(client, 40, 8));
          chunks++;
        }
      })();
      try {
        await waitFor('load on every replica', () => servers.every(s => s.echo.calls > 20));
        const atFlip = flipped.echo.calls;
        flipped.setStatus('NOT_SERVING');
        const seenMs = await waitFor('client sees NOT_SERVING', () => stateOf(addresses, flipped.address) !== 'READY', { intervalMs: 1 });
        // Calls picked before the client saw the flip may still land: let the chunk in progress finish.
        const chunkAtSeen = chunks;
        await waitFor('calls picked before the flip was seen have ended', () => chunks >= chunkAtSeen + 1);
        const settled = flipped.echo.calls;
        const othersAtSettled = others.reduce((n, s) => n + s.echo.calls, 0);
        await waitFor('600 more calls on the others', () => others.reduce((n, s) => n + s.echo.calls, 0) >= othersAtSettled + 600);
        expect(flipped.echo.calls, 'calls reaching the NOT_SERVING replica after the client saw it').to.equal(settled);
        expect(stateOf(addresses, flipped.address)).to.equal('TRANSIENT_FAILURE');

        flipped.setStatus('SERVING');
        const backMs = await waitFor('the replica serves again', () => flipped.echo.calls >= settled + 20);
        running = false;
        await loading;
        console.log(`      ${policy}: NOT_SERVING seen by the client ${seenMs} ms after the flip; calls reaching the replica after the flip ${settled - atFlip} (after it was seen: 0 of 600+); back in use ${backMs} ms after SERVING; failed calls ${failed}`);
        expect(failed).to.equal(0);
      } finally {
        running = false;
        await loading;
      }
    });
  }

  it('queues calls at startup until the first health answer, and never sends one to a replica that starts NOT_SERVING', async () => {
    const [serving, notServing] = await serveHealth(named('r', 2), i => ({ statuses: { '': i === 0 ? 'SERVING' : 'NOT_SERVING' } }));
    const { client } = connect([serving.address, notServing.address], { etcd_weighted_round_robin: HEALTH });
    // Issued at once, before any connection exists.
    const result = await runCalls(client, 200, 20);
    expect(failedCount(result)).to.equal(0);
    expect(serving.echo.calls).to.equal(200);
    expect(notServing.echo.calls).to.equal(0);
    expect(notServing.activeWatches).to.equal(1);
  });

  it('with panicThresholdPercent 0, fails calls fast, naming the health status, when every replica is NOT_SERVING; serves again when one recovers', async () => {
    const servers = await serveHealth(named('r', 2), () => ({ statuses: { '': 'NOT_SERVING' } }));
    const addresses = servers.map(s => s.address);
    const { client } = connect(addresses, { etcd_least_request: { ...HEALTH, panicThresholdPercent: 0 } });
    // The first call waits while the connections come up and the health answers arrive, then fails.
    const error = await unary(client, 'x', { deadline: Date.now() + 5000 }).then(() => undefined, (err: grpc.ServiceError) => err);
    expect(balancerFor(addresses)?.endpoints.map(e => e.state)).to.deep.equal(['TRANSIENT_FAILURE', 'TRANSIENT_FAILURE']);
    expect(error?.code).to.equal(grpc.status.UNAVAILABLE);
    expect(error?.details).to.match(/^etcd_least_request: no healthy endpoint\. Last error: 127\.0\.0\.1:\d+: health NOT_SERVING$/);
    servers[1].setStatus('SERVING');
    const recoveredMs = await waitFor('a call succeeds', () => unary(client, 'x', { deadline: Date.now() + 2000 }).then(() => true, () => false));
    console.log(`      all NOT_SERVING: calls fail with "${error?.details}"; first success ${recoveredMs} ms after one went SERVING`);
    const result = await runCalls(client, 100, 4);
    expect(failedCount(result)).to.equal(0);
    expect(servers[0].echo.calls).to.equal(0);
  });

  it('leaves health alone when the config has no healthCheck (off, as in gRFC A17)', async () => {
    const servers = await serveHealth(named('r', 2), i => ({ statuses: { '': i === 0 ? 'NOT_SERVING' : 'SERVING' } }));
    const addresses = servers.map(s => s.address);
    const { client } = connect(addresses, { etcd_weighted_round_robin: {} });
    await runCalls(client, 1, 1);
    await waitForEndpoints(addresses);
    const before = servers[0].echo.calls;
    const result = await runCalls(client, 100, 4);
    expect(failedCount(result)).to.equal(0);
    expect(servers[0].echo.calls - before).to.equal(50);
    expect(servers[0].watchesOpened + servers[1].watchesOpened).to.equal(0);
  });

  it('retry skip hook: a call failing on one replica is retried on a healthy one, never on the NOT_SERVING one', async () => {
    const [failing, notServing, healthy] = await serveHealth(named('r', 3), i => (i === 0 ? { failRate: 1 } : i === 1 ? { statuses: { '': 'NOT_SERVING' } } : {}));
    const addresses = [failing.address, notServing.address, healthy.address];
    const { client } = connect(addresses, { etcd_weighted_round_robin: HEALTH }, { interceptors: [createRetryInterceptor({ random: seededRandom(5), maxTokens: 1000 })] });
    await runCalls(client, 1, 1);
    await waitFor('replicas connected and health known', () => ['READY', 'TRANSIENT_FAILURE', 'READY'].every((s, i) => stateOf(addresses, addresses[i]) === s));
    const healthyBefore = healthy.echo.calls;
    const result = await runCalls(client, 300, 8);
    console.log(`      retry with one failing, one NOT_SERVING, one healthy replica: ${result.ok} ok, ${failedCount(result)} failed; failing replica tried ${failing.echo.calls}x, NOT_SERVING ${notServing.echo.calls}x`);
    expect(failedCount(result)).to.equal(0);
    expect(failing.echo.calls).to.be.greaterThan(0);
    expect(notServing.echo.calls).to.equal(0);
    expect(healthy.echo.calls - healthyBefore).to.equal(300);
  });

  // Panic threshold off: with 1 of 3 healthy the default (50 %) would use all three, by design.
  it('composes with outlier_detection as parent: ejection and health both take replicas out, no call fails on a healthy one', async () => {
    const [failing, flipped, healthy] = await serveHealth(named('r', 3), i => ({ failRate: i === 0 ? 1 : 0, latencyMs: 1 }));
    const addresses = [failing.address, flipped.address, healthy.address];
    const { client } = connect(addresses, {
      outlier_detection: {
        interval: { seconds: 0, nanos: 300_000_000 },
        base_ejection_time: { seconds: 30, nanos: 0 },
        max_ejection_percent: 50,
        failure_percentage_ejection: { threshold: 50, enforcement_percentage: 100, minimum_hosts: 2, request_volume: 3 },
        child_policy: [{ etcd_least_request: { ...HEALTH, panicThresholdPercent: 0 } }],
      },
    });
    let calls = 0;
    const ejectedMs = await waitFor('failing replica ejected', async () => {
      const r = await runCalls(client, 50, 8);
      calls += 50;
      // Only the ejected replica may fail: a wrapper left in a pick would break every call.
      expect(failedCount(r)).to.be.at.most(failing.echo.calls);
      return stateOf(addresses, failing.address) === 'TRANSIENT_FAILURE';
    }, { timeoutMs: 20_000 });
    flipped.setStatus('NOT_SERVING');
    await waitFor('client sees NOT_SERVING', () => stateOf(addresses, flipped.address) === 'TRANSIENT_FAILURE');
    const before = { failing: failing.echo.calls, flipped: flipped.echo.calls };
    const result = await runCalls(client, 300, 8);
    console.log(`      outlier_detection over a health-checked etcd_least_request: ejection after ${ejectedMs} ms (${calls} calls); then 300 calls: ${result.ok} ok, all on the healthy replica`);
    expect(failedCount(result)).to.equal(0);
    expect(failing.echo.calls).to.equal(before.failing);
    expect(flipped.echo.calls).to.equal(before.flipped);
  });
});
