/**
 * ZooKeeper discovery on a real ZooKeeper (Debian's 3.8, standalone) and real
 * grpc-js servers: interop with instances another client wrote, our instances as
 * another client reads them, weights, every etcd_* policy on zk:/// targets.
 */
import { expect } from 'chai';
import { register, registerEndpoint, type Registration } from '../../../src';
import { startEchoServer, type EchoServer } from '../../support/echo-server';
import { waitFor } from '../../support/wait';
import { captureGrpcLog } from '../../support/grpc-log';
import * as grpc from '@grpc/grpc-js';
import { startZooKeeper, zkCli, type ZooKeeperServer } from '../../support/zookeeper';
import { balancerFor, makeClient, runCalls, failedCount } from '../../balancer/support/load';
import { gracefulShutdown } from '../../../src/server/graceful-shutdown';
import { type LostEvent, type RegisteredEvent } from '../../../src/discovery/registration-events';
import { type EchoClient } from '../../support/echo-proto';
import { SPRING_PAYLOAD_CLASS, instanceId } from '../../../src/backends/zookeeper/curator-codec';
import { rawZk, springInstance, type RawZk } from './zk-fixtures';
import { setDefaultZookeeperOptions } from '../../../src/backends/zookeeper/connection';
import { activeZkResolverCounts } from '../../../src/backends/zookeeper/zookeeper-backend';

