/**
 * Consul faults against the agent double and real servers, under steady load through the
 * retry interceptor: a replica killed (-9), setServing(false), the agent restarted without
 * its data (index reset, registrations back by themselves), an agent outage of seconds;
 * Consul's blocking-query rules on the watch itself: no hot loop against an agent that
 * answers at once, index ≤ 0 and backwards reset to 0, health change to picker latency.
 */
import { expect } from 'chai';
import { register, registerEndpoint, createRetryInterceptor, type Registration } from '../../../src';
import { type LostEvent, type RegisteredEvent } from '../../../src/discovery/registration-events';
import { acquireConsulServiceWatch } from '../../../src/backends/consul/consul-backend';
import { validateConsulOptions } from '../../../src/backends/consul/connection';
import { startEchoServer, type EchoServer } from '../../support/echo-server';
import { startConsulAgentDouble, type ConsulAgentDouble } from '../../support/consul-agent-double';
import { spawnReplica } from '../../support/replica-process';
import { describeLoad, startSteadyLoad, type SteadyLoad } from '../../support/steady-load';
import { waitFor } from '../../support/wait';
import { makeClient } from '../../balancer/support/load';
import { type EchoClient } from '../../support/echo-proto';
import { goStyleRegister } from './consul-fixtures';

describe('Consul faults (agent double, real servers, retry interceptor)', function () {
  this.timeout(60_000);
  let agent: ConsulAgentDouble;
  const servers: EchoServer[] = [];
  const registrations: Registration[] = [];
  let client: EchoClient | undefined;
  let load: SteadyLoad | undefined;

  before(async function () {
    register();
    for (const name of ['a', 'b', 'c']) servers.push(await startEchoServer({ name }));
  });

  beforeEach(async function () {
    agent = await startConsulAgentDouble({ reapIntervalMs: 200, minDeregisterCriticalMs: 0 });
  });

  afterEach(async function () {
    await load?.stop();
    load = undefined;
    client?.close();
    client = undefined;
    await Promise.all(registrations.splice(0).map(r => r.close()));
    await agent.close();
  });

  after(async function () {
    await Promise.all(servers.map(s => new Promise<void>(resolve => s.server.tryShutdown(() => resolve()))));
  });

  async function registerAll(service: string, ttlSeconds: number): Promise<void> {
    for (const s of servers) registrations.push(await registerEndpoint({ service, address: s.address, ttlSeconds, consul: { address: agent.address } }));
  }

  function loadOn(service: string): SteadyLoad {
    client = makeClient(`consul://${agent.address}/${service}`, { etcd_weighted_round_robin: {} }, { interceptors: [createRetryInterceptor()] });
    load = startSteadyLoad(client, { concurrency: 4, ratePerSecond: 200, phase: 'before' });
    return load;
  }

  const served = (l: SteadyLoad, name: string): number => l.byReplica.get(name) ?? 0;

  it('agent restarted without its data: registrations back within 2 × TTL by themselves, the resolver recovers from the index reset, no failed call', async function () {
    const service = 'restart';
    const ttlSeconds = 2;
    await registerAll(service, ttlSeconds);
    const lost: LostEvent[] = [];
    const back: RegisteredEvent[] = [];
    for (const r of registrations) {
      r.onLost(e => lost.push(e));
      r.onRegistered(e => back.push(e));
    }
    const l = loadOn(service);
    await waitFor('all three serving', () => servers.every(s => served(l, s.name) > 5), { timeoutMs: 10_000 });
    const indexBefore = agent.healthAnswers.at(-1)?.index ?? 0;
    l.phase('agent restart');
    const restartedAt = Date.now();
    await agent.restart();
    const backMs = await waitFor('every registration back', () => agent.serviceIds().length === 3 && back.length === 3, { timeoutMs: 2 * ttlSeconds * 1000 });
    l.phase('after');
    const indexAfter = agent.healthAnswers.at(-1)?.index ?? 0;
    const extra = await startEchoServer({ name: 'd' });
    try {
      registrations.push(await registerEndpoint({ service, address: extra.address, ttlSeconds, consul: { address: agent.address } }));
      const seenMs = await waitFor('a replica registered after the restart to serve', () => served(l, 'd') > 0, { timeoutMs: 5_000 });
      const totals = await l.stop();
      console.log(`      agent restarted (index ${indexBefore} → ${indexAfter}): all 3 registered again ${backMs} ms later (TTL ${ttlSeconds} s); ` +
        `a new replica served ${seenMs} ms after registering; lost ${lost.map(e => e.reason).join(',')}; ${describeLoad(totals)}; ${Date.now() - restartedAt} ms in all`);
      expect(indexAfter).to.be.lessThan(indexBefore);
      expect(totals.failures).to.deep.equal([]);
      expect(lost.map(e => e.reason)).to.deep.equal(['lease-lost', 'lease-lost', 'lease-lost']);
      expect(back.every(e => !e.leaseKept)).to.equal(true);
    } finally {
      await Promise.all(registrations.splice(3).map(r => r.close()));
      await new Promise<void>(resolve => extra.server.tryShutdown(() => resolve()));
    }
  });

  it('agent unreachable for 3 s: the last list serves, no failed call, changes seen after; registrations kept', async function () {
    const service = 'outage';
    await registerAll(service, 5);
    const lost: LostEvent[] = [];
    for (const r of registrations) r.onLost(e => lost.push(e));
    const l = loadOn(service);
    await waitFor('all three serving', () => servers.every(s => served(l, s.name) > 5), { timeoutMs: 10_000 });
    l.phase('agent down');
    await agent.stop();
    const stoppedAt = Date.now();
    await waitFor('3 s of outage with calls served', () => Date.now() - stoppedAt >= 3_000, { timeoutMs: 5_000, intervalMs: 50 });
    const duringOk = l.totals().byPhase['agent down']?.ok ?? 0;
    await agent.start();
    l.phase('agent back');
    await registrations[2].close();
    const before = served(l, 'c');
    await waitFor('c to leave', async () => {
      const n = served(l, 'c');
      await new Promise(resolve => setTimeout(resolve, 200));
      return served(l, 'c') === n;
    }, { timeoutMs: 5_000 });
    const totals = await l.stop();
    console.log(`      agent down 3 s: ${duringOk} calls served meanwhile; c served ${before} before its deregistration; lost ${lost.length}; ${describeLoad(totals)}`);
    expect(duringOk).to.be.greaterThan(100);
    expect(totals.failures).to.deep.equal([]);
    expect(lost).to.deep.equal([]);
  });

  it('a replica killed (-9) leaves the passing set within its TTL; setServing(false) drops one at once; no failed call', async function () {
    const service = 'kill';
    const ttlSeconds = 2;
    const victim = await spawnReplica({ name: 'k', service, consulAddress: agent.address, ttlSeconds });
    await registerAll(service, ttlSeconds);
    const l = loadOn(service);
    await waitFor('all four serving', () => served(l, 'k') > 5 && servers.every(s => served(l, s.name) > 5), { timeoutMs: 10_000 });
    l.phase('kill');
    const killedAt = Date.now();
    await victim.kill('SIGKILL');
    const victimId = `${service}:${victim.address}`;
    const goneMs = await waitFor('the killed replica to leave the passing set', () => agent.checkStatus(`service:${victimId}`) === 'critical', { timeoutMs: ttlSeconds * 1000 + 1_000 });
    l.phase('not serving');
    const notServingAt = Date.now();
    registrations[0].setServing(false);
    await waitFor('a to fail its check', () => agent.checkStatus(`service:${registrations[0].key}`) === 'critical', { timeoutMs: 1_000 });
    const failedCheckMs = Date.now() - notServingAt;
    const others = (): number => served(l, 'b') + served(l, 'c');
    const othersBefore = others();
    await waitFor('b and c to take 100 more calls', () => others() > othersBefore + 100, { timeoutMs: 5_000 });
    const aAfter = served(l, 'a');
    await waitFor('another 100 calls', () => others() > othersBefore + 200, { timeoutMs: 5_000 });
    const totals = await l.stop();
    console.log(`      killed replica critical ${goneMs} ms after kill -9 (TTL ${ttlSeconds} s, ${Date.now() - killedAt} ms in all); ` +
      `setServing(false) → check critical in ${failedCheckMs} ms; ${describeLoad(totals)}`);
    expect(served(l, 'a')).to.equal(aAfter);
    expect(totals.failures).to.deep.equal([]);
  });
});

