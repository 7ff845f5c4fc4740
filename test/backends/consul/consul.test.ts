/**
 * Consul discovery against the agent double (test/support/consul-agent-double.ts: no Consul
 * can be installed here) and real grpc-js servers: a service registered by raw HTTP as a Go
 * client writes it, Consul's weights, our registrar's wire format and lifecycle, every
 * etcd_* policy on consul:///, tags and dc, one blocking query per (agent, service, filter),
 * ACL denials and wrong addresses as users see them.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { register, registerEndpoint, type Registration } from '../../../src';
import { type LostEvent, type RegisteredEvent } from '../../../src/discovery/registration-events';
import { activeConsulWatchCount } from '../../../src/backends/consul/consul-backend';
import { setDefaultConsulOptions, validateConsulOptions } from '../../../src/backends/consul/connection';
import { startEchoServer, type EchoServer } from '../../support/echo-server';
import { startConsulAgentDouble, type ConsulAgentDouble } from '../../support/consul-agent-double';
import { captureGrpcLog } from '../../support/grpc-log';
import { generateTestCertificates } from '../../support/tls';
import { acquireConsulServiceWatch } from '../../../src/backends/consul/consul-backend';
import { waitFor } from '../../support/wait';
import { type EchoClient } from '../../support/echo-proto';
import { makeClient, runCalls, failedCount } from '../../balancer/support/load';
import { goStyleRegister, passingIds } from './consul-fixtures';

const deadline = (): { options: Partial<grpc.CallOptions> } => ({ options: { deadline: Date.now() + 5_000 } });

describe('Consul discovery (agent double, real servers)', function () {
  this.timeout(60_000);
  let agent: ConsulAgentDouble;
  const servers: EchoServer[] = [];
  const clients: EchoClient[] = [];
  const registrations: Registration[] = [];

  before(async function () {
    register();
    agent = await startConsulAgentDouble({ reapIntervalMs: 100, minDeregisterCriticalMs: 0 });
    for (const name of ['a', 'b', 'c']) servers.push(await startEchoServer({ name }));
  });

  afterEach(async function () {
    for (const c of clients.splice(0)) c.close();
    await Promise.all(registrations.splice(0).map(r => r.close()));
  });

  after(async function () {
    await Promise.all(servers.map(s => new Promise<void>(resolve => s.server.tryShutdown(() => resolve()))));
    await agent?.close();
  });

  function client(target: string, lb: object = { etcd_weighted_round_robin: {} }): EchoClient {
    const c = makeClient(target, lb);
    clients.push(c);
    return c;
  }

  it('resolves and calls instances a Go client registered by raw HTTP; weights 1/2/3 from Weights.Passing are exact under WRR', async function () {
    const service = 'go-weights';
    for (const [i, s] of servers.entries()) {
      await goStyleRegister(agent, { ID: `${service}-${i}`, Name: service, Address: '127.0.0.1', Port: s.port, Weights: { Passing: i + 1, Warning: 1 }, Meta: { zone: 'z1', version: 'v1' } });
    }
    const c = client(`consul://${agent.address}/${service}`);
    await waitFor('all three serving', async () => (await runCalls(c, 12, 2, deadline)).byServer.size === 3, { timeoutMs: 10_000 });
    const result = await runCalls(c, 600, 1, deadline);
    expect(failedCount(result)).to.equal(0);
    expect([result.byServer.get('a'), result.byServer.get('b'), result.byServer.get('c')]).to.deep.equal([100, 200, 300]);
  });

  it('takes Node.Address when Service.Address is empty, and skips a hostname with one warning, keeping the good ones', async function () {
    const service = 'node-address';
    const [a, b] = servers;
    await goStyleRegister(agent, { ID: 'n1', Name: service, Port: a.port }, { node: 'node-7', nodeAddress: '127.0.0.1' });
    await goStyleRegister(agent, { ID: 'h1', Name: service, Address: 'web-1.internal', Port: b.port });
    const log = captureGrpcLog();
    try {
      const c = client(`consul://${agent.address}/${service}`);
      const result = await runCalls(c, 20, 2, deadline);
      expect(failedCount(result)).to.equal(0);
      expect(result.byServer.get('a')).to.equal(20);
      // Another answer (a change elsewhere in the service) does not warn again.
      await goStyleRegister(agent, { ID: 'h2', Name: service, Address: '127.0.0.1', Port: b.port, Meta: { zone: 'z2' } });
      await waitFor('b to serve', async () => ((await runCalls(c, 10, 2, deadline)).byServer.get('b') ?? 0) > 0);
    } finally {
      log.restore();
    }
    expect(log.lines.filter(l => l.includes('web-1.internal'))).to.have.length(1);
    expect(log.lines.find(l => l.includes('web-1.internal'))).to.match(/consul resolver: .*is a hostname; register an IP address/);
  });

  it('registerEndpoint: the wire format (ID, Meta strings, Weights, Tags, TTL check), passing at once, TTL/3 heartbeats, update, setServing, close', async function () {
    const service = 'ours';
    const [a, b] = servers;
    const r = await registerEndpoint({
      service, address: a.address, weight: 2.5, priority: 1, metadata: { zone: 'z1', tag: 'blue', tags: ['v2', 'canary'], build: 7 },
      ttlSeconds: 1, consul: { address: agent.address, deregisterCriticalAfterSeconds: 90 },
    });
    registrations.push(r);
    const id = `${service}:${a.address}`;
    expect(r.key).to.equal(id);
    expect(r.leaseId).to.equal(`service:${id}`);
    const definition = agent.definition(id);
    expect(definition).to.deep.include({
      ID: id, Name: service, Address: '127.0.0.1', Port: a.port, Tags: ['v2', 'canary'],
      Meta: { zone: 'z1', tag: 'blue', build: '7', weight: '2.5', priority: '1' }, Weights: { Passing: 3, Warning: 1 },
    });
    expect((definition as { Check: object }).Check).to.deep.include({ TTL: '1s', DeregisterCriticalServiceAfter: '90s', CheckID: `service:${id}` });
    expect(agent.checkStatus(`service:${id}`)).to.equal('passing');
    const since = Date.now();
    await waitFor('three heartbeats', () => agent.count(`/v1/agent/check/pass/${encodeURIComponent(`service:${id}`)}`, since) >= 3, { timeoutMs: 3_000 });
    expect(agent.checkStatus(`service:${id}`)).to.equal('passing');

    const b1 = await registerEndpoint({ service, address: b.address, priority: 1, ttlSeconds: 1, consul: { address: agent.address } });
    registrations.push(b1);
    const c = client(`consul://${agent.address}/${service}`);
    await waitFor('both serving', async () => (await runCalls(c, 12, 2, deadline)).byServer.size === 2);
    await r.update({ weight: 4, metadata: { zone: 'z2' } });
    expect(agent.definition(id)).to.deep.include({ Meta: { zone: 'z2', weight: '4', priority: '1' }, Weights: { Passing: 4, Warning: 1 }, Tags: [] });

    b1.setServing(false);
    await waitFor('the check to fail', () => agent.checkStatus(`service:${b.address.replace(/^/, `${service}:`)}`) === 'critical', { timeoutMs: 2_000 });
    expect(await passingIds(agent, service)).to.deep.equal([id]);
    await waitFor('b to stop getting calls', async () => (await runCalls(c, 20, 2, deadline)).byServer.get('b') === undefined);
    b1.setServing(true);
    await waitFor('b back', async () => ((await runCalls(c, 20, 2, deadline)).byServer.get('b') ?? 0) > 0);

    await b1.close();
    expect(agent.serviceIds().filter(i => i.startsWith(`${service}:`))).to.deep.equal([id]);
    expect(b1.state).to.equal('closed');
  });

  it('registers again by itself when the agent forgets the service (404 on a pass), with onLost / onRegistered', async function () {
    const [a] = servers;
    const r = await registerEndpoint({ service: 'forgotten', address: a.address, ttlSeconds: 1, consul: { address: agent.address } });
    registrations.push(r);
    const lost: LostEvent[] = [];
    const back: RegisteredEvent[] = [];
    r.onLost(e => lost.push(e));
    r.onRegistered(e => back.push(e));
    await fetch(`${agent.url}/v1/agent/service/deregister/${encodeURIComponent(r.key)}`, { method: 'PUT' });
    const healedMs = await waitFor('registered again', () => back.length === 1 && agent.checkStatus(`service:${r.key}`) === 'passing', { timeoutMs: 3_000 });
    expect(lost.map(e => e.reason)).to.deep.equal(['lease-lost']);
    expect(back[0].leaseKept).to.equal(false);
    console.log(`      deregistered behind its back: registered again ${healedMs} ms later (TTL 1 s, heartbeat every ${Math.round(1000 / 3)} ms)`);
  });

  for (const policy of ['etcd_weighted_round_robin', 'etcd_weighted_random', 'etcd_least_request', 'etcd_peak_ewma', 'etcd_subset']) {
    it(`${policy} works on a consul:/// target`, async function () {
      const service = `policy-${policy}`;
      for (const s of servers) registrations.push(await registerEndpoint({ service, address: s.address, ttlSeconds: 2, consul: { address: agent.address } }));
      const lb = policy === 'etcd_subset' ? { etcd_subset: { subsetSize: 3, childPolicy: [{ etcd_least_request: {} }] } } : { [policy]: {} };
      const c = client(`consul://${agent.address}/${service}`, lb);
      await waitFor('all three serving', async () => (await runCalls(c, 30, 3, deadline)).byServer.size === 3, { timeoutMs: 10_000 });
      const result = await runCalls(c, 300, 3, deadline);
      expect(failedCount(result)).to.equal(0);
      expect(result.byServer.size).to.equal(3);
    });
  }

  it('?tag= (all must match) and ?dc= filter; channels on one (agent, service, filter) share one blocking query', async function () {
    const service = 'tagged';
    const [a, b, cc] = servers;
    registrations.push(await registerEndpoint({ service, address: a.address, metadata: { tags: ['v2', 'canary'] }, consul: { address: agent.address } }));
    registrations.push(await registerEndpoint({ service, address: b.address, metadata: { tags: ['v2'] }, consul: { address: agent.address } }));
    registrations.push(await registerEndpoint({ service, address: cc.address, consul: { address: agent.address } }));
    const watchesBefore = activeConsulWatchCount();
    const both = client(`consul://${agent.address}/${service}?tag=v2&tag=canary&dc=dc1`);
    const same = client(`consul://${agent.address}/${service}?tag=canary&tag=v2`);
    const v2 = client(`consul://${agent.address}/${service}?tag=v2`);
    expect((await runCalls(both, 20, 2, deadline)).byServer).to.deep.equal(new Map([['a', 20]]));
    expect((await runCalls(same, 20, 2, deadline)).byServer).to.deep.equal(new Map([['a', 20]]));
    await waitFor('a and b', async () => (await runCalls(v2, 20, 2, deadline)).byServer.size === 2);
    expect([...(await runCalls(v2, 40, 2, deadline)).byServer.keys()].sort()).to.deep.equal(['a', 'b']);
    // ?dc=dc1 is its own filter; the two spellings of {canary, v2} without dc are one watch.
    expect(activeConsulWatchCount() - watchesBefore).to.equal(3);
  });

  it('a wrong address names what answered; an unknown dc names the datacenter', async function () {
    const [a] = servers;
    const log = captureGrpcLog();
    try {
      const grpcPort = client(`consul://${a.address}/x`);
      const err1 = await new Promise<grpc.ServiceError | null>(resolve => grpcPort.unary({ message: 'm' }, new grpc.Metadata(), { deadline: Date.now() + 3_000 }, e => resolve(e)));
      expect(err1?.code).to.equal(grpc.status.UNAVAILABLE);
      expect(err1?.details).to.match(new RegExp(`${a.address} answered something that is not HTTP/1.1`));
      const dc = client(`consul://${agent.address}/x?dc=dc9`);
      const err2 = await new Promise<grpc.ServiceError | null>(resolve => dc.unary({ message: 'm' }, new grpc.Metadata(), { deadline: Date.now() + 3_000 }, e => resolve(e)));
      expect(err2?.details).to.match(/knows no datacenter 'dc9'/);
      const rejected = await registerEndpoint({ service: 'x', address: a.address, registerTimeoutMs: 1_000, consul: { address: a.address } }).then(() => 'resolved', (e: Error) => e.message);
      expect(rejected).to.match(new RegExp(`did not accept .* within 1000 ms \\(last error: http://${a.address.replace(/\./g, '\\.')} answered something that is not HTTP/1.1`));
    } finally {
      log.restore();
    }
  });
});

describe('Consul ACLs (agent double with ACLs on, real servers)', function () {
  this.timeout(30_000);
  let agent: ConsulAgentDouble;
  let server: EchoServer;

  before(async function () {
    register();
    agent = await startConsulAgentDouble({ acl: { tokens: { writer: { service: 'write', node: 'read' }, 'no-node': { service: 'read' } } } });
    server = await startEchoServer({ name: 'a' });
  });

  after(async function () {
    await new Promise<void>(resolve => server.server.tryShutdown(() => resolve()));
    await agent.close();
  });

  it('403 on register rejects naming service:write; a token without read sees the rule in the call status and one ERROR line', async function () {
    const log = captureGrpcLog();
    const clients: EchoClient[] = [];
    let r: Registration | undefined;
    const call = async (token: string): Promise<grpc.ServiceError | null> => {
      setDefaultConsulOptions(validateConsulOptions({ address: agent.address, token }, 'test'));
      const c = makeClient('consul:///acl', { etcd_weighted_round_robin: {} });
      clients.push(c);
      const once = (): Promise<grpc.ServiceError | null> => new Promise(resolve => c.unary({ message: 'm' }, new grpc.Metadata(), { deadline: Date.now() + 3_000 }, e => resolve(e)));
      const first = await once();
      await once();
      return first;
    };
    try {
      const denied = await registerEndpoint({ service: 'acl', address: server.address, registerTimeoutMs: 800, consul: { address: agent.address } })
        .then(() => 'resolved', (e: Error) => e.message);
      expect(denied).to.match(/403 Permission denied.*service:write on 'acl' \(ACL rule: service "acl" \{ policy = "write" \}\)/);
      r = await registerEndpoint({ service: 'acl', address: server.address, consul: { address: agent.address, token: 'writer' } });
      const hidden = await call('no-node');
      expect(hidden?.code).to.equal(grpc.status.UNAVAILABLE);
      expect(hidden?.details).to.match(/denied reading service 'acl' \(every instance hidden by ACLs.*service:read on 'acl' and node:read/);
      const unknown = await call('typo');
      expect(unknown?.details).to.match(/denied reading service 'acl' \(403 ACL not found\)/);
      expect(await call('writer')).to.equal(null);
    } finally {
      for (const c of clients) c.close();
      setDefaultConsulOptions(undefined);
      await r?.close();
      log.restore();
    }
    const errors = log.lines.filter(l => l.includes('denied'));
    expect(errors.filter(l => l.includes('registry'))).to.have.length(1);
    expect(errors.filter(l => l.includes('resolver') && l.includes('hidden'))).to.have.length(1);
    expect(errors.filter(l => l.includes('resolver') && l.includes('ACL not found'))).to.have.length(1);
  });
});

describe('Consul over HTTPS (agent double with TLS)', function () {
  this.timeout(30_000);

  it('an https:// address with CONSUL_CACERT resolves; a wrong CA is an error naming TLS and CONSUL_CACERT', async function () {
    const certs = generateTestCertificates();
    const agent = await startConsulAgentDouble({ tls: { cert: readFileSync(certs.serverCertFile), key: readFileSync(certs.serverKeyFile) } });
    const saved = process.env.CONSUL_CACERT;
    try {
      expect(agent.registerDirect({ ID: 's1', Name: 'secure', Address: '127.0.0.1', Port: 5001, Check: { TTL: '1h', Status: 'passing' } })).to.equal(undefined);
      const follow = async (caFile: string): Promise<string> => {
        process.env.CONSUL_CACERT = caFile;
        const lease = acquireConsulServiceWatch(validateConsulOptions({ address: `https://localhost:${agent.url.split(':').at(-1)}` }, 'test'), 'secure');
        try {
          await waitFor('an answer', () => lease.watch.current !== undefined);
          const state = lease.watch.current!;
          return state.ok ? state.resolved.endpoints.map(e => e.addresses.map(a => ('port' in a ? a.port : 0)).join()).join() : state.details;
        } finally {
          lease.release();
        }
      };
      expect(await follow(certs.caFile)).to.equal('5001');
      const log = captureGrpcLog();
      try {
        expect(await follow(certs.otherCaFile)).to.match(/TLS failed \(.*\); set CONSUL_CACERT to the agent's CA/);
      } finally {
        log.restore();
      }
    } finally {
      if (saved === undefined) delete process.env.CONSUL_CACERT;
      else process.env.CONSUL_CACERT = saved;
      await agent.close();
      certs.remove();
    }
  });
});
