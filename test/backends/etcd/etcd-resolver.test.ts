import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { type Etcd3 } from 'etcd3';
import { installBackends } from '../../../src/discovery/backend-registry';
import { etcdBackend } from '../../../src/backends/etcd/etcd-backend';
import { registerBalancers } from '../../../src/balancer/policies/register-balancers';
import { activeServiceWatchCount } from '../../../src/backends/etcd/service-watch-registry';
import { acquireEtcdClient, openEtcdClientCount } from '../../../src/backends/etcd/connection';
import { endpointKey } from '../../../src/backends/etcd/endpoint-codec';
import { startEtcd, etcdctl, type EtcdServer } from '../../support/etcd';
import { startEchoServer, type EchoServer } from '../../support/echo-server';
import { loadEcho, unary, type EchoClient } from '../../support/echo-proto';
import { waitFor } from '../../support/wait';
import {
  echoClient, etcdTarget, etcdUri, putEndpoint, recordingResolver, registerSpyPolicy, spyUpdates, writerClient,
  SPY_SERVICE_CONFIG, type RecordingResolver,
} from './resolver-fixtures';

describe('etcd resolver (real etcd, real servers)', function () {
  let etcd: EtcdServer;
  let writer: Etcd3;
  const servers: EchoServer[] = [];
  const clients: EchoClient[] = [];
  const resolvers: RecordingResolver[] = [];
  let serviceSeq = 0;
  const nextService = (base = 'svc'): string => `${base}${++serviceSeq}`;

  before(async function () {
    installBackends([etcdBackend]);
    registerSpyPolicy();
    etcd = await startEtcd();
    writer = writerClient(etcd.endpoints);
  });

  afterEach(async function () {
    for (const c of clients.splice(0)) c.close();
    for (const r of resolvers.splice(0)) r.destroy();
    await Promise.all(servers.splice(0).map(s => s.stop(100)));
  });

  after(async function () {
    writer?.close();
    await etcd?.destroy();
  });

  async function servers3(): Promise<EchoServer[]> {
    const started = await Promise.all(['a', 'b', 'c'].map(name => startEchoServer({ name })));
    servers.push(...started);
    return started;
  }

  function client(service: string, options: grpc.ChannelOptions = {}): EchoClient {
    const c = echoClient(etcdTarget(service, etcd.endpoints), options);
    clients.push(c);
    return c;
  }

  function resolve(service: string): RecordingResolver {
    const r = recordingResolver(etcdUri(service, etcd.endpoints));
    resolvers.push(r);
    r.resolver.updateResolution();
    return r;
  }

  /** Sends `n` calls and returns how many each server name answered. */
  async function spread(c: EchoClient, n: number): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const reply = await unary(c, 'x', { deadline: Date.now() + 5000 });
      counts.set(reply.server, (counts.get(reply.server) ?? 0) + 1);
    }
    return counts;
  }

  it('register / deregister: the channel\'s traffic follows', async function () {
    const [a, b, c] = await servers3();
    const service = nextService();
    await putEndpoint(writer, service, a.address);
    await putEndpoint(writer, service, b.address);
    const ch = client(service);
    const first = await spread(ch, 20);
    expect([...first.keys()].sort()).to.deep.equal(['a', 'b']);

    await putEndpoint(writer, service, c.address);
    const added = await waitFor('traffic to reach c', async () => (await spread(ch, 6)).has('c'), { timeoutMs: 5000 });
    await writer.delete().key(endpointKey(service, a.address)).exec();
    const removed = await waitFor('traffic to leave a', async () => !(await spread(ch, 6)).has('a'), { timeoutMs: 5000 });
    const after = await spread(ch, 30);
    expect([...after.keys()].sort()).to.deep.equal(['b', 'c']);
    console.log(`      register seen by traffic in ${added} ms, deregister in ${removed} ms`);
  });

  it('weight, priority and metadata changes reach the LB policy as ENDPOINT_ATTRIBUTES_KEY', async function () {
    const [a, b] = await servers3();
    const service = nextService();
    await putEndpoint(writer, service, a.address, { weight: 1, metadata: { zone: 'z1' } });
    await putEndpoint(writer, service, b.address, { weight: 2, priority: 1 });
    const ch = client(service, { 'grpc.service_config': SPY_SERVICE_CONFIG });
    await unary(ch);
    const mine = (): typeof spyUpdates => spyUpdates.filter(u => u.addresses.includes(a.address));
    await waitFor('first spy update', () => mine().length > 0, { timeoutMs: 5000 });
    let latest = mine()[mine().length - 1];
    expect(latest.addresses).to.deep.equal([a.address, b.address].sort((x, y) => (endpointKey(service, x) < endpointKey(service, y) ? -1 : 1)));
    expect(latest.attributes?.get(a.address)).to.deep.equal({ weight: 1, priority: 0, metadata: { zone: 'z1' } });
    expect(latest.attributes?.get(b.address)).to.deep.include({ weight: 2, priority: 1 });

    const start = Date.now();
    await putEndpoint(writer, service, a.address, { weight: 7, metadata: { zone: 'z2' } });
    const ms = await waitFor('weight 7 at the LB policy', () => {
      latest = mine()[mine().length - 1];
      return latest.attributes?.get(a.address)?.weight === 7;
    }, { timeoutMs: 5000 });
    expect(latest.attributes?.get(a.address)?.metadata).to.deep.equal({ zone: 'z2' });
    expect(latest.attributes?.get(b.address)?.weight).to.equal(2);
    console.log(`      weight change reached the LB policy in ${ms} ms (${Date.now() - start} ms after the put)`);
    // Calls still flow after the update.
    expect((await unary(ch)).server).to.be.oneOf(['a', 'b']);
  });

  it('change weight → traffic follows (etcd_weighted_round_robin)', async function () {
    registerBalancers();
    const [a, b] = await servers3();
    const service = nextService();
    await putEndpoint(writer, service, a.address, { weight: 1 });
    await putEndpoint(writer, service, b.address, { weight: 3 });
    const ch = client(service, { 'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ etcd_weighted_round_robin: {} }] }) });
    await waitFor('both replicas ready', async () => (await spread(ch, 8)).size === 2, { timeoutMs: 5000 });
    const before = await spread(ch, 40);
    expect(before.get('a')).to.be.within(8, 12);
    await putEndpoint(writer, service, a.address, { weight: 3 });
    await putEndpoint(writer, service, b.address, { weight: 1 });
    const ms = await waitFor('traffic to follow the new weights', async () => ((await spread(ch, 8)).get('a') ?? 0) >= 5, { timeoutMs: 5000 });
    const after = await spread(ch, 40);
    expect(after.get('a')).to.be.within(28, 32);
    console.log(`      weights 1:3 → a got ${before.get('a')}/40; after 3:1 (seen in ${ms} ms) → a got ${after.get('a')}/40`);
  });

  it('resolves keys written by etcdctl in Go format, with and without Metadata', async function () {
    const [a, b, c] = await servers3();
    const service = `foo/bar/${nextService()}`;
    etcdctl(etcd.endpoints, ['put', `${service}/${a.address}`, JSON.stringify({ Op: 0, Addr: a.address, Metadata: { weight: '3', version: 'v1' } })]);
    etcdctl(etcd.endpoints, ['put', `${service}/${b.address}`, JSON.stringify({ Op: 0, Addr: b.address })]);
    etcdctl(etcd.endpoints, ['put', `${service}/${c.address}`, JSON.stringify({ Op: 0, Addr: c.address, Metadata: null })]);
    const r = resolve(service);
    await waitFor('a resolution', () => r.updates.length > 0, { timeoutMs: 5000 });
    const u = r.last()!;
    expect(u.ok).to.equal(true);
    expect(u.addresses).to.have.members([a.address, b.address, c.address]);
    expect(u.attributes?.get(a.address)).to.deep.equal({ weight: 3, priority: 0, metadata: { version: 'v1' } });
    expect(u.attributes?.get(b.address)).to.deep.equal({ weight: 1, priority: 0, metadata: {} });
    // And a channel with a '/'-service name works end to end (its authority is foo.bar.svcN).
    const replies = await spread(client(service), 9);
    expect([...replies.keys()].sort()).to.deep.equal(['a', 'b', 'c']);
  });

  it('empty service fails fast with a clear UNAVAILABLE, and recovers when an endpoint appears', async function () {
    const [a] = await servers3();
    const service = nextService();
    await putEndpoint(writer, service, a.address);
    const ch = client(service);
    expect((await unary(ch)).server).to.equal('a');
    await writer.delete().key(endpointKey(service, a.address)).exec();
    let lastError: grpc.ServiceError | undefined;
    const ms = await waitFor('calls to fail with no endpoints', async () => {
      try {
        await unary(ch, 'x', { deadline: Date.now() + 5000 });
        return false;
      } catch (err) {
        lastError = err as grpc.ServiceError;
        return true;
      }
    }, { timeoutMs: 5000 });
    expect(lastError?.code).to.equal(grpc.status.UNAVAILABLE);
    expect(lastError?.details).to.include(`no endpoints registered for service '${service}'`);
    // UNAVAILABLE (not DEADLINE_EXCEEDED) within a 5 s deadline: the call failed fast instead of queueing.
    const failStart = Date.now();
    const again = await unary(ch, 'x', { deadline: Date.now() + 5000 }).then(() => undefined, (e: grpc.ServiceError) => e);
    const failMs = Date.now() - failStart;
    expect(again?.code).to.equal(grpc.status.UNAVAILABLE);
    console.log(`      deregistration seen in ${ms} ms; a call then failed in ${failMs} ms: ${lastError?.details}`);

    await putEndpoint(writer, service, a.address);
    const back = await waitFor('calls to succeed again', async () => {
      try {
        return (await unary(ch, 'x', { deadline: Date.now() + 2000 })).server === 'a';
      } catch {
        return false;
      }
    }, { timeoutMs: 5000 });
    console.log(`      recovered ${back} ms after the endpoint reappeared`);
  });

  it('skips bad values, keeps good endpoints, first key wins a duplicate address', async function () {
    const [a, b] = await servers3();
    const service = nextService();
    await putEndpoint(writer, service, a.address);
    await writer.put(`${service}/garbage`).value('not json');
    await writer.put(`${service}/hostname`).value(JSON.stringify({ Addr: 'example.com:80' }));
    await writer.put(`${service}/neg`).value(JSON.stringify({ Addr: b.address, Metadata: { weight: -1 } }));
    await writer.put(`${service}/zz-dup`).value(JSON.stringify({ Addr: a.address, Metadata: { weight: 9 } }));
    await writer.put(`${service}_other/${b.address}`).value(JSON.stringify({ Addr: b.address }));
    const r = resolve(service);
    await waitFor('a resolution', () => r.updates.length > 0, { timeoutMs: 5000 });
    expect(r.last()!.addresses).to.deep.equal([a.address]);
    expect(r.last()!.attributes?.get(a.address)?.weight).to.equal(1, 'the first key (in key order) wins');
    await putEndpoint(writer, service, b.address);
    await waitFor('b to be added', () => r.last()!.addresses.includes(b.address), { timeoutMs: 5000 });
    expect(r.last()!.addresses).to.have.members([a.address, b.address]);
  });

  it('never calls the listener synchronously; destroy() then updateResolution() restarts (idle)', async function () {
    const [a, b] = await servers3();
    const service = nextService();
    await putEndpoint(writer, service, a.address);
    const baseWatches = activeServiceWatchCount();
    const r = resolve(service);
    await waitFor('first resolution', () => r.updates.length === 1, { timeoutMs: 5000 });
    r.resolver.updateResolution();
    r.resolver.updateResolution();
    expect(activeServiceWatchCount()).to.equal(baseWatches + 1);
    r.resolver.destroy();
    expect(activeServiceWatchCount()).to.equal(baseWatches);
    await putEndpoint(writer, service, b.address);
    r.resolver.updateResolution();
    await waitFor('resolution after restart', () => r.updates.length === 2, { timeoutMs: 5000 });
    expect(r.last()!.addresses).to.have.members([a.address, b.address]);
    expect(r.syncCalls).to.equal(0);
    // Destroyed right after updateResolution(): nothing must be delivered afterwards.
    r.resolver.destroy();
    r.resolver.updateResolution();
    r.resolver.destroy();
    await new Promise(resolve => setImmediate(resolve));
    await putEndpoint(writer, service, a.address, { weight: 5 });
    const count = r.updates.length;
    const other = resolve(service);
    await waitFor('another resolver to see weight 5', () => other.last()?.attributes?.get(a.address)?.weight === 5, { timeoutMs: 5000 });
    expect(r.updates.length).to.equal(count, 'a destroyed resolver must stay silent');
  });

  it('a channel restarts cleanly after grpc-js idle mode', async function () {
    const [a, b] = await servers3();
    const service = nextService();
    await putEndpoint(writer, service, a.address);
    const baseWatches = activeServiceWatchCount();
    const ch = client(service, { 'grpc.client_idle_timeout_ms': 1000 });
    expect((await unary(ch)).server).to.equal('a');
    expect(activeServiceWatchCount()).to.equal(baseWatches + 1);
    const channel = ch.getChannel();
    const idleMs = await waitFor('channel to go idle', () => channel.getConnectivityState(false) === grpc.connectivityState.IDLE, { timeoutMs: 10_000, intervalMs: 50 });
    expect(activeServiceWatchCount()).to.equal(baseWatches, 'an idle channel releases its watch');
    await writer.delete().key(endpointKey(service, a.address)).exec();
    await putEndpoint(writer, service, b.address);
    expect((await unary(ch, 'x', { deadline: Date.now() + 5000 })).server).to.equal('b');
    console.log(`      channel went idle after ${idleMs} ms and resolved again on the next call`);
  });

  it('channels to the same service share one watch; 1,000 channels closed leave no watch or client', async function () {
    await servers3();
    // A registration-side client on the same connection: the resolver must not share it (its failures
    // would open the circuit breaker that lease keep-alives go through).
    const registrationClient = acquireEtcdClient({ hosts: etcd.endpoints });
    const channels: grpc.Channel[] = [];
    try {
      await runChannels(channels);
    } finally {
      for (const ch of channels) ch.close();
      registrationClient.release();
    }
  });

  async function runChannels(channels: grpc.Channel[]): Promise<void> {
    const service = nextService();
    await putEndpoint(writer, service, servers[0].address);
    const baseClients = openEtcdClientCount();
    const baseWatches = activeServiceWatchCount();
    for (let i = 0; i < 1000; i++) {
      const ch = new grpc.Channel(etcdTarget(service, etcd.endpoints), grpc.credentials.createInsecure(), {});
      ch.getConnectivityState(true);
      channels.push(ch);
    }
    expect(activeServiceWatchCount()).to.equal(baseWatches + 1);
    expect(openEtcdClientCount()).to.equal(baseClients + 1, 'one resolver client, apart from the registration client');
    await waitFor('all channels to leave IDLE', () => channels.every(ch => ch.getConnectivityState(false) !== grpc.connectivityState.IDLE), { timeoutMs: 10_000 });
    for (const ch of channels) ch.close();
    expect(activeServiceWatchCount()).to.equal(baseWatches);
    expect(openEtcdClientCount()).to.equal(baseClients);
    console.log(`      1,000 channels: 1 shared watch while open, ${activeServiceWatchCount() - baseWatches} watches and ${openEtcdClientCount() - baseClients} resolver clients left after close`);
  }

  it('grpc.default_authority overrides the derived authority', async function () {
    const seen: string[] = [];
    const server = new grpc.Server();
    server.addService(loadEcho().service, {
      Unary: (call: grpc.ServerUnaryCall<{ message: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        seen.push(call.getHost());
        cb(null, { message: call.request.message, server: 'h', index: 0 });
      },
      ServerStream: (call: grpc.ServerWritableStream<unknown, unknown>) => call.end(),
    });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    try {
      const service = `team/${nextService()}`;
      await putEndpoint(writer, service, `127.0.0.1:${port}`);
      await unary(client(service));
      await unary(client(service, { 'grpc.default_authority': 'custom.example' }));
      expect(seen).to.deep.equal([service.replace('/', '.'), 'custom.example']);
    } finally {
      server.forceShutdown();
    }
  });
});
