import { expect } from 'chai';
import { join } from 'node:path';
import { register } from '../src/register';
import { getLocality } from '../src/discovery/locality';
import { startEtcd, type EtcdServer } from './support/etcd';
import { lastJsonLine, runTsChild } from './support/ts-child';
import { startEchoServer, type EchoServer } from './support/echo-server';
import { putEndpoint, writerClient } from './backends/etcd/resolver-fixtures';

const CHILD = join(__dirname, 'backends', 'etcd', 'register-child.ts');

/** register() is process-wide, so each scenario runs in a fresh process. */
async function runChild(scenario: string, env: Record<string, string | undefined>): Promise<Record<string, unknown>> {
  return lastJsonLine<Record<string, unknown>>((await runTsChild(CHILD, { SCENARIO: scenario, ...env })).stdout);
}

describe('register()', function () {
  let etcd: EtcdServer;
  let server: EchoServer;
  const service = 'team/registered';

  before(async function () {
    [etcd, server] = await Promise.all([startEtcd(), startEchoServer({ name: 'r1' })]);
    const writer = writerClient(etcd.endpoints);
    try {
      await putEndpoint(writer, service, server.address);
    } finally {
      writer.close();
    }
  });

  after(async function () {
    await server?.stop(100);
    await etcd?.destroy();
  });

  it('is idempotent without options in this process', function () {
    register();
    register({});
  });

  it('rejects options that are not an object, naming register()', function () {
    expect(() => register(null as never)).to.throw(/register\(\): options must be an object/);
    expect(() => register({ resolver: { pageSize: -1 } })).to.throw(/'pageSize'/);
  });

  it('rejects an unknown option key with a TypeError naming the known ones', function () {
    const call = () => register({ zone: 'a' } as never);
    expect(call).to.throw(TypeError, "register(): unknown option 'zone' (known: etcd, zookeeper, kubernetes, consul, resolver, metrics, locality)");
    expect(() => register({ etdc: { hosts: ['127.0.0.1:2379'] } } as never)).to.throw(TypeError, /unknown option 'etdc'/);
  });

  it('rejects a bad locality with a TypeError naming the field and value, before anything is set', function () {
    expect(() => register({ locality: { zone: '' } })).to.throw(TypeError, 'register(): locality.zone must be a non-empty string');
    expect(() => register({ locality: { zone: 'a', region: 'r' } } as never)).to.throw(TypeError, "register(): unknown locality field 'region' (known: zone)");
    expect(() => register({ locality: 'a' } as never)).to.throw(TypeError, /locality must be an object like \{ zone: 'eu-west-1a' \}/);
    expect(getLocality()).to.equal(undefined);
  });

  it('rejects bad metrics options with a TypeError naming the option and value', function () {
    expect(() => register({ metrics: { perEndpoint: 'yes' } } as never)).to.throw(TypeError, 'register(): metrics.perEndpoint must be a boolean, got "yes"');
    expect(() => register({ metrics: { perEndPoint: true } } as never)).to.throw(TypeError, "register(): unknown option 'metrics.perEndPoint' (known: perEndpoint)");
    expect(() => register({ metrics: 1 } as never)).to.throw(TypeError, 'register(): metrics must be an object like { perEndpoint: true }, got 1');
  });

  it('register({ etcd }) sets the default connection; a different one throws; etcd://hosts/svc works too', async function () {
    const out = await runChild('default-connection', { TEST_ETCD: etcd.endpoint, TEST_SERVICE: service, ETCD_ENDPOINTS: undefined });
    expect(out.viaDefault).to.deep.equal({ server: 'r1' });
    expect(out.viaHosts).to.deep.equal({ server: 'r1' });
    expect(out.conflict).to.match(/register\(\): already called with a different etcd connection/);
    expect(out.badOptions).to.match(/register\(\): etcd options need at least one host/);
    expect(out.resolverConflict).to.match(/register\(\): already called with different resolver options/);
    expect(out.metricsRepeat).to.equal(undefined);
    expect(out.metricsConflict).to.equal('register(): already called with different metrics options; got {"perEndpoint":false}, had {"perEndpoint":true}');
  });

  it('falls back to ETCD_ENDPOINTS', async function () {
    const out = await runChild('env', { ETCD_ENDPOINTS: ` ${etcd.endpoint} `, TEST_SERVICE: service });
    expect(out.viaEnv).to.deep.equal({ server: 'r1' });
  });

  it('with no connection at all, calls fail with a clear UNAVAILABLE; a bad target throws at channel creation', async function () {
    const out = await runChild('no-connection', { ETCD_ENDPOINTS: undefined, TEST_SERVICE: service });
    const failure = out.noConnection as { code: number; details: string };
    expect(failure.code).to.equal(14);
    expect(failure.details).to.include(`no etcd connection for service '${service}'`).and.include('ETCD_ENDPOINTS');
    expect(out.badTarget).to.match(/etcd resolver: bad target 'etcd:\/\/\/bad\/\/name'/);
  });
});
