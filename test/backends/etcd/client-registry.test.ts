/**
 * The client registry against a real etcd: announce on first subscription,
 * visible with its zone, gone on the last release, gone with the lease on kill -9,
 * written again after its lease is revoked, one announcement per process however
 * many channels, the reserved prefix refused as a service, and the no-rights
 * fallback (one ERROR line, etcd_subset still serves by random subsetting).
 */
import { expect } from 'chai';
import { Etcd3 } from 'etcd3';
import { register } from '../../../src/register';
import { getDefaultEtcdOptions, setDefaultEtcdOptions, type EtcdOptions } from '../../../src/backends/etcd/connection';
import { parseEtcdTarget } from '../../../src/backends/etcd/target';
import { activeClientRegistryCount, clientRegistrySource, DEFAULT_CLIENT_TTL_SECONDS } from '../../../src/backends/etcd/client-registry';
import { clientRegistryPrefix, RESERVED_PREFIX } from '../../../src/backends/etcd/client-registry-keys';
import { type ClientRegistrySubscription } from '../../../src/discovery/client-registry-source';
import { resetLocalityForTests, setLocality } from '../../../src/discovery/locality';
import { registerEndpoint } from '../../../src/register';
import { type Registration } from '../../../src/discovery/registration';
import { DEFAULT_RESOLVER_OPTIONS } from '../../../src/discovery/resolver-options';
import { makeClient, runCalls } from '../../balancer/support/load';
import { startEchoServer, type EchoServer } from '../../support/echo-server';
import { etcdctl, startEtcd, type EtcdServer } from '../../support/etcd';
import { captureGrpcLog } from '../../support/grpc-log';
import { waitFor } from '../../support/wait';
import { killAllFleetClients, spawnFleetClient } from '../../balancer/subset/support/fleet-client';

const OPTIONS = (): typeof DEFAULT_RESOLVER_OPTIONS => DEFAULT_RESOLVER_OPTIONS;

