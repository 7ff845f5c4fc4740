/**
 * `fleet`: 1,000 clients × 300 replicas, in process (fake subchannels, nothing
 * dialled): each client is a real policy instance driven through grpc-js's child
 * handler. Full mesh (`etcd_weighted_round_robin` over every replica), A68 random
 * subsetting (`etcd_subset` without a client registry) and ours (`etcd_subset`
 * with a fleet view: deterministic aperture), subsets of 10, the same child.
 * Measured: connections per replica (leaves holding a subchannel), calls per
 * replica at uniform call rates (the same number of picks per client), and the
 * connections added + removed when one client or one replica joins or leaves.
 */
import * as grpc from '@grpc/grpc-js';
import { DEFAULT_ENDPOINT_ATTRIBUTES, ENDPOINT_ATTRIBUTES_KEY, type EndpointAttributes } from '../../src/discovery/endpoint-attributes';
import { expectedApertureConnections } from '../../src/balancer/subset/subset-aperture';
import { CLIENT_REGISTRY_SOURCE_KEY, type ClientRegistryView } from '../../src/discovery/client-registry-source';
import { EtcdSubsetLoadBalancer } from '../../src/balancer/subset/subset-balancer';
import { EtcdSubsetConfig } from '../../src/balancer/subset/subset-config';
import { isLoadBalancerNameRegistered, PickResultType, type Endpoint, type PickArgs } from '../../src/common/grpc-experimental';
import { registerVariant } from '../../test/balancer/support/load';
import { seededRandom } from '../../test/support/wait';
import { FakeClientRegistrySource, fakeAddress, nextMacrotask, PolicyHarness } from '../fake-channel';
import { count, round } from '../format';
import { type Scenario, type TargetCheck } from '../scenario';

const CLIENTS = 1_000;
const REPLICAS = 300;
const SUBSET_SIZE = 10;
const CHILD = 'etcd_weighted_round_robin';
const CALLS_MAX_OVER_MEAN = 1.05;

export type FleetScheme = 'full mesh' | 'A68 random' | 'deterministic aperture';
const SCHEMES: readonly FleetScheme[] = ['full mesh', 'A68 random', 'deterministic aperture'];

export interface ChurnFigures {
  readonly clientJoin: number;
  readonly clientLeave: number;
  readonly replicaJoin: number;
  readonly replicaLeave: number;
}

export interface FleetRow {
  readonly scheme: FleetScheme;
  readonly connectionsMin: number;
  readonly connectionsMax: number;
  readonly connectionsMean: number;
  readonly callsMaxOverMean: number;
  readonly callsMinOverMean: number;
  readonly churn: ChurnFigures;
  readonly setupMs: number;
}

export interface FleetMetrics {
  readonly clients: number;
  readonly replicas: number;
  readonly subsetSize: number;
  readonly callsPerClient: number;
  readonly expectedDeterministicConnections: number;
  readonly rows: readonly FleetRow[];
  /** One deterministic client over a large service: ms to take the whole list, and per update replacing one endpoint (median). */
  readonly large: { readonly endpoints: number; readonly setupMs: number; readonly updateMs: number };
}

const LARGE_SERVICE = 10_000;
const LARGE_UPDATES = 21;

/** One etcd_subset client (deterministic, client 17 of 1,000) over 10,000 endpoints: the cost of its first list and of a one-endpoint change. */
async function measureLarge(): Promise<FleetMetrics['large']> {
  const replicas = new Replicas(LARGE_SERVICE);
  const fleet = new FakeClientRegistrySource(viewOf(17, CLIENTS));
  const harness = new PolicyHarness(SEEDED_SUBSET, grpc.connectivityState.READY, { subsetSize: SUBSET_SIZE, childPolicy: [{ [CHILD]: {} }] });
  try {
    const update = (): void => {
      harness.update(replicas.list(), { [ENDPOINT_ATTRIBUTES_KEY]: replicas.map(), [CLIENT_REGISTRY_SOURCE_KEY]: fleet });
    };
    let start = performance.now();
    update();
    const setupMs = performance.now() - start;
    await settle();
    const times: number[] = [];
    for (let i = 0; i < LARGE_UPDATES; i++) {
      // Endpoint i leaves and a new one joins: one resolver update (the list and map built outside the timing).
      replicas.remove(i);
      replicas.add(LARGE_SERVICE + i);
      const list = replicas.list();
      const options = { [ENDPOINT_ATTRIBUTES_KEY]: replicas.map(), [CLIENT_REGISTRY_SOURCE_KEY]: fleet };
      start = performance.now();
      harness.update(list, options);
      times.push(performance.now() - start);
      await settle();
    }
    times.sort((a, b) => a - b);
    return { endpoints: LARGE_SERVICE, setupMs: round(setupMs, 2), updateMs: round(times[times.length >> 1], 3) };
  } finally {
    harness.destroy();
  }
}

