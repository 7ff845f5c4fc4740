/** Unit tests: Consul connection options and environment, consul:// targets, the health-entry codec. */
import { expect } from 'chai';
import { register } from '../../../src/register';
import { chooseRegistry } from '../../../src/discovery/register-endpoint';
import { BACKENDS } from '../../../src/backends';
import {
  DEFAULT_CONSUL_ADDRESS, getDefaultConsulOptions, parseConsulAddress, setDefaultConsulOptions, validateConsulOptions,
} from '../../../src/backends/consul/connection';
import { consulConnectionForTarget, parseConsulTarget } from '../../../src/backends/consul/target';
import { consulServiceId, decodeHealthEntry, encodeMeta, encodeTags } from '../../../src/backends/consul/health-codec';
import { captureGrpcLog } from '../../support/grpc-log';

/** Runs `fn` with Consul's environment variables set as given (others cleared), then restores them. */
function withEnv<T>(env: Record<string, string>, fn: () => T): T {
  const names = ['CONSUL_HTTP_ADDR', 'CONSUL_HTTP_TOKEN', 'CONSUL_HTTP_SSL', 'CONSUL_CACERT'];
  const saved = names.map(n => [n, process.env[n]] as const);
  for (const n of names) delete process.env[n];
  Object.assign(process.env, env);
  try {
    return fn();
  } finally {
    for (const [n, v] of saved) {
      if (v === undefined) delete process.env[n];
      else process.env[n] = v;
    }
  }
}

function entry(service: Record<string, unknown>, nodeAddress = '10.0.0.9'): string {
  return JSON.stringify({ Node: { Node: 'n1', Address: nodeAddress }, Service: { ID: 'x', Service: 'web', Port: 8080, ...service } });
}

