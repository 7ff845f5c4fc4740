/**
 * Fuzz: 10,000 seeded generated values under one service prefix, malformed
 * ones of every kind mixed with valid ones (see malformed-values.ts), written
 * before the resolver starts (list path), while it watches (watch path), then
 * partly deleted. The bar: no crash; exactly the valid endpoints resolved, with
 * their attributes (first key wins a duplicate); memory bounded; a registration
 * under the same prefix and a neighbouring service on the same etcd, under load,
 * unharmed.
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { type Etcd3 } from 'etcd3';
import { register } from '../../src/register';
import { registerEndpoint } from '../../src/register';
import { type Registration } from '../../src/discovery/registration';
import { startEtcd, type EtcdServer } from '../support/etcd';
import { startEchoServer, type EchoServer } from '../support/echo-server';
import { type EchoClient } from '../support/echo-proto';
import { describeLoad, startSteadyLoad, type SteadyLoad } from '../support/steady-load';
import { seededRandom, waitFor } from '../support/wait';
import { writerClient } from '../backends/etcd/resolver-fixtures';
import { captureGrpcLog, etcdTarget, heapUsedAfterGc, mib, recordResolution, retryingClient, type ResolutionRecorder } from './fault-fixtures';
import { categoryCounts, expectedEndpoints, generateMalformedCorpus, type FuzzEntry } from './malformed-values';

const SERVICE = 'faults/fuzz';
const NEIGHBOUR = 'faults/fuzz-neighbour';
const SEED = 20_261_127;
/** etcd's default cap on operations per transaction; requests stay well under its 1.5 MiB limit. */
const MAX_TXN_OPS = 128;
const MAX_TXN_BYTES = 512 * 1024;