function viewOf(index: number, clients: number): ClientRegistryView {
  return FakeClientRegistrySource.view(index, clients);
}

/** The replicas as the resolver hands them over: one Endpoint and one attributes object per address, kept. */
class Replicas {
  private readonly endpoints = new Map<string, Endpoint>();
  private readonly attributes = new Map<string, EndpointAttributes>();
  constructor(size: number) {
    for (let i = 0; i < size; i++) this.add(i);
  }
  add(i: number): void {
    const address = fakeAddress(i);
    const [host, port] = address.split(':');
    this.endpoints.set(address, { addresses: [{ host, port: Number(port) }] });
    this.attributes.set(address, DEFAULT_ENDPOINT_ATTRIBUTES);
  }
  remove(i: number): void {
    this.endpoints.delete(fakeAddress(i));
    this.attributes.delete(fakeAddress(i));
  }
  list(): Endpoint[] {
    return [...this.endpoints.values()];
  }
  map(): ReadonlyMap<string, EndpointAttributes> {
    return new Map(this.attributes);
  }
}

interface Client {
  readonly harness: PolicyHarness;
  readonly fleet: FakeClientRegistrySource | undefined;
}

/** etcd_subset whose A68 seeds come from the bench's seed (grpc-js creates balancers with a helper only). */
const SEEDED_SUBSET = 'bench_etcd_subset_seeded';
let nextSeed: () => bigint = () => 0n;

function registerSeededSubset(seed: number): void {
  const random = seededRandom(seed);
  nextSeed = () => (BigInt(Math.floor(random() * 2 ** 32)) << 32n) | BigInt(Math.floor(random() * 2 ** 32));
  if (!isLoadBalancerNameRegistered(SEEDED_SUBSET)) {
    registerVariant(SEEDED_SUBSET, EtcdSubsetLoadBalancer, EtcdSubsetConfig, () => ({ randomSeed: nextSeed() }));
  }
}

function configOf(scheme: FleetScheme): { policy: string; body: object } {
  if (scheme === 'full mesh') return { policy: CHILD, body: {} };
  return { policy: SEEDED_SUBSET, body: { subsetSize: SUBSET_SIZE, childPolicy: [{ [CHILD]: {} }] } };
}

class FleetSim {
  readonly clients: Client[] = [];
  readonly replicas = new Replicas(REPLICAS);

  constructor(readonly scheme: FleetScheme) {}

  addClient(at: number, total: number): Client {
    const { policy, body } = configOf(this.scheme);
    const harness = new PolicyHarness(policy, grpc.connectivityState.READY, body);
    const fleet = this.scheme === 'deterministic aperture' ? new FakeClientRegistrySource(viewOf(at, total)) : undefined;
    const client = { harness, fleet };
    this.update(client);
    this.clients.splice(at, 0, client);
    return client;
  }

  update(client: Client): void {
    client.harness.update(this.replicas.list(), { [ENDPOINT_ATTRIBUTES_KEY]: this.replicas.map(), ...(client.fleet ? { [CLIENT_REGISTRY_SOURCE_KEY]: client.fleet } : {}) });
  }

  /** Tells every client its (new) rank and the client count. */
  renumber(): void {
    this.clients.forEach((c, i) => c.fleet?.set(viewOf(i, this.clients.length)));
  }

  connections(): Map<string, Set<number>> {
    const byReplica = new Map<string, Set<number>>();
    this.clients.forEach((c, i) => {
      for (const address of c.harness.pool.inUse()) {
        let set = byReplica.get(address);
        if (!set) byReplica.set(address, set = new Set());
        set.add(i);
      }
    });
    return byReplica;
  }

  /** Every client's in-use addresses (by client object, so ranks may change between snapshots). */
  snapshot(): Map<Client, Set<string>> {
    return new Map(this.clients.map(c => [c, new Set(c.harness.pool.inUse())]));
  }

  destroy(): void {
    for (const c of this.clients) c.harness.destroy();
  }
}

