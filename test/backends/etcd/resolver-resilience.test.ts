import { expect } from 'chai';
import { execFile } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import { type Etcd3, GRPCResourceExhastedError } from 'etcd3';
import { installBackends } from '../../../src/discovery/backend-registry';
import { etcdBackend } from '../../../src/backends/etcd/etcd-backend';
import { resolveResolverOptions } from '../../../src/discovery/resolver-options';
import { acquireServiceWatch } from '../../../src/backends/etcd/service-watch-registry';
import { type ResolutionState } from '../../../src/discovery/discovery-watch';
import { encodeEndpointValue, endpointKey } from '../../../src/backends/etcd/endpoint-codec';
import { startEtcd, startEtcdCluster, etcdctl, ETCDCTL_BIN, type EtcdCluster, type EtcdServer } from '../../support/etcd';
import { startEchoServer, type EchoServer } from '../../support/echo-server';
import { unary, type EchoClient } from '../../support/echo-proto';
import { startTcpProxy, type TcpProxy } from '../../support/tcp-proxy';
import { startSteadyLoad, type LoadTotals } from '../../support/steady-load';
import { waitFor } from '../../support/wait';
import { echoClient, etcdTarget, etcdUri, putEndpoint, recordingResolver, writerClient, type RecordingResolver } from './resolver-fixtures';