describe('faults: fuzz, 10,000 malformed and valid values under a service prefix', function () {
  this.timeout(120_000);
  let etcd: EtcdServer | undefined;
  let writer: Etcd3 | undefined;
  let servers: EchoServer[] = [];
  let registrations: Registration[] = [];
  const recorders: ResolutionRecorder[] = [];
  let client: EchoClient | undefined;
  let load: SteadyLoad | undefined;

  before(() => register());

  afterEach(async () => {
    grpc.setLogger(console);
    await load?.stop();
    client?.close();
    for (const r of recorders.splice(0)) r.close();
    await Promise.all(registrations.map(r => r.close()));
    await Promise.all(servers.map(s => s.stop(100)));
    writer?.close();
    await etcd?.destroy();
    registrations = [];
    servers = [];
  });

  function record(service: string): ResolutionRecorder {
    const r = recordResolution(etcd!.endpoints, service);
    recorders.push(r);
    return r;
  }

  it('resolves exactly the valid endpoints, stays bounded, harms no neighbour', async () => {
    etcd = await startEtcd();
    const hosts = etcd.endpoints;
    writer = writerClient(hosts);
    servers = await Promise.all([startEchoServer({ name: 'in-fuzz' }), startEchoServer({ name: 'neighbour' })]);
    const [inFuzz, neighbour] = servers;
    registrations = await Promise.all([
      registerEndpoint({ service: SERVICE, address: inFuzz.address, ttlSeconds: 2, etcd: { hosts } }),
      registerEndpoint({ service: NEIGHBOUR, address: neighbour.address, ttlSeconds: 2, etcd: { hosts } }),
    ]);
    const registryTrouble: string[] = [];
    for (const r of registrations) {
      r.onLost(e => registryTrouble.push(`${r.key} lost: ${e.reason}`));
      r.onError(e => registryTrouble.push(e.message));
    }
    const neighbours = record(NEIGHBOUR);
    client = retryingClient(etcdTarget(NEIGHBOUR, hosts), { etcd_weighted_round_robin: {} });
    load = startSteadyLoad(client, { concurrency: 4, ratePerSecond: 200, phase: 'fuzz' });
    await waitFor('the neighbour to serve', () => load!.ok > 10, { timeoutMs: 10_000 });
    const log = captureGrpcLog();
    const logLines = log.lines;

    const corpus = generateMalformedCorpus({ seed: SEED, service: SERVICE, count: 10_000, validFraction: 0.25, hugeValues: 4 }, seededRandom(SEED));
    const heapBefore = heapUsedAfterGc();
    const half = corpus.length / 2;
    const writeStart = Date.now();
    await writeEntries(writer, corpus.slice(0, half));
    const fuzzed = record(SERVICE);
    await waitFor('the first list', () => fuzzed.updates > 0, { timeoutMs: 20_000 });
    await writeEntries(writer, corpus.slice(half));
    const deleteRandom = seededRandom(SEED + 1);
    const deleted = corpus.filter(() => deleteRandom() < 0.1);
    await deleteEntries(writer, deleted);
    const writeMs = Date.now() - writeStart;
    const gone = new Set(deleted);
    const remaining = corpus.filter(e => !gone.has(e));
    const expected = expectedEndpoints(remaining);
    expected.set(inFuzz.address, { weight: 1, priority: 0 });

    const settleMs = await waitFor('the resolver to hold exactly the valid endpoints', () => differences(fuzzed, expected).length === 0, { timeoutMs: 30_000, intervalMs: 50 })
      .catch((err: Error) => { throw new Error(`${err.message}: ${differences(fuzzed, expected).slice(0, 10).join('; ')}`); });
    const heapAfter = heapUsedAfterGc();
    const watchedUpdates = fuzzed.updates;
    fuzzed.close();
    // A fresh list of the final state (paged, 1 MB values included) agrees.
    const relisted = record(SERVICE);
    const relistMs = await waitFor('a fresh list', () => relisted.updates > 0, { timeoutMs: 20_000 });
    expect(differences(relisted, expected)).to.deep.equal([]);

    const changeStart = Date.now();
    await registrations[1].update({ weight: 3 });
    await waitFor('a neighbour change to be seen', () => neighbours.attributes().get(neighbour.address)?.weight === 3, { timeoutMs: 5000 });
    const neighbourChangeMs = Date.now() - changeStart;
    const totals = await load.stop();
    log.restore();

    const resolverWarnings = logLines.filter(l => l.includes('etcd resolver')).length;
    console.log(`      ${corpus.length} values ${JSON.stringify(categoryCounts(corpus))}, ${deleted.length} deleted; written in ${writeMs} ms`);
    console.log(`      resolved exactly the ${expected.size} valid endpoints ${settleMs} ms after the last write (${watchedUpdates} LB updates), a fresh list in ${relistMs} ms; `
      + `heap after GC ${mib(heapBefore)} → ${mib(heapAfter)}; ${resolverWarnings} resolver warning lines (${logLines.length} log lines in all)`);
    console.log(`      neighbour: change seen ${neighbourChangeMs} ms after its put; ${describeLoad(totals)}`);
    expect(totals.failures).to.deep.equal([]);
    expect(neighbours.removals).to.deep.equal([]);
    expect(registryTrouble).to.deep.equal([]);
    expect(registrations.map(r => r.state)).to.deep.equal(['registered', 'registered']);
    expect(heapAfter - heapBefore, 'heap growth').to.be.lessThan(48 * 1048576);
    expect(resolverWarnings).to.be.lessThan(100);
  });

  it('extreme but valid values reach every etcd_* picker: zero failed calls, shares as the weights say', async () => {
    etcd = await startEtcd();
    const hosts = etcd.endpoints;
    writer = writerClient(hosts);
    const v6 = await startEchoServer({ name: 'v6', address: '[::1]:0' }).catch(() => undefined);
    servers = [
      ...await Promise.all(['heavy', 'tiny', 'draining'].map(name => startEchoServer({ name }))),
      ...(v6 ? [v6] : []),
    ];
    const [heavy, tiny, draining] = servers;
    const service = 'faults/extreme';
    const put = (key: string, value: string): Promise<unknown> => writer!.put(`${service}/${key}`).value(value).exec();
    // Duplicates of 'heavy': the first key in byte order wins, whatever its weight.
    await put(`0-${heavy.address}`, JSON.stringify({ Addr: heavy.address, Metadata: { weight: 1_000_000, priority: 0 } }));
    await put(`1-${heavy.address}`, JSON.stringify({ Addr: heavy.address, Metadata: { weight: 1 } }));
    await put(tiny.address, JSON.stringify({ addr: tiny.address, metadata: { weight: '1e-300', priority: '0' } }));
    await put(draining.address, JSON.stringify({ Addr: draining.address, Metadata: { weight: 0, pad: 'p'.repeat(60 * 1024) } }));
    if (v6) {
      const port = v6.address.slice(v6.address.lastIndexOf(':') + 1);
      await put(`v6-${port}`, `{"ADDR":"[0:0:0:0:0:0:0:1]:${port}","Metadata":{"weight":1000000,"deep":${'['.repeat(25_000)}${']'.repeat(25_000)}}}`);
    }
    const log = captureGrpcLog();
    const policies = ['etcd_weighted_round_robin', 'etcd_weighted_random', 'etcd_least_request'];
    const shares: string[] = [];
    for (const policy of policies) {
      const c = retryingClient(etcdTarget(service, hosts), { [policy]: {} });
      try {
        const policyLoad = startSteadyLoad(c, { concurrency: 8, ratePerSecond: 0, phase: policy });
        await waitFor(`${policy}: 600 calls`, () => policyLoad.ok + policyLoad.failed >= 600, { timeoutMs: 20_000 });
        const t = await policyLoad.stop();
        shares.push(`${policy} ${JSON.stringify(t.byReplica)}`);
        expect(t.failures, policy).to.deep.equal([]);
        expect(t.byReplica.tiny ?? 0, `${policy}: weight 1e-300`).to.be.at.most(policy === 'etcd_least_request' ? t.ok / 4 : 1);
        expect(t.byReplica.draining ?? 0, `${policy}: weight 0`).to.equal(0);
        if (v6 && policy !== 'etcd_least_request') expect(t.byReplica.v6 ?? 0, `${policy}: IPv6 replica with deep metadata`).to.be.greaterThan(t.ok / 4);
      } finally {
        c.close();
      }
    }
    log.restore();
    expect(log.lines.every(l => l.includes('already registered by key')), log.lines.join('\n')).to.equal(true);
    console.log(`      weights 1e6 (two keys), 1e-300, 0 (60 KiB metadata)${v6 ? ', 1e6 ([::1] as [0:0:0:0:0:0:0:1], 50 KB of nesting)' : ' (no IPv6 loopback here)'}: ${shares.join('; ')}`);
  });
});