/** Connections added + removed between two snapshots (clients only in one count all theirs). */
function churn(before: Map<Client, Set<string>>, after: Map<Client, Set<string>>): number {
  let total = 0;
  for (const [client, now] of after) {
    const was = before.get(client) ?? new Set<string>();
    for (const a of now) if (!was.has(a)) total++;
    for (const a of was) if (!now.has(a)) total++;
  }
  for (const [client, was] of before) if (!after.has(client)) total += was.size;
  return total;
}

async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await nextMacrotask();
}

const PICK_ARGS: PickArgs = { metadata: new grpc.Metadata(), extraPickInfo: {} };

function callsPerReplica(sim: FleetSim, callsPerClient: number): number[] {
  const calls = new Map<string, number>();
  for (const c of sim.clients) {
    const picker = c.harness.picker;
    if (picker === undefined) throw new Error(`bench fleet: a ${sim.scheme} client published no picker`);
    for (let i = 0; i < callsPerClient; i++) {
      const result = picker.pick(PICK_ARGS);
      if (result.pickResultType !== PickResultType.COMPLETE || result.subchannel === null) throw new Error(`bench fleet: a ${sim.scheme} pick did not complete`);
      const address = result.subchannel.getAddress();
      calls.set(address, (calls.get(address) ?? 0) + 1);
      result.onCallStarted?.();
      result.onCallEnded?.(grpc.status.OK, '', PICK_ARGS.metadata);
    }
  }
  return Array.from({ length: REPLICAS }, (_v, i) => calls.get(fakeAddress(i)) ?? 0);
}

async function runScheme(scheme: FleetScheme, clients: number, callsPerClient: number): Promise<FleetRow> {
  const sim = new FleetSim(scheme);
  try {
    const start = performance.now();
    for (let i = 0; i < clients; i++) sim.addClient(i, clients);
    await settle();
    const setupMs = performance.now() - start;
    const perReplica = [...sim.connections().values()].map(s => s.size);
    while (perReplica.length < REPLICAS) perReplica.push(0);
    const calls = callsPerReplica(sim, callsPerClient);
    const meanCalls = calls.reduce((a, b) => a + b, 0) / calls.length;

    // One client joins in the middle of the ranks, then leaves again.
    const middle = Math.floor(clients / 2);
    let before = sim.snapshot();
    const joined = sim.addClient(middle, clients + 1);
    sim.renumber();
    await settle();
    const clientJoin = churn(before, sim.snapshot());
    before = sim.snapshot();
    sim.clients.splice(sim.clients.indexOf(joined), 1);
    joined.harness.destroy();
    sim.renumber();
    await settle();
    const clientLeave = churn(before, sim.snapshot());

    // One replica joins, then leaves again.
    before = sim.snapshot();
    sim.replicas.add(REPLICAS);
    for (const c of sim.clients) sim.update(c);
    await settle();
    const replicaJoin = churn(before, sim.snapshot());
    before = sim.snapshot();
    sim.replicas.remove(REPLICAS);
    for (const c of sim.clients) sim.update(c);
    await settle();
    const replicaLeave = churn(before, sim.snapshot());

    return {
      scheme,
      connectionsMin: Math.min(...perReplica),
      connectionsMax: Math.max(...perReplica),
      connectionsMean: perReplica.reduce((a, b) => a + b, 0) / perReplica.length,
      callsMaxOverMean: Math.max(...calls) / meanCalls,
      callsMinOverMean: Math.min(...calls) / meanCalls,
      churn: { clientJoin, clientLeave, replicaJoin, replicaLeave },
      setupMs,
    };
  } finally {
    sim.destroy();
  }
}

function rowOf(metrics: FleetMetrics, scheme: FleetScheme): FleetRow | undefined {
  return metrics.rows.find(r => r.scheme === scheme);
}

