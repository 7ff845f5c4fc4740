/** The Consul agent double itself, against what Consul's HTTP API docs say (raw HTTP, not our backend). */
import { expect } from 'chai';
import * as http from 'node:http';
import { startConsulAgentDouble, type ConsulAgentDouble } from './consul-agent-double';
import { waitFor } from './wait';

interface Answer { status: number; index: number; body: unknown; text: string; headers: Headers }

async function call(agent: ConsulAgentDouble, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(`${agent.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, index: Number(res.headers.get('x-consul-index')), body: parsed, text, headers: res.headers };
}

const ids = (a: Answer): string[] => (a.body as Array<{ Service: { ID: string } }>).map(e => e.Service.ID);

function service(id: string, port: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { ID: id, Name: 'web', Address: '127.0.0.1', Port: port, Check: { TTL: '300ms', DeregisterCriticalServiceAfter: '400ms' }, ...extra };
}

describe('test support: Consul agent double', function () {
  this.timeout(20_000);
  let agent: ConsulAgentDouble;

  beforeEach(async function () {
    agent = await startConsulAgentDouble({ reapIntervalMs: 50, minDeregisterCriticalMs: 0 });
  });

  afterEach(async function () {
    await agent.close();
  });

  it('TTL checks: critical until passed, passing filters, expiry, 404 for an unknown check, reaped after DeregisterCriticalServiceAfter', async function () {
    expect((await call(agent, 'PUT', '/v1/agent/service/register', service('w1', 81))).status).to.equal(200);
    let all = await call(agent, 'GET', '/v1/health/service/web');
    expect(ids(all)).to.deep.equal(['w1']);
    const checks = (all.body as Array<{ Checks: Array<{ CheckID: string; Status: string }> }>)[0].Checks;
    expect(checks.map(c => [c.CheckID, c.Status])).to.deep.equal([['serfHealth', 'passing'], ['service:w1', 'critical']]);
    expect(ids(await call(agent, 'GET', '/v1/health/service/web?passing=true'))).to.deep.equal([]);
    expect((await call(agent, 'PUT', '/v1/agent/check/pass/service:w1?note=ok')).status).to.equal(200);
    expect(ids(await call(agent, 'GET', '/v1/health/service/web?passing=true'))).to.deep.equal(['w1']);
    const unknown = await call(agent, 'PUT', '/v1/agent/check/pass/service:nope');
    expect(unknown.status).to.equal(404);
    expect(unknown.text).to.match(/Unknown check ID/);
    await waitFor('the TTL to expire', () => agent.checkStatus('service:w1') === 'critical', { timeoutMs: 2_000 });
    await waitFor('the reaper to deregister it', () => agent.serviceIds().length === 0, { timeoutMs: 2_000 });
    all = await call(agent, 'GET', '/v1/health/service/web');
    expect(ids(all)).to.deep.equal([]);
    expect((await call(agent, 'PUT', '/v1/agent/check/pass/service:w1')).status).to.equal(404);
  });

  it('blocking queries: return on a change with a higher X-Consul-Index, else after wait (+ ≤ wait/16); tags AND; unknown dc is a 500', async function () {
    await call(agent, 'PUT', '/v1/agent/service/register', service('w1', 81, { Tags: ['a', 'b'], Check: { TTL: '10s', Status: 'passing' } }));
    await call(agent, 'PUT', '/v1/agent/service/register', service('w2', 82, { Tags: ['a'], Check: { TTL: '10s', Status: 'passing' } }));
    const first = await call(agent, 'GET', '/v1/health/service/web?passing=true');
    expect(ids(first)).to.deep.equal(['w1', 'w2']);
    expect(ids(await call(agent, 'GET', '/v1/health/service/web?passing=true&tag=a&tag=b'))).to.deep.equal(['w1']);
    const started = Date.now();
    const timedOut = await call(agent, 'GET', `/v1/health/service/web?passing=true&index=${first.index}&wait=200ms`);
    const tookMs = Date.now() - started;
    expect(tookMs).to.be.within(190, 200 + 200 / 16 + 150);
    expect(timedOut.index).to.equal(first.index);
    const blocked = call(agent, 'GET', `/v1/health/service/web?passing=true&index=${first.index}&wait=10s`);
    await waitFor('the query to block', () => agent.requests.filter(r => r.path.includes('wait=10s')).length === 1);
    await call(agent, 'PUT', '/v1/agent/check/fail/service:w2');
    const changed = await blocked;
    expect(changed.index).to.be.greaterThan(first.index);
    expect(ids(changed)).to.deep.equal(['w1']);
    const noDc = await call(agent, 'GET', '/v1/health/service/web?dc=dc9');
    expect([noDc.status, noDc.text]).to.deep.equal([500, 'No path to datacenter']);
    expect((await call(agent, 'GET', '/v1/health/service/web?dc=dc1')).status).to.equal(200);
    const badWeight = await call(agent, 'PUT', '/v1/agent/service/register', service('w3', 83, { Weights: { Passing: 0, Warning: 1 } }));
    expect([badWeight.status, badWeight.text]).to.deep.equal([400, 'Passing must be greater than 0']);
  });

  it('ACLs: unknown token 403 "ACL not found", no service:write 403 "Permission denied", reads filtered with a header, Bearer works', async function () {
    await agent.close();
    agent = await startConsulAgentDouble({ acl: { tokens: { writer: { service: 'write', node: 'read' }, reader: { service: 'read' } } } });
    const anonymous = await call(agent, 'PUT', '/v1/agent/service/register', service('w1', 81));
    expect([anonymous.status, anonymous.text]).to.deep.equal([403, `Permission denied: token lacks permission 'service:write' on "web"`]);
    expect((await call(agent, 'GET', '/v1/health/service/web', undefined, { 'x-consul-token': 'typo' })).text).to.equal('ACL not found');
    expect((await call(agent, 'PUT', '/v1/agent/service/register', service('w1', 81), { authorization: 'Bearer writer' })).status).to.equal(200);
    const hidden = await call(agent, 'GET', '/v1/health/service/web', undefined, { 'x-consul-token': 'reader' });
    expect([hidden.status, ids(hidden), hidden.headers.get('x-consul-results-filtered-by-acls')]).to.deep.equal([200, [], 'true']);
    expect(ids(await call(agent, 'GET', '/v1/health/service/web', undefined, { 'x-consul-token': 'writer' }))).to.deep.equal(['w1']);
  });

  it('outage keeps state on the same port; restart forgets services and restarts the index low', async function () {
    await call(agent, 'PUT', '/v1/agent/service/register', service('w1', 81, { Check: { TTL: '10s', Status: 'passing' } }));
    const before = await call(agent, 'GET', '/v1/health/service/web?passing=true');
    const url = agent.url;
    await agent.stop();
    const refused = await new Promise<string>(resolve => http.get(`${url}/v1/health/service/web`, { agent: false }, () => resolve('answered'))
      .on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message)));
    expect(refused).to.equal('ECONNREFUSED');
    await agent.start();
    expect(agent.url).to.equal(url);
    expect(ids(await call(agent, 'GET', '/v1/health/service/web?passing=true'))).to.deep.equal(['w1']);
    await agent.restart();
    const after = await call(agent, 'GET', '/v1/health/service/web?passing=true');
    expect(ids(after)).to.deep.equal([]);
    expect(after.index).to.be.lessThan(before.index);
  });
});
