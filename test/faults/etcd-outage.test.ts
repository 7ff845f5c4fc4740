/**
 * Fault injection: the single etcd is kill -9'd under steady client load, for
 * less than the registrations' TTL and for longer, then restarted. The bar: zero
 * failed calls, no endpoint ever dropped from the clients' lists, every
 * registration back (onLost/onRegistered exactly as the outage length implies),
 * and the resolver's watch live again.
 */
import { expect } from 'chai';
import { register } from '../../src/register';
import { registerEndpoint } from '../../src/register';
import { type Registration } from '../../src/discovery/registration';
import { type LostEvent, type RegisteredEvent } from '../../src/discovery/registration-events';
import { startEtcd, type EtcdServer } from '../support/etcd';
import { startEchoServer, type EchoServer } from '../support/echo-server';
import { type EchoClient } from '../support/echo-proto';
import { describeLoad, startSteadyLoad, type SteadyLoad } from '../support/steady-load';
import { waitFor } from '../support/wait';
import { EtcdObserver } from '../backends/etcd/registry-fixtures';
import { etcdTarget, recordResolution, retryingClient, type ResolutionRecorder } from './fault-fixtures';

interface Tracked {
  registration: Registration;
  lost: LostEvent[];
  registered: RegisteredEvent[];
}