describe('Consul blocking queries: pacing and index rules (agent double)', function () {
  this.timeout(30_000);
  let agent: ConsulAgentDouble;

  beforeEach(async function () {
    agent = await startConsulAgentDouble();
    await goStyleRegister(agent, { ID: 'w1', Name: 'web', Address: '127.0.0.1', Port: 8081 });
  });

  afterEach(async function () {
    await agent.close();
  });

  it('no hot loop: an agent that answers at once gets a few queries a second, not thousands', async function () {
    agent.behaviour = { instantReturns: true };
    const lease = acquireConsulServiceWatch(validateConsulOptions({ address: agent.address }, 'test'), 'web');
    try {
      await waitFor('a first list', () => lease.watch.current?.ok === true);
      const from = Date.now();
      await waitFor('2 s', () => Date.now() - from >= 2_000, { timeoutMs: 3_000, intervalMs: 50 });
      const perSecond = agent.count('/v1/health/service/web', from) / ((Date.now() - from) / 1000);
      console.log(`      agent answering at once: ${perSecond.toFixed(1)} queries/s`);
      expect(perSecond).to.be.lessThan(12);
    } finally {
      lease.release();
    }
    const stoppedAt = agent.requests.length;
    await new Promise(resolve => setTimeout(resolve, 300));
    expect(agent.requests.length).to.equal(stoppedAt);
  });

  it('X-Consul-Index ≤ 0 or going backwards: the next query is from 0; a return with nothing new is not a change', async function () {
    const lease = acquireConsulServiceWatch(validateConsulOptions({ address: agent.address }, 'test'), 'web');
    const published: number[] = [];
    lease.watch.subscribe(state => published.push(state.ok ? state.resolved.endpoints.length : -1));
    try {
      await waitFor('a first list', () => lease.watch.current?.ok === true);
      await waitFor('a blocking query', () => agent.requests.some(r => /index=\d+/.test(r.path)));
      agent.behaviour = { forceIndex: 0, spuriousReturnRate: 1 };
      await goStyleRegister(agent, { ID: 'w2', Name: 'web', Address: '127.0.0.1', Port: 8082 });
      await waitFor('the new instance', () => lease.watch.current?.ok === true && lease.watch.current.resolved.endpoints.length === 2);
      const since = Date.now();
      await waitFor('three more queries', () => agent.count('/v1/health/service/web', since) >= 3);
      const paths = agent.requests.filter(r => r.atMs >= since).map(r => r.path);
      expect(paths.every(p => !p.includes('index='))).to.equal(true);
      agent.behaviour = { spuriousReturnRate: 1 };
      const spuriousFrom = agent.requests.length;
      await waitFor('spurious returns', () => agent.requests.length - spuriousFrom >= 4, { timeoutMs: 10_000 });
      expect(published).to.deep.equal([1, 2]);
    } finally {
      lease.release();
    }
  });

  it('health change → picker: the list reaches the watch\'s subscribers ≤ 50 ms after the blocking query returns (measured, printed)', async function () {
    const lease = acquireConsulServiceWatch(validateConsulOptions({ address: agent.address }, 'test'), 'web');
    const seen: Array<{ atMs: number; count: number }> = [];
    lease.watch.subscribe(state => seen.push({ atMs: Date.now(), count: state.ok ? state.resolved.endpoints.length : -1 }));
    const delays: number[] = [];
    try {
      await waitFor('a first list', () => lease.watch.current?.ok === true);
      for (let i = 0; i < 10; i++) {
        await waitFor('a blocking query', () => agent.requests.at(-1)?.path.includes('index=') === true);
        const answers = agent.healthAnswers.length;
        if (i % 2 === 0) agent.setCheck('service:w1', 'critical');
        else await goStyleRegister(agent, { ID: 'w1', Name: 'web', Address: '127.0.0.1', Port: 8081 });
        const want = i % 2 === 0 ? 0 : 1;
        await waitFor('the change', () => seen.at(-1)?.count === want);
        const seenAt = seen.at(-1)?.atMs ?? 0;
        // The answer that carried the change: the last one sent before the subscribers saw it.
        const carrier = agent.healthAnswers.slice(answers).filter(a => a.atMs <= seenAt).at(-1);
        delays.push(seenAt - (carrier?.atMs ?? seenAt));
        // Past the coalescing window, so each change is a first change (as a lone health change is).
        await waitFor('a quiet window', () => Date.now() - seenAt >= 60, { intervalMs: 20 });
      }
    } finally {
      lease.release();
    }
    delays.sort((x, y) => x - y);
    console.log(`      query return → subscribers: median ${delays[5]} ms, max ${delays[9]} ms over 10 changes (target ≤ 50 ms)`);
    expect(delays.every(d => d >= 0)).to.equal(true);
  });
});
