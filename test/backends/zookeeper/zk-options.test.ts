/** Unit tests: Curator codec, zk targets, ZooKeeper options in register() and registerEndpoint(). */
import { expect } from 'chai';
import { register, type RegistrationOptions } from '../../../src/register';
import { chooseRegistry } from '../../../src/discovery/register-endpoint';
import { BACKENDS } from '../../../src/backends';
import { setDefaultEtcdOptions } from '../../../src/backends/etcd/connection';
import { getDefaultZookeeperOptions, setDefaultZookeeperOptions, validateZookeeperOptions } from '../../../src/backends/zookeeper/connection';
import { captureGrpcLog } from '../../support/grpc-log';
import { decodeCuratorInstance, encodeCuratorInstance, instanceId } from '../../../src/backends/zookeeper/curator-codec';
import { parseZookeeperTarget, zookeeperConnectionForTarget } from '../../../src/backends/zookeeper/target';
import { springInstance } from './zk-fixtures';

describe('ZooKeeper: Curator codec', function () {
  it('reads Spring instances: string or number weight/priority, zone kept in metadata', function () {
    const s = decodeCuratorInstance('i1', springInstance('svc', 'i1', '10.0.0.5', 50051, { weight: '2.5', priority: '1', zone: 'eu-1a' }));
    expect(s.ok && s.endpoint).to.deep.include({ address: '10.0.0.5:50051', weight: 2.5, priority: 1, metadata: { zone: 'eu-1a' } });
    const n = decodeCuratorInstance('i2', JSON.stringify({ address: '::1', port: 80, payload: { metadata: { weight: 3 } } }));
    expect(n.ok && n.endpoint).to.deep.include({ address: '[::1]:80', weight: 3, priority: 0 });
    const bare = decodeCuratorInstance('i3', JSON.stringify({ address: '10.0.0.6', port: 1, payload: null }));
    expect(bare.ok && bare.endpoint).to.deep.include({ weight: 1, priority: 0, metadata: {} });
  });

  it('leaves disabled instances out quietly and names what is wrong with bad ones', function () {
    const disabled = decodeCuratorInstance('d', JSON.stringify({ address: '10.0.0.5', port: 80, enabled: false }));
    expect(disabled.ok === false && disabled.quiet).to.equal(true);
    const cases: Array<[string, string]> = [
      ['', 'empty node'],
      ['{"address":', 'not JSON'],
      ['[1]', 'not a JSON object'],
      ['{"port":80}', "no 'address' field"],
      ['{"address":"10.0.0.5","port":"80"}', "'port' must be an integer"],
      ['{"address":"10.0.0.5","port":70000}', "'port' must be an integer"],
      ['{"address":"svc.local","port":80}', 'spring.cloud.zookeeper.discovery.prefer-ip-address=true'],
      ['{"address":"10.0.0.5","port":80,"payload":{"metadata":{"weight":"-1"}}}', 'payload.metadata weight must be'],
      ['{"address":"10.0.0.5","port":80,"payload":{"metadata":{"priority":"x"}}}', 'payload.metadata priority must be'],
    ];
    for (const [data, reason] of cases) {
      const r = decodeCuratorInstance('k', data);
      expect(r.ok, data).to.equal(false);
      if (!r.ok) expect(r.error.message, data).to.contain(reason);
    }
  });

  it('writes Curator fields and Spring\'s payload, metadata as strings, and reads back what it wrote', function () {
    const json = encodeCuratorInstance({ service: 'svc', id: 'id1', address: '[fd00::5]:7', weight: 2, priority: 1, metadata: { zone: 'z', n: 3 }, registrationTimeUTC: 5 });
    const o = JSON.parse(json) as Record<string, unknown>;
    expect(o).to.deep.include({ name: 'svc', id: 'id1', address: 'fd00::5', port: 7, sslPort: null, serviceType: 'DYNAMIC', enabled: true, registrationTimeUTC: 5 });
    expect(o.payload).to.deep.equal({
      '@class': 'org.springframework.cloud.zookeeper.discovery.ZookeeperInstance', id: 'svc', name: 'svc', metadata: { zone: 'z', n: '3', weight: '2', priority: '1' },
    });
    const back = decodeCuratorInstance('id1', json);
    expect(back.ok && back.endpoint).to.deep.include({ address: '[fd00::5]:7', weight: 2, priority: 1, metadata: { zone: 'z', n: '3' } });
  });

  it('derives a UUID-shaped id from service and address, the same every time', function () {
    const id = instanceId('svc', '10.0.0.5:80');
    expect(id).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(instanceId('svc', '10.0.0.5:80')).to.equal(id);
    expect(instanceId('svc', '10.0.0.5:81')).to.not.equal(id);
  });
});

