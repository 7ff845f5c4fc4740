/**
 * Weights honoured at any load: three replicas registered in a real etcd with
 * weights 1, 2 and 3, calls made one at a time (nothing else in flight, so
 * load-aware policies see every replica idle at each pick). Every `etcd_*`
 * policy must split the calls 1:2:3, within 5 points.
 */
import { expect } from 'chai';
import { register, registerEndpoint, type Registration } from '../../../src/index';
import { startEchoServer, type EchoServer } from '../../support/echo-server';
import { type EchoClient } from '../../support/echo-proto';
import { startEtcd, type EtcdServer } from '../../support/etcd';
import { failedCount, makeClient, runCalls, waitForEndpoints } from '../support/load';

const WEIGHTS = [1, 2, 3];
const CALLS = 1800;
const POLICIES = ['etcd_weighted_round_robin', 'etcd_weighted_random', 'etcd_least_request', 'etcd_peak_ewma'];
/**
 * Open: peak-EWMA follows the weights only among replicas whose estimates are within 1.25× of each
 * other (see peak-ewma-scheduler.test.ts), and here, one call at a time, they mostly are not (it gives
 * about 1/3 each). Widening that band by the estimates' noise passed this test but let a replica +20 ms
 * back into 1.65 % of the slow-replica bench's calls (target < 0.5 %). Pending until that is solved.
 */

describe('weights 1:2:3 at concurrency 1 (real etcd, real servers)', function () {
  this.timeout(90_000);
  let etcd: EtcdServer;
  let servers: EchoServer[] = [];
  let registrations: Registration[] = [];
  let client: EchoClient | undefined;
  const service = 'weights/low-concurrency';

  before(async () => {
    register();
    [etcd, servers] = await Promise.all([startEtcd(), Promise.all(WEIGHTS.map(w => startEchoServer({ name: `w${w}` })))]);
    registrations = await Promise.all(servers.map((s, i) => registerEndpoint({
      service, address: s.address, weight: WEIGHTS[i], ttlSeconds: 10, etcd: { hosts: etcd.endpoints },
    })));
  });

  afterEach(() => {
    client?.close();
    client = undefined;
  });

  after(async () => {
    await Promise.all(registrations.map(r => r.close()));
    await Promise.all(servers.map(s => s.stop(100)));
    await etcd?.destroy();
  });

  for (const policy of POLICIES) {
    it(`${policy}: shares within 5 points of 1/6, 2/6, 3/6`, async () => {
      client = makeClient(`etcd://${etcd.endpoint}/${service}`, { [policy]: {} });
      await runCalls(client, 1, 1);
      await waitForEndpoints(servers.map(s => s.address));
      servers.forEach(s => { s.calls = 0; });
      const result = await runCalls(client, CALLS, 1);
      expect(failedCount(result)).to.equal(0);
      const shares = servers.map(s => (100 * s.calls) / CALLS);
      console.log(`      ${policy}, ${CALLS} calls one at a time: ${shares.map((s, i) => `w${WEIGHTS[i]}=${s.toFixed(1)}%`).join(' ')}`);
      shares.forEach((share, i) => expect(share, `weight ${WEIGHTS[i]}`).to.be.closeTo((100 * WEIGHTS[i]) / 6, 5));
    });
  }
});
