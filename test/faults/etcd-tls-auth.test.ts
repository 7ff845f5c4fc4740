/**
 * etcd with client TLS (certificates made by openssl in the test) and auth on
 * (a least-privilege user: read/write on the service prefix only). Registry and
 * resolver work through it, also end to end through `register({ etcd })` and a
 * channel; a wrong password, a wrong CA or a key outside the user's rights
 * fail with an error that says so.
 */
import { expect } from 'chai';
import { join } from 'node:path';
import { register, registerEndpoint } from '../../src/register';
import { type Registration } from '../../src/discovery/registration';
import { type EtcdOptions } from '../../src/backends/etcd/connection';
import { etcdctl } from '../support/etcd';
import { lastJsonLine, runTsChild } from '../support/ts-child';
import { startTlsEtcd, type TlsEtcd } from '../support/etcd-tls';
import { startEchoServer, type EchoServer } from '../support/echo-server';
import { generateTestCertificates, type TestCertificates } from '../support/tls';
import { waitFor } from '../support/wait';
import { captureGrpcLog, recordResolutionOn, type ResolutionRecorder } from './fault-fixtures';

const CHILD = join(__dirname, 'secure-client-child.ts');
const SERVICE = 'faults/secure/echo';
const USER = 'svc';
const PASSWORD = 's3cret-svc';

interface ChildOutcome { server?: string; code?: number; details?: string }

/** Runs secure-client-child.ts with a connection; resolves to its two call outcomes. */
async function runChild(env: Record<string, string>): Promise<{ viaDefault: ChildOutcome; viaHosts: ChildOutcome }> {
  return lastJsonLine((await runTsChild(CHILD, env, 40_000)).stdout);
}