describe('ZooKeeper: targets and options', function () {
  afterEach(function () {
    setDefaultZookeeperOptions(undefined);
    setDefaultEtcdOptions(undefined);
  });

  it('ZOOKEEPER_ENDPOINTS is the default after register({ zookeeper }); a malformed value is said once and ignored', function () {
    const saved = process.env.ZOOKEEPER_ENDPOINTS;
    const log = captureGrpcLog();
    try {
      process.env.ZOOKEEPER_ENDPOINTS = ' 127.0.0.1:2181, 127.0.0.2:2181 ';
      expect(getDefaultZookeeperOptions()).to.deep.equal({ hosts: ['127.0.0.1:2181', '127.0.0.2:2181'], basePath: '/services' });
      setDefaultZookeeperOptions(validateZookeeperOptions({ hosts: 'h:3', basePath: '/dubbo' }, 't'));
      expect(getDefaultZookeeperOptions()).to.deep.equal({ hosts: ['h:3'], basePath: '/dubbo' });
      setDefaultZookeeperOptions(undefined);
      process.env.ZOOKEEPER_ENDPOINTS = 'zk1';
      expect(getDefaultZookeeperOptions()).to.equal(undefined);
      expect(getDefaultZookeeperOptions()).to.equal(undefined);
      expect(log.lines.filter(l => l.includes('ZOOKEEPER_ENDPOINTS="zk1" is ignored'))).to.have.length(1);
    } finally {
      log.restore();
      if (saved === undefined) delete process.env.ZOOKEEPER_ENDPOINTS;
      else process.env.ZOOKEEPER_ENDPOINTS = saved;
    }
  });

  it('parses zk:///svc and zk://h1:2181,h2:2181/a/b, and rejects bad ones naming the target', function () {
    expect(parseZookeeperTarget({ scheme: 'zk', authority: '', path: 'svc' })).to.deep.equal({ service: 'svc', hosts: undefined, authority: 'svc' });
    expect(parseZookeeperTarget({ scheme: 'zk', authority: 'h1:2181,h2:2181', path: 'a/b' })).to.deep.equal({ service: 'a/b', hosts: ['h1:2181', 'h2:2181'], authority: 'a.b' });
    expect(() => parseZookeeperTarget({ scheme: 'zk', authority: 'h1', path: 'svc' })).to.throw("zookeeper resolver: bad target 'zk://h1/svc': ZooKeeper host 'h1' must be host:port");
    expect(() => parseZookeeperTarget({ scheme: 'zk', path: '//' })).to.throw(/the service name is missing/);
    const t = parseZookeeperTarget({ scheme: 'zk', authority: '', path: 'svc' });
    expect(zookeeperConnectionForTarget(t, undefined)).to.match(/no ZooKeeper connection for service 'svc'/);
  });

  it('validates { hosts, basePath } with errors naming the field', function () {
    expect(validateZookeeperOptions({ hosts: ' 127.0.0.1:2181 , h:2 ' }, 'x')).to.deep.equal({ hosts: ['127.0.0.1:2181', 'h:2'], basePath: '/services' });
    expect(() => validateZookeeperOptions({ hosts: '' }, 'x')).to.throw(TypeError, /x: zookeeper hosts needs at least one/);
    expect(() => validateZookeeperOptions({ hosts: 'h:1', basePath: 'services' }, 'x')).to.throw(/basePath must be an absolute/);
    expect(() => validateZookeeperOptions({ hosts: 'h:1', chroot: '/x' }, 'x')).to.throw(/unknown zookeeper option 'chroot'/);
  });

  it('register({ zookeeper }) is process-wide: the same value again is fine, a different one throws', function () {
    register({ zookeeper: { hosts: '127.0.0.1:2181' } });
    register({ zookeeper: { hosts: ['127.0.0.1:2181'], basePath: '/services' } });
    expect(() => register({ zookeeper: { hosts: '127.0.0.1:2182' } })).to.throw(/already called with a different zookeeper connection/);
    expect(() => register({ zookeeper: { hosts: '127.0.0.1:2181', basePath: '/dubbo' } })).to.throw(/different zookeeper connection/);
  });

  it('registerEndpoint: etcd and zookeeper both given is an error; so is neither with both defaults set', function () {
    const base = { service: 'svc', address: '10.0.0.1:80' };
    const choose = (options: RegistrationOptions): { name: string; connection: unknown } => {
      const { backend, connection } = chooseRegistry(options, BACKENDS);
      return { name: backend.name, connection };
    };
    expect(() => choose({ ...base, etcd: { hosts: ['h:1'] }, zookeeper: { hosts: 'h:2' } })).to.throw(TypeError, /either etcd or zookeeper, not both/);
    setDefaultZookeeperOptions(validateZookeeperOptions({ hosts: 'h:2' }, 't'));
    expect(choose(base)).to.deep.equal({ name: 'zookeeper', connection: { hosts: ['h:2'], basePath: '/services' } });
    setDefaultEtcdOptions({ hosts: ['h:1'] });
    expect(() => choose(base)).to.throw(TypeError, /both an etcd default .* and a ZooKeeper default .* are set/);
    expect(choose({ ...base, etcd: { hosts: ['h:1'] } }).name).to.equal('etcd');
  });
});
