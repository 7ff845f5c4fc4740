/**
 * Fault injection: the client's and one registration's connections to etcd are
 * cut (TCP proxies) while the service changes under them and etcd compacts past
 * every watch's revision. After the cut: the resolver resyncs to exactly the
 * new state (the deregistered replica gone, the new one in, a changed weight
 * applied, a replica that came and went never seen), with zero failed calls;
 * the cut registration keeps its lease and its own watch works again.
 */
import { expect } from 'chai';
import { type Etcd3 } from 'etcd3';
import { register } from '../../src/register';
import { registerEndpoint } from '../../src/register';
import { type Registration } from '../../src/discovery/registration';
import { type LostEvent, type RegisteredEvent, type RegistrationError } from '../../src/discovery/registration-events';
import { startEtcd, type EtcdServer } from '../support/etcd';
import { startEchoServer, type EchoServer } from '../support/echo-server';
import { type EchoClient } from '../support/echo-proto';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';
import { describeLoad, startSteadyLoad, type SteadyLoad } from '../support/steady-load';
import { waitFor } from '../support/wait';
import { EtcdObserver } from '../backends/etcd/registry-fixtures';
import { writerClient } from '../backends/etcd/resolver-fixtures';
import { balancerWith, etcdTarget, recordResolution, retryingClient, type ResolutionRecorder } from './fault-fixtures';

const SERVICE = 'faults/compaction';
/** Long enough that the cut (a second or two, more on a loaded machine) never outlives a lease. */
const TTL_SECONDS = 10;

interface Tracked {
  registration: Registration;
  lost: LostEvent[];
  registered: RegisteredEvent[];
  errors: RegistrationError[];
}