describe('faults: etcd with TLS and auth', function () {
  this.timeout(90_000);
  let certs: TestCertificates | undefined;
  let etcd: TlsEtcd | undefined;
  let server: EchoServer | undefined;
  const registrations: Registration[] = [];
  const recorders: ResolutionRecorder[] = [];
  let restoreLog: (() => void) | undefined;

  before(() => register());

  afterEach(async () => {
    restoreLog?.();
    for (const r of recorders.splice(0)) r.close();
    await Promise.all(registrations.splice(0).map(r => r.close()));
    await server?.stop(100);
    await etcd?.destroy();
    certs?.remove();
  });

  /** The outcome of registering `address` under `service` with `etcd`: 'ok' or the error message. */
  async function tryRegister(service: string, address: string, connection: EtcdOptions): Promise<string> {
    try {
      registrations.push(await registerEndpoint({ service, address, ttlSeconds: 2, registerTimeoutMs: 2000, etcd: connection }));
      return 'ok';
    } catch (err) {
      return (err as Error).message;
    }
  }

  /** The first state the resolver publishes for `service` on `connection`: 'ok: <addresses>' or the error details. */
  async function firstResolution(connection: EtcdOptions): Promise<string> {
    const r = recordResolutionOn(connection, SERVICE);
    recorders.push(r);
    await waitFor('a resolution', () => r.updates > 0 || r.errors.length > 0, { timeoutMs: 15_000 });
    return r.updates > 0 ? `ok: ${r.current().join(',')}` : r.errors[0];
  }

  it('registry and resolver work with TLS + a least-privilege user; wrong password, CA or rights are named', async () => {
    certs = generateTestCertificates();
    etcd = await startTlsEtcd({ certFile: certs.serverCertFile, keyFile: certs.serverKeyFile, caFile: certs.caFile });
    const ctl = (args: string[]): string => etcdctl(etcd!.hosts, [`--cacert=${certs!.caFile}`, ...args]);
    ctl(['user', 'add', 'root', '--new-user-password=r00t']);
    ctl(['role', 'add', 'svc-rw']);
    ctl(['role', 'grant-permission', 'svc-rw', '--prefix=true', 'readwrite', 'faults/secure/']);
    ctl(['user', 'add', USER, `--new-user-password=${PASSWORD}`]);
    ctl(['user', 'grant-role', USER, 'svc-rw']);
    ctl(['auth', 'enable']);
    server = await startEchoServer({ name: 'secure' });
    const good: EtcdOptions = { hosts: etcd.hosts, credentials: { rootCertificate: certs.ca }, auth: { username: USER, password: PASSWORD } };

    // Right credentials: register, resolve in this process, and call through register({ etcd }) in a child.
    const startedAt = Date.now();
    expect(await tryRegister(SERVICE, server.address, good)).to.equal('ok');
    const registeredMs = Date.now() - startedAt;
    expect(await firstResolution(good)).to.equal(`ok: ${server.address}`);
    const childEnv = { TEST_ETCD_HOST: etcd.endpoint, TEST_SERVICE: SERVICE, TEST_CA_FILE: certs.caFile, TEST_USER: USER };
    const [viaChannel, wrongPasswordChannel, wrongCaChannel] = await Promise.all([
      runChild({ ...childEnv, TEST_PASSWORD: PASSWORD }),
      runChild({ ...childEnv, TEST_PASSWORD: 'wrong' }),
      runChild({ ...childEnv, TEST_PASSWORD: PASSWORD, TEST_CA_FILE: certs.otherCaFile }),
    ]);
    expect(viaChannel).to.deep.equal({ viaDefault: { server: 'secure' }, viaHosts: { server: 'secure' } });

    // Wrong credentials: each failure names its cause.
    const log = captureGrpcLog();
    restoreLog = log.restore;
    const wrongPassword: EtcdOptions = { ...good, auth: { username: USER, password: 'wrong' } };
    const wrongCa: EtcdOptions = { ...good, credentials: { rootCertificate: certs.otherCa } };
    const plainText: EtcdOptions = { hosts: [etcd.endpoint], auth: good.auth };
    const wrongCaNoAuth: EtcdOptions = { hosts: etcd.hosts, credentials: { rootCertificate: certs.otherCa } };
    const attempts: Record<string, Promise<string | undefined>> = {
      registerWrongPassword: tryRegister(SERVICE, '127.0.0.1:7101', wrongPassword),
      registerWrongCa: tryRegister(SERVICE, '127.0.0.1:7102', wrongCa),
      registerWrongCaNoAuth: tryRegister(SERVICE, '127.0.0.1:7105', wrongCaNoAuth),
      registerPlainText: tryRegister(SERVICE, '127.0.0.1:7103', plainText),
      registerOutsideRights: tryRegister('faults/elsewhere', '127.0.0.1:7104', good),
      resolveWrongPassword: firstResolution(wrongPassword),
      resolveWrongCa: firstResolution(wrongCa),
      resolveWrongCaNoAuth: firstResolution(wrongCaNoAuth),
    };
    const settled = await Promise.all(Object.values(attempts));
    const outcomes = {
      ...Object.fromEntries(Object.keys(attempts).map((k, i) => [k, settled[i]])),
      channelWrongPassword: wrongPasswordChannel.viaDefault.details,
      channelWrongCa: wrongCaChannel.viaDefault.details,
    } as Record<string, string | undefined>;
    log.restore();
    console.log(`      TLS + auth: registered in ${registeredMs} ms, resolved, called through register({ etcd }) both ways; errors:`);
    for (const [what, message] of Object.entries(outcomes)) console.log(`        ${what}: ${message}`);
    expect([wrongPasswordChannel.viaDefault.code, wrongCaChannel.viaDefault.code]).to.deep.equal([14, 14]);
    expect(outcomes.registerWrongPassword).to.match(/authentication failed/);
    expect(outcomes.resolveWrongPassword).to.match(/cannot list service 'faults\/secure\/echo'.*authentication failed/);
    expect(outcomes.channelWrongPassword).to.match(/authentication failed/);
    expect(outcomes.registerOutsideRights).to.match(/permission denied/);
    // A wrong CA is named, as grpc-js words it ('unable to verify the first certificate')…
    for (const what of ['registerWrongCaNoAuth', 'resolveWrongCaNoAuth']) {
      expect(outcomes[what], what).to.match(/(unreachable since .*|did not accept .*)last error: unable to verify the first certificate/);
    }
    // …but not when auth is on too: etcd3 (1.1.2) authenticates through a new gRPC client per
    // attempt, without the connection's channel options, and its retries land on the shared
    // subchannel that already failed, for which grpc-js says 'Last error: null'. A gap below us;
    // the failure is still prompt and names the etcd.
    for (const what of ['registerWrongCa', 'resolveWrongCa', 'channelWrongCa']) {
      expect(outcomes[what], what).to.match(new RegExp(`${etcd.hosts[0]}.*last error: no connection established`));
    }
    expect(outcomes.registerPlainText).to.not.equal('ok');
  });
});
