/**
 * ZooKeeper faults, real ZooKeeper, real servers and processes: a restart shorter
 * than the session timeout, a registration's process frozen past it, ZooKeeper down
 * when the client starts, a burst of 1,000 changes.
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { register, registerEndpoint, type Registration } from '../../../src';
import { type LostEvent } from '../../../src/discovery/registration-events';
import { resolverClassFor } from '../../../src/discovery/discovery-resolver';
import { zookeeperBackend } from '../../../src/backends/zookeeper/zookeeper-backend';
import { instanceId } from '../../../src/backends/zookeeper/curator-codec';
import { type Endpoint, type StatusOr } from '../../../src/common/grpc-experimental';
import { startEchoServer, type EchoServer } from '../../support/echo-server';
import { spawnReplica } from '../../support/replica-process';
import { describeLoad, startSteadyLoad } from '../../support/steady-load';
import { waitFor } from '../../support/wait';
import { startZooKeeper, type ZooKeeperServer } from '../../support/zookeeper';
import { makeClient } from '../../balancer/support/load';
import { rawZk, springInstance, type RawZk } from './zk-fixtures';

describe('ZooKeeper faults (real ZooKeeper, real servers)', function () {
  this.timeout(120_000);
  let zk: ZooKeeperServer;
  let raw: RawZk | undefined;
  const servers: EchoServer[] = [];

  before(async function () {
    register();
    zk = await startZooKeeper();
    for (const name of ['a', 'b', 'c']) servers.push(await startEchoServer({ name }));
  });

  afterEach(function () {
    raw?.close();
    raw = undefined;
  });

  after(async function () {
    await Promise.all(servers.map(s => new Promise<void>(resolve => s.server.tryShutdown(() => resolve()))));
    await zk?.destroy();
  });

  it('ZooKeeper restarted within the session timeout: nothing lost, no failed call, changes seen after', async function () {
    const service = 'faults/restart';
    const registrations: Registration[] = [];
    const lost: LostEvent[] = [];
    const lostAt: number[] = [];
    let killedAt = 0;
    for (const s of servers.slice(0, 2)) {
      const r = await registerEndpoint({ service, address: s.address, zookeeper: { hosts: zk.endpoint }, ttlSeconds: 10 });
      r.onLost(e => {
        lost.push(e);
        lostAt.push(Date.now() - killedAt);
      });
      registrations.push(r);
    }
    const sessions = registrations.map(r => r.leaseId);
    const client = makeClient(`zk://${zk.endpoint}/${service}`, { etcd_weighted_round_robin: {} });
    const load = startSteadyLoad(client, { concurrency: 4, ratePerSecond: 200, phase: 'before' });
    try {
      await waitFor('both replicas to serve', () => (load.byReplica.get('a') ?? 0) > 10 && (load.byReplica.get('b') ?? 0) > 10, { timeoutMs: 15_000 });
      load.phase('zookeeper down');
      killedAt = Date.now();
      await zk.kill('SIGKILL');
      await waitFor('0.5 s of outage', () => Date.now() - killedAt >= 500, { timeoutMs: 5_000, intervalMs: 20 });
      load.phase('zookeeper restarting');
      await zk.restart();
      const downMs = Date.now() - killedAt;
      load.phase('zookeeper back');
      raw = await rawZk(zk.endpoint);
      for (const r of registrations) {
        const node = await raw.get(r.key);
        expect(node?.ephemeralOwner, `${r.key} after the restart`).to.equal(r.leaseId);
      }
      const joinedAt = Date.now();
      const third = await registerEndpoint({ service, address: servers[2].address, zookeeper: { hosts: zk.endpoint }, ttlSeconds: 10 });
      registrations.push(third);
      const seenMs = await waitFor('the new replica to serve', () => (load.byReplica.get('c') ?? 0) > 0, { timeoutMs: 15_000 });
      const totals = await load.stop();
      console.log(`      ZooKeeper down ${downMs} ms (sessions 10 s): nodes kept in sessions ${sessions.join(', ')}; lost ${lost.length} (${lostAt.map(ms => `${ms} ms`).join(', ') || '-'} after the kill); ` +
        `a replica registered after it serves ${seenMs} ms later (${Date.now() - joinedAt} ms incl. registering); ${describeLoad(totals)}`);
      expect(totals.failures).to.deep.equal([]);
      expect(lost).to.deep.equal([]);
      expect(registrations.slice(0, 2).map(r => r.leaseId)).to.deep.equal(sessions);
    } finally {
      await load.stop();
      client.close();
      await Promise.all(registrations.map(r => r.close()));
    }
  });

  it('a registration\'s process frozen past its session timeout: the node expires and is back within a second of thawing', async function () {
    const service = 'faults/frozen';
    const replica = await spawnReplica({ name: 'frozen', service, zookeeperHosts: zk.endpoint, ttlSeconds: 2 });
    try {
      raw = await rawZk(zk.endpoint);
      const path = `/services/${service}/${instanceId(service, replica.address)}`;
      const before = await raw.get(path);
      expect(before?.ephemeralOwner).to.match(/^0x[0-9a-f]+$/);
      process.kill(replica.pid, 'SIGSTOP');
      const frozenAt = Date.now();
      let expiredMs: number;
      try {
        expiredMs = await waitFor('the frozen replica\'s node to expire', async () => (await raw!.get(path)) === undefined, { timeoutMs: 15_000, intervalMs: 20 });
      } finally {
        process.kill(replica.pid, 'SIGCONT');
      }
      const thawedAt = Date.now();
      const backMs = await waitFor('the node to be back', async () => (await raw!.get(path)) !== undefined, { timeoutMs: 10_000, intervalMs: 10 });
      const after = await raw.get(path);
      console.log(`      frozen ${thawedAt - frozenAt} ms (session 2 s): node expired ${expiredMs} ms after SIGSTOP, back ${backMs} ms after SIGCONT ` +
        `in session ${after?.ephemeralOwner} (was ${before?.ephemeralOwner})`);
      expect(after?.ephemeralOwner).to.not.equal(before?.ephemeralOwner);
      expect(backMs).to.be.below(1_000);
    } finally {
      await replica.kill('SIGKILL');
    }
  });

  it('ZooKeeper down when the client starts: calls fail fast with a clear message, then recover', async function () {
    const service = 'faults/late';
    raw = await rawZk(zk.endpoint);
    await raw.create(`/services/${service}/i-a`, springInstance(service, 'i-a', '127.0.0.1', servers[0].port));
    raw.close();
    raw = undefined;
    await zk.kill('SIGKILL');
    const client = makeClient(`zk://${zk.endpoint}/${service}`, { etcd_least_request: {} });
    try {
      const startedAt = Date.now();
      const err = await new Promise<grpc.ServiceError | null>(resolve =>
        client.unary({ message: 'm' }, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, e => resolve(e)));
      const failedMs = Date.now() - startedAt;
      expect(err?.code).to.equal(grpc.status.UNAVAILABLE);
      expect(err?.details).to.match(new RegExp(`zookeeper resolver: cannot read service '${service}' .* from ZooKeeper ${zk.endpoint}: unreachable since`));
      expect(failedMs).to.be.below(5_000);
      const restartAt = Date.now();
      await zk.restart();
      const recoveredMs = await waitFor('a call to succeed', () => new Promise<boolean>(resolve =>
        client.unary({ message: 'm' }, new grpc.Metadata(), { deadline: Date.now() + 2_000 }, e => resolve(e === null))), { timeoutMs: 20_000, intervalMs: 50 });
      console.log(`      first call failed after ${failedMs} ms: ${err?.details}; ZooKeeper restarted in ${Date.now() - restartAt - recoveredMs} ms, ` +
        `a call succeeded ${recoveredMs} ms after it was up`);
    } finally {
      client.close();
    }
  });

  it('1,000 changes in a burst: a handful of LB updates, the last one complete', async function () {
    const service = 'faults/burst';
    raw = await rawZk(zk.endpoint);
    const base = `/services/${service}`;
    await raw.create(`${base}/i-0000`, springInstance(service, 'i-0000', '127.0.0.2', 20_000));
    const updates: number[] = [];
    const resolver = new (resolverClassFor(zookeeperBackend))({ scheme: 'zk', authority: zk.endpoint, path: service }, (endpoints: StatusOr<Endpoint[]>) => {
      if (endpoints.ok) updates.push(endpoints.value.length);
      return true;
    }, {});
    try {
      resolver.updateResolution();
      await waitFor('the first list', () => updates.length > 0 && updates[updates.length - 1] === 1, { timeoutMs: 15_000 });
      const before = updates.length;
      const startedAt = Date.now();
      await Promise.all(Array.from({ length: 1000 }, (_, i) => {
        const id = `i-${String(i + 1).padStart(4, '0')}`;
        return raw!.create(`${base}/${id}`, springInstance(service, id, '127.0.0.2', 20_001 + i));
      }));
      const writtenMs = Date.now() - startedAt;
      const seenMs = await waitFor('all 1,001 endpoints', () => updates[updates.length - 1] === 1001, { timeoutMs: 30_000 });
      const burst = updates.slice(before);
      console.log(`      1,000 creates in ${writtenMs} ms → ${burst.length} LB update(s) (${burst.join(' → ')}), complete ${seenMs} ms after the last create`);
      expect(burst.length).to.be.at.most(10);
    } finally {
      resolver.destroy();
    }
  });

  it('the resolver\'s session expires while ZooKeeper is frozen: the last list keeps serving, a new session lists again', async function () {
    // A server that grants at most 2 s, so the resolver's session (10 s asked) expires quickly.
    const short = await startZooKeeper({ maxSessionTimeoutMs: 2_000 });
    const service = 'faults/expiry';
    const client = makeClient(`zk://${short.endpoint}/${service}`, { etcd_weighted_round_robin: {} });
    try {
      raw = await rawZk(short.endpoint);
      await raw.create(`/services/${service}/i-a`, springInstance(service, 'i-a', '127.0.0.1', servers[0].port));
      const load = startSteadyLoad(client, { concurrency: 2, ratePerSecond: 100, phase: 'before' });
      await waitFor('a to serve', () => (load.byReplica.get('a') ?? 0) > 5, { timeoutMs: 15_000 });
      raw.close();
      raw = undefined;
      load.phase('zookeeper frozen');
      short.freeze();
      const frozenAt = Date.now();
      try {
        await waitFor('4 s frozen (twice the session timeout)', () => Date.now() - frozenAt >= 4_000, { timeoutMs: 10_000, intervalMs: 50 });
      } finally {
        short.thaw();
      }
      load.phase('zookeeper thawed');
      raw = await rawZk(short.endpoint);
      const addedAt = Date.now();
      await raw.create(`/services/${service}/i-b`, springInstance(service, 'i-b', '127.0.0.1', servers[1].port));
      const seenMs = await waitFor('b to serve', () => (load.byReplica.get('b') ?? 0) > 0, { timeoutMs: 20_000 });
      const totals = await load.stop();
      console.log(`      frozen 4 s (sessions ≤ 2 s): ${describeLoad(totals)}; an instance added after the thaw served ${seenMs} ms later (${Date.now() - addedAt} ms)`);
      expect(totals.failures).to.deep.equal([]);
    } finally {
      client.close();
      raw?.close();
      raw = undefined;
      await short.destroy();
    }
  });
});
