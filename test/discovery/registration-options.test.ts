import { expect } from 'chai';
import { setDefaultEtcdOptions, type EtcdOptions } from '../../src/backends/etcd/connection';
import { registerEndpoint, type RegistrationOptions } from '../../src/register';
import { DEFAULT_REGISTRATION_OPTIONS, resolveRegistrationOptions } from '../../src/discovery/registration-options';
import { chooseRegistry } from '../../src/discovery/register-endpoint';
import { BACKENDS } from '../../src/backends';
import { gracefulShutdown, type ShutdownableServer } from '../../src/server/graceful-shutdown';
import { shutdownOnSignals } from '../../src/server/shutdown-on-signals';
import { type Registration } from '../../src/discovery/registration';
import { withoutDefaultEtcdConnection } from '../support/no-default-connection';

const ETCD = { hosts: ['127.0.0.1:1'] };
const OK: RegistrationOptions = { service: 'svc', address: '10.0.0.1:80', etcd: ETCD };

describe('registry: options', () => {
  const invalid: Array<[string, unknown, RegExp]> = [
    ['options not an object', null, /registerEndpoint: options must be an object/],
    ['service missing', { address: '10.0.0.1:80', etcd: ETCD }, /registerEndpoint: service must be a non-empty string, got undefined/],
    ['service empty', { ...OK, service: '' }, /service must be a non-empty string, got ""/],
    ['service not a string', { ...OK, service: 42 }, /service must be a non-empty string, got 42/],
    ['service with leading /', { ...OK, service: '/svc' }, /service '\/svc' must not start or end with '\/'/],
    ['service with trailing /', { ...OK, service: 'a/b/' }, /service 'a\/b\/' must not start or end with '\/'/],
    ['service with //', { ...OK, service: 'a//b' }, /must not contain '\/\/'/],
    ['service with a space', { ...OK, service: 'a b' }, /must not contain whitespace/],
    ['address missing', { service: 'svc', etcd: ETCD }, /registerEndpoint: address must be a string, got undefined/],
    ['address hostname', { ...OK, address: 'localhost:80' }, /address 'localhost:80' must be an IP literal \(hostnames are not supported yet\)/],
    ['address without port', { ...OK, address: '10.0.0.1' }, /address '10.0.0.1' needs a port/],
    ['address port 0', { ...OK, address: '10.0.0.1:0' }, /port out of range/],
    ['address port too big', { ...OK, address: '10.0.0.1:65536' }, /port out of range/],
    ['IPv6 without brackets', { ...OK, address: '::1:80' }, /IPv6 literals need brackets/],
    ['IPv6 bad literal', { ...OK, address: '[::g]:80' }, /invalid IPv6 literal/],
    ['address 0.0.0.0 (binds, but no client can dial it)', { ...OK, address: '0.0.0.0:50051' }, /^registerEndpoint: address '0\.0\.0\.0:50051' is the unspecified address.*: register the address clients dial, e\.g\. 10\.0\.0\.5:50051/],
    ['address [::]', { ...OK, address: '[::]:50051' }, /^registerEndpoint: address '\[::\]:50051' is the unspecified address.*register the address clients dial/],
    ['address without host', { ...OK, address: ':50051' }, /^registerEndpoint: address ':50051' has no host: register the address clients dial/],
    ['weight negative', { ...OK, weight: -1 }, /weight must be a finite number in \[0, 1000000\], got -1/],
    ['weight NaN', { ...OK, weight: NaN }, /weight must be a finite number .* got NaN/],
    ['weight string', { ...OK, weight: '2' }, /weight must be a finite number .* got "2"/],
    ['weight too big', { ...OK, weight: 1e9 }, /weight must be a finite number/],
    ['priority fractional', { ...OK, priority: 0.5 }, /priority must be an integer in \[0, 1000000\], got 0.5/],
    ['priority negative', { ...OK, priority: -1 }, /priority must be an integer/],
    ['metadata array', { ...OK, metadata: [1] }, /metadata must be a plain object, got \[1\]/],
    ['metadata with weight', { ...OK, metadata: { weight: 2 } }, /metadata must not contain 'weight': use the weight option/],
    ['metadata with priority', { ...OK, metadata: { priority: 2 } }, /metadata must not contain 'priority'/],
    ['metadata not JSON', { ...OK, metadata: { n: 1n } }, /metadata must be JSON-serialisable/],
    ['ttl zero', { ...OK, ttlSeconds: 0 }, /ttlSeconds must be an integer ≥ 1 \(registry leases and sessions count whole seconds\), got 0/],
    ['ttl fractional', { ...OK, ttlSeconds: 1.5 }, /ttlSeconds must be an integer ≥ 1/],
    ['registerTimeoutMs zero', { ...OK, registerTimeoutMs: 0 }, /registerTimeoutMs must be a positive number of milliseconds, got 0/],
    ['closeTimeoutMs negative', { ...OK, closeTimeoutMs: -5 }, /closeTimeoutMs must be a positive number/],
    ['health without setStatus', { ...OK, health: {} }, /health must be a HealthImplementation from grpc-health-check/],
    ['etcd without hosts', { ...OK, etcd: { hosts: [] } }, /registerEndpoint: etcd options need at least one host/],
    ['etcd auth without password', { ...OK, etcd: { hosts: ['127.0.0.1:1'], auth: { username: 'u' } } }, /etcd 'auth' needs string 'username' and 'password'/],
    ['etcd TLS CA not a Buffer', { ...OK, etcd: { hosts: ['127.0.0.1:1'], credentials: { rootCertificate: 'pem' } } }, /credentials.rootCertificate' must be a Buffer/],
  ];

  for (const [name, options, expected] of invalid) {
    it(`rejects ${name}`, async () => {
      let error: Error | undefined;
      await registerEndpoint(options as RegistrationOptions).catch((err: Error) => { error = err; });
      expect(error, 'should reject').to.be.instanceOf(TypeError);
      expect(error!.message).to.match(expected);
    });
  }

  describe('without any etcd connection', () => {
    withoutDefaultEtcdConnection();

    it('says how to give one', async () => {
      let error: Error | undefined;
      await registerEndpoint({ service: 'svc', address: '10.0.0.1:80' }).catch((err: Error) => { error = err; });
      expect(error?.message).to.equal(
        'registerEndpoint: no registry connection: pass { etcd: { hosts: [...] } }, call register({ etcd }), or set ETCD_ENDPOINTS; ' +
        "or pass { zookeeper: { hosts: '127.0.0.1:2181' } }, call register({ zookeeper }), or set ZOOKEEPER_ENDPOINTS; " +
        "or pass { consul: { address: '127.0.0.1:8500' } }, call register({ consul }), or set CONSUL_HTTP_ADDR");
    });

    it('uses ETCD_ENDPOINTS, then register({ etcd }), as the default', () => {
      process.env.ETCD_ENDPOINTS = '127.0.0.1:2,127.0.0.1:3';
      expect((chooseRegistry({ service: 'svc', address: '10.0.0.1:80' }, BACKENDS).connection as EtcdOptions).hosts).to.deep.equal(['127.0.0.1:2', '127.0.0.1:3']);
      setDefaultEtcdOptions({ hosts: '127.0.0.1:4' });
      try {
        expect((chooseRegistry({ service: 'svc', address: '10.0.0.1:80' }, BACKENDS).connection as EtcdOptions).hosts).to.deep.equal(['127.0.0.1:4']);
      } finally {
        setDefaultEtcdOptions(undefined);
      }
    });
  });

  it('treats options given as undefined as their defaults and canonicalises the address', () => {
    const r = resolveRegistrationOptions({
      ...OK, address: '[0:0::1]:80', weight: undefined, priority: undefined, ttlSeconds: undefined,
      registerTimeoutMs: undefined, metadata: undefined, health: undefined,
    });
    expect(r).to.include({ address: '[::1]:80', weight: 1, priority: 0, ttlSeconds: 10, registerTimeoutMs: 10_000, closeTimeoutMs: 2_000 });
    expect(r.metadata).to.deep.equal({});
    expect(Object.isFrozen(DEFAULT_REGISTRATION_OPTIONS)).to.equal(true);
  });

  it('accepts weight 0 (draining), service names with /, and user metadata', () => {
    const r = resolveRegistrationOptions({ ...OK, service: 'foo/bar/svc', weight: 0, priority: 2, metadata: { zone: 'a' } });
    expect(r).to.include({ service: 'foo/bar/svc', weight: 0, priority: 2 });
    expect(r.metadata).to.deep.equal({ zone: 'a' });
  });

  it('gracefulShutdown and shutdownOnSignals reject bad options clearly', async () => {
    const server: ShutdownableServer = { tryShutdown: () => undefined, forceShutdown: () => undefined };
    const registration = {} as Registration;
    let error: Error | undefined;
    await gracefulShutdown(server, registration, { drainMs: -1 }).catch((err: Error) => { error = err; });
    expect(error?.message).to.equal('gracefulShutdown: drainMs must be a number of milliseconds ≥ 0, got -1');
    await gracefulShutdown(server, registration, { deregisterGraceMs: Infinity }).catch((err: Error) => { error = err; });
    expect(error?.message).to.match(/deregisterGraceMs must be a number of milliseconds ≥ 0/);
    expect(() => shutdownOnSignals(server, registration, { signals: [] })).to.throw(/shutdownOnSignals: signals must be a non-empty list/);
  });
});
