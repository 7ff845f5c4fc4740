/**
 * Zone-aware routing across processes with the real client registry (issue 16's
 * cases): replica processes in zones a and b (3 each, `metadata.zone`), client
 * processes with `register({ locality: { zone } })`, whose zone shares come from
 * the registry's announcements.
 * - clients split evenly over a and b → ≥ 95 % of each client's calls local;
 * - all clients in a → 50 % ± 5 pp local over the fleet (Envoy's rule: upstream 50 % < local 100 %);
 * - split evenly, 2 of zone a's 3 replicas gone → no failed call, and the survivor gets
 *   what the rule gives zone a's clients (25 % upstream / 50 % local = 50 %), not all.
 */
import { expect } from 'chai';
import { startEtcd, type EtcdServer } from '../../support/etcd';
import { killAllReplicas, spawnReplica, type ReplicaProcess } from '../../support/replica-process';
import { waitFor } from '../../support/wait';
import { killAllFleetClients, spawnFleetClient, type FleetClient } from '../subset/support/fleet-client';

const SERVICE = 'fleet/zones/echo';
const CONFIG = [{ etcd_weighted_round_robin: {} }];
/** The zone is drawn at random per pick: ~100 calls/s per client over this long keeps a ±5 pp bound on the fleet's share ≥ 4 standard deviations wide. */
const MEASURE_MS = 5_000;

describe('fleet: zone-aware routing across processes', function () {
  this.timeout(180_000);
  let etcd: EtcdServer | undefined;
  let replicas: ReplicaProcess[] = [];
  const clients = new Set<FleetClient>();

  afterEach(async () => {
    await killAllFleetClients();
    await killAllReplicas();
    await etcd?.destroy();
    replicas = [];
    clients.clear();
  });

  async function client(name: string, zone: string): Promise<FleetClient> {
    const c = await spawnFleetClient({ name, zone, service: SERVICE, etcdHosts: etcd!.endpoints, loadBalancingConfig: CONFIG, callIntervalMs: 10 });
    clients.add(c);
    return c;
  }

  async function close(c: FleetClient): Promise<void> {
    clients.delete(c);
    await c.close();
  }

  async function fleetIs(zones: Record<string, number>): Promise<void> {
    const wanted = JSON.stringify(Object.entries(zones).sort());
    await waitFor(`every client sees zones ${wanted}`, () => [...clients].every(c => JSON.stringify(Object.entries(c.latest?.view?.zones ?? {}).sort()) === wanted), {
      timeoutMs: 20_000, intervalMs: 100,
    });
  }

  /** Calls per replica of each client over the next MEASURE_MS. */
  async function measure(): Promise<Map<FleetClient, Map<string, number>>> {
    const marks = new Map([...clients].map(c => [c, c.received]));
    const start = Date.now();
    await waitFor(`${MEASURE_MS} ms of calls`, () => Date.now() - start >= MEASURE_MS, { timeoutMs: MEASURE_MS + 5_000, intervalMs: 100 });
    return new Map([...clients].map(c => [c, c.callsSince(marks.get(c)!)]));
  }

  function share(calls: Map<string, number>, which: (server: string) => boolean): number {
    let part = 0;
    let total = 0;
    for (const [server, n] of calls) {
      total += n;
      if (which(server)) part += n;
    }
    return total === 0 ? Number.NaN : part / total;
  }

  function merged(parts: Map<string, number>[]): Map<string, number> {
    const all = new Map<string, number>();
    for (const part of parts) for (const [server, n] of part) all.set(server, (all.get(server) ?? 0) + n);
    return all;
  }

  function failed(): number[] {
    return [...clients].map(c => c.latest?.failed ?? 0);
  }

  it('split evenly → local; all in a → 50 % local; 2 of 3 replicas of a gone → the survivor gets 50 % of a\'s clients, no failed call', async () => {
    etcd = await startEtcd();
    replicas = await Promise.all(['a1', 'a2', 'a3', 'b1', 'b2', 'b3'].map(name => spawnReplica({
      name, service: SERVICE, etcdHosts: etcd!.endpoints, metadata: { zone: name[0] },
    })));
    const [ca1, ca2, cb1, cb2] = await Promise.all([client('ca1', 'a'), client('ca2', 'a'), client('cb1', 'b'), client('cb2', 'b')]);
    await fleetIs({ a: 2, b: 2 });

    const even = await measure();
    const evenShares = [...even].map(([c, calls]) => share(calls, s => s[0] === c.name[1]));
    console.log(`      split evenly: local shares ${evenShares.map(x => (100 * x).toFixed(1)).join(', ')} %`);
    for (const x of evenShares) expect(x).to.be.at.least(0.95);

    // All clients in a: upstream 50 % < local 100 % → half local, half spilled to b.
    await Promise.all([close(cb1), close(cb2)]);
    await Promise.all([client('ca3', 'a'), client('ca4', 'a')]);
    await fleetIs({ a: 4 });
    const allA = await measure();
    const allAShares = [...allA].map(([, calls]) => share(calls, s => s[0] === 'a'));
    const allAFleet = share(merged([...allA.values()]), s => s[0] === 'a');
    console.log(`      all in a: local shares ${allAShares.map(x => (100 * x).toFixed(1)).join(', ')} % (fleet ${(100 * allAFleet).toFixed(1)} %)`);
    expect(allAFleet).to.be.within(0.45, 0.55);
    for (const x of allAShares) expect(x).to.be.within(0.4, 0.6);

    // Split evenly again, then 2 of a's 3 replicas leave (graceful shutdown through the registry).
    for (const c of [...clients].filter(c => c !== ca1 && c !== ca2)) await close(c);
    await Promise.all([client('cb3', 'b'), client('cb4', 'b')]);
    await fleetIs({ a: 2, b: 2 });
    const failedBefore = failed();
    await Promise.all(replicas.filter(r => r.name === 'a2' || r.name === 'a3').map(r => r.shutdown()));
    await waitFor('no calls on a2, a3', () => [ca1, ca2].every(c => c.recentServers(4).size > 0 && !c.recentServers(4).has('a2') && !c.recentServers(4).has('a3')), {
      timeoutMs: 20_000, intervalMs: 100,
    });
    const degraded = await measure();
    const survivorShares = [ca1, ca2].map(c => share(degraded.get(c)!, s => s === 'a1'));
    const survivorFleet = share(merged([ca1, ca2].map(c => degraded.get(c)!)), s => s === 'a1');
    console.log(`      a2, a3 gone: zone a clients' share on a1 ${survivorShares.map(x => (100 * x).toFixed(1)).join(', ')} % ` +
      `(both ${(100 * survivorFleet).toFixed(1)} %; rule: 50 %); failed calls ${failed().join(',')}`);
    expect(survivorFleet).to.be.within(0.43, 0.57);
    for (const x of survivorShares) expect(x).to.be.within(0.38, 0.62);
    expect(failed(), 'no failed calls').to.deep.equal(failedBefore.map(() => 0));
  });
});