describe('ZooKeeper discovery (real ZooKeeper, real servers)', function () {
  this.timeout(120_000);
  let zk: ZooKeeperServer;
  let raw: RawZk;
  const servers: EchoServer[] = [];
  const clients: EchoClient[] = [];
  const registrations: Registration[] = [];

  before(async function () {
    zk = await startZooKeeper();
    register({ zookeeper: { hosts: zk.endpoint } });
    raw = await rawZk(zk.endpoint);
    for (const name of ['a', 'b', 'c']) servers.push(await startEchoServer({ name }));
  });

  afterEach(async function () {
    for (const c of clients.splice(0)) c.close();
    await Promise.all(registrations.splice(0).map(r => r.close()));
  });

  after(async function () {
    raw?.close();
    await Promise.all(servers.map(s => new Promise<void>(resolve => s.server.tryShutdown(() => resolve()))));
    await zk?.destroy();
    // The default is process-wide: later files must not find a ZooKeeper default next to their etcd one.
    setDefaultZookeeperOptions(undefined);
  });

  it('resolves and calls a Curator instance written by zkCli (ZooKeeper\'s Java CLI); its removal stops traffic', async function () {
    const [a] = servers;
    const path = '/services/interop/0b5f6c2e-0000-4000-8000-000000000001';
    zkCli(zk.endpoint, ['create', '/services']);
    zkCli(zk.endpoint, ['create', '/services/interop']);
    zkCli(zk.endpoint, ['create', path, springInstance('interop', 'x1', '127.0.0.1', a.port, { zone: 'z1' })]);
    const client = makeClient('zk:///interop', { etcd_weighted_round_robin: {} });
    clients.push(client);
    const result = await runCalls(client, 20, 2, () => ({ options: { deadline: Date.now() + 10_000 } }));
    expect(failedCount(result)).to.equal(0);
    expect(result.byServer.get('a')).to.equal(20);
    const before = a.calls;
    zkCli(zk.endpoint, ['delete', path]);
    const goneMs = await waitFor('calls to fail once the instance is gone', async () => {
      const r = await runCalls(client, 1, 1, () => ({ options: { deadline: Date.now() + 2_000 } }));
      return failedCount(r) === 1;
    }, { timeoutMs: 10_000, intervalMs: 20 });
    const err = await new Promise<Error | null>(resolve => client.unary({ message: 'm' }, new grpc.Metadata(), { deadline: Date.now() + 2_000 }, e => resolve(e)));
    expect(err?.message).to.contain("no endpoints registered for service 'interop'");
    const after = a.calls;
    await runCalls(client, 5, 1, () => ({ options: { deadline: Date.now() + 1_000 } }));
    expect(a.calls).to.equal(after);
    console.log(`      zkCli instance: 20/20 calls to it; removed: calls fail within ${goneMs} ms (${after - before} calls meanwhile), then none reach it`);
  });

  it('honours string weights from Spring metadata: WRR shares are exact', async function () {
    const [a, b] = servers;
    await raw.create('/services/weighted/i-a', springInstance('weighted', 'i-a', '127.0.0.1', a.port, { weight: '3' }));
    await raw.create('/services/weighted/i-b', springInstance('weighted', 'i-b', '127.0.0.1', b.port, { weight: '1' }));
    // The same address twice (another id): one endpoint.
    await raw.create('/services/weighted/i-a2', springInstance('weighted', 'i-a2', '127.0.0.1', a.port, { weight: '3' }));
    // A hostname and a broken node: skipped with warnings, the good ones stay.
    await raw.create('/services/weighted/i-host', springInstance('weighted', 'i-host', 'db.example', 1234));
    await raw.create('/services/weighted/i-bad', '{"address":');
    const log = captureGrpcLog();
    const client = makeClient('zk:///weighted', { etcd_weighted_round_robin: {} });
    clients.push(client);
    try {
      await waitFor('both endpoints', async () => {
        const r = await runCalls(client, 8, 1, () => ({ options: { deadline: Date.now() + 5_000 } }));
        return (r.byServer.get('a') ?? 0) > 0 && (r.byServer.get('b') ?? 0) > 0;
      }, { timeoutMs: 15_000 });
    } finally {
      log.restore();
    }
    const warnings = log.lines.filter(l => l.includes('zookeeper resolver'));
    expect(warnings.some(l => l.includes("'i-host'") && l.includes('spring.cloud.zookeeper.discovery.prefer-ip-address=true'))).to.equal(true);
    expect(warnings.some(l => l.includes("'i-bad'") && l.includes('not JSON'))).to.equal(true);
    expect(warnings.some(l => l.includes("'i-a2'") && l.includes("already registered by key 'i-a'"))).to.equal(true);
    const result = await runCalls(client, 400, 1, () => ({ options: { deadline: Date.now() + 5_000 } }));
    expect(failedCount(result)).to.equal(0);
    expect(result.byServer.get('a')).to.equal(300);
    expect(result.byServer.get('b')).to.equal(100);
    console.log(`      weights '3' and '1' (strings): ${JSON.stringify(Object.fromEntries(result.byServer))} of 400`);
  });

  it('registers a Curator instance that another client reads: Curator fields, Spring payload, ephemeral, gone on close()', async function () {
    const [, , c] = servers;
    const registration = await registerEndpoint({
      service: 'ours', address: c.address, weight: 2, metadata: { zone: 'eu-1a', build: 7 },
      zookeeper: { hosts: zk.endpoint }, ttlSeconds: 4,
    });
    registrations.push(registration);
    const id = instanceId('ours', c.address);
    expect(registration.key).to.equal(`/services/ours/${id}`);
    const read = zkCli(zk.endpoint, ['get', registration.key]);
    const json = read.split('\n').find(line => line.startsWith('{'));
    const instance = JSON.parse(json ?? 'null') as Record<string, unknown> & { payload: Record<string, unknown> & { metadata: Record<string, string> } };
    expect(instance).to.include({ name: 'ours', id, address: '127.0.0.1', port: c.port, serviceType: 'DYNAMIC', enabled: true, sslPort: null });
    expect(instance.registrationTimeUTC).to.be.a('number');
    expect(instance.uriSpec).to.be.an('object');
    expect(instance.payload['@class']).to.equal(SPRING_PAYLOAD_CLASS);
    expect(instance.payload.metadata).to.deep.equal({ zone: 'eu-1a', build: '7', weight: '2', priority: '0' });
    const stat = await raw.get(registration.key);
    expect(stat?.ephemeralOwner).to.equal(registration.leaseId);
    expect(stat?.ephemeralOwner).to.not.equal('0x0');
    expect(registration.sessionTimeoutMs).to.equal(4_000);
    const client = makeClient('zk:///ours', { etcd_least_request: {} });
    clients.push(client);
    const result = await runCalls(client, 10, 1, () => ({ options: { deadline: Date.now() + 10_000 } }));
    expect(result.byServer.get('c')).to.equal(10);
    const updatedAt = Date.now();
    await registration.update({ weight: 5 });
    expect(JSON.parse((await raw.get(registration.key))!.data).payload.metadata.weight).to.equal('5');
    // The instance's data watch: the client sees the new weight without a new child.
    const weightMs = await waitFor('the new weight at the client', () => balancerFor([c.address])?.endpoints[0]?.weight === 5, { timeoutMs: 10_000 });
    console.log(`      update({ weight: 5 }) seen by the client's balancer ${Date.now() - updatedAt} ms after the call (${weightMs} ms after it resolved)`);
    const closedAt = Date.now();
    await registration.close();
    expect(await raw.get(registration.key)).to.equal(undefined);
    console.log(`      our node read by zkCli: ${json?.length} bytes, owner ${stat?.ephemeralOwner}, session timeout ${registration.sessionTimeoutMs} ms; gone ${Date.now() - closedAt} ms after close()`);
  });

  for (const policy of ['etcd_weighted_round_robin', 'etcd_weighted_random', 'etcd_least_request', 'etcd_peak_ewma']) {
    it(`${policy} works on a zk:/// target`, async function () {
      const service = `policy-${policy}`;
      for (const s of servers) {
        registrations.push(await registerEndpoint({ service, address: s.address, zookeeper: { hosts: zk.endpoint }, ttlSeconds: 4 }));
      }
      const client = makeClient(`zk:///${service}`, { [policy]: {} });
      clients.push(client);
      await waitFor('all three serving', async () => {
        const r = await runCalls(client, 30, 3, () => ({ options: { deadline: Date.now() + 5_000 } }));
        return r.byServer.size === 3;
      }, { timeoutMs: 15_000 });
      const result = await runCalls(client, 300, 3, () => ({ options: { deadline: Date.now() + 5_000 } }));
      expect(failedCount(result)).to.equal(0);
      expect(result.byServer.size).to.equal(3);
    });
  }

  it('re-creates its node when someone deletes it, and replaces a stale node of another session at start', async function () {
    const [a] = servers;
    const service = 'heal';
    const path = `/services/${service}/${instanceId(service, a.address)}`;
    // A node left by an earlier run of this process, in a session still alive (the raw client's).
    await raw.create(path, springInstance(service, 'stale', '127.0.0.1', a.port), true);
    const staleOwner = (await raw.get(path))?.ephemeralOwner;
    const registration = await registerEndpoint({ service, address: a.address, zookeeper: { hosts: zk.endpoint }, ttlSeconds: 4 });
    registrations.push(registration);
    const mine = await raw.get(path);
    expect(mine?.ephemeralOwner).to.equal(registration.leaseId).and.to.not.equal(staleOwner);
    expect(JSON.parse(mine!.data).id).to.equal(instanceId(service, a.address));
    const lost: LostEvent[] = [];
    const back: RegisteredEvent[] = [];
    registration.onLost(e => lost.push(e));
    registration.onRegistered(e => back.push(e));
    const deletedAt = Date.now();
    await raw.remove(path);
    const backMs = await waitFor('the node back', async () => (await raw.get(path))?.ephemeralOwner === registration.leaseId, { timeoutMs: 10_000 });
    expect(lost.map(e => e.reason)).to.deep.equal(['key-deleted']);
    await waitFor('onRegistered', () => back.length === 1, { timeoutMs: 5_000 });
    expect(back[0].leaseKept).to.equal(true);
    console.log(`      stale node of session ${staleOwner} replaced at start; deleted by another client: back ${backMs} ms later (${Date.now() - deletedAt} ms), same session`);
  });

  it('gracefulShutdown with a ZooKeeper registration: NOT_SERVING, node gone, then the server drains', async function () {
    const server = await startEchoServer({ name: 'graceful' });
    const registration = await registerEndpoint({ service: 'graceful', address: server.address, zookeeper: { hosts: zk.endpoint }, ttlSeconds: 4 });
    const phases: string[] = [];
    let nodeDuringGrace: unknown = 'unchecked';
    const result = await gracefulShutdown(server.server, registration, {
      deregisterGraceMs: 200,
      drainMs: 2_000,
      onPhase: phase => {
        phases.push(phase);
        if (phase === 'grace') void raw.get(registration.key).then(n => { nodeDuringGrace = n; });
      },
    });
    expect(phases).to.deep.equal(['not-serving', 'deregistering', 'grace', 'draining', 'stopped']);
    expect(result.forced).to.equal(false);
    expect(nodeDuringGrace).to.equal(undefined);
    expect(registration.state).to.equal('closed');
  });

  it('channels share one session per connection and one watch per service; closing them leaves none', async function () {
    const [a] = servers;
    await raw.create('/services/shared-1/i-a', springInstance('shared-1', 'i-a', '127.0.0.1', a.port));
    await raw.create('/services/shared-2/i-a', springInstance('shared-2', 'i-a', '127.0.0.1', a.port));
    const many = Array.from({ length: 100 }, (_, i) => makeClient(`zk:///shared-${(i % 2) + 1}`, { etcd_weighted_random: {} }));
    try {
      const results = await Promise.all(many.map(c => runCalls(c, 1, 1, () => ({ options: { deadline: Date.now() + 15_000 } }))));
      expect(results.map(failedCount).reduce((x, y) => x + y, 0)).to.equal(0);
      expect(activeZkResolverCounts()).to.deep.equal({ watches: 2, sessions: 1 });
    } finally {
      for (const c of many) c.close();
    }
    await waitFor('no watch or session left', () => activeZkResolverCounts().watches === 0 && activeZkResolverCounts().sessions === 0, { timeoutMs: 10_000 });
  });
});