describe('fleet: client registry', function () {
  this.timeout(90_000);
  let etcd: EtcdServer | undefined;
  let client: Etcd3 | undefined;
  const subscriptions: ClientRegistrySubscription[] = [];

  before(() => register());

  afterEach(async () => {
    for (const s of subscriptions.splice(0)) s.release();
    await killAllFleetClients();
    client?.close();
    client = undefined;
    await etcd?.destroy();
    etcd = undefined;
    resetLocalityForTests();
  });

  async function announced(service: string): Promise<Array<{ key: string; value: Record<string, unknown>; lease: string }>> {
    const res = await client!.getAll().prefix(clientRegistryPrefix(service)).exec();
    return res.kvs.map(kv => ({ key: kv.key.toString(), value: JSON.parse(kv.value.toString()) as Record<string, unknown>, lease: kv.lease }));
  }

  async function start(): Promise<EtcdOptions> {
    etcd = await startEtcd();
    client = new Etcd3({ hosts: etcd.endpoints });
    return { hosts: etcd.endpoints };
  }

  it('announces on first subscription (with its zone), shares one announcement, withdraws it on the last release', async () => {
    const connection = await start();
    const service = 'fleet/reg/a';
    setLocality({ zone: 'zone-a' });
    const source = clientRegistrySource(connection, service, OPTIONS);
    expect(await announced(service), 'nothing before a subscription').to.deep.equal([]);
    const first = source.subscribe(() => undefined);
    // A second source for the same connection and service (another channel) shares the entry.
    const second = clientRegistrySource(connection, service, OPTIONS).subscribe(() => undefined);
    subscriptions.push(first, second);
    await waitFor('the view with this process at index 0', () => first.view?.selfIndex === 0 && first.view.clientCount === 1);
    const keys = await announced(service);
    expect(keys).to.have.length(1);
    expect(keys[0].key.startsWith(`${RESERVED_PREFIX}/clients/fleet%2Freg%2Fa/`)).to.equal(true);
    expect(keys[0].value).to.include({ zone: 'zone-a', pid: process.pid });
    expect(keys[0].key.endsWith(`/${keys[0].value.id as string}`)).to.equal(true);
    expect(Number(keys[0].lease)).to.be.greaterThan(0);
    expect(second.view).to.deep.equal(first.view);
    expect(first.view!.zoneCounts.get('zone-a')).to.equal(1);
    expect(activeClientRegistryCount()).to.equal(1);
    first.release();
    first.release();
    expect(first.view).to.equal(undefined);
    expect(await announced(service), 'still held by the second').to.have.length(1);
    second.release();
    await waitFor('the key gone on the last release', async () => (await announced(service)).length === 0);
    expect(activeClientRegistryCount()).to.equal(0);
  });

  it('counts clients and ranks them by id; re-announces after its lease is revoked', async () => {
    const connection = await start();
    const service = 'fleet/reg/b';
    // Another spelling of the same etcd is another connection: a second client in this process.
    const other: EtcdOptions = { hosts: etcd!.endpoints.map(h => h.replace('127.0.0.1', 'localhost')) };
    const a = clientRegistrySource(connection, service, OPTIONS).subscribe(() => undefined);
    const b = clientRegistrySource(other, service, OPTIONS).subscribe(() => undefined);
    subscriptions.push(a, b);
    await waitFor('two clients in both views', () => a.view?.clientCount === 2 && b.view?.clientCount === 2);
    expect([a.view!.selfIndex, b.view!.selfIndex].sort()).to.deep.equal([0, 1]);
    const keys = await announced(service);
    const ids = keys.map(k => k.value.id as string).sort();
    const mine = keys.find(k => k.value.id === ids[a.view!.selfIndex!])!;
    expect(mine, 'index = rank by id').to.not.equal(undefined);

    // Lease revoked behind its back: the key goes, and comes back under a new lease.
    const leaseBefore = keys[0].lease;
    await client!.leaseClient.leaseRevoke({ ID: leaseBefore });
    const healedMs = await waitFor('re-announced under a new lease', async () => {
      const now = await announced(service);
      return now.length === 2 && now.every(k => k.lease !== leaseBefore);
    }, { timeoutMs: 20_000, intervalMs: 50 });
    console.log(`      lease revoked: announced again in ${healedMs} ms`);
    await waitFor('two clients again', () => a.view?.clientCount === 2 && b.view?.clientCount === 2);
  });

  it('a client process: one announcement for 3 channels; gone with its lease after kill -9', async () => {
    const connection = await start();
    const service = 'fleet/reg/c';
    const watcher = clientRegistrySource(connection, service, OPTIONS).subscribe(() => undefined);
    subscriptions.push(watcher);
    const child = await spawnFleetClient({
      name: 'c', service, etcdHosts: etcd!.endpoints, channels: 3, callIntervalMs: 50,
      loadBalancingConfig: [{ etcd_subset: { subsetSize: 2, childPolicy: [{ round_robin: {} }] } }],
    });
    await waitFor('the child announced', () => watcher.view?.clientCount === 2, { timeoutMs: 20_000 });
    const keys = await announced(service);
    expect(keys.filter(k => k.value.pid === child.pid), 'one key for 3 channels and a direct subscription').to.have.length(1);
    const killedAt = Date.now();
    await child.kill('SIGKILL');
    const goneMs = await waitFor('the child gone with its lease', () => watcher.view?.clientCount === 1, { timeoutMs: (DEFAULT_CLIENT_TTL_SECONDS + 10) * 1000 });
    console.log(`      kill -9: the child's announcement gone after ${Date.now() - killedAt} ms (waited ${goneMs} ms; TTL ${DEFAULT_CLIENT_TTL_SECONDS} s)`);
    expect((await announced(service)).filter(k => k.value.pid === child.pid)).to.deep.equal([]);
  });

  it('refuses the reserved prefix as a service name', () => {
    for (const path of [RESERVED_PREFIX, `${RESERVED_PREFIX}/clients/x`]) {
      expect(() => parseEtcdTarget({ scheme: 'etcd', path }), path).to.throw(/reserved for grpc-etcd-lb's own keys \(the client registry, the idempotency store\)/);
    }
    expect(() => parseEtcdTarget({ scheme: 'etcd', path: `${RESERVED_PREFIX}x/svc` })).to.not.throw();
    expect(() => makeClient(`etcd:///${RESERVED_PREFIX}/clients/x`, { round_robin: {} })).to.throw(/reserved/);
  });

  describe('without the rights to write the registry prefix', () => {
    const servers: EchoServer[] = [];
    const registrations: Registration[] = [];
    let restoreDefault: EtcdOptions | undefined;
    let restoreLog: (() => void) | undefined;

    /** Turns auth on with `user` (password 'pw') allowed `permission` on `prefix` only; the test's own client becomes root. */
    function enableAuth(user: string, permission: 'read' | 'readwrite', prefix: string): void {
      const ctl = (args: string[]): string => etcdctl(etcd!.endpoints, args);
      ctl(['user', 'add', 'root', '--new-user-password=r00t']);
      ctl(['role', 'add', `${user}-role`]);
      ctl(['role', 'grant-permission', `${user}-role`, '--prefix=true', permission, prefix]);
      ctl(['user', 'add', user, '--new-user-password=pw']);
      ctl(['user', 'grant-role', user, `${user}-role`]);
      ctl(['auth', 'enable']);
      client?.close();
      client = new Etcd3({ hosts: etcd!.endpoints, auth: { username: 'root', password: 'r00t' } });
    }

    afterEach(async () => {
      restoreLog?.();
      setDefaultEtcdOptions(restoreDefault);
      await Promise.all(registrations.splice(0).map(r => r.close()));
      await Promise.all(servers.splice(0).map(s => s.stop(100)));
    });

    it('logs one ERROR line, answers no view, and etcd_subset serves by random subsetting', async () => {
      await start();
      const service = 'fleet/auth/echo';
      enableAuth('svc', 'readwrite', `${service}/`);
      const limited: EtcdOptions = { hosts: etcd!.endpoints, auth: { username: 'svc', password: 'pw' } };
      for (let i = 0; i < 3; i++) {
        const server = await startEchoServer({ name: `auth${i}` });
        servers.push(server);
        registrations.push(await registerEndpoint({ service, address: server.address, etcd: limited }));
      }
      restoreDefault = getDefaultEtcdOptions();
      setDefaultEtcdOptions(limited);
      const log = captureGrpcLog();
      restoreLog = log.restore;
      const channels = [1, 2].map(() => makeClient(`etcd:///${service}`, { etcd_subset: { subsetSize: 2, childPolicy: [{ round_robin: {} }] } }));
      try {
        const results = await Promise.all(channels.map(c => runCalls(c, 60, 3)));
        for (const result of results) {
          expect(result.ok).to.equal(60);
          expect(result.byServer.size, 'a random subset of 2').to.equal(2);
        }
        const isDenial = (line: string): boolean => line.includes('client registry') && line.includes('lack readwrite');
        await waitFor('the ERROR line', () => log.lines.some(isDenial));
        const direct = clientRegistrySource(limited, service, OPTIONS).subscribe(() => undefined);
        subscriptions.push(direct);
        // More calls and another subscription: still the one line.
        await Promise.all(channels.map(c => runCalls(c, 30, 3)));
        expect(direct.view).to.equal(undefined);
        const denials = log.lines.filter(isDenial);
        console.log(`      ${denials[0]}`);
        expect(denials).to.have.length(1);
        expect(await announced(service)).to.deep.equal([]);
      } finally {
        for (const c of channels) c.close();
      }
    });

    it('read but no write rights: the put is refused, one ERROR line, no view', async () => {
      await start();
      const service = 'fleet/auth/read-only';
      enableAuth('ro', 'read', clientRegistryPrefix(service));
      const log = captureGrpcLog();
      restoreLog = log.restore;
      const subscription = clientRegistrySource({ hosts: etcd!.endpoints, auth: { username: 'ro', password: 'pw' } }, service, OPTIONS).subscribe(() => undefined);
      subscriptions.push(subscription);
      const isDenial = (line: string): boolean => line.includes('client registry') && line.includes('lack readwrite');
      await waitFor('the ERROR line', () => log.lines.some(isDenial));
      console.log(`      ${log.lines.find(isDenial)}`);
      expect(log.lines.filter(isDenial)).to.have.length(1);
      expect(log.lines.find(isDenial)).to.match(/refused: .*permission denied/);
      expect(subscription.view).to.equal(undefined);
      expect(await announced(service)).to.deep.equal([]);
    });
  });
});
