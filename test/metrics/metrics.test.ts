/**
 * Issue 19 acceptance: OpenTelemetry metrics on real servers, a real etcd and the
 * real registry, read through @opentelemetry/sdk-metrics with an in-memory exporter.
 */
import { expect } from 'chai';
import { metrics as otelMetrics } from '@opentelemetry/api';
import { createRetryInterceptor, inspectBalancers, register, registerEndpoint, type Registration } from '../../src/index';
import { unary, type EchoClient } from '../support/echo-proto';
import { etcdctl, startEtcd, type EtcdServer } from '../support/etcd';
import { waitFor } from '../support/wait';
import { clientFor, resetCounters, runCalls, startReplicas, type Replicas } from '../interceptor/replicas';
import { leaseHex } from '../backends/etcd/registry-fixtures';
import { startTestMetrics, total, type TestMetrics } from './metrics-fixtures';

const POLICY = 'etcd_weighted_round_robin';
const CALLS = 200;

describe('metrics (OpenTelemetry)', function () {
  let etcd: EtcdServer;
  let replicas: Replicas;
  let telemetry: TestMetrics;
  let registrations: Registration[] = [];
  let client: EchoClient | undefined;
  const service = 'metrics/echo';

  before(async function () {
    // Replica 0 always fails with UNAVAILABLE.
    [etcd, replicas] = await Promise.all([startEtcd(), startReplicas(4, i => (i === 0 ? { failRate: 1 } : {}))]);
    telemetry = startTestMetrics();
    register({ metrics: { perEndpoint: true } });
    registrations = await Promise.all(replicas.servers.map(s => registerEndpoint({ service, address: s.address, ttlSeconds: 5, etcd: { hosts: etcd.endpoints } })));
  });

  after(async function () {
    client?.close();
    await Promise.all(registrations.map(r => r.close()));
    await replicas?.stop();
    await telemetry?.shutdown();
    await etcd?.destroy();
  });

  it('counts attempts, retries and picks as the servers saw them; the endpoints gauge is 4', async function () {
    client = clientFor(`etcd://${etcd.endpoint}/${service}`, POLICY, [createRetryInterceptor()]);
    const c = client;
    const { ok, errors } = await runCalls(CALLS, 8, () => unary(c, 'm', { deadline: Date.now() + 10_000 }));
    expect(errors.map(e => e.message)).to.deep.equal([]);
    expect(ok).to.equal(CALLS);

    const served = replicas.totalCalls();
    const failing = replicas.servers[0];
    expect(failing.calls).to.be.greaterThan(0);
    const attempts = await telemetry.collect('grpc_etcd_lb.retry.attempts');
    const method = '/grpc_etcd_lb.echo.Echo/Unary';
    expect(total(attempts)).to.equal(served);
    expect(total(attempts, { attempt: 'first', 'grpc.method': method })).to.equal(CALLS);
    expect(total(attempts, { attempt: 'retry' })).to.equal(replicas.previousAttempts.length);
    expect(replicas.previousAttempts.every(v => v === '1')).to.equal(true);
    expect(total(attempts, { 'grpc.status': 'UNAVAILABLE' })).to.equal(failing.calls);
    expect(total(attempts, { 'grpc.status': 'OK' })).to.equal(CALLS);

    const endpoints = await telemetry.collect('grpc_etcd_lb.resolver.endpoints');
    expect(endpoints).to.deep.equal([{ attributes: { service }, value: 4 }]);

    const picks = await telemetry.collect('grpc_etcd_lb.lb.picks');
    expect(total(picks, { policy: POLICY })).to.equal(served);
    for (const s of replicas.servers) expect(total(picks, { policy: POLICY, endpoint: s.address }), s.address).to.equal(s.calls);

    const usable = await telemetry.collect('grpc_etcd_lb.lb.usable_endpoints');
    expect(total(usable, { policy: POLICY, priority: 0, draining: false })).to.equal(4);
    const inFlight = await telemetry.collect('grpc_etcd_lb.lb.endpoint.in_flight');
    expect(total(inFlight, { policy: POLICY })).to.equal(0);

    const durations = await telemetry.collect('grpc_etcd_lb.retry.call.duration');
    expect(durations.reduce((n, p) => n + (p.count ?? 0), 0)).to.equal(CALLS);
    const tokens = await telemetry.collect('grpc_etcd_lb.retry.budget_tokens');
    expect(tokens).to.have.length(1);
    expect(tokens[0].value).to.be.within(50, 100);

    const snapshot = inspectBalancers().find(b => b.policy === POLICY && b.endpoints.some(e => e.address === failing.address));
    expect(snapshot?.endpoints).to.have.length(4);
    for (const e of snapshot!.endpoints) {
      expect(e).to.include({ health: 'not-checked', usable: true, draining: false, tier: 0, activeCalls: 0 });
      expect(e.latencyEstimateMs).to.equal(undefined);
    }
  });

  it('shows a lease loss and the re-registration in the registry metrics', async function () {
    const victim = registrations[1];
    const before = await telemetry.collect('grpc_etcd_lb.registry.registrations');
    expect(total(before, { service, state: 'registered' })).to.equal(4);
    const registered = new Promise(resolve => victim.onRegistered(resolve));
    etcdctl(etcd.endpoints, ['lease', 'revoke', leaseHex(victim.leaseId!)]);
    await registered;

    const endpoint = victim.address;
    const losses = await telemetry.collect('grpc_etcd_lb.registry.lease_losses');
    expect(losses).to.deep.equal([{ attributes: { service, endpoint, reason: 'lease-lost' }, value: 1 }]);
    const again = await telemetry.collect('grpc_etcd_lb.registry.reregistrations');
    expect(again).to.deep.equal([{ attributes: { service, endpoint, lease: 'new' }, value: 1 }]);
    const downtime = await telemetry.collect('grpc_etcd_lb.registry.downtime');
    expect(downtime.map(p => p.count)).to.deep.equal([1]);
    const states = await telemetry.collect('grpc_etcd_lb.registry.registrations');
    expect(total(states, { service, state: 'registered' })).to.equal(4);
    expect(total(states, { service, state: 'lost' })).to.equal(0);
    // The resolver saw the key go and come back: more updates than the first one, 4 endpoints again.
    await waitFor('the resolver to serve 4 endpoints again', async () => total(await telemetry.collect('grpc_etcd_lb.resolver.endpoints'), { service }) === 4);
    expect(total(await telemetry.collect('grpc_etcd_lb.resolver.updates'), { service })).to.be.greaterThan(1);
  });

  it('shows tiers, draining, latency estimates and a failover (inspectBalancers and metrics)', async function () {
    const tierService = 'metrics/tiers';
    const tierReplicas = await startReplicas(3);
    const [primary, drainer, standby] = tierReplicas.servers;
    const hosts = etcd.endpoints;
    const regs = await Promise.all([
      registerEndpoint({ service: tierService, address: primary.address, ttlSeconds: 5, etcd: { hosts } }),
      registerEndpoint({ service: tierService, address: drainer.address, weight: 0, ttlSeconds: 5, etcd: { hosts } }),
      registerEndpoint({ service: tierService, address: standby.address, priority: 1, ttlSeconds: 5, etcd: { hosts } }),
    ]);
    const peak = clientFor(`etcd://${etcd.endpoint}/${tierService}`, 'etcd_peak_ewma', []);
    const ours = () => inspectBalancers().find(b => b.policy === 'etcd_peak_ewma' && b.endpoints.some(e => e.address === standby.address));
    const endpointOf = (address: string) => ours()?.endpoints.find(e => e.address === address);
    try {
      await unary(peak, 'connect'); // a channel resolves and connects on its first call
      await waitFor('all three endpoints READY', () => ours()?.endpoints.filter(e => e.state === 'READY').length === 3);
      resetCounters(tierReplicas);
      await runCalls(50, 4, () => unary(peak, 't'));
      expect(primary.calls).to.equal(50);
      expect(endpointOf(primary.address)).to.include({ tier: 0, draining: false, usable: true });
      expect(endpointOf(primary.address)?.latencyEstimateMs).to.be.a('number').and.greaterThan(0);
      expect(endpointOf(drainer.address)).to.include({ tier: -1, draining: true, usable: true });
      expect(endpointOf(standby.address)).to.include({ tier: 1, draining: false, usable: true });
      const usable = await telemetry.collect('grpc_etcd_lb.lb.usable_endpoints');
      expect(usable.filter(p => p.attributes.policy === 'etcd_peak_ewma').map(p => [p.attributes.priority, p.attributes.draining, p.value]))
        .to.have.deep.members([[0, false, 1], [0, true, 1], [1, false, 1]]);
      const latency = await telemetry.collect('grpc_etcd_lb.lb.endpoint.latency_estimate');
      expect(total(latency, { policy: 'etcd_peak_ewma', endpoint: primary.address })).to.be.greaterThan(0);

      // The primary leaves: the standby tier takes the traffic (the draining endpoint does not).
      await regs[0].close();
      await waitFor('the standby to take the traffic', () => endpointOf(standby.address)?.tier === 0 && endpointOf(primary.address) === undefined);
      const failovers = await telemetry.collect('grpc_etcd_lb.lb.tier_failovers');
      expect(failovers).to.deep.equal([{ attributes: { policy: 'etcd_peak_ewma', direction: 'failover' }, value: 1 }]);
      await unary(peak, 't');
      expect(standby.calls).to.equal(1);
    } finally {
      peak.close();
      await Promise.all(regs.map(r => r.close()));
      await tierReplicas.stop();
    }
  });

  it('records nothing from components created while no MeterProvider is set', async function () {
    otelMetrics.disable();
    const quietService = 'metrics/quiet';
    const quietReplicas = await startReplicas(2, i => (i === 0 ? { failRate: 1 } : {}));
    const quietRegistrations = await Promise.all(quietReplicas.servers.map(s => registerEndpoint({ service: quietService, address: s.address, ttlSeconds: 5, etcd: { hosts: etcd.endpoints } })));
    const quiet = clientFor(`etcd://${etcd.endpoint}/${quietService}`, 'etcd_least_request', [createRetryInterceptor()]);
    try {
      const { ok } = await runCalls(40, 4, () => unary(quiet, 'q', { deadline: Date.now() + 10_000 }));
      expect(ok).to.equal(40);
      expect(quietReplicas.servers[0].calls).to.be.greaterThan(0);
      // A provider installed now sees nothing of them (they were bound to none) ...
      const late = startTestMetrics();
      try {
        await unary(quiet, 'q');
        expect(await late.names()).to.deep.equal([]);
      } finally {
        await late.shutdown();
      }
      // ... and the earlier provider got no series of theirs.
      const addresses = new Set(quietReplicas.servers.map(s => s.address));
      for (const name of ['grpc_etcd_lb.lb.picks', 'grpc_etcd_lb.resolver.endpoints', 'grpc_etcd_lb.registry.registrations', 'grpc_etcd_lb.retry.attempts']) {
        const points = await telemetry.collect(name);
        expect(points.filter(p => p.attributes.service === quietService || addresses.has(p.attributes.endpoint as string)), name).to.deep.equal([]);
      }
      expect(total(await telemetry.collect('grpc_etcd_lb.lb.picks'), { policy: 'etcd_least_request' })).to.equal(0);
    } finally {
      quiet.close();
      await Promise.all(quietRegistrations.map(r => r.close()));
      await quietReplicas.stop();
    }
  });
});