/** etcdctl without blocking the event loop (the echo servers under load live in this process). */
function etcdctlAsync(endpoints: string[], args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(ETCDCTL_BIN, [`--endpoints=${endpoints.join(',')}`, ...args], { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 10_000 },
      (err, stdout, stderr) => (err ? reject(new Error(`etcdctl ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout)));
  });
}

/** etcd's default cap on operations per transaction. */
const MAX_TXN_OPS = 128;

describe('etcd resolver resilience (real etcd, real servers)', function () {
  this.timeout(60_000);
  const servers: EchoServer[] = [];
  const clients: EchoClient[] = [];
  const resolvers: RecordingResolver[] = [];
  const writers: Etcd3[] = [];
  const proxies: TcpProxy[] = [];
  const etcds: Array<EtcdServer | EtcdCluster> = [];

  before(() => installBackends([etcdBackend]));

  afterEach(async function () {
    for (const c of clients.splice(0)) c.close();
    for (const r of resolvers.splice(0)) r.destroy();
    for (const w of writers.splice(0)) w.close();
    await Promise.all(proxies.splice(0).map(p => p.close()));
    await Promise.all(servers.splice(0).map(s => s.stop(100)));
    await Promise.all(etcds.splice(0).map(e => e.destroy()));
  });

  async function echoServers(...names: string[]): Promise<EchoServer[]> {
    const started = await Promise.all(names.map(name => startEchoServer({ name })));
    servers.push(...started);
    return started;
  }
  async function oneEtcd(): Promise<EtcdServer> {
    const e = await startEtcd();
    etcds.push(e);
    return e;
  }
  function writer(hosts: string[]): Etcd3 {
    const w = writerClient(hosts);
    writers.push(w);
    return w;
  }
  function client(target: string): EchoClient {
    const c = echoClient(target);
    clients.push(c);
    return c;
  }
  function resolve(service: string, hosts: string[]): RecordingResolver {
    const r = recordingResolver(etcdUri(service, hosts));
    resolvers.push(r);
    r.resolver.updateResolution();
    return r;
  }

  it('resyncs after a compaction past its watch revision while its connection was cut', async function () {
    const etcd = await oneEtcd();
    const proxy = await startTcpProxy(etcd.endpoint);
    proxies.push(proxy);
    const w = writer(etcd.endpoints);
    const [a, b] = await echoServers('a', 'b');
    await putEndpoint(w, 'compacted', a.address);
    const r = resolve('compacted', [proxy.address]);
    await waitFor('first resolution', () => r.last()?.addresses.length === 1, { timeoutMs: 5000 });
    // A change seen after the list proves the watch is established before we cut it.
    await putEndpoint(w, 'compacted', a.address, { weight: 2 });
    await waitFor('the watch to deliver a change', () => r.last()?.attributes?.get(a.address)?.weight === 2, { timeoutMs: 5000 });

    proxy.cut();
    await putEndpoint(w, 'compacted', b.address);
    for (let i = 0; i < 20; i++) await w.put('unrelated/key').value(String(i));
    const revision = Number((await w.get('unrelated/key').exec()).header.revision);
    await w.kv.compact({ revision, physical: true });
    proxy.resume();
    const resumed = Date.now();
    await waitFor('b after resync', () => r.last()?.addresses.includes(b.address) === true, { timeoutMs: 10_000 });
    const seenMs = Date.now() - resumed;
    // And the new watch works: the next change is seen too.
    await w.delete().key(endpointKey('compacted', a.address)).exec();
    const nextMs = await waitFor('a removed via the new watch', () => r.last()?.addresses.join() === b.address, { timeoutMs: 5000 });
    console.log(`      compacted to ${revision} while cut: resynced ${seenMs} ms after the connection came back, next change seen in ${nextMs} ms`);
    expect(r.updates.every(u => u.ok)).to.equal(true, 'no error is reported once a list was obtained');
  });

  it('notices a silent partition (keepalive), keeps the last list, and resyncs through a new connection', async function () {
    const etcd = await oneEtcd();
    const proxy = await startTcpProxy(etcd.endpoint);
    proxies.push(proxy);
    const w = writer(etcd.endpoints);
    await putEndpoint(w, 'silent', '10.0.0.1:1');
    // Shortest keepalive etcd accepts; short list deadline (blackholed connections accept and never answer).
    const options = resolveResolverOptions({ keepaliveTimeMs: 5000, keepaliveTimeoutMs: 1000, listTimeoutMs: 1000 });
    const lease = acquireServiceWatch({ hosts: [proxy.address] }, 'silent', options);
    const states: ResolutionState[] = [];
    const unsubscribe = lease.watch.subscribe(state => states.push(state));
    const addressesNow = (): string[] => {
      const last = states[states.length - 1];
      return last?.ok ? last.resolved.endpoints.map(e => e.addresses.map(a => ('host' in a ? `${a.host}:${a.port}` : '')).join()) : [];
    };
    try {
      await waitFor('first list', () => addressesNow().length === 1, { timeoutMs: 5000 });
      await putEndpoint(w, 'silent', '10.0.0.2:1');
      await waitFor('the watch to deliver a change', () => addressesNow().length === 2, { timeoutMs: 5000 });
      const closedBefore = proxy.closedConnections;
      proxy.blackhole();
      const start = Date.now();
      await putEndpoint(w, 'silent', '10.0.0.3:1');
      const noticedMs = await waitFor('the resolver to give up the dead connection', () => proxy.closedConnections > closedBefore, { timeoutMs: 20_000, intervalMs: 50 });
      proxy.resume();
      await waitFor('the change made during the partition', () => addressesNow().length === 3, { timeoutMs: 30_000, intervalMs: 50 });
      console.log(`      silent partition: dead connection dropped after ${noticedMs} ms, change seen ${Date.now() - start} ms after the partition began`);
      expect(states.every(state => state.ok)).to.equal(true, 'the last good list keeps serving; no error is published');
    } finally {
      unsubscribe();
      lease.release();
    }
  });

  it('shrinks list pages that exceed the 4 MiB receive limit', async function () {
    const etcd = await oneEtcd();
    const w = writer(etcd.endpoints);
    const padding = 'p'.repeat(60 * 1024);
    const ops = Array.from({ length: 150 }, (_, i) => {
      const address = `10.2.0.${i + 1}:80`;
      return { request_put: { key: Buffer.from(endpointKey('wide', address)), value: Buffer.from(encodeEndpointValue({ address, metadata: { padding } })) } };
    });
    // etcd takes at most 1.5 MiB per request.
    for (let i = 0; i < ops.length; i += 20) await w.kv.txn({ success: ops.slice(i, i + 20) });
    const start = Date.now();
    const r = resolve('wide', etcd.endpoints);
    await waitFor('150 wide endpoints', () => r.last()?.addresses.length === 150, { timeoutMs: 30_000, intervalMs: 20 });
    console.log(`      150 endpoints of 60 KiB (8.8 MiB, over 4 MiB in one page of 1,000) resolved in ${Date.now() - start} ms`);
    expect(r.updates.every(u => u.ok)).to.equal(true);
  });

  it('reports UNAVAILABLE while no list was ever obtained, then resolves when etcd becomes reachable', async function () {
    const etcd = await oneEtcd();
    const proxy = await startTcpProxy(etcd.endpoint);
    proxies.push(proxy);
    proxy.cut();
    const [a] = await echoServers('a');
    await putEndpoint(writer(etcd.endpoints), 'late', a.address);
    const c = client(etcdTarget('late', [proxy.address]));
    const err = await unary(c, 'x', { deadline: Date.now() + 10_000 }).then(() => undefined, (e: grpc.ServiceError) => e);
    expect(err?.code).to.equal(grpc.status.UNAVAILABLE);
    expect(err?.details).to.include(`cannot list service 'late' from etcd ${proxy.address}`);
    console.log(`      before any list: ${err?.details.slice(0, 120)}`);
    proxy.resume();
    const ms = await waitFor('calls to succeed', async () => (await unary(c, 'x', { deadline: Date.now() + 2000 }).catch(() => undefined))?.server === 'a', { timeoutMs: 10_000, intervalMs: 50 });
    console.log(`      resolved ${ms} ms after etcd became reachable`);
  });

  it('etcd kill -9 under load: zero failed calls; after restart, changes are seen again', async function () {
    const etcd = await oneEtcd();
    const [a, b, c] = await echoServers('a', 'b', 'c');
    const w = writer(etcd.endpoints);
    await putEndpoint(w, 'killed', a.address);
    await putEndpoint(w, 'killed', b.address);
    const ch = client(etcdTarget('killed', etcd.endpoints));
    await unary(ch);
    const r = resolve('killed', etcd.endpoints);
    await waitFor('resolution', () => r.last()?.addresses.length === 2, { timeoutMs: 5000 });
    const load = startSteadyLoad(ch, { concurrency: 4 });
    let totals: LoadTotals | undefined;
    try {
      await waitFor('load to flow', () => load.ok > 50, { timeoutMs: 5000 });
      await etcd.kill('SIGKILL');
      const okAtKill = load.ok;
      await waitFor('calls to keep flowing while etcd is down', () => load.ok > okAtKill + 300, { timeoutMs: 10_000 });
      await etcd.restart(true);
      const healthy = Date.now();
      const fresh = writer(etcd.endpoints);
      await putEndpoint(fresh, 'killed', c.address);
      const seenMs = await waitFor('c after the restart', () => r.last()?.addresses.includes(c.address) === true, { timeoutMs: 10_000 });
      const afterHealthy = Date.now() - healthy;
      await waitFor('traffic to reach c', () => (load.byReplica.get('c') ?? 0) > 0, { timeoutMs: 5000 });
      console.log(`      etcd restart: change seen ${afterHealthy} ms after etcd was healthy (${seenMs} ms after the put); ${load.ok} calls, ${load.failed} failed`);
    } finally {
      totals = await load.stop();
    }
    expect(totals!.failed, Object.keys(totals!.reasons).join('; ')).to.equal(0);
  });

  it('leader of a 3-member cluster killed under load: zero failed calls, changes seen', async function () {
    const cluster = await startEtcdCluster(3);
    etcds.push(cluster);
    const [a, b, c] = await echoServers('a', 'b', 'c');
    const w = writer(cluster.endpoints);
    await putEndpoint(w, 'cluster', a.address);
    await putEndpoint(w, 'cluster', b.address);
    const ch = client(etcdTarget('cluster', cluster.endpoints));
    const r = resolve('cluster', cluster.endpoints);
    await waitFor('resolution', () => r.last()?.addresses.length === 2, { timeoutMs: 5000 });
    const load = startSteadyLoad(ch, { concurrency: 4 });
    let totals: LoadTotals | undefined;
    try {
      await waitFor('load to flow', () => load.ok > 50, { timeoutMs: 5000 });
      const leader = await cluster.leader();
      await leader.kill('SIGKILL');
      const killed = Date.now();
      const survivors = cluster.members.filter(m => m !== leader).map(m => m.endpoint);
      // Short attempts: a put forwarded to the dead leader hangs until it times out, and etcd3's
      // default circuit breaker would then hold the writer off for 5 s.
      await waitFor('a write through the survivors', async () => {
        await etcdctlAsync(survivors, ['--command-timeout=500ms', 'put', endpointKey('cluster', c.address), encodeEndpointValue({ address: c.address })]);
        return true;
      }, { timeoutMs: 15_000, intervalMs: 50 });
      const written = Date.now();
      const seenMs = await waitFor('c after the leader was killed', () => r.last()?.addresses.includes(c.address) === true, { timeoutMs: 10_000 });
      await waitFor('traffic to reach c', () => (load.byReplica.get('c') ?? 0) > 0, { timeoutMs: 5000 });
      console.log(`      leader ${leader.name} killed: write accepted after ${written - killed} ms, seen ${seenMs} ms later; ${load.ok} calls, ${load.failed} failed`);
    } finally {
      totals = await load.stop();
    }
    expect(totals!.failed, Object.keys(totals!.reasons).join('; ')).to.equal(0);
  });

  it('coalesces a burst of 1,000 changes (8 transactions) into a handful of LB updates', async function () {
    const etcd = await oneEtcd();
    const w = writer(etcd.endpoints);
    await putEndpoint(w, 'burst', '10.0.0.1:1');
    const r = resolve('burst', etcd.endpoints);
    await waitFor('first resolution', () => r.updates.length === 1, { timeoutMs: 5000 });
    const ops = Array.from({ length: 1000 }, (_, i) => {
      const address = `10.1.${Math.floor(i / 250)}.${i % 250}:${1000 + i}`;
      return { request_put: { key: Buffer.from(endpointKey('burst', address)), value: Buffer.from(encodeEndpointValue({ address, weight: 1 + (i % 5) })) } };
    });
    const batches: typeof ops[] = [];
    for (let i = 0; i < ops.length; i += 125) batches.push(ops.slice(i, i + 125));
    expect(batches.every(batch => batch.length <= MAX_TXN_OPS)).to.equal(true);
    const start = Date.now();
    await Promise.all(batches.map(success => w.kv.txn({ success })));
    const burstMs = Date.now() - start;
    await waitFor('all 1,001 endpoints', () => r.last()?.addresses.length === 1001, { timeoutMs: 10_000 });
    const lbUpdates = r.updates.length - 1;
    console.log(`      1,000 changes in ${batches.length} transactions over ${burstMs} ms → ${lbUpdates} LB update(s)`);
    expect(lbUpdates).to.be.at.most(10);
  });

  it('delivers the first change after a quiet period at once, and coalesces the changes that follow within the window', async function () {
    const etcd = await oneEtcd();
    const w = writer(etcd.endpoints);
    await putEndpoint(w, 'quiet', '10.0.0.1:1');
    // A long window, so that "at once" and "at the window's end" are far apart on a busy machine too.
    const windowMs = 1500;
    const lease = acquireServiceWatch({ hosts: etcd.endpoints }, 'quiet', resolveResolverOptions({ coalesceWindowMs: windowMs }));
    const updates: { atMs: number; count: number }[] = [];
    const unsubscribe = lease.watch.subscribe(state => {
      if (state.ok) updates.push({ atMs: Date.now(), count: state.resolved.endpoints.length });
    });
    try {
      await waitFor('first list', () => updates.length === 1, { timeoutMs: 5000 });
      // Quiet for a whole window: the next change goes at once.
      await new Promise(resolve => setTimeout(resolve, windowMs + 100));
      const putAtMs = Date.now();
      await putEndpoint(w, 'quiet', '10.0.0.2:1');
      await waitFor('the lone change', () => updates.length === 2, { timeoutMs: 5000, intervalMs: 2 });
      const loneMs = updates[1].atMs - putAtMs;
      // Two more right after it: held until the window that started with that update ends, then one update.
      await putEndpoint(w, 'quiet', '10.0.0.3:1');
      await putEndpoint(w, 'quiet', '10.0.0.4:1');
      await waitFor('the coalesced changes', () => updates.length >= 3, { timeoutMs: 10_000, intervalMs: 5 });
      const heldMs = updates[2].atMs - updates[1].atMs;
      console.log(`      window ${windowMs} ms: lone change delivered ${loneMs} ms after its put; the next two together ${heldMs} ms after it`);
      expect(loneMs).to.be.below(windowMs / 2);
      expect(updates[2].count).to.equal(4);
      expect(heldMs).to.be.at.least(windowMs - 50);
      expect(updates).to.have.length(3);
    } finally {
      unsubscribe();
      lease.release();
    }
  });

  it('resolves 10,000 endpoints (a single get would exceed 4 MiB), paged at one revision', async function () {
    const etcd = await oneEtcd();
    const w = writer(etcd.endpoints);
    const padding = 'x'.repeat(480);
    const ops = Array.from({ length: 10_000 }, (_, i) => {
      const address = `10.${Math.floor(i / 65_000)}.${Math.floor(i / 250) % 256}.${i % 250}:${2000 + (i % 60_000)}`;
      return { request_put: { key: Buffer.from(endpointKey('big', address)), value: Buffer.from(encodeEndpointValue({ address, metadata: { padding } })) } };
    });
    const writeStart = Date.now();
    for (let i = 0; i < ops.length; i += MAX_TXN_OPS * 8) {
      const chunk = ops.slice(i, i + MAX_TXN_OPS * 8);
      const txns = [];
      for (let j = 0; j < chunk.length; j += MAX_TXN_OPS) txns.push(w.kv.txn({ success: chunk.slice(j, j + MAX_TXN_OPS) }));
      await Promise.all(txns);
    }
    const writeMs = Date.now() - writeStart;
    const single = await w.getAll().prefix('big/').exec().then(() => undefined, (e: Error) => e);
    expect(single, 'one unpaged get of this service must hit the 4 MiB limit').to.be.instanceOf(GRPCResourceExhastedError);

    const start = Date.now();
    const r = resolve('big', etcd.endpoints);
    await waitFor('10,000 endpoints', () => r.last()?.addresses.length === 10_000, { timeoutMs: 30_000, intervalMs: 20 });
    const resolveMs = Date.now() - start;
    expect(r.updates).to.have.length(1);
    expect(r.last()!.attributes?.size).to.equal(10_000);
    console.log(`      10,000 endpoints (${(ops.reduce((n, o) => n + o.request_put.value.length, 0) / 1048576).toFixed(1)} MiB) written in ${writeMs} ms, resolved in ${resolveMs} ms`);
  });

  it('10,000 bad keys print a bounded number of warning lines and keep the good endpoint', async function () {
    const etcd = await oneEtcd();
    const w = writer(etcd.endpoints);
    await putEndpoint(w, 'noisy', '10.0.0.1:1');
    const ops = Array.from({ length: 10_000 }, (_, i) => ({ request_put: { key: Buffer.from(`noisy/bad-${i}`), value: Buffer.from(`{"Addr":"bad ${i}"}`) } }));
    for (let i = 0; i < ops.length; i += MAX_TXN_OPS) await w.kv.txn({ success: ops.slice(i, i + MAX_TXN_OPS) });
    const lines: string[] = [];
    grpc.setLogger({ error: (...args: unknown[]) => lines.push(args.join(' ')) } as unknown as Partial<Console>);
    try {
      const r = resolve('noisy', etcd.endpoints);
      await waitFor('resolution', () => r.updates.length === 1, { timeoutMs: 10_000 });
      expect(r.last()!.addresses).to.deep.equal(['10.0.0.1:1']);
      etcdctl(etcd.endpoints, ['put', 'noisy/bad-late', 'still bad']);
      // A bad put still produces an (unchanged) update: proof that it was read.
      await waitFor('the late bad key to be read', () => r.updates.length === 2, { timeoutMs: 5000 });
      expect(r.last()!.addresses).to.deep.equal(['10.0.0.1:1']);
    } finally {
      grpc.setLogger(console);
    }
    const warnings = lines.filter(l => l.includes('etcd resolver'));
    console.log(`      10,001 bad keys → ${warnings.length} warning line(s)`);
    expect(warnings.length).to.be.at.most(11);
  });
});