/** What differs between the resolver's latest list and `expected`, one line per address. */
function differences(recorder: ResolutionRecorder, expected: ReadonlyMap<string, { weight: number; priority: number }>): string[] {
  const out: string[] = [];
  const current = new Set(recorder.current());
  const attributes = recorder.attributes();
  for (const [address, want] of expected) {
    if (!current.has(address)) {
      out.push(`missing ${address}`);
      continue;
    }
    const got = attributes.get(address);
    if (got?.weight !== want.weight || got?.priority !== want.priority) {
      out.push(`${address}: weight/priority ${got?.weight}/${got?.priority}, expected ${want.weight}/${want.priority}`);
    }
  }
  for (const address of current) if (!expected.has(address)) out.push(`unexpected ${address}`);
  return out;
}

/** Puts entries in transactions of at most MAX_TXN_OPS and MAX_TXN_BYTES (a larger value alone). */
async function writeEntries(writer: Etcd3, entries: readonly FuzzEntry[]): Promise<void> {
  let batch: FuzzEntry[] = [];
  let bytes = 0;
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    await writer.kv.txn({ success: batch.map(e => ({ request_put: { key: e.key, value: e.value } })) });
    batch = [];
    bytes = 0;
  };
  for (const e of entries) {
    const size = e.key.length + e.value.length;
    if (batch.length >= MAX_TXN_OPS || bytes + size > MAX_TXN_BYTES) await flush();
    batch.push(e);
    bytes += size;
  }
  await flush();
}

async function deleteEntries(writer: Etcd3, entries: readonly FuzzEntry[]): Promise<void> {
  for (let i = 0; i < entries.length; i += MAX_TXN_OPS) {
    await writer.kv.txn({ success: entries.slice(i, i + MAX_TXN_OPS).map(e => ({ request_delete_range: { key: e.key } })) });
  }
}
