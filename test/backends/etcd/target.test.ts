import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { installBackends } from '../../../src/discovery/backend-registry';
import { etcdBackend } from '../../../src/backends/etcd/etcd-backend';
import { authorityForService, connectionForTarget, parseEtcdTarget } from '../../../src/backends/etcd/target';

describe('etcd target parsing', function () {
  it('parses etcd:///svc (default connection) and etcd://h1,h2/svc (named hosts)', function () {
    expect(parseEtcdTarget({ scheme: 'etcd', authority: '', path: 'svc' })).to.deep.equal({ service: 'svc', hosts: undefined, authority: 'svc' });
    expect(parseEtcdTarget({ scheme: 'etcd', path: 'svc' }).hosts).to.equal(undefined);
    expect(parseEtcdTarget({ scheme: 'etcd', authority: '10.0.0.1:2379,etcd-2.local:2379,[::1]:2379', path: 'svc' }).hosts)
      .to.deep.equal(['10.0.0.1:2379', 'etcd-2.local:2379', '[::1]:2379']);
  });

  it('accepts service names with / and derives a valid :authority from them', function () {
    const t = parseEtcdTarget({ scheme: 'etcd', authority: '', path: 'foo/bar/svc' });
    expect(t.service).to.equal('foo/bar/svc');
    expect(t.authority).to.equal('foo.bar.svc');
    expect(authorityForService('a:b/c@d/e%f')).to.equal('a%3Ab.c%40d.e%25f');
    expect(authorityForService('my-svc_1.v2')).to.equal('my-svc_1.v2');
  });

  it('rejects bad targets with an error naming the target', function () {
    expect(() => parseEtcdTarget({ scheme: 'etcd', authority: '', path: 'svc/' })).to.throw(/etcd resolver: bad target 'etcd:\/\/\/svc\/'.*must not start or end with '\/'/);
    expect(() => parseEtcdTarget({ scheme: 'etcd', authority: '', path: 'a//b' })).to.throw(/must not contain '\/\/'/);
    expect(() => parseEtcdTarget({ scheme: 'etcd', authority: '', path: 'a b' })).to.throw(/whitespace/);
    expect(() => parseEtcdTarget({ scheme: 'etcd', authority: 'h1', path: 'svc' })).to.throw(/etcd host 'h1' must be host:port/);
    expect(() => parseEtcdTarget({ scheme: 'etcd', authority: 'h1:2379,', path: 'svc' })).to.throw(/etcd host '' must be host:port/);
    expect(() => parseEtcdTarget({ scheme: 'etcd', authority: 'h1:99999', path: 'svc' })).to.throw(/h1:99999/);
    expect(() => parseEtcdTarget({ scheme: 'dns', authority: '', path: 'svc' })).to.throw(/scheme must be 'etcd'/);
  });

  it('says the service name is missing for etcd:/// and etcd://host:port, as grpc-js parses them', function () {
    installBackends([etcdBackend]);
    for (const target of ['etcd:///', 'etcd://', 'etcd://127.0.0.1:2379', 'etcd://127.0.0.1:2379/']) {
      expect(() => new grpc.Client(target, grpc.credentials.createInsecure()), target)
        .to.throw(`etcd resolver: bad target '${target}': the service name is missing: use etcd:///<service> (default connection) or etcd://host:2379/<service>`);
    }
  });

  it('named hosts keep the auth/TLS options of the default connection', function () {
    const defaults = { hosts: ['10.9.9.9:2379'], auth: { username: 'u', password: 'p' }, dialTimeout: 1234 };
    const named = parseEtcdTarget({ scheme: 'etcd', authority: '127.0.0.1:1,127.0.0.1:2', path: 'svc' });
    expect(connectionForTarget(named, defaults)).to.deep.equal({ hosts: ['127.0.0.1:1', '127.0.0.1:2'], auth: { username: 'u', password: 'p' }, dialTimeout: 1234 });
    expect(connectionForTarget(named, undefined)).to.deep.equal({ hosts: ['127.0.0.1:1', '127.0.0.1:2'] });
    // TLS by https:// hosts (system roots, no credentials) carries over too.
    expect(connectionForTarget(named, { hosts: 'https://etcd.example:2379' })).to.deep.equal({ hosts: ['https://127.0.0.1:1', 'https://127.0.0.1:2'] });
    const plain = parseEtcdTarget({ scheme: 'etcd', authority: '', path: 'svc' });
    expect(connectionForTarget(plain, defaults)).to.equal(defaults);
    expect(connectionForTarget(plain, undefined)).to.be.a('string').that.includes("no etcd connection for service 'svc'").and.includes('ETCD_ENDPOINTS');
  });
});