describe('Consul: connection options', function () {
  it('takes host:port or a URL; defaults from CONSUL_HTTP_ADDR / CONSUL_HTTP_TOKEN / CONSUL_HTTP_SSL, else http://127.0.0.1:8500', function () {
    expect(parseConsulAddress('10.0.0.1:8500')).to.equal('http://10.0.0.1:8500');
    expect(parseConsulAddress('https://consul.local')).to.equal('https://consul.local:443');
    expect(parseConsulAddress('consul.local:8501', true)).to.equal('https://consul.local:8501');
    withEnv({}, () => {
      expect(validateConsulOptions({}, 'test').baseUrl).to.equal(DEFAULT_CONSUL_ADDRESS);
      expect(getDefaultConsulOptions()).to.equal(undefined);
    });
    withEnv({ CONSUL_HTTP_ADDR: '10.1.1.1:8500', CONSUL_HTTP_TOKEN: 's3cr3t' }, () => {
      const d = getDefaultConsulOptions();
      expect([d?.baseUrl, d?.token]).to.deep.equal(['http://10.1.1.1:8500', 's3cr3t']);
      expect(validateConsulOptions({ address: 'http://10.2.2.2:8500', token: 't' }, 'test')).to.deep.include({ baseUrl: 'http://10.2.2.2:8500', token: 't' });
    });
    withEnv({ CONSUL_HTTP_ADDR: 'consul:8501', CONSUL_HTTP_SSL: 'true' }, () => {
      expect(getDefaultConsulOptions()?.baseUrl).to.equal('https://consul:8501');
    });
  });

  it('rejects bad options with a TypeError naming the option and value; a bad CONSUL_HTTP_ADDR is one ERROR line and ignored', function () {
    const cases: Array<[unknown, RegExp]> = [
      [null, /consul options must be an object/],
      [{ adress: 'x' }, /unknown consul option 'adress'/],
      [{ address: 'unix:///tmp/consul.sock' }, /only http:\/\/ and https:\/\//],
      [{ address: 'http://h:8500/v1' }, /no path/],
      [{ address: '' }, /address must be 'host:port'/],
      [{ token: 7 }, /token must be a non-empty string/],
      [{ datacenter: 'dc 1' }, /datacenter must be/],
      [{ deregisterCriticalAfterSeconds: 0.5 }, /deregisterCriticalAfterSeconds must be an integer ≥ 1, got 0.5/],
    ];
    for (const [options, message] of cases) {
      expect(() => validateConsulOptions(options, 'register()'), JSON.stringify(options)).to.throw(TypeError, message);
    }
    expect(() => register({ consul: { address: 'ftp://x' } })).to.throw(TypeError, /register\(\): consul address 'ftp:\/\/x'/);
    const log = captureGrpcLog();
    try {
      withEnv({ CONSUL_HTTP_ADDR: 'http://h:8500/path' }, () => {
        expect(getDefaultConsulOptions()).to.equal(undefined);
        expect(getDefaultConsulOptions()).to.equal(undefined);
      });
    } finally {
      log.restore();
    }
    expect(log.lines.filter(l => l.includes('CONSUL_HTTP_ADDR'))).to.have.length(1);
  });

  it('registerEndpoint picks Consul when asked, and does not take it from the 127.0.0.1:8500 fallback', function () {
    withEnv({}, () => {
      const chosen = chooseRegistry({ service: 's', address: '10.0.0.1:1', consul: { address: '10.0.0.2:8500' } } as never, BACKENDS);
      expect(chosen.backend.name).to.equal('consul');
      expect(() => chooseRegistry({ service: 's', address: '10.0.0.1:1' } as never, BACKENDS)).to.throw(/no registry connection.*CONSUL_HTTP_ADDR/);
    });
  });
});

describe('Consul: targets', function () {
  afterEach(function () {
    setDefaultConsulOptions(undefined);
  });

  it('parses consul:///svc, consul://host:port/svc, repeatable ?tag= and ?dc=', function () {
    expect(parseConsulTarget({ scheme: 'consul', authority: '', path: 'web' })).to.deep.include({ service: 'web', baseUrl: undefined, tags: [], datacenter: undefined });
    const t = parseConsulTarget({ scheme: 'consul', authority: '10.0.0.1:8500', path: 'team/web?tag=v2&tag=canary&dc=dc2' });
    expect(t).to.deep.include({ service: 'team/web', baseUrl: 'http://10.0.0.1:8500', tags: ['canary', 'v2'], datacenter: 'dc2', authority: 'team.web' });
    const bad: Array<[string, RegExp]> = [
      ['web?colour=red', /unknown query parameter 'colour'/],
      ['web?tag=', /tag must not be empty/],
      ['web?dc=a&dc=b', /dc given twice/],
      ['/web', /must not start or end with '\/'/],
    ];
    for (const [path, message] of bad) expect(() => parseConsulTarget({ scheme: 'consul', authority: '', path }), path).to.throw(message);
  });

  it('a target uses its own agent with the default token, else the default, else 127.0.0.1:8500; its tags and dc go with it', function () {
    withEnv({}, () => {
      const plain = consulConnectionForTarget(parseConsulTarget({ scheme: 'consul', authority: '', path: 'web?tag=a' }));
      expect(plain).to.deep.include({ baseUrl: DEFAULT_CONSUL_ADDRESS, tags: ['a'] });
      setDefaultConsulOptions(validateConsulOptions({ address: '10.0.0.1:8500', token: 'tok', datacenter: 'dc1' }, 'test'));
      const own = consulConnectionForTarget(parseConsulTarget({ scheme: 'consul', authority: '10.0.0.7:8500', path: 'web?dc=dc3' }));
      expect(own).to.deep.include({ baseUrl: 'http://10.0.0.7:8500', token: 'tok', datacenter: 'dc3' });
    });
  });
});

describe('Consul: health-entry codec', function () {
  it('weight from Weights.Passing (Go clients) or our exact Meta.weight; priority and zone from Meta; Tags as metadata.tags; Node.Address fallback', function () {
    const go = decodeHealthEntry('k', entry({ Address: '10.0.0.5', Weights: { Passing: 3, Warning: 1 }, Meta: { zone: 'eu-1a', priority: '1', tag: 'blue' }, Tags: ['v2'] }));
    expect(go.ok && go.endpoint).to.deep.include({ address: '10.0.0.5:8080', weight: 3, priority: 1, metadata: { zone: 'eu-1a', tag: 'blue', tags: ['v2'] } });
    const ours = decodeHealthEntry('k', entry({ Address: '10.0.0.5', Weights: { Passing: 1, Warning: 1 }, Meta: { weight: '0.5' } }));
    expect(ours.ok && ours.endpoint.weight).to.equal(0.5);
    const node = decodeHealthEntry('k', entry({ Address: '' }, 'fd00::9'));
    expect(node.ok && node.endpoint).to.deep.include({ address: '[fd00::9]:8080', weight: 1, priority: 0, metadata: {} });
  });

  it('names what is wrong: hostnames, ports, weights', function () {
    const cases: Array<[string, string]> = [
      [entry({ Address: 'web.service.consul' }), "address 'web.service.consul' is a hostname"],
      [entry({ Address: '10.0.0.5', Port: 0 }), 'Service.Port must be an integer'],
      [entry({ Address: '10.0.0.5', Meta: { weight: '-2' } }), 'Meta.weight must be'],
      [entry({ Address: '10.0.0.5', Weights: { Passing: 'x' } }), 'Weights.Passing: weight must be'],
      [entry({ Address: '10.0.0.5', Meta: { priority: '1.5' } }), 'Meta.priority must be'],
      [JSON.stringify({ Node: {} }), "no 'Service'"],
    ];
    for (const [value, reason] of cases) {
      const r = decodeHealthEntry('k', value);
      expect(r.ok, value).to.equal(false);
      if (!r.ok) expect(r.error.message, value).to.contain(reason);
    }
  });

  it('writes Meta as strings with weight and priority, Tags from metadata.tags, and refuses what Consul would', function () {
    expect(encodeMeta({ zone: 'a', n: 3, obj: { x: 1 }, tags: ['t'] }, 2.5, 1, 'test')).to.deep.equal({ zone: 'a', n: '3', obj: '{"x":1}', weight: '2.5', priority: '1' });
    expect(encodeTags({ tags: ['a', 'b'] }, 'test')).to.deep.equal(['a', 'b']);
    expect(() => encodeTags({ tags: ['a', 1] }, 'test')).to.throw(TypeError, /metadata.tags must be an array of strings/);
    expect(() => encodeMeta({ 'bad key': 'x' }, 1, 0, 'test')).to.throw(TypeError, /'bad key' is not a valid Consul Meta key/);
    expect(() => encodeMeta({ big: 'x'.repeat(513) }, 1, 0, 'test')).to.throw(TypeError, /at most 512/);
    expect(consulServiceId('web', '[::1]:80')).to.equal('web:[::1]:80');
  });
});
