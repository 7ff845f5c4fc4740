/**
 * `kubernetes:///` against the API server double: credentials (401, 403 and the RBAC line,
 * a rotated token file), every `etcd_*` policy and `etcd_subset`, zone routing from slice
 * zones, IPv6 slices, FQDN slices skipped.
 */
import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { register, inspectBalancers } from '../../../src';
import { type EchoServer, startEchoServer } from '../../support/echo-server';
import { type EchoClient } from '../../support/echo-proto';
import { waitFor } from '../../support/wait';
import { captureGrpcLog } from '../../support/grpc-log';
import { endpointSlice, sliceEndpoint } from '../../support/kube-apiserver-double';
import { makeClient, runCalls, failedCount } from '../../balancer/support/load';
import { resetLocalityForTests, setLocality } from '../../../src/discovery/locality';
import { kubeconfigText, startKubeFixture, startPods, type KubeFixture } from './kube-fixtures';

const NS = 'team';

describe('Kubernetes discovery: credentials, policies, zones (API server double)', function () {
  this.timeout(60_000);
  let kube: KubeFixture;
  let pods: { port: number; servers: EchoServer[]; ips: string[] };
  const clients: EchoClient[] = [];
  let savedKubeconfig: string | undefined;
  let service = 0;
  const next = (): string => `pol${++service}`;
  const client = (target: string, lb: object = { etcd_weighted_round_robin: {} }): EchoClient => {
    const c = makeClient(target, lb);
    clients.push(c);
    return c;
  };
  const unaryError = (c: EchoClient): Promise<grpc.ServiceError | null> =>
    new Promise(resolve => c.unary({ message: 'x' }, new grpc.Metadata(), { deadline: Date.now() + 5_000 }, err => resolve(err)));
  const slice = (svc: string, name: string, endpoints: ReturnType<typeof sliceEndpoint>[]) =>
    endpointSlice(NS, svc, name, { ports: [{ name: 'grpc', port: pods.port, protocol: 'TCP' }], endpoints });

  before(async function () {
    kube = await startKubeFixture({ tokens: ['first'] });
    // The user reads its token from a file, as a pod's service account does.
    writeFileSync(join(kube.dir, 'token'), 'first\n');
    writeFileSync(kube.kubeconfig, kubeconfigText(kube.api.url, { namespace: NS, tokenFile: join(kube.dir, 'token') }));
    savedKubeconfig = process.env.KUBECONFIG;
    process.env.KUBECONFIG = kube.kubeconfig;
    register();
    pods = await startPods(4, {}, 20);
  });

  afterEach(function () {
    for (const c of clients.splice(0)) c.close();
    resetLocalityForTests();
  });

  after(async function () {
    await Promise.all(pods.servers.map(s => new Promise<void>(resolve => s.server.tryShutdown(() => resolve()))));
    await kube.remove();
    if (savedKubeconfig === undefined) delete process.env.KUBECONFIG;
    else process.env.KUBECONFIG = savedKubeconfig;
  });

  it('403: calls fail with a status naming the missing RBAC rule, and one ERROR line says it', async function () {
    const svc = next();
    kube.api.applySlice(endpointSlice('locked', svc, `${svc}-a`, { ports: [{ name: 'grpc', port: pods.port }], endpoints: [sliceEndpoint(pods.ips[0], 'p0')] }));
    kube.api.forbid('locked');
    const log = captureGrpcLog();
    try {
      const c = client(`kubernetes:///${svc}.locked:grpc`);
      const err = await unaryError(c);
      expect(err?.code).to.equal(grpc.status.UNAVAILABLE);
      expect(err?.details).to.match(/forbidden.*get, list, watch on resource endpointslices in API group discovery\.k8s\.io in namespace locked/);
      expect(err?.details).to.include('cannot list resource "endpointslices"');
      await waitFor('a retry refused again', () => kube.api.requests.forbidden >= 2, { timeoutMs: 5_000 });
      expect(log.lines.filter(l => l.includes('forbidden to read EndpointSlices'))).to.have.length(1);
      // RBAC fixed: the next retry lists.
      kube.api.forbid('locked', true);
      await waitFor('calls succeed once allowed', async () => (await unaryError(c)) === null, { timeoutMs: 15_000, intervalMs: 200 });
    } finally {
      log.restore();
    }
  });

  it('401 with a rotated token file: the file is read again and the watch goes on', async function () {
    const svc = next();
    kube.api.applySlice(slice(svc, `${svc}-a`, [sliceEndpoint(pods.ips[0], 'p0')]));
    const c = client(`kubernetes:///${svc}:grpc`);
    expect(failedCount(await runCalls(c, 2, 1, () => ({ options: { deadline: Date.now() + 10_000 } })))).to.equal(0);
    // The kubelet rotates the token; the old one stops working.
    writeFileSync(join(kube.dir, 'token'), 'second\n');
    kube.api.setTokens(['second']);
    const unauthorized = kube.api.requests.unauthorized;
    const log = captureGrpcLog();
    try {
      kube.api.dropWatches();
      kube.api.applySlice(slice(svc, `${svc}-a`, [sliceEndpoint(pods.ips[1], 'p1')]));
      await waitFor('the change seen with the new token', () => inspectBalancers().some(b => b.endpoints.length === 1 && b.endpoints[0].address === `${pods.ips[1]}:${pods.port}`));
      expect(kube.api.requests.unauthorized - unauthorized).to.equal(1);
      expect(log.lines.filter(l => l.includes('401')), 'a rotation is not an error').to.deep.equal([]);
    } finally {
      log.restore();
    }
  });

  it('401 with a bad token: calls fail naming the credentials, one ERROR line', async function () {
    const svc = next();
    kube.api.applySlice(slice(svc, `${svc}-a`, [sliceEndpoint(pods.ips[0], 'p0')]));
    kube.api.setTokens(['nobody-has-this']);
    const log = captureGrpcLog();
    try {
      const err = await unaryError(client(`kubernetes:///${svc}:grpc`));
      expect(err?.code).to.equal(grpc.status.UNAVAILABLE);
      expect(err?.details).to.match(/refused our credentials \(401 Unauthorized: Unauthorized\); the token is missing, wrong or expired/);
      expect(log.lines.filter(l => l.includes('refused our credentials'))).to.have.length(1);
    } finally {
      log.restore();
      kube.api.setTokens(['second']);
    }
  });

  it('an API server that cannot be reached before any list: calls fail fast, naming it', async function () {
    const closed = join(kube.dir, 'closed-config');
    writeFileSync(closed, kubeconfigText('http://127.0.0.1:1', { namespace: NS }));
    process.env.KUBECONFIG = closed;
    try {
      const started = Date.now();
      const err = await unaryError(client(`kubernetes:///${next()}:grpc`));
      expect(err?.code).to.equal(grpc.status.UNAVAILABLE);
      expect(err?.details).to.match(/cannot list or watch EndpointSlices of http:\/\/127\.0\.0\.1:1 team\/pol\d+: .*ECONNREFUSED/);
      expect(Date.now() - started).to.be.below(4_000);
    } finally {
      process.env.KUBECONFIG = kube.kubeconfig;
    }
  });

  for (const policy of [
    { etcd_weighted_round_robin: {} }, { etcd_weighted_random: {} }, { etcd_least_request: {} }, { etcd_peak_ewma: {} },
    { etcd_subset: { subsetSize: 2, childPolicy: [{ etcd_least_request: {} }] } },
  ]) {
    const name = Object.keys(policy)[0];
    it(`${name} serves from slices`, async function () {
      const svc = next();
      kube.api.applySlice(slice(svc, `${svc}-a`, [0, 1].map(i => sliceEndpoint(pods.ips[i], `p${i}`))));
      kube.api.applySlice(slice(svc, `${svc}-b`, [2, 3].map(i => sliceEndpoint(pods.ips[i], `p${i}`))));
      const c = client(`kubernetes:///${svc}:grpc`, policy);
      const result = await runCalls(c, 80, 4, () => ({ options: { deadline: Date.now() + 10_000 } }));
      expect(failedCount(result)).to.equal(0);
      const used = result.byServer.size;
      if (name === 'etcd_subset') expect(used).to.equal(2);
      else expect(used).to.be.at.least(3);
    });
  }

  it('zone-aware routing from slice zones: calls stay in the client\'s zone', async function () {
    const svc = next();
    setLocality({ zone: 'zone-b' });
    kube.api.applySlice(slice(svc, `${svc}-a`, [0, 1, 2, 3].map(i => sliceEndpoint(pods.ips[i], `p${i}`, 'ready', i < 2 ? 'zone-a' : 'zone-b'))));
    const c = client(`kubernetes:///${svc}:grpc`, { etcd_least_request: {} });
    await runCalls(c, 4, 2, () => ({ options: { deadline: Date.now() + 10_000 } }));
    await waitFor('all four READY', () => inspectBalancers().some(b => b.endpoints.length === 4 && b.endpoints.every(e => e.state === 'READY') && b.zoneRouting !== undefined));
    const result = await runCalls(c, 200, 4, () => ({ options: { deadline: Date.now() + 10_000 } }));
    expect(failedCount(result)).to.equal(0);
    expect((result.byServer.get('p2') ?? 0) + (result.byServer.get('p3') ?? 0)).to.equal(200);
  });

  it('IPv6 slices are dialled; FQDN slices are skipped with one warning', async function () {
    const svc = next();
    const v6 = await startEchoServer({ address: `[::1]:${pods.port}`, name: 'v6' }).catch(() => undefined);
    if (!v6) this.skip();
    try {
      kube.api.applySlice(endpointSlice(NS, svc, `${svc}-v6`, { addressType: 'IPv6', ports: [{ name: 'grpc', port: pods.port }], endpoints: [sliceEndpoint('::1', 'v6')] }));
      kube.api.applySlice(endpointSlice(NS, svc, `${svc}-dns`, { addressType: 'FQDN', ports: [{ name: 'grpc', port: pods.port }], endpoints: [sliceEndpoint('pod.example.internal', 'dns')] }));
      kube.api.applySlice(endpointSlice(NS, svc, `${svc}-dns2`, { addressType: 'FQDN', ports: [{ name: 'grpc', port: pods.port }], endpoints: [sliceEndpoint('pod2.example.internal', 'dns')] }));
      const log = captureGrpcLog();
      try {
        const result = await runCalls(client(`kubernetes:///${svc}:grpc`), 4, 2, () => ({ options: { deadline: Date.now() + 10_000 } }));
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
