import { expect } from 'chai';
import { openEtcdClientCount } from '../../../src/backends/etcd/connection';
import { decodeEndpoint, encodeEndpointValue } from '../../../src/backends/etcd/endpoint-codec';
import { registerEndpoint } from '../../../src/register';
import { type Registration } from '../../../src/discovery/registration';
import { type LostEvent, type RegisteredEvent, type RegistrationError } from '../../../src/discovery/registration-events';
import { freePort } from '../../support/ports';
import { etcdctl, startEtcd } from '../../support/etcd';
import { waitFor } from '../../support/wait';
import { leaseHex, useObservedEtcd } from './registry-fixtures';

describe('registry: registerEndpoint on a real etcd', function () {
  this.timeout(30_000);

  const suite = useObservedEtcd();
  const open: Registration[] = [];

  afterEach(async () => {
    await Promise.all(open.splice(0).map(r => r.close()));
    if (!suite.etcd.isRunning()) await suite.etcd.restart();
  });

  async function register(address: string, extra: Partial<Parameters<typeof registerEndpoint>[0]> = {}): Promise<Registration> {
    const r = await registerEndpoint({ service: 'test/echo', address, ttlSeconds: 2, etcd: { hosts: suite.etcd.endpoints }, ...extra });
    open.push(r);
    return r;
  }

  function record(r: Registration): { lost: LostEvent[]; registered: RegisteredEvent[]; errors: RegistrationError[] } {
    const events = { lost: [] as LostEvent[], registered: [] as RegisteredEvent[], errors: [] as RegistrationError[] };
    r.onLost(e => events.lost.push(e));
    r.onRegistered(e => events.registered.push(e));
    r.onError(e => events.errors.push(e));
    return events;
  }

  it('writes the Go naming/endpoints value under a kept-alive lease', async () => {
    const r = await register('127.0.0.1:7001', { weight: 3, metadata: { zone: 'a' }, ttlSeconds: 1 });
    expect(r.state).to.equal('registered');
    expect(r.key).to.equal('test/echo/127.0.0.1:7001');
    const kv = await suite.observer.get(r.key);
    expect(kv?.value).to.equal('{"Op":0,"Addr":"127.0.0.1:7001","Metadata":{"priority":0,"weight":3,"zone":"a"}}');
    expect(kv?.lease).to.equal(r.leaseId);
    const decoded = decodeEndpoint(r.key, kv!.value);
    expect(decoded.ok && decoded.endpoint.weight).to.equal(3);
    // Kept alive: after 3 TTLs the lease still exists and the key is there.
    const start = Date.now();
    await waitFor('3 TTLs to pass', () => Date.now() - start >= 3000, { timeoutMs: 10_000, intervalMs: 250 });
    expect(await suite.observer.leaseTtl(r.leaseId!)).to.be.at.least(0); // -1 = expired; whole seconds, so 0 is alive with TTL 1
    expect((await suite.observer.get(r.key))?.lease).to.equal(r.leaseId);
  });

  it('writes the key again when someone deletes it while the lease lives (same lease)', async () => {
    const r = await register('127.0.0.1:7002');
    const events = record(r);
    const leaseBefore = r.leaseId;
    const t0 = Date.now();
    etcdctl(suite.etcd.endpoints, ['del', r.key]);
    const ms = await waitFor('key rewritten', async () => (await suite.observer.get(r.key)) !== undefined, { timeoutMs: 5000 });
    console.log(`      key rewritten ${ms} ms after etcdctl del (${Date.now() - t0} ms incl. etcdctl)`);
    expect(events.lost.map(e => [e.reason, e.leaseId])).to.deep.equal([['key-deleted', leaseBefore]]);
    await waitFor('onRegistered', () => events.registered.length === 1, { timeoutMs: 2000 });
    expect(events.registered[0].leaseKept).to.equal(true);
    expect(r.leaseId).to.equal(leaseBefore);
    expect((await suite.observer.get(r.key))?.lease).to.equal(leaseBefore);
    expect(r.state).to.equal('registered');
  });

  it('grants a new lease and writes the key again after etcdctl lease revoke', async () => {
    const r = await register('127.0.0.1:7003');
    const events = record(r);
    const oldLease = r.leaseId!;
    etcdctl(suite.etcd.endpoints, ['lease', 'revoke', leaseHex(oldLease)]);
    const ms = await waitFor('key rewritten under a new lease', async () => {
      const kv = await suite.observer.get(r.key);
      return kv !== undefined && kv.lease !== oldLease;
    }, { timeoutMs: 5000 });
    console.log(`      key rewritten under a new lease ${ms} ms after etcdctl lease revoke`);
    await waitFor('onRegistered', () => events.registered.length === 1, { timeoutMs: 2000 });
    expect(events.lost.map(e => [e.reason, e.leaseId])).to.deep.equal([['lease-lost', oldLease]]);
    expect(events.registered[0].leaseKept).to.equal(false);
    expect(r.leaseId).to.not.equal(oldLease);
    expect((await suite.observer.get(r.key))?.lease).to.equal(r.leaseId);
    expect(await suite.observer.leaseTtl(oldLease)).to.equal(-1);
  });

  it('reports leaseKept: false when the lease it finally writes under was granted during the outage', async () => {
    // The lease is lost; the loop grants a new one, but the put under it fails (the value is too large
    // for etcd), so the next attempt starts with the new lease in hand and finds it alive. That lease
    // is not the one that was lost: onRegistered must not call it kept.
    const r = await register('127.0.0.1:7009', { ttlSeconds: 10 });
    const events = record(r);
    const oldLease = r.leaseId!;
    const tooLarge = r.update({ metadata: { blob: 'x'.repeat(1_600_000) } }).catch((err: Error) => err); // etcd's limit: 1.5 MiB
    await waitFor('the put of the too-large value to fail', () => events.errors.some(e => e.operation === 'put'), { timeoutMs: 5000 });
    etcdctl(suite.etcd.endpoints, ['lease', 'revoke', leaseHex(oldLease)]);
    await waitFor('a new lease granted and a put under it refused', () => r.leaseId !== undefined && r.leaseId !== oldLease
      && events.errors.some(e => e.operation === 'register'), { timeoutMs: 5000 });
    const grantedDuringOutage = r.leaseId;
    await r.update({ metadata: { blob: 'small' } });
    await waitFor('onRegistered', () => events.registered.length === 1, { timeoutMs: 5000 });
    expect(await tooLarge).to.equal(undefined); // superseded by the second update, which was written
    expect(events.lost.map(e => [e.reason, e.leaseId])).to.deep.equal([['lease-lost', oldLease]]);
    expect(events.registered.map(e => [e.leaseId, e.leaseKept])).to.deep.equal([[grantedDuringOutage, false]]);
    expect((await suite.observer.get(r.key))?.lease).to.equal(grantedDuringOutage);
  });

  it('update() changes the value in place under the same lease', async () => {
    const r = await register('127.0.0.1:7004', { metadata: { version: '1' } });
    const lease = r.leaseId;
    await r.update({ weight: 0 });
    expect((await suite.observer.get(r.key))?.value).to.equal(encodeEndpointValue({ address: r.address, weight: 0, priority: 0, metadata: { version: '1' } }));
    await r.update({ weight: 5, priority: 1, metadata: { version: '2' } });
    const kv = await suite.observer.get(r.key);
    expect(kv?.value).to.equal('{"Op":0,"Addr":"127.0.0.1:7004","Metadata":{"priority":1,"version":"2","weight":5}}');
    expect(kv?.lease).to.equal(lease);
    expect(r.leaseId).to.equal(lease);
    let error: Error | undefined;
    await r.update({ weight: -1 }).catch((err: Error) => { error = err; });
    expect(error?.message).to.match(/Registration\.update: weight must be a finite number/);
  });

  it('close() revokes the lease and removes the key; it is idempotent and releases the client', async () => {
    const clientsBefore = openEtcdClientCount();
    const r = await register('127.0.0.1:7005');
    expect(openEtcdClientCount()).to.equal(clientsBefore + 1);
    const lease = r.leaseId!;
    const t0 = Date.now();
    await Promise.all([r.close(), r.close()]);
    console.log(`      close() took ${Date.now() - t0} ms with etcd up`);
    expect(await suite.observer.get(r.key)).to.equal(undefined);
    expect(await suite.observer.leaseTtl(lease)).to.equal(-1);
    expect(r.state).to.equal('closed');
    expect(openEtcdClientCount()).to.equal(clientsBefore);
    await r.close();
    let error: Error | undefined;
    await r.update({ weight: 2 }).catch((err: Error) => { error = err; });
    expect(error?.message).to.match(/closed/);
    // The same key can be registered again once closed.
    await register('127.0.0.1:7005');
  });

  it('close() with etcd down resolves within its bound and reports through onError', async () => {
    const r = await register('127.0.0.1:7006', { closeTimeoutMs: 1500 });
    const events = record(r);
    await suite.etcd.kill('SIGKILL');
    const t0 = Date.now();
    await r.close();
    const ms = Date.now() - t0;
    console.log(`      close() with etcd down took ${ms} ms (bound 1500 ms); errors reported: ${events.errors.map(e => e.operation).join(',')}`);
    expect(ms).to.be.lessThan(1500 + 500);
    expect(events.errors.some(e => e.operation === 'close')).to.equal(true);
    expect(r.state).to.equal('closed');
  });

  it('rejects after registerTimeoutMs when etcd never answers, leaving nothing open', async () => {
    const clientsBefore = openEtcdClientCount();
    const deadPort = await freePort();
    const t0 = Date.now();
    let error: Error | undefined;
    await registerEndpoint({
      service: 'test/echo', address: '127.0.0.1:7007', registerTimeoutMs: 800, etcd: { hosts: [`127.0.0.1:${deadPort}`] },
    }).catch((err: Error) => { error = err; });
    console.log(`      registerEndpoint rejected after ${Date.now() - t0} ms (registerTimeoutMs 800)`);
    expect(error?.message).to.match(new RegExp(`registerEndpoint: etcd at 127\\.0\\.0\\.1:${deadPort} did not accept 'test/echo/127\\.0\\.0\\.1:7007' within 800 ms`));
    expect(openEtcdClientCount()).to.equal(clientsBefore);
  });

  it('waits for an etcd that is down at start and resolves once it is back', async () => {
    await suite.etcd.kill('SIGKILL');
    const pending = registerEndpoint({ service: 'test/echo', address: '127.0.0.1:7012', ttlSeconds: 2, registerTimeoutMs: 15_000, etcd: { hosts: suite.etcd.endpoints } });
    let settled = false;
    void pending.then(() => { settled = true; }, () => { settled = true; });
    await new Promise(resolve => setImmediate(resolve));
    expect(settled, 'still waiting for etcd').to.equal(false);
    await suite.etcd.restart();
    const healthyAt = Date.now();
    const r = await pending;
    open.push(r);
    console.log(`      registerEndpoint resolved ${Date.now() - healthyAt} ms after etcd became healthy`);
    expect((await suite.observer.get(r.key))?.lease).to.equal(r.leaseId);
  });

  it('refuses a second registration of the same key in one process', async () => {
    await register('127.0.0.1:7008');
    let error: Error | undefined;
    await registerEndpoint({ service: 'test/echo', address: '127.0.0.1:7008', etcd: { hosts: suite.etcd.endpoints } }).catch((err: Error) => { error = err; });
    expect(error?.message).to.match(/already registered by this process/);
  });

  it('registers through an etcd with username/password auth; a wrong password is a clear rejection', async () => {
    const secured = await startEtcd({ name: 'auth' });
    try {
      etcdctl(secured.endpoints, ['user', 'add', 'root', '--new-user-password=s3cret']);
      etcdctl(secured.endpoints, ['auth', 'enable']);
      const r = await registerEndpoint({
        service: 'test/auth', address: '127.0.0.1:7010', ttlSeconds: 2,
        etcd: { hosts: secured.endpoints, auth: { username: 'root', password: 's3cret' } },
      });
      const value = etcdctl(secured.endpoints, ['--user=root:s3cret', 'get', '--print-value-only', r.key]).trim();
      expect(value).to.equal(encodeEndpointValue({ address: '127.0.0.1:7010' }));
      await r.close();
      let error: Error | undefined;
      await registerEndpoint({
        service: 'test/auth', address: '127.0.0.1:7011', registerTimeoutMs: 500,
        etcd: { hosts: secured.endpoints, auth: { username: 'root', password: 'wrong' } },
      }).catch((err: Error) => { error = err; });
      expect(error?.message).to.match(/did not accept 'test\/auth\/127.0.0.1:7011' within 500 ms \(last error: .*authentication failed/);
    } finally {
      await secured.destroy();
    }
  });

  it('a listener that throws does not stop the registration', async () => {
    const r = await register('127.0.0.1:7009');
    r.onLost(() => { throw new Error('listener bug'); });
    const events = record(r);
    const dispose = r.onRegistered(() => { throw new Error('listener bug'); });
    etcdctl(suite.etcd.endpoints, ['del', r.key]);
    await waitFor('re-registered', () => events.registered.length === 1, { timeoutMs: 5000 });
    dispose();
    expect((await suite.observer.get(r.key))?.lease).to.equal(r.leaseId);
  });
});
