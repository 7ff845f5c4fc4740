import { expect } from 'chai';
import { register } from '../../../src/register';
import { startEchoServer, type EchoServer } from '../../support/echo-server';
import { makeClient, runCalls } from '../support/load';

/**
 * grpc-js queues calls made before the channel is READY and picks them all again
 * with the first READY picker: with only one endpoint connected by then, a startup
 * burst lands on that one endpoint (grpc-js's round_robin does this too). Our pool
 * holds the first READY picker briefly while the others are still connecting.
 */
describe('startup: a burst queued before any endpoint is READY', function () {
  this.timeout(60_000);
  let servers: EchoServer[] = [];

  before(async () => {
    register();
    servers = await Promise.all([0, 1, 2, 3].map(i => startEchoServer({ name: `s${i}` })));
  });
  after(async () => {
    await Promise.all(servers.map(s => s.stop()));
  });

  for (const policy of ['etcd_least_request', 'etcd_weighted_round_robin', 'etcd_weighted_random', 'etcd_peak_ewma']) {
    it(`${policy}: is spread over every endpoint, not sent to the first one to connect`, async () => {
      const client = makeClient(`ipv4:${servers.map(s => s.address).join(',')}`, { [policy]: {} });
      try {
        // All 400 calls start at once, on a channel that has not connected yet.
        const result = await runCalls(client, 400, 400);
        const shares = servers.map(s => result.byServer.get(s.name) ?? 0);
        console.log(`      ${policy}: 400 calls at channel start → ${shares.join(' / ')}`);
        expect(result.ok).to.equal(400);
        expect(Math.max(...shares), 'largest share').to.be.below(200);
        expect(shares.filter(n => n > 0).length, 'endpoints used').to.equal(4);
      } finally {
        client.close();
      }
    });
  }
});