describe('faults: etcd kill -9 under steady load', function () {
  this.timeout(60_000);
  let etcd: EtcdServer | undefined;
  let servers: EchoServer[] = [];
  let tracked: Tracked[] = [];
  let client: EchoClient | undefined;
  let recorder: ResolutionRecorder | undefined;
  let observer: EtcdObserver | undefined;
  let load: SteadyLoad | undefined;

  before(() => register());

  afterEach(async () => {
    await load?.stop();
    client?.close();
    recorder?.close();
    observer?.close();
    await Promise.all(tracked.map(t => t.registration.close()));
    await Promise.all(servers.map(s => s.stop(100)));
    await etcd?.destroy();
    load = undefined;
    tracked = [];
    servers = [];
  });

  /** etcd, three registered replicas, a client under load that has reached all three. */
  async function setUp(service: string, ttlSeconds: number): Promise<void> {
    etcd = await startEtcd();
    servers = await Promise.all(['a', 'b', 'c'].map(name => startEchoServer({ name })));
    tracked = await Promise.all(servers.map(async s => {
      const registration = await registerEndpoint({ service, address: s.address, ttlSeconds, etcd: { hosts: etcd!.endpoints } });
      const t: Tracked = { registration, lost: [], registered: [] };
      registration.onLost(e => t.lost.push(e));
      registration.onRegistered(e => t.registered.push(e));
      return t;
    }));
    observer = new EtcdObserver(etcd.endpoints);
    recorder = recordResolution(etcd.endpoints, service);
    client = retryingClient(etcdTarget(service, etcd.endpoints), { etcd_weighted_round_robin: {} });
    load = startSteadyLoad(client, { concurrency: 8, ratePerSecond: 300, phase: 'before' });
    await waitFor('every replica to serve', () => servers.every(s => (load!.byReplica.get(s.name) ?? 0) > 10), { timeoutMs: 10_000 });
  }

  /** Every registration registered, its key in etcd under the lease it reports. */
  async function allRegistered(): Promise<boolean> {
    for (const t of tracked) {
      if (t.registration.state !== 'registered') return false;
      const kv = await observer!.get(t.registration.key, 500);
      if (kv?.lease !== t.registration.leaseId) return false;
    }
    return true;
  }

  /** A change made now reaches the resolver: its watch is live. */
  async function watchIsLive(weight: number): Promise<number> {
    const t = tracked[0];
    const start = Date.now();
    await t.registration.update({ weight });
    await waitFor('the weight change to reach the resolver', () => recorder!.attributes().get(t.registration.address)?.weight === weight, { timeoutMs: 10_000 });
    return Date.now() - start;
  }

  it('down for less than the TTL (5 s): nothing lost, zero failed calls', async () => {
    // 5 s: the registration counts a loss from its last acknowledged keep-alive (up to TTL/3
    // before the kill), and a restart can take a second or two on a loaded machine.
    await setUp('faults/outage-short', 5);
    const leases = tracked.map(t => t.registration.leaseId);
    load!.phase('etcd down');
    const killedAt = Date.now();
    await etcd!.kill('SIGKILL');
    // The outage itself: etcd stays down half a second (restart time comes on top).
    await waitFor('0.5 s of outage', () => Date.now() - killedAt >= 500, { timeoutMs: 5000, intervalMs: 20 });
    load!.phase('etcd restarting');
    await etcd!.restart();
    const downMs = Date.now() - killedAt;
    load!.phase('etcd back');
    const backMs = await waitFor('every registration confirmed', allRegistered, { timeoutMs: 15_000, intervalMs: 20 });
    const watchMs = await watchIsLive(2);
    const servedAfter = Object.fromEntries(servers.map(s => [s.name, load!.byReplica.get(s.name) ?? 0]));
    await waitFor('every replica to serve after the outage', () => servers.every(s => (load!.byReplica.get(s.name) ?? 0) > servedAfter[s.name] + 10), { timeoutMs: 10_000 });
    const totals = await load!.stop();
    console.log(`      etcd down ${downMs} ms (TTL 5 s): registrations confirmed ${backMs} ms after healthy, a change seen ${watchMs} ms after the put; `
      + `lost ${tracked.map(t => t.lost.length).join('/')}; endpoints dropped ${recorder!.removals.length}; ${describeLoad(totals)}`);
    expect(totals.failures).to.deep.equal([]);
    expect(recorder!.removals).to.deep.equal([]);
    expect(tracked.map(t => [t.lost.length, t.registered.length])).to.deep.equal([[0, 0], [0, 0], [0, 0]]);
    expect(tracked.map(t => t.registration.leaseId)).to.deep.equal(leases);
  });

  it('down for longer than the TTL (2 s): each registration lost once and back once, zero failed calls', async () => {
    const ttlSeconds = 2;
    await setUp('faults/outage-long', ttlSeconds);
    load!.phase('etcd down');
    const killedAt = Date.now();
    await etcd!.kill('SIGKILL');
    const lostMs = await waitFor('every registration to report the loss', () => tracked.every(t => t.lost.length > 0), { timeoutMs: 5000 * ttlSeconds });
    // Stay down past 2×TTL, where etcd3's own Lease would have given up.
    await waitFor('2.5×TTL of outage', () => Date.now() - killedAt >= 2500 * ttlSeconds, { timeoutMs: 10_000, intervalMs: 20 });
    load!.phase('etcd restarting');
    await etcd!.restart();
    const downMs = Date.now() - killedAt;
    load!.phase('etcd back');
    const backMs = await waitFor('every registration back', allRegistered, { timeoutMs: 15_000, intervalMs: 20 });
    const watchMs = await watchIsLive(3);
    const servedAfter = Object.fromEntries(servers.map(s => [s.name, load!.byReplica.get(s.name) ?? 0]));
    await waitFor('every replica to serve after the outage', () => servers.every(s => (load!.byReplica.get(s.name) ?? 0) > servedAfter[s.name] + 10), { timeoutMs: 10_000 });
    // Stay a full TTL longer: a lease etcd forgot during the outage would take its key away now.
    const settleUntil = Date.now() + ttlSeconds * 1000;
    await waitFor('a TTL after recovery', () => Date.now() >= settleUntil, { timeoutMs: 10_000, intervalMs: 50 });
    expect(await allRegistered()).to.equal(true);
    const totals = await load!.stop();
    console.log(`      etcd down ${downMs} ms (TTL ${ttlSeconds} s): loss reported ${lostMs} ms after the kill; registrations back ${backMs} ms after healthy `
      + `(lease kept: ${tracked.map(t => t.registered[0]?.leaseKept).join('/')}); a change seen ${watchMs} ms after the put; `
      + `endpoints dropped ${recorder!.removals.length}; ${describeLoad(totals)}`);
    expect(totals.failures).to.deep.equal([]);
    expect(recorder!.removals).to.deep.equal([]);
    expect(tracked.map(t => [t.lost.length, t.registered.length])).to.deep.equal([[1, 1], [1, 1], [1, 1]]);
    expect(tracked.map(t => t.lost[0].reason)).to.deep.equal(['unreachable', 'unreachable', 'unreachable']);
  });
});
