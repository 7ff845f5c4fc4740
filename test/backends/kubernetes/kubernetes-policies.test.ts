/**
 * `kubernetes:///` against the API server double: credentials (401, 403 and the RBAC line,
 * a rotated token file), every `etcd_*` policy and `etcd_subset`, zone routing from slice
 * zones, IPv6 slices, FQDN slices skipped.
 */
import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { inspectBalancers } from '../../../src';
import { startEchoServer } from '../../support/echo-server';
import { type EchoClient } from '../../support/echo-proto';
import { waitFor } from '../../support/wait';
import { captureGrpcLog } from '../../support/grpc-log';
import { endpointSlice, sliceEndpoint } from '../../support/kube-apiserver-double';
import { runCalls, failedCount } from '../../balancer/support/load';
import { resetLocalityForTests, setLocality } from '../../../src/discovery/locality';
import { kubeconfigText, useKubeSuite } from './kube-fixtures';

const NS = 'team';

describe('Kubernetes discovery: credentials, policies, zones (API server double)', function () {
  this.timeout(60_000);
  const suite = useKubeSuite({
    fixture: { tokens: ['first'] },
    podCount: 4,
    firstIp: 20,
    servicePrefix: 'pol',
    // The user reads its token from a file, as a pod's service account does.
    configure: kube => {
      writeFileSync(join(kube.dir, 'token'), 'first\n');
      writeFileSync(kube.kubeconfig, kubeconfigText(kube.api.url, { namespace: NS, tokenFile: join(kube.dir, 'token') }));
    },
  });
  const unaryError = (c: EchoClient): Promise<grpc.ServiceError | null> =>
    new Promise(resolve => c.unary({ message: 'x' }, new grpc.Metadata(), { deadline: Date.now() + 5_000 }, err => resolve(err)));
  const slice = (svc: string, name: string, endpoints: ReturnType<typeof sliceEndpoint>[]) =>
    endpointSlice(NS, svc, name, { ports: [{ name: 'grpc', port: suite.pods.port, protocol: 'TCP' }], endpoints });

  afterEach(() => resetLocalityForTests());

  it('403: calls fail with a status naming the missing RBAC rule, and one ERROR line says it (again if it comes back after a fix)', async function () {
    const svc = suite.next();
    suite.kube.api.applySlice(endpointSlice('locked', svc, `${svc}-a`, { ports: [{ name: 'grpc', port: suite.pods.port }], endpoints: [sliceEndpoint(suite.pods.ips[0], 'p0')] }));
    suite.kube.api.forbid('locked');
    const log = captureGrpcLog();
    try {
      const c = suite.client(`kubernetes:///${svc}.locked:grpc`);
      const err = await unaryError(c);
      expect(err?.code).to.equal(grpc.status.UNAVAILABLE);
      expect(err?.details).to.match(/forbidden.*get, list, watch on resource endpointslices in API group discovery\.k8s\.io in namespace locked/);
      expect(err?.details).to.include('cannot list resource "endpointslices"');
      await waitFor('a retry refused again', () => suite.kube.api.requests.forbidden >= 2, { timeoutMs: 5_000 });
      expect(log.lines.filter(l => l.includes('forbidden to read EndpointSlices'))).to.have.length(1);
      // RBAC fixed: the next retry lists.
      suite.kube.api.forbid('locked', true);
      await waitFor('calls succeed once allowed', async () => (await unaryError(c)) === null, { timeoutMs: 15_000, intervalMs: 200 });
      // Forbidden again later (a Role removed): the line is printed again, once. Watches are ended
      // until one that had opened (the problem gone) is refused on its re-watch.
      suite.kube.api.forbid('locked');
      const rbacLines = (): number => log.lines.filter(l => l.includes('forbidden to read EndpointSlices')).length;
      await waitFor('the RBAC line again', () => rbacLines() === 2 || (suite.kube.api.closeWatches(), false), { timeoutMs: 15_000, intervalMs: 200 });
      await waitFor('more refusals', () => suite.kube.api.requests.forbidden >= 4, { timeoutMs: 10_000 });
      expect(rbacLines()).to.equal(2);
      suite.kube.api.forbid('locked', true);
    } finally {
      log.restore();
    }
  });

  it('401 with a rotated token file: the file is read again and the watch goes on', async function () {
    const svc = suite.next();
    suite.kube.api.applySlice(slice(svc, `${svc}-a`, [sliceEndpoint(suite.pods.ips[0], 'p0')]));
    const c = suite.client(`kubernetes:///${svc}:grpc`);
    expect(failedCount(await runCalls(c, 2, 1, () => ({ options: { deadline: Date.now() + 10_000 } })))).to.equal(0);
    // The kubelet rotates the token; the old one stops working.
    writeFileSync(join(suite.kube.dir, 'token'), 'second\n');
    suite.kube.api.setTokens(['second']);
    const unauthorized = suite.kube.api.requests.unauthorized;
    const log = captureGrpcLog();
    try {
      suite.kube.api.dropWatches();
      suite.kube.api.applySlice(slice(svc, `${svc}-a`, [sliceEndpoint(suite.pods.ips[1], 'p1')]));
      await waitFor('the change seen with the new token', () => inspectBalancers().some(b => b.endpoints.length === 1 && b.endpoints[0].address === `${suite.pods.ips[1]}:${suite.pods.port}`));
      expect(suite.kube.api.requests.unauthorized - unauthorized).to.equal(1);
      expect(log.lines.filter(l => l.includes('401')), 'a rotation is not an error').to.deep.equal([]);
    } finally {
      log.restore();
    }
  });

  it('401 with a bad token: calls fail naming the credentials, one ERROR line', async function () {
    const svc = suite.next();
    suite.kube.api.applySlice(slice(svc, `${svc}-a`, [sliceEndpoint(suite.pods.ips[0], 'p0')]));
    suite.kube.api.setTokens(['nobody-has-this']);
    const log = captureGrpcLog();
    try {
      const err = await unaryError(suite.client(`kubernetes:///${svc}:grpc`));
      expect(err?.code).to.equal(grpc.status.UNAVAILABLE);
      expect(err?.details).to.match(/refused our credentials \(401 Unauthorized: Unauthorized\); the token is missing, wrong or expired/);
      expect(log.lines.filter(l => l.includes('refused our credentials'))).to.have.length(1);
    } finally {
      log.restore();
      suite.kube.api.setTokens(['second']);
    }
  });

  it('an API server that cannot be reached before any list: calls fail fast, naming it', async function () {
    const closed = join(suite.kube.dir, 'closed-config');
    writeFileSync(closed, kubeconfigText('http://127.0.0.1:1', { namespace: NS }));
    process.env.KUBECONFIG = closed;
    try {
      const started = Date.now();
      const err = await unaryError(suite.client(`kubernetes:///${suite.next()}:grpc`));
      expect(err?.code).to.equal(grpc.status.UNAVAILABLE);
      expect(err?.details).to.match(/cannot list or watch EndpointSlices of http:\/\/127\.0\.0\.1:1 team\/pol\d+: .*ECONNREFUSED/);
      expect(Date.now() - started).to.be.below(4_000);
    } finally {
      process.env.KUBECONFIG = suite.kube.kubeconfig;
    }
  });

  for (const policy of [
    { etcd_weighted_round_robin: {} }, { etcd_weighted_random: {} }, { etcd_least_request: {} }, { etcd_peak_ewma: {} },
    { etcd_subset: { subsetSize: 2, childPolicy: [{ etcd_least_request: {} }] } },
  ]) {
    const name = Object.keys(policy)[0];
    it(`${name} serves from slices`, async function () {
      const svc = suite.next();
      suite.kube.api.applySlice(slice(svc, `${svc}-a`, [0, 1].map(i => sliceEndpoint(suite.pods.ips[i], `p${i}`))));
      suite.kube.api.applySlice(slice(svc, `${svc}-b`, [2, 3].map(i => sliceEndpoint(suite.pods.ips[i], `p${i}`))));
      const c = suite.client(`kubernetes:///${svc}:grpc`, policy);
      const result = await runCalls(c, 80, 4, () => ({ options: { deadline: Date.now() + 10_000 } }));
      expect(failedCount(result)).to.equal(0);
      const used = result.byServer.size;
      if (name === 'etcd_subset') expect(used).to.equal(2);
      else expect(used).to.be.at.least(3);
    });
  }

  it('zone-aware routing from slice zones: calls stay in the client\'s zone', async function () {
    const svc = suite.next();
    setLocality({ zone: 'zone-b' });
    suite.kube.api.applySlice(slice(svc, `${svc}-a`, [0, 1, 2, 3].map(i => sliceEndpoint(suite.pods.ips[i], `p${i}`, 'ready', i < 2 ? 'zone-a' : 'zone-b'))));
    const c = suite.client(`kubernetes:///${svc}:grpc`, { etcd_least_request: {} });
    await runCalls(c, 4, 2, () => ({ options: { deadline: Date.now() + 10_000 } }));
    await waitFor('all four READY', () => inspectBalancers().some(b => b.endpoints.length === 4 && b.endpoints.every(e => e.state === 'READY') && b.zoneRouting !== undefined));
    const result = await runCalls(c, 200, 4, () => ({ options: { deadline: Date.now() + 10_000 } }));
    expect(failedCount(result)).to.equal(0);
    expect((result.byServer.get('p2') ?? 0) + (result.byServer.get('p3') ?? 0)).to.equal(200);
  });

  it('IPv6 slices are dialled; FQDN slices are skipped with one warning', async function () {
    const svc = suite.next();
    const v6 = await startEchoServer({ address: `[::1]:${suite.pods.port}`, name: 'v6' }).catch(() => undefined);
    if (!v6) this.skip();
    try {
      suite.kube.api.applySlice(endpointSlice(NS, svc, `${svc}-v6`, { addressType: 'IPv6', ports: [{ name: 'grpc', port: suite.pods.port }], endpoints: [sliceEndpoint('::1', 'v6')] }));
      suite.kube.api.applySlice(endpointSlice(NS, svc, `${svc}-dns`, { addressType: 'FQDN', ports: [{ name: 'grpc', port: suite.pods.port }], endpoints: [sliceEndpoint('pod.example.internal', 'dns')] }));
      suite.kube.api.applySlice(endpointSlice(NS, svc, `${svc}-dns2`, { addressType: 'FQDN', ports: [{ name: 'grpc', port: suite.pods.port }], endpoints: [sliceEndpoint('pod2.example.internal', 'dns')] }));
      const log = captureGrpcLog();
      try {
        const result = await runCalls(suite.client(`kubernetes:///${svc}:grpc`), 4, 2, () => ({ options: { deadline: Date.now() + 10_000 } }));
        expect(failedCount(result)).to.equal(0);
        expect([...result.byServer.keys()]).to.deep.equal(['v6']);
        expect(log.lines.filter(l => l.includes('addressType FQDN'))).to.have.length(1);
      } finally {
        log.restore();
      }
    } finally {
      await new Promise<void>(resolve => v6!.server.tryShutdown(() => resolve()));
    }
  });
});
