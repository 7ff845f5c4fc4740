/**
 * `kubernetes:///` against the API server double (not a real cluster: none can be installed
 * here) and real grpc-js servers on loopback IPs: slices merged, endpoints moving between
 * slices, ready/serving/terminating, ports by name and number, bookmarks, 410, outages,
 * sharing, and every policy.
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { createRetryInterceptor, inspectBalancers } from '../../../src';
import { startEchoServer } from '../../support/echo-server';
import { waitFor } from '../../support/wait';
import { captureGrpcLog } from '../../support/grpc-log';
import { endpointSlice, sliceEndpoint } from '../../support/kube-apiserver-double';
import { runCalls, failedCount } from '../../balancer/support/load';
import { activeKubernetesResolverCounts } from '../../../src/backends/kubernetes/kubernetes-backend';
import { useKubeSuite } from './kube-fixtures';

const NS = 'apps';
const TOKEN = 'token-1';

describe('Kubernetes discovery (API server double, real servers)', function () {
  this.timeout(60_000);
  const suite = useKubeSuite({ fixture: { namespace: NS, token: TOKEN, tokens: [TOKEN] }, podCount: 4, servicePrefix: 'svc' });
  /** The endpoints of the balancer whose addresses are all on the pods' port, for one service's channel. */
  const endpointsWith = (predicate: (addresses: string[]) => boolean): boolean =>
    inspectBalancers().some(b => predicate(b.endpoints.map(e => e.address).sort()));


  const addr = (i: number): string => `${suite.pods.ips[i]}:${suite.pods.port}`;
  const slice = (svc: string, name: string, endpoints: ReturnType<typeof sliceEndpoint>[], ports = [{ name: 'grpc', port: suite.pods.port, protocol: 'TCP' }]) =>
    endpointSlice(NS, svc, name, { ports, endpoints });

  it('merges every slice of a Service, by port name, in the kubeconfig context namespace', async function () {
    const svc = suite.next();
    suite.kube.api.applySlice(slice(svc, `${svc}-a`, [sliceEndpoint(suite.pods.ips[0], 'p0'), sliceEndpoint(suite.pods.ips[1], 'p1')]));
    suite.kube.api.applySlice(slice(svc, `${svc}-b`, [sliceEndpoint(suite.pods.ips[2], 'p2')]));
    // Another Service's slice in the namespace: not ours.
    suite.kube.api.applySlice(slice(`${svc}x`, `${svc}x-a`, [sliceEndpoint(suite.pods.ips[3], 'p3')]));
    const c = suite.client(`kubernetes:///${svc}:grpc`);
    const result = await runCalls(c, 30, 3, () => ({ options: { deadline: Date.now() + 10_000 } }));
    expect(failedCount(result)).to.equal(0);
    expect([...result.byServer.keys()].sort()).to.deep.equal(['p0', 'p1', 'p2']);
    expect(result.byServer.get('p0')).to.equal(10);
  });

  it('takes a port by number and an explicit namespace', async function () {
    const svc = suite.next();
    suite.kube.api.applySlice(endpointSlice('other', svc, `${svc}-a`, { ports: [{ name: 'http', port: 1, protocol: 'TCP' }], endpoints: [sliceEndpoint(suite.pods.ips[1], 'p1')] }));
    const c = suite.client(`kubernetes:///${svc}.other:${suite.pods.port}`);
    const result = await runCalls(c, 6, 2, () => ({ options: { deadline: Date.now() + 10_000 } }));
    expect(failedCount(result)).to.equal(0);
    expect([...result.byServer.keys()]).to.deep.equal(['p1']);
  });

  it('an unknown port name fails calls with a status naming the ports that exist', async function () {
    const svc = suite.next();
    suite.kube.api.applySlice(slice(svc, `${svc}-a`, [sliceEndpoint(suite.pods.ips[0], 'p0')], [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'metrics', port: 9090, protocol: 'TCP' }]));
    const log = captureGrpcLog();
    try {
      const c = suite.client(`kubernetes:///${svc}:grpc`);
      const result = await new Promise<grpc.ServiceError | null>(resolve => c.unary({ message: 'x' }, new grpc.Metadata(), { deadline: Date.now() + 5_000 }, err => resolve(err)));
      expect(result?.code).to.equal(grpc.status.UNAVAILABLE);
      expect(result?.details).to.match(/has no port named 'grpc'; its EndpointSlices have http=8080, metrics=9090/);
      expect(log.lines.filter(l => l.includes("no port named 'grpc'"))).to.have.length(1);
    } finally {
      log.restore();
    }
  });

  it('one endpoint moving between slices stays one endpoint, whatever the order of events', async function () {
    const svc = suite.next();
    suite.kube.api.applySlice(slice(svc, `${svc}-a`, [sliceEndpoint(suite.pods.ips[0], 'p0'), sliceEndpoint(suite.pods.ips[1], 'p1')]));
    const c = suite.client(`kubernetes:///${svc}:grpc`);
    await runCalls(c, 4, 2, () => ({ options: { deadline: Date.now() + 10_000 } }));
    const log = captureGrpcLog();
    try {
      // Add to b first, then remove from a: for a moment the address is in both.
      suite.kube.api.applySlice(slice(svc, `${svc}-b`, [sliceEndpoint(suite.pods.ips[1], 'p1')]));
      suite.kube.api.applySlice(slice(svc, `${svc}-a`, [sliceEndpoint(suite.pods.ips[0], 'p0')]));
      // And the other order for p0: removed from a, then added to c.
      suite.kube.api.applySlice(slice(svc, `${svc}-a`, []));
      suite.kube.api.applySlice(slice(svc, `${svc}-c`, [sliceEndpoint(suite.pods.ips[0], 'p0')]));
      await waitFor('both endpoints after the moves', () => endpointsWith(a => a.join() === [addr(0), addr(1)].join()));
      const result = await runCalls(c, 20, 2, () => ({ options: { deadline: Date.now() + 10_000 } }));
      expect(failedCount(result)).to.equal(0);
      expect(result.byServer.get('p0')).to.equal(10);
      expect(log.lines.filter(l => l.includes('already registered'))).to.deep.equal([]);
    } finally {
      log.restore();
    }
  });

  it('ready → usable; serving + terminating → draining (weight 0); not serving → gone; metadata from the slice', async function () {
    const svc = suite.next();
    suite.kube.api.applySlice(slice(svc, `${svc}-a`, [sliceEndpoint(suite.pods.ips[0], 'p0', 'ready', 'z1'), sliceEndpoint(suite.pods.ips[1], 'p1', 'ready', 'z2')]));
    const c = suite.client(`kubernetes:///${svc}:grpc`);
    await runCalls(c, 4, 2, () => ({ options: { deadline: Date.now() + 10_000 } }));
    const balancer = (): ReturnType<typeof inspectBalancers>[number] | undefined =>
      inspectBalancers().find(b => b.endpoints.some(e => e.address === addr(0)) && b.endpoints.some(e => e.address === addr(1)) && b.endpoints.length === 2);
    await waitFor('zones in the snapshot', () => balancer()?.endpoints.find(e => e.address === addr(0))?.zone === 'z1');
    suite.kube.api.applySlice(slice(svc, `${svc}-a`, [sliceEndpoint(suite.pods.ips[0], 'p0', 'terminating', 'z1'), sliceEndpoint(suite.pods.ips[1], 'p1', 'ready', 'z2')]));
    await waitFor('p0 draining', () => balancer()?.endpoints.find(e => e.address === addr(0))?.draining === true);
    const draining = await runCalls(c, 10, 2, () => ({ options: { deadline: Date.now() + 10_000 } }));
    expect(draining.byServer.get('p1')).to.equal(10);
    suite.kube.api.applySlice(slice(svc, `${svc}-a`, [sliceEndpoint(suite.pods.ips[0], 'p0', 'gone-terminating', 'z1'), sliceEndpoint(suite.pods.ips[1], 'p1', 'ready', 'z2')]));
    await waitFor('p0 gone', () => endpointsWith(a => a.join() === addr(1)));
  });

  it('a slice change reaches the picker ≤ 50 ms (median) after the API server sends it', async function () {
    const svc = suite.next();
    suite.kube.api.applySlice(slice(svc, `${svc}-a`, [sliceEndpoint(suite.pods.ips[0], 'p0')]));
    const c = suite.client(`kubernetes:///${svc}:grpc`);
    await runCalls(c, 2, 1, () => ({ options: { deadline: Date.now() + 10_000 } }));
    const delays: number[] = [];
    for (let i = 0; i < 9; i++) {
      const endpoints = i % 2 === 0 ? [sliceEndpoint(suite.pods.ips[0], 'p0'), sliceEndpoint(suite.pods.ips[1], 'p1')] : [sliceEndpoint(suite.pods.ips[0], 'p0')];
      const want = i % 2 === 0 ? [addr(0), addr(1)].join() : addr(0);
      // Spaced past the coalescing window (50 ms), so each change is a lone one: what the target is about.
      await new Promise(resolve => setTimeout(resolve, 120));
      const rv = suite.kube.api.applySlice(slice(svc, `${svc}-a`, endpoints));
      await waitFor('the change in the balancer', () => endpointsWith(a => a.join() === want), { intervalMs: 1 });
      const sentAt = suite.kube.api.sentAtMs.get(rv);
      expect(sentAt, 'the double sent the event').to.be.a('number');
      delays.push(Date.now() - sentAt!);
    }
    delays.sort((a, b) => a - b);
    const median = delays[Math.floor(delays.length / 2)];
    console.log(`      event → picker: median ${median} ms, max ${delays[delays.length - 1]} ms (${delays.length} changes)`);
    expect(median).to.be.at.most(50);
  });

  it('channels on one Service share one list + watch, across ports; the last channel closes it', async function () {
    const svc = suite.next();
    suite.kube.api.applySlice(slice(svc, `${svc}-a`, [sliceEndpoint(suite.pods.ips[0], 'p0')]));
    const selector = `${NS} kubernetes.io/service-name=${svc}`;
    const counts = activeKubernetesResolverCounts();
    const a = suite.client(`kubernetes:///${svc}:grpc`);
    const b = suite.client(`kubernetes:///${svc}.${NS}:grpc`);
    const d = suite.client(`kubernetes:///${svc}:${suite.pods.port}`);
    for (const c of [a, b, d]) expect(failedCount(await runCalls(c, 2, 1, () => ({ options: { deadline: Date.now() + 10_000 } })))).to.equal(0);
    expect(suite.kube.api.lists.filter(l => l === selector), suite.kube.api.lists.join('\n')).to.have.length(1);
    expect(activeKubernetesResolverCounts().informers - counts.informers).to.equal(1);
    expect(activeKubernetesResolverCounts().watches - counts.watches).to.equal(2);
    suite.closeClients();
    await waitFor('the shared watch closed', () => activeKubernetesResolverCounts().informers === counts.informers);
  });

  it('re-watches from the last resourceVersion (bookmarks included) when the server ends the watch: no list, nothing missed', async function () {
    const svc = suite.next();
    suite.kube.api.applySlice(slice(svc, `${svc}-a`, [sliceEndpoint(suite.pods.ips[0], 'p0')]));
    const c = suite.client(`kubernetes:///${svc}:grpc`);
    await runCalls(c, 2, 1, () => ({ options: { deadline: Date.now() + 10_000 } }));
    const lists = suite.kube.api.requests.list;
    const watches = suite.kube.api.requests.watch;
    // A change elsewhere moves the version on; only the bookmark tells our watch.
    const elsewhere = suite.kube.api.applySlice(slice(`${svc}x`, `${svc}x-a`, [sliceEndpoint(suite.pods.ips[3], 'p3')]));
    suite.kube.api.sendBookmarks();
    suite.kube.api.closeWatches();
    await waitFor('a new watch', () => suite.kube.api.requests.watch > watches);
    expect(suite.kube.api.watchesFrom.slice(watches)).to.include(elsewhere);
    suite.kube.api.applySlice(slice(svc, `${svc}-a`, [sliceEndpoint(suite.pods.ips[0], 'p0'), sliceEndpoint(suite.pods.ips[2], 'p2')]));
    await waitFor('p2 seen after the re-watch', () => endpointsWith(a => a.join() === [addr(0), addr(2)].join()));
    expect(suite.kube.api.requests.list).to.equal(lists);
    expect(suite.kube.api.requests.watch).to.be.greaterThan(watches);
  });

  it('410 (an ERROR event mid-stream, or on a re-watch) lists again and catches up', async function () {
    const svc = suite.next();
    suite.kube.api.applySlice(slice(svc, `${svc}-a`, [sliceEndpoint(suite.pods.ips[0], 'p0')]));
    const c = suite.client(`kubernetes:///${svc}:grpc`);
    await runCalls(c, 2, 1, () => ({ options: { deadline: Date.now() + 10_000 } }));
    const lists = suite.kube.api.requests.list;
    suite.kube.api.expireWatches();
    suite.kube.api.applySlice(slice(svc, `${svc}-a`, [sliceEndpoint(suite.pods.ips[1], 'p1')]));
    await waitFor('p1 after the relist', () => endpointsWith(a => a.join() === addr(1)));
    expect(suite.kube.api.requests.list).to.be.greaterThan(lists);
    // A dropped stream whose version got compacted meanwhile: the re-watch gets 410, then a list.
    const lists2 = suite.kube.api.requests.list;
    suite.kube.api.dropWatches();
    suite.kube.api.applySlice(slice(svc, `${svc}-a`, [sliceEndpoint(suite.pods.ips[2], 'p2')]));
    suite.kube.api.compact();
    await waitFor('p2 after the second relist', () => endpointsWith(a => a.join() === addr(2)));
    expect(suite.kube.api.requests.list).to.be.greaterThan(lists2);
  });

  it('zero failed calls (retry interceptor) through a pod deleted, a pod terminating, a watch dropped, a 410 and an API server outage', async function () {
    const svc = suite.next();
    // A pod of its own that really goes away: terminating in its slice as its server drains and stops, then deleted.
    const victim = await startEchoServer({ address: `127.0.0.9:${suite.pods.port}`, name: 'victim' });
    const all = [0, 1, 2].map(i => sliceEndpoint(suite.pods.ips[i], `p${i}`));
    suite.kube.api.applySlice(slice(svc, `${svc}-a`, [...all, sliceEndpoint('127.0.0.9', 'victim')]));
    const c = suite.client(`kubernetes:///${svc}:grpc`, { etcd_least_request: {} }, { interceptors: [createRetryInterceptor()] });
    await runCalls(c, 8, 4, () => ({ options: { deadline: Date.now() + 10_000 } }));
    let failed = 0;
    let ok = 0;
    let running = true;
    let outage = { ok: 0, failed: 0 };
    let inOutage = false;
    const load = (async () => {
      for (let i = 0; running && i < 100_000; i++) {
        const r = await runCalls(c, 4, 2, () => ({ options: { deadline: Date.now() + 10_000 } }));
        failed += failedCount(r);
        ok += r.ok;
        if (inOutage) outage = { ok: outage.ok + r.ok, failed: outage.failed + failedCount(r) };
      }
    })();
    const draining = (address: string): boolean => inspectBalancers().some(b => b.endpoints.some(e => e.address === address && e.draining));
    suite.kube.api.applySlice(slice(svc, `${svc}-a`, [...all, sliceEndpoint('127.0.0.9', 'victim', 'terminating')]));
    await waitFor('the victim draining', () => draining(`127.0.0.9:${suite.pods.port}`));
    await victim.stop(1_000);
    suite.kube.api.applySlice(slice(svc, `${svc}-a`, all));
    await waitFor('the victim gone', () => endpointsWith(a => a.join() === [addr(0), addr(1), addr(2)].join()));
    suite.kube.api.applySlice(slice(svc, `${svc}-a`, [all[0], sliceEndpoint(suite.pods.ips[1], 'p1', 'terminating'), all[2]]));
    await waitFor('p1 draining', () => draining(addr(1)));
    const watches = suite.kube.api.requests.watch;
    suite.kube.api.dropWatches();
    await waitFor('a new watch after the drop', () => suite.kube.api.requests.watch > watches && suite.kube.api.openWatches > 0);
    const lists = suite.kube.api.requests.list;
    suite.kube.api.expireWatches();
    await waitFor('a relist and a new watch after the 410', () => suite.kube.api.requests.list > lists && suite.kube.api.openWatches > 0);
    await suite.kube.api.stop();
    inOutage = true;
    await new Promise(resolve => setTimeout(resolve, 2_000));
    inOutage = false;
    await suite.kube.api.start();
    suite.kube.api.applySlice(slice(svc, `${svc}-a`, all));
    await waitFor('all three back after the outage', () => endpointsWith(a => a.join() === [addr(0), addr(1), addr(2)].join()), { timeoutMs: 15_000 });
    running = false;
    await load;
    expect(victim.calls, 'the victim served before it left').to.be.greaterThan(0);
    expect(outage.ok, 'calls served from the last good list during the outage').to.be.greaterThan(10);
    expect(ok).to.be.greaterThan(50);
    expect(failed).to.equal(0);
  });
});