describe('faults: watch compaction during an outage', function () {
  this.timeout(60_000);
  let etcd: EtcdServer | undefined;
  const proxies: TcpProxy[] = [];
  const servers: EchoServer[] = [];
  const registrations: Registration[] = [];
  let client: EchoClient | undefined;
  let recorder: ResolutionRecorder | undefined;
  let observer: EtcdObserver | undefined;
  let load: SteadyLoad | undefined;
  let writer: Etcd3 | undefined;

  before(() => register());

  afterEach(async () => {
    await load?.stop();
    client?.close();
    recorder?.close();
    observer?.close();
    writer?.close();
    await Promise.all(registrations.splice(0).map(r => r.close()));
    await Promise.all(proxies.splice(0).map(p => p.close()));
    await Promise.all(servers.splice(0).map(s => s.stop(100)));
    await etcd?.destroy();
  });

  async function serve(name: string): Promise<EchoServer> {
    const s = await startEchoServer({ name });
    servers.push(s);
    return s;
  }

  async function registerThrough(hosts: string[], server: EchoServer): Promise<Tracked> {
    const registration = await registerEndpoint({ service: SERVICE, address: server.address, ttlSeconds: TTL_SECONDS, etcd: { hosts } });
    registrations.push(registration);
    const t: Tracked = { registration, lost: [], registered: [], errors: [] };
    registration.onLost(e => t.lost.push(e));
    registration.onRegistered(e => t.registered.push(e));
    registration.onError(e => t.errors.push(e));
    return t;
  }

  it('resyncs to exactly the new state, keeps nothing stale, fails no call', async () => {
    etcd = await startEtcd();
    const clientProxy = await startTcpProxy(etcd.endpoint);
    const registryProxy = await startTcpProxy(etcd.endpoint);
    proxies.push(clientProxy, registryProxy);
    const [a, b, c, d, e] = await Promise.all(['a', 'b', 'c', 'd', 'e'].map(serve));
    const direct = etcd.endpoints;
    const goner = await registerThrough(direct, a);
    const cutB = await registerThrough([registryProxy.address], b);
    const changed = await registerThrough(direct, c);
    observer = new EtcdObserver(direct);
    writer = writerClient(direct);
    recorder = recordResolution([clientProxy.address], SERVICE);
    client = retryingClient(etcdTarget(SERVICE, [clientProxy.address]), { etcd_weighted_round_robin: {} });
    load = startSteadyLoad(client, { concurrency: 8, ratePerSecond: 300, phase: 'before' });
    await waitFor('a, b and c to serve', () => [a, b, c].every(s => (load!.byReplica.get(s.name) ?? 0) > 10), { timeoutMs: 10_000 });
    // The watch is live before the cut (a change after the list is seen).
    await goner.registration.update({ weight: 2 });
    await waitFor('the watch to deliver a change', () => recorder!.attributes().get(a.address)?.weight === 2, { timeoutMs: 5000 });

    load.phase('cut');
    clientProxy.cut();
    registryProxy.cut();
    const cutAt = Date.now();
    // While cut: a deregisters and stops, d joins, e joins and leaves, c's weight changes.
    await goner.registration.close();
    await a.stop(500);
    const joined = await registerThrough(direct, d);
    const passing = await registerThrough(direct, e);
    await passing.registration.close();
    await changed.registration.update({ weight: 5 });
    for (let i = 0; i < 20; i++) await writer.put('faults/unrelated').value(String(i));
    const revision = Number((await writer.get('faults/unrelated').exec()).header.revision);
    await writer.kv.compact({ revision: String(revision), physical: true });
    const staleDuringCut = recorder.current();
    clientProxy.resume();
    registryProxy.resume();
    const cutMs = Date.now() - cutAt;
    expect(cutMs, 'the cut must stay shorter than the TTL').to.be.lessThan(TTL_SECONDS * 1000 - 2000);
    load.phase('resumed');

    const expected = [b.address, c.address, d.address].sort();
    const resyncMs = await waitFor('the resolver to resync', () => recorder!.current().join() === expected.join() && recorder!.attributes().get(c.address)?.weight === 5, { timeoutMs: 10_000 });
    const balancerMs = await waitFor('the channel to hold exactly b, c, d', () => {
      const snapshot = balancerWith(b.address);
      return snapshot !== undefined && snapshot.endpoints.map(x => x.address).sort().join() === expected.join() && snapshot.endpoints.every(x => x.state === 'READY');
    }, { timeoutMs: 10_000 });
    await waitFor('d to serve', () => (load!.byReplica.get('d') ?? 0) > 10, { timeoutMs: 10_000 });
    const nextChangeMs = await (async () => {
      const start = Date.now();
      await cutB.registration.update({ weight: 4 });
      await waitFor('a change through the new watch', () => recorder!.attributes().get(b.address)?.weight === 4, { timeoutMs: 5000 });
      return Date.now() - start;
    })();
    // The cut registration's own watch was compacted too: a delete by someone else must still be undone.
    // (Seen by its new watch at once, or, if it comes while the watch is being re-created, by the
    // re-put that follows a watch error, within one etcd operation timeout.)
    const removalsBefore = [...recorder.removals];
    const additionsBefore = [...recorder.additions];
    const deletedAt = Date.now();
    await writer.delete().key(cutB.registration.key);
    const reputMs = await waitFor('b to put its deleted key back', async () =>
      cutB.registration.state === 'registered' && (await observer!.get(cutB.registration.key))?.lease === cutB.registration.leaseId, { timeoutMs: 10_000, intervalMs: 20 });

    const totals = await load.stop();
    console.log(`      cut ${cutMs} ms, compacted to revision ${revision}: resolver resynced ${resyncMs} ms after the connection came back, channel exact after ${balancerMs} ms; `
      + `next change seen ${nextChangeMs} ms after its put; a cut registration re-put its deleted key ${reputMs} ms after the delete (${Date.now() - deletedAt} ms ago; noticed by its watch: ${cutB.lost.length === 1}); `
      + `errors reported by the cut registration: ${cutB.errors.map(e => e.operation).join(', ')}`);
    console.log(`      ${describeLoad(totals)}`);
    expect(staleDuringCut).to.deep.equal([a.address, b.address, c.address].sort());
    expect(totals.failures).to.deep.equal([]);
    expect(removalsBefore.map(r => r.address)).to.deep.equal([a.address]);
    expect(additionsBefore.map(r => r.address)).to.deep.equal([d.address]);
    expect(recorder.removals.slice(removalsBefore.length).every(r => r.address === b.address)).to.equal(true);
    expect(totals.byPhase.resumed.ok).to.be.greaterThan(0);
    expect(cutB.lost.map(l => l.reason).join()).to.be.oneOf(['', 'key-deleted']);
    expect(cutB.registered.map(r => r.leaseKept)).to.deep.equal(cutB.lost.map(() => true));
    expect([changed.lost.length, joined.lost.length, joined.registration.state]).to.deep.equal([0, 0, 'registered']);
  });
});