export const fleetScenario: Scenario<FleetMetrics> = {
  name: 'fleet',
  title: 'Fleet: subsetting',
  method: `${count(CLIENTS)} clients × ${REPLICAS} replicas in process (fake subchannels, READY; nothing dialled), each client a real policy `
    + `instance: full mesh (${CHILD} over every replica), A68 random subsetting (etcd_subset, no client registry: XXH64 order, a seed per client `
    + `drawn from --seed) and the deterministic aperture (etcd_subset with each client's index and the client count, as the client registry `
    + `gives them), subsets of ${SUBSET_SIZE}, child ${CHILD}. Connections = leaves holding a subchannel; calls = the same number of picks `
    + 'per client (uniform rates). Churn = connections added + removed over all clients when one client joins (at the middle rank, '
    + 'shifting the ranks after it) or leaves, or one replica joins or leaves. The full mesh holds 300,000 leaves: the run peaks near 2.5 GB RSS.',

  steps() {
    return SCHEMES.length;
  },

  async run(context): Promise<FleetMetrics> {
    // A multiple of N: a round-robin child starting where every other starts (full mesh) then covers each replica equally.
    const callsPerClient = REPLICAS;
    registerSeededSubset(context.seed);
    const rows: FleetRow[] = [];
    for (const scheme of SCHEMES) {
      context.progress.step(scheme);
      rows.push(await runScheme(scheme, CLIENTS, callsPerClient));
    }
    const large = await measureLarge();
    return {
      clients: CLIENTS,
      replicas: REPLICAS,
      subsetSize: SUBSET_SIZE,
      callsPerClient,
      expectedDeterministicConnections: round(expectedApertureConnections(CLIENTS, REPLICAS, SUBSET_SIZE), 2),
      rows,
      large,
    };
  },

  tables(metrics) {
    return [{
      title: `fleet: ${count(metrics.clients)} clients × ${metrics.replicas} replicas, subsets of ${metrics.subsetSize}`,
      columns: ['scheme', 'conn/replica min', 'max', 'mean', 'calls max/mean', 'min/mean', 'churn: client +', 'client −', 'replica +', 'replica −'],
      rows: metrics.rows.map(r => [
        r.scheme, count(r.connectionsMin), count(r.connectionsMax), r.connectionsMean.toFixed(2),
        r.callsMaxOverMean.toFixed(3), r.callsMinOverMean.toFixed(3),
        count(r.churn.clientJoin), count(r.churn.clientLeave), count(r.churn.replicaJoin), count(r.churn.replicaLeave),
      ]),
      note: `Deterministic aperture: expected ${metrics.expectedDeterministicConnections} connections per replica ((L + C) / N, L = max(N, k·C)); `
        + `${metrics.callsPerClient} picks per client. Churn counts connections added + removed across the whole fleet.`,
    }, {
      title: `fleet: one deterministic etcd_subset client over ${count(metrics.large.endpoints)} endpoints`,
      columns: ['first list', 'update replacing one endpoint (median)'],
      rows: [[`${metrics.large.setupMs.toFixed(1)} ms`, `${metrics.large.updateMs.toFixed(2)} ms`]],
      note: 'The first list hashes every address (XXH64) into the tier ring; an update walks the list once (grpc-js hands the whole list) and moves only what changed.',
    }];
  },

  plots() {
    return [];
  },

  targets(metrics): TargetCheck[] {
    const ours = rowOf(metrics, 'deterministic aperture');
    const a68 = rowOf(metrics, 'A68 random');
    const expected = metrics.expectedDeterministicConnections;
    const churnText = (r: FleetRow | undefined): string => (r ? `${r.churn.clientJoin}/${r.churn.clientLeave}/${r.churn.replicaJoin}/${r.churn.replicaLeave}` : 'n/a');
    return [
      {
        scenario: 'fleet',
        what: 'deterministic: connections per replica vs the aperture\'s expected count',
        target: `within ±1 of ${expected}`,
        measured: ours ? `${ours.connectionsMin}–${ours.connectionsMax}` : 'n/a',
        met: ours ? ours.connectionsMin >= expected - 1 && ours.connectionsMax <= expected + 1 : undefined,
      },
      {
        scenario: 'fleet',
        what: 'deterministic: calls per replica max/mean',
        target: `≤ ${CALLS_MAX_OVER_MEAN}`,
        measured: ours ? ours.callsMaxOverMean.toFixed(3) : 'n/a',
        met: ours ? ours.callsMaxOverMean <= CALLS_MAX_OVER_MEAN : undefined,
        note: a68 ? `A68 random: ${a68.callsMaxOverMean.toFixed(3)} (connections ${a68.connectionsMin}–${a68.connectionsMax})` : undefined,
      },
      {
        scenario: 'fleet',
        what: 'churn (client join/leave, replica join/leave), connections added + removed: ours vs A68',
        target: 'reported',
        measured: `${churnText(ours)} vs ${churnText(a68)}`,
        met: undefined,
        note: 'A68 keeps every other client\'s subset on a client change; the aperture slides every slice a little (ranks and C change).',
      },
    ];
  },
};
