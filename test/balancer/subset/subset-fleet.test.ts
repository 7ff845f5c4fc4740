/**
 * Acceptance of `etcd_subset` with the client registry: real etcd, replica
 * processes registered in it, client processes announcing themselves.
 * 6 clients × 6 replicas, subsetSize 2: each client calls exactly 2 replicas and
 * each replica serves exactly 2 clients; a client killed with SIGKILL → when its
 * lease expires the others re-balance (5 clients over 6 replicas: fractional
 * edges, load still even) with zero failed calls.
 */
import { expect } from 'chai';
import { startEtcd, type EtcdServer } from '../../support/etcd';
import { killAllReplicas, spawnReplica, type ReplicaProcess } from '../../support/replica-process';
import { waitFor } from '../../support/wait';
import { DEFAULT_CLIENT_TTL_SECONDS } from '../../../src/backends/etcd/client-registry';
import { killAllFleetClients, spawnFleetClient, type FleetClient } from './support/fleet-client';

const SERVICE = 'fleet/subset/echo';
const CONFIG = [{ etcd_subset: { subsetSize: 2, childPolicy: [{ etcd_weighted_round_robin: {} }] } }];

/** Replica name → clients that called it in their last `windows` reports. */
function clientsPerReplica(clients: FleetClient[], windows: number): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const c of clients) {
    for (const server of c.recentServers(windows)) map.set(server, [...(map.get(server) ?? []), c.name]);
  }
  return map;
}

describe('fleet: etcd_subset across processes', function () {
  this.timeout(120_000);
  let etcd: EtcdServer | undefined;
  let replicas: ReplicaProcess[] = [];
  let clients: FleetClient[] = [];

  afterEach(async () => {
    await killAllFleetClients();
    await killAllReplicas();
    await etcd?.destroy();
    replicas = [];
    clients = [];
  });

  it('6 clients × 6 replicas, subsetSize 2: 2 replicas per client, 2 clients per replica; a client killed → re-balanced, no failed call', async () => {
    etcd = await startEtcd();
    const hosts = etcd.endpoints;
    replicas = await Promise.all(Array.from({ length: 6 }, (_v, i) => spawnReplica({ name: `r${i}`, service: SERVICE, etcdHosts: hosts })));
    clients = await Promise.all(Array.from({ length: 6 }, (_v, i) => spawnFleetClient({
      name: `c${i}`, service: SERVICE, etcdHosts: hosts, loadBalancingConfig: CONFIG, callIntervalMs: 20,
    })));

    // Every client has seen the whole fleet, and then each calls exactly 2 replicas (over the last 1 s).
    const settleMs = await waitFor('6 clients in every view, 2 replicas each, 2 clients per replica', () => {
      if (!clients.every(c => c.latest?.view?.clientCount === 6 && c.latest.view.selfIndex !== undefined)) return false;
      const perReplica = clientsPerReplica(clients, 4);
      return clients.every(c => c.recentServers(4).size === 2) && perReplica.size === 6 && [...perReplica.values()].every(v => v.length === 2);
    }, { timeoutMs: 30_000, intervalMs: 100 });
    const indexes = clients.map(c => c.latest!.view!.selfIndex).sort();
    expect(indexes).to.deep.equal([0, 1, 2, 3, 4, 5]);
    const before = clientsPerReplica(clients, 4);
    console.log(`      settled in ${settleMs} ms: ${[...before].sort().map(([r, cs]) => `${r}←${cs.sort().join('+')}`).join(' ')}`);

    // One client dies without a word: its lease expires, the 5 others take over its share.
    const victim = clients[2];
    await victim.kill('SIGKILL');
    const survivors = clients.filter(c => c !== victim);
    const killedAt = Date.now();
    const rebalanceMs = await waitFor('5 clients in every view', () => survivors.every(c => c.latest?.view?.clientCount === 5), {
      timeoutMs: (DEFAULT_CLIENT_TTL_SECONDS + 15) * 1000, intervalMs: 100,
    });
    // Replicas' calls over 3 s after the change: even again (WRR over fractional edge weights).
    const marks = replicas.map(r => r.stats.calls);
    const windowStart = Date.now();
    await waitFor('3 s of calls after the re-balance', () => Date.now() - windowStart >= 3_000, { timeoutMs: 10_000, intervalMs: 100 });
    const served = replicas.map((r, i) => r.stats.calls - marks[i]);
    const mean = served.reduce((a, b) => a + b, 0) / served.length;
    const after = clientsPerReplica(survivors, 8);
    console.log(`      killed c2; views at 5 clients after ${rebalanceMs} ms (lease TTL ${DEFAULT_CLIENT_TTL_SECONDS} s), ` +
      `replicas per client ${survivors.map(c => c.recentServers(8).size).join(',')}, calls per replica over 3 s ${served.join(',')} ` +
      `(max/mean ${(Math.max(...served) / mean).toFixed(2)})`);
    expect(Date.now() - killedAt).to.be.below((DEFAULT_CLIENT_TTL_SECONDS + 15) * 1000);
    expect(after.size, 'every replica still serves someone').to.equal(6);
    expect(Math.max(...served) / mean).to.be.below(1.3);
    expect(Math.min(...served) / mean).to.be.above(0.7);
    const failed = survivors.map(c => c.latest!.failed);
    expect(failed, `failed calls (last error: ${survivors.map(c => c.latest!.lastError).filter(Boolean)[0] ?? 'none'})`).to.deep.equal([0, 0, 0, 0, 0]);
    expect(survivors.every(c => c.latest!.calls > 100)).to.equal(true);
  });
});
