import { expect } from 'chai';
import {
  acquireEtcdClient, connectionKey, getDefaultEtcdOptions, normalizeHosts, openEtcdClientCount, setDefaultEtcdOptions, validateEtcdOptions,
} from '../../../src/backends/etcd/connection';
import { etcdctl, startEtcd } from '../../support/etcd';
import { waitFor } from '../../support/wait';
import { withoutDefaultEtcdConnection } from '../../support/no-default-connection';

describe('etcd: connection options and the client pool', () => {
  it('normalises hosts from an array or a comma-separated string', () => {
    expect(normalizeHosts([' 127.0.0.1:1 ', '', '127.0.0.1:2'])).to.deep.equal(['127.0.0.1:1', '127.0.0.1:2']);
    expect(normalizeHosts('127.0.0.1:1, 127.0.0.1:2,')).to.deep.equal(['127.0.0.1:1', '127.0.0.1:2']);
    expect(normalizeHosts(undefined)).to.deep.equal([]);
  });

  const invalid: Array<[string, unknown, RegExp]> = [
    ['undefined', undefined, /comp: etcd options must be an object like \{ hosts: \['127.0.0.1:2379'\] \}, got undefined/],
    ['a string', '127.0.0.1:2379', /etcd options must be an object .* got "127.0.0.1:2379"/],
    ['no hosts', {}, /comp: etcd options need at least one host in 'hosts', got undefined/],
    ['empty hosts', { hosts: [' '] }, /need at least one host in 'hosts', got \[" "\]/],
    ['auth without password', { hosts: 'h:1', auth: { username: 'u' } }, /comp: etcd 'auth' needs string 'username' and 'password'/],
    ['TLS CA not a Buffer', { hosts: 'h:1', credentials: { rootCertificate: 'pem' } }, /credentials.rootCertificate' must be a Buffer \(PEM\)/],
  ];
  for (const [name, options, expected] of invalid) {
    it(`rejects ${name}`, () => {
      expect(() => validateEtcdOptions(options, 'comp')).to.throw(TypeError, expected);
    });
  }

  it('accepts hosts, auth and TLS options as etcd3 IOptions', () => {
    const tls = { rootCertificate: Buffer.from('ca'), privateKey: Buffer.from('key'), certChain: Buffer.from('cert') };
    const v = validateEtcdOptions({ hosts: 'a:1,b:2', auth: { username: 'u', password: 'p' }, credentials: tls }, 'comp');
    expect(v.hosts).to.deep.equal(['a:1', 'b:2']);
    expect(v.auth).to.deep.equal({ username: 'u', password: 'p' });
    expect(v.credentials).to.equal(tls);
  });

  it('keys connections by content: hosts spelling, Buffers by bytes, pool name apart', () => {
    expect(connectionKey({ hosts: 'a:1, b:2' })).to.equal(connectionKey({ hosts: ['a:1', 'b:2'] }));
    const ca = (s: string): { hosts: string; credentials: { rootCertificate: Buffer } } => ({ hosts: 'a:1', credentials: { rootCertificate: Buffer.from(s) } });
    expect(connectionKey(ca('x'))).to.equal(connectionKey(ca('x')));
    expect(connectionKey(ca('x'))).to.not.equal(connectionKey(ca('y')));
    expect(connectionKey({ hosts: 'a:1' }, 'registry')).to.not.equal(connectionKey({ hosts: 'a:1' }, 'resolver'));
    expect(connectionKey({ hosts: 'a:1', auth: { username: 'u', password: 'p' } })).to.not.equal(connectionKey({ hosts: 'a:1' }));
  });

  describe('default connection', () => {
    withoutDefaultEtcdConnection();

    it('is register({ etcd }) first, then ETCD_ENDPOINTS, else undefined', () => {
      expect(getDefaultEtcdOptions()).to.equal(undefined);
      process.env.ETCD_ENDPOINTS = ' 127.0.0.1:5 ,127.0.0.1:6';
      expect(getDefaultEtcdOptions()).to.deep.equal({ hosts: ['127.0.0.1:5', '127.0.0.1:6'] });
      setDefaultEtcdOptions({ hosts: ['127.0.0.1:7'] });
      expect(getDefaultEtcdOptions()).to.deep.equal({ hosts: ['127.0.0.1:7'] });
    });
  });

  it('shares one client per config and pool name, and closes it with the last release', () => {
    const before = openEtcdClientCount();
    const a = acquireEtcdClient({ hosts: ['127.0.0.1:1'] }, 'p');
    const b = acquireEtcdClient({ hosts: '127.0.0.1:1' }, 'p');
    const c = acquireEtcdClient({ hosts: ['127.0.0.1:1'] }, 'q');
    expect(a.client).to.equal(b.client);
    expect(c.client).to.not.equal(a.client);
    expect(openEtcdClientCount()).to.equal(before + 2);
    a.release();
    a.release();
    expect(openEtcdClientCount()).to.equal(before + 2);
    b.release();
    c.release();
    expect(openEtcdClientCount()).to.equal(before);
  });

  describe('against a real etcd', function () {
    this.timeout(30_000);

    it('a pooled client answers again soon after etcd restarts (fast fault handling)', async () => {
      const etcd = await startEtcd();
      const lease = acquireEtcdClient({ hosts: etcd.endpoints }, 'test-connection');
      try {
        await lease.client.put('k').value('v');
        await etcd.kill('SIGKILL');
        await lease.client.get('k').options({ deadline: new Date(Date.now() + 300) }).string().catch(() => undefined);
        await etcd.restart();
        const ms = await waitFor('a get to succeed', async () =>
          (await lease.client.get('k').options({ deadline: new Date(Date.now() + 500) }).string()) === 'v', { timeoutMs: 10_000, intervalMs: 20 });
        console.log(`      pooled client answered ${ms} ms after etcd was healthy again`);
      } finally {
        lease.release();
        await etcd.destroy();
      }
    });

    it('authenticates with username/password', async () => {
      const etcd = await startEtcd();
      try {
        etcdctl(etcd.endpoints, ['user', 'add', 'root', '--new-user-password=s3cret']);
        etcdctl(etcd.endpoints, ['auth', 'enable']);
        const good = acquireEtcdClient(validateEtcdOptions({ hosts: etcd.endpoints, auth: { username: 'root', password: 's3cret' } }, 'test'), 'test-auth');
        const bad = acquireEtcdClient({ hosts: etcd.endpoints, auth: { username: 'root', password: 'wrong' } }, 'test-auth');
        try {
          await good.client.put('secured').value('yes');
          expect(await good.client.get('secured').string()).to.equal('yes');
          let error: Error | undefined;
          await bad.client.get('secured').string().catch((err: Error) => { error = err; });
          expect(error?.message).to.match(/authentication failed/);
        } finally {
          good.release();
          bad.release();
        }
      } finally {
        await etcd.destroy();
      }
    });
  });
});
