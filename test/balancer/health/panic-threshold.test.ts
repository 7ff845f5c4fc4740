/**
 * The panic threshold over real servers with grpc.health.v1: a tier with too
 * few healthy endpoints uses all its READY ones (no failed call), one line
 * when entering and leaving, `panic` in inspectBalancers(); tier failover
 * stays; and the guard's counting rules in isolation.
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { PanicGuard, type PanicMember } from '../../../src/balancer/health/panic-threshold';
import { EtcdWeightedRoundRobinConfig } from '../../../src/balancer/policies/weighted-round-robin';
import { type EchoClient } from '../../support/echo-proto';
import { captureGrpcLog } from '../../support/grpc-log';
import { startTestMetrics, total } from '../../metrics/metrics-fixtures';
import { waitFor } from '../../support/wait';
import { LOCAL_SUBCHANNEL_POOL, named, useBalancerHarness } from '../support/harness';
import { type HealthEchoServer } from '../support/health-service';
import { balancerFor, failedCount, runCalls } from '../support/load';
import { type StaticEndpoint } from '../support/static-resolver';

const HEALTH = { healthCheck: { serviceName: '' } };

describe('panic threshold (panicThresholdPercent) with health checks', function () {
  this.timeout(60_000);
  let log: ReturnType<typeof captureGrpcLog> | undefined;

  // Before the harness's hook: the log is restored before the clients close.
  afterEach(() => {
    log?.restore();
    log = undefined;
  });
  const { serveHealth, connect } = useBalancerHarness({ channelOptions: LOCAL_SUBCHANNEL_POOL });

  const healthOf = (addresses: string[]) => balancerFor(addresses)?.endpoints.map(e => e.health).join(',');

  /** `count` replicas behind one client, warmed up by `count` calls (`concurrency` at a time) until all are healthy. */
  async function healthy(
    count: number,
    lbConfig: object,
    concurrency: number,
    endpoints = (addresses: string[]): StaticEndpoint[] => addresses.map(address => ({ address })),
  ): Promise<{ servers: HealthEchoServer[]; addresses: string[]; client: EchoClient }> {
    const servers = await serveHealth(named('r', count));
    const addresses = servers.map(s => s.address);
    const { client } = connect(endpoints(addresses), lbConfig);
    await runCalls(client, count, concurrency);
    await waitFor('all healthy', () => healthOf(addresses) === addresses.map(() => 'healthy').join(','));
    return { servers, addresses, client };
  }

  it('enters panic when fewer than 50 % of a tier\'s READY endpoints are healthy (all of them serve, 0 failed), leaves it when enough recover', async () => {
    log = captureGrpcLog();
    const { servers, addresses, client } = await healthy(4, { etcd_weighted_round_robin: HEALTH }, 2);
    // 2 of 4 healthy: 50 %, not below: health decides.
    servers[0].setStatus('NOT_SERVING');
    servers[1].setStatus('NOT_SERVING');
    await waitFor('two unhealthy', () => balancerFor(addresses)?.endpoints.filter(e => e.health === 'unhealthy').length === 2);
    for (const s of servers) s.echo.calls = 0;
    const half = await runCalls(client, 100, 4);
    expect(failedCount(half)).to.equal(0);
    expect(servers[0].echo.calls + servers[1].echo.calls).to.equal(0);
    expect(balancerFor(addresses)?.panic).to.equal(false);

    // 1 of 4 healthy: 25 % < 50 %: panic, every READY endpoint serves.
    servers[2].setStatus('NOT_SERVING');
    await waitFor('panic', () => balancerFor(addresses)?.panic === true);
    for (const s of servers) s.echo.calls = 0;
    const panic = await runCalls(client, 200, 4);
    expect(failedCount(panic)).to.equal(0);
    expect(servers.map(s => s.echo.calls)).to.deep.equal([50, 50, 50, 50]);
    expect(log.lines.filter(l => l.includes('entered panic'))).to.have.length(1);
    expect(log.lines.find(l => l.includes('entered panic'))).to.include('etcd_weighted_round_robin: priority 0 tier entered panic: 1 of 4 READY endpoints healthy (25 %), below panicThresholdPercent 50');

    // 3 of 4 healthy again: panic ends, the NOT_SERVING one gets nothing.
    servers[0].setStatus('SERVING');
    servers[1].setStatus('SERVING');
    await waitFor('panic over', () => balancerFor(addresses)?.panic === false);
    for (const s of servers) s.echo.calls = 0;
    const after = await runCalls(client, 150, 4);
    expect(failedCount(after)).to.equal(0);
    expect(servers[2].echo.calls).to.equal(0);
    expect(log.lines.filter(l => l.includes('left panic'))).to.have.length(1);
    console.log(`      ${log.lines.filter(l => l.includes('panic')).join('\n      ')}`);
  });

  it('keeps tier failover: a primary tier with no healthy endpoint fails over to a healthy standby; with none healthy anywhere the primary panics instead of failing calls', async () => {
    const { servers, addresses, client } = await healthy(3, { etcd_least_request: HEALTH }, 3, ([a, b, c]) => [{ address: a }, { address: b }, { address: c, priority: 1 }]);
    servers[0].setStatus('NOT_SERVING');
    servers[1].setStatus('NOT_SERVING');
    await waitFor('primary unhealthy', () => balancerFor(addresses)?.endpoints.filter(e => e.health === 'unhealthy').length === 2);
    for (const s of servers) s.echo.calls = 0;
    const failover = await runCalls(client, 100, 4);
    expect(failedCount(failover)).to.equal(0);
    expect(servers[2].echo.calls).to.equal(100);
    expect(balancerFor(addresses)?.panic).to.equal(false);

    servers[2].setStatus('NOT_SERVING');
    await waitFor('panic', () => balancerFor(addresses)?.panic === true);
    for (const s of servers) s.echo.calls = 0;
    const panic = await runCalls(client, 100, 4);
    expect(failedCount(panic)).to.equal(0);
    expect(servers[0].echo.calls + servers[1].echo.calls).to.equal(100);
  });

  it('counts entering and leaving panic in grpc_etcd_lb.lb.panic_changes', async () => {
    const telemetry = startTestMetrics();
    try {
      log = captureGrpcLog();
      const { servers, addresses } = await healthy(2, { etcd_weighted_random: HEALTH }, 2);
      servers[0].setStatus('NOT_SERVING');
      servers[1].setStatus('NOT_SERVING');
      await waitFor('panic', () => balancerFor(addresses)?.panic === true);
      servers[0].setStatus('SERVING');
      servers[1].setStatus('SERVING');
      await waitFor('panic over', () => balancerFor(addresses)?.panic === false);
      const points = await telemetry.collect('grpc_etcd_lb.lb.panic_changes');
      expect(total(points, { policy: 'etcd_weighted_random', state: 'entered', priority: 0 })).to.equal(1);
      expect(total(points, { policy: 'etcd_weighted_random', state: 'left', priority: 0 })).to.equal(1);
    } finally {
      await telemetry.shutdown();
    }
  });

  it('rejects bad panicThresholdPercent values naming the value', () => {
    expect(() => EtcdWeightedRoundRobinConfig.createFromJson({ ...HEALTH, panicThresholdPercent: 101 })).to.throw(/panicThresholdPercent must be a number in \[0, 100\] \(0 = off\), got 101/);
    expect(() => EtcdWeightedRoundRobinConfig.createFromJson({ ...HEALTH, panicThresholdPercent: '50' })).to.throw(/got "50"/);
    expect(EtcdWeightedRoundRobinConfig.createFromJson({ ...HEALTH, panicThresholdPercent: 30 }).toJsonObject())
      .to.deep.equal({ etcd_weighted_round_robin: { ...HEALTH, panicThresholdPercent: 30 } });
    // Without healthCheck it cannot apply: accepted, with one line saying so.
    log = captureGrpcLog();
    EtcdWeightedRoundRobinConfig.createFromJson({ panicThresholdPercent: 31 });
    expect(log.lines).to.deep.equal(['etcd_weighted_round_robin: panicThresholdPercent 31 has no effect without healthCheck (the threshold is a share of healthy endpoints)']);
  });

  it('PanicGuard: counts READY endpoints with a verdict per priority; strictly below the threshold; flips reported once', () => {
    const flips: string[] = [];
    const guard = new PanicGuard(50, (c, panic) => flips.push(`${c.priority}:${panic ? 'in' : 'out'}:${c.healthy}/${c.ready}`));
    const m = (priority: number, usable: boolean, healthKnown = true): PanicMember & { usable: boolean; healthKnown: boolean; priority: number } => ({ priority, usable, healthKnown });
    const a = m(0, true);
    const b = m(0, false);
    const c = m(0, false, false);
    const standby = m(1, true);
    for (const e of [a, b, c, standby]) guard.track(e);
    // a healthy, b unhealthy, c pending (not counted): 1 of 2 = 50 %: no panic.
    expect(guard.inPanic(0)).to.equal(false);
    c.healthKnown = true;
    guard.track(c);
    expect(flips).to.deep.equal(['0:in:1/3']);
    // No healthy endpoint in priority 0, one in priority 1: failover, not panic.
    a.usable = false;
    guard.track(a);
    expect(guard.inPanic(0)).to.equal(false);
    // Nothing healthy anywhere: priority 0 (and 1, which has none READY) — only tiers with READY endpoints panic.
    guard.untrack(standby);
    expect(guard.inPanic(0)).to.equal(true);
    expect(guard.inPanic(1)).to.equal(false);
    expect(flips).to.deep.equal(['0:in:1/3', '0:out:0/3', '0:in:0/3']);
  });
});

void grpc;
