/** Targets, options, and where the cluster comes from: in-cluster files, KUBECONFIG (several files), contexts, tokens, exec plugins, TLS with client certificates. */
import { expect } from 'chai';
import { chmodSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { register, registerEndpoint } from '../../../src';
import { parseKubernetesTarget } from '../../../src/backends/kubernetes/target';
import { validateKubernetesOptions } from '../../../src/backends/kubernetes/connection';
import { loadClusterAccess, type KubeEnvironment } from '../../../src/backends/kubernetes/kube-config';
import { KubeClient } from '../../../src/backends/kubernetes/kube-client';
import { TOKEN_FILE_REREAD_MS, tokenFile } from '../../../src/backends/kubernetes/credentials';
import { KubeApiServerDouble, endpointSlice, sliceEndpoint } from '../../support/kube-apiserver-double';
import { generateTestCertificates, type TestCertificates } from '../../support/tls';
import { kubeconfigText } from './kube-fixtures';

const AUTO = { kubeconfig: undefined, context: undefined };
const uri = (path: string, authority?: string) => ({ scheme: 'kubernetes', authority, path });

describe('Kubernetes targets and cluster access', function () {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'grpc-etcd-lb-kubecfg-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const env = (vars: NodeJS.ProcessEnv, serviceAccountDir = join(dir, 'sa')): KubeEnvironment => ({ env: vars, serviceAccountDir, home: join(dir, 'home') });

  it('parses <service>.<namespace>:<port|name> and <service>:<port>; the authority is a valid host', () => {
    expect(parseKubernetesTarget(uri('echo.apps:grpc'))).to.deep.include({ name: 'echo', namespace: 'apps', port: 'grpc', authority: 'echo.apps' });
    expect(parseKubernetesTarget(uri('echo:50051'))).to.deep.include({ name: 'echo', namespace: undefined, port: 50051, authority: 'echo' });
    expect(parseKubernetesTarget(uri('echo.apps.svc.cluster.local:grpc'))).to.deep.include({ name: 'echo', namespace: 'apps', authority: 'echo.apps.svc.cluster.local' });
    expect(() => parseKubernetesTarget(uri('echo.apps.other:grpc'))).to.throw(/is not <service>.<namespace>/);
    expect(() => new URL(`http://${parseKubernetesTarget(uri('echo.apps:grpc')).authority}`)).to.not.throw();
  });

  it('a bad target throws naming the expected form', () => {
    for (const [path, why] of [['echo', /port is missing/], ['Echo:80', /not a Service name/], ['echo.Bad_ns:80', /not a namespace/],
      ['echo:70000', /out of range/], ['echo:-grpc', /not a port number or port name/], [`echo:${'p'.repeat(64)}`, /not a port/]] as const) {
      expect(() => parseKubernetesTarget(uri(path)), path).to.throw(Error, why).with.property('message').that.includes('expected kubernetes:///<service>.<namespace>:<port>');
    }
    expect(() => parseKubernetesTarget(uri('echo:80', 'host'))).to.throw(/authority/);
  });

  it('options: unknown keys and bad values are TypeErrors naming them; registerEndpoint refuses kubernetes', async () => {
    expect(() => validateKubernetesOptions({ kubeConfig: 'x' }, 'register()')).to.throw(TypeError, "unknown kubernetes option 'kubeConfig'");
    expect(() => validateKubernetesOptions({ context: '' }, 'register()')).to.throw(TypeError, 'kubernetes context must be a non-empty string');
    expect(() => validateKubernetesOptions({ kubeconfig: join(dir, 'nope') }, 'register()')).to.throw(TypeError, `register(): kubernetes kubeconfig "${join(dir, 'nope')}": no such file`);
    expect(() => register({ kubernetes: 'x' as never })).to.throw(TypeError, /kubernetes options must be an object/);
    try {
      await registerEndpoint({ service: 's', address: '127.0.0.1:1', kubernetes: {} });
      expect.fail('resolved');
    } catch (err) {
      expect((err as Error).message).to.match(/the kubernetes backend takes no registrations: Kubernetes registers pods itself/);
    }
  });

  it('in a pod: the service account (token, CA, namespace) and KUBERNETES_SERVICE_HOST/PORT', () => {
    const sa = join(dir, 'sa');
    mkdirSync(sa);
    writeFileSync(join(sa, 'token'), 'tok\n');
    writeFileSync(join(sa, 'namespace'), 'payments');
    writeFileSync(join(sa, 'ca.crt'), 'CA');
    const access = loadClusterAccess(AUTO, env({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443', KUBECONFIG: join(dir, 'none') }));
    expect(access).to.deep.include({ server: 'https://[fd00::1]:443', namespace: 'payments', source: 'in-cluster service account' });
    expect(access.ca?.toString()).to.equal('CA');
  });

  it('namespace defaults: the pod\'s, else the context\'s, else "default"', () => {
    const config = join(dir, 'config');
    writeFileSync(config, kubeconfigText('http://127.0.0.1:1', { namespace: 'ctx-ns' }));
    expect(loadClusterAccess(AUTO, env({ KUBECONFIG: config })).namespace).to.equal('ctx-ns');
    writeFileSync(config, kubeconfigText('http://127.0.0.1:1'));
    expect(loadClusterAccess(AUTO, env({ KUBECONFIG: config })).namespace).to.equal('default');
  });

  it('KUBECONFIG joins files with ":" (first definition wins); ~/.kube/config otherwise; contexts by name; errors name the file', () => {
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    writeFileSync(a, 'apiVersion: v1\nkind: Config\ncurrent-context: one\n');
    writeFileSync(b, [
      'clusters:', '- name: c1', '  cluster: {server: "https://10.0.0.1:6443/", certificate-authority: ca.pem}',
      '- name: c2', '  cluster: {server: "http://127.0.0.1:8080", insecure-skip-tls-verify: true}',
      'users:', '- name: u', '  user: {token: abc}',
      'contexts:', '- name: one', '  context: {cluster: c1, user: u, namespace: n1}', '- name: two', '  context: {cluster: c2, user: u}', '',
    ].join('\n'));
    writeFileSync(join(dir, 'ca.pem'), 'PEM');
    const access = loadClusterAccess(AUTO, env({ KUBECONFIG: `${a}:${join(dir, 'missing')}:${b}` }));
    expect(access).to.deep.include({ server: 'https://10.0.0.1:6443', namespace: 'n1' });
    expect(access.ca?.toString(), 'relative to its file').to.equal('PEM');
    expect(loadClusterAccess({ kubeconfig: `${a}:${b}`, context: 'two' }, env({})).insecureSkipTlsVerify).to.equal(true);
    expect(() => loadClusterAccess({ kubeconfig: b, context: 'three' }, env({}))).to.throw(/has no context 'three'/);
    expect(() => loadClusterAccess(AUTO, env({}))).to.throw(/no Kubernetes connection: not in a pod .* no kubeconfig at .*home\/\.kube\/config/);
    writeFileSync(a, 'clusters: [');
    expect(() => loadClusterAccess({ kubeconfig: a, context: undefined }, env({}))).to.throw(/is not valid YAML/);
  });

  it('a token file is read again every minute (the kubelet rotates it) and at once after a 401', async () => {
    const path = join(dir, 'token');
    writeFileSync(path, 'one\n');
    let nowMs = 1_000_000;
    const credentials = tokenFile(path, () => nowMs);
    expect(await credentials.authorization()).to.equal('Bearer one');
    writeFileSync(path, 'two\n');
    nowMs += TOKEN_FILE_REREAD_MS - 1;
    expect(await credentials.authorization(), 'cached within the minute').to.equal('Bearer one');
    nowMs += 1;
    expect(await credentials.authorization()).to.equal('Bearer two');
    writeFileSync(path, 'three\n');
    credentials.invalidate();
    expect(await credentials.authorization()).to.equal('Bearer three');
    rmSync(path);
    credentials.invalidate();
    try {
      await credentials.authorization();
      expect.fail('resolved');
    } catch (err) {
      expect((err as Error).message).to.match(/cannot read the token file .*token/);
    }
  });

  it('an exec credential plugin gives the token (run again after a 401)', async () => {
    const plugin = join(dir, 'plugin.js');
    const count = join(dir, 'count');
    writeFileSync(count, '0');
    writeFileSync(plugin, [
      '#!/usr/bin/env node',
      "const fs = require('fs');",
      `const n = Number(fs.readFileSync(${JSON.stringify(count)}, 'utf8')) + 1;`,
      `fs.writeFileSync(${JSON.stringify(count)}, String(n));`,
      "const info = JSON.parse(process.env.KUBERNETES_EXEC_INFO);",
      "console.log(JSON.stringify({ apiVersion: info.apiVersion, kind: 'ExecCredential', status: { token: process.env.PREFIX + n } }));",
    ].join('\n'));
    chmodSync(plugin, 0o755);
    const api = new KubeApiServerDouble({ tokens: ['tok-2'] });
    await api.start();
    try {
      const config = join(dir, 'config');
      writeFileSync(config, kubeconfigText(api.url, {
        extraUser: ['exec:', '  apiVersion: client.authentication.k8s.io/v1', `  command: ${plugin}`, '  env:', '  - {name: PREFIX, value: tok-}'].join('\n'),
      }));
      const client = new KubeClient(loadClusterAccess({ kubeconfig: config, context: undefined }, env({})));
      api.applySlice(endpointSlice('default', 'echo', 'e1', { endpoints: [sliceEndpoint('10.0.0.1', 'p')] }));
      // tok-1 is refused, the plugin runs again, tok-2 is accepted.
      const list = await client.getJson('/apis/discovery.k8s.io/v1/namespaces/default/endpointslices', 5_000) as { items: unknown[] };
      expect(list.items).to.have.length(1);
      expect(readFileSync(count, 'utf8')).to.equal('2');
      client.close();
    } finally {
      await api.stop();
    }
  });

  describe('TLS', function () {
    let certs: TestCertificates;
    before(function () {
      certs = generateTestCertificates();
    });
    after(() => certs?.remove());

    it('https with the cluster CA and a client-certificate user; a wrong CA is refused', async () => {
      const api = new KubeApiServerDouble({ tokens: ['unused'], tls: { key: readFileSync(certs.serverKeyFile), cert: readFileSync(certs.serverCertFile), clientCa: certs.ca } });
      await api.start();
      try {
        const config = join(dir, 'config');
        const server = `https://127.0.0.1:${api.port}`;
        writeFileSync(config, kubeconfigText(server, { extraUser: `client-certificate: ${certs.serverCertFile}\nclient-key: ${certs.serverKeyFile}` })
          .replace(`server: ${server}`, `server: ${server}\n    certificate-authority-data: ${certs.ca.toString('base64')}`));
        const client = new KubeClient(loadClusterAccess({ kubeconfig: config, context: undefined }, env({})));
        await client.getJson('/apis/discovery.k8s.io/v1/namespaces/default/endpointslices', 5_000);
        expect(api.requests.byClientCertificate).to.equal(1);
        client.close();
        writeFileSync(config, readFileSync(config, 'utf8').replace(certs.ca.toString('base64'), certs.otherCa.toString('base64')));
        const refused = new KubeClient(loadClusterAccess({ kubeconfig: config, context: undefined }, env({})));
        try {
          await refused.getJson('/apis/discovery.k8s.io/v1/namespaces/default/endpointslices', 5_000);
          expect.fail('resolved');
        } catch (err) {
          expect((err as Error).message).to.match(/certificate/);
        } finally {
          refused.close();
        }
      } finally {
        await api.stop();
      }
    });
  });
});
