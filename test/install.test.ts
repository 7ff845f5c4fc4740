/**
 * The README's Install section, followed by a new app: the `npm pack` tarball installed
 * next to the app's own @grpc/grpc-js, then one call through `etcd:///` from plain JS.
 * Installed with `--omit=optional`, as an etcd-only user may: the ZooKeeper client
 * (an optional dependency) is absent, etcd works, and ZooKeeper says what is missing.
 */
import { expect } from 'chai';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEtcd, type EtcdServer } from './support/etcd';
import { npmChildEnv, packRepo, REPO_ROOT } from './support/npm-pack';
import { freePort } from './support/ports';
import { waitFor } from './support/wait';

const NPM_INSTALL_TIMEOUT_MS = 120_000;
const APP_TIMEOUT_MS = 30_000;
const SERVICE = 'install-check/echo';
/** Keeps a failure to reach the registry short, and still rides out a blip. */
const NPM_FETCH_FLAGS = ['--fetch-retries=2', '--fetch-retry-mintimeout=1000', '--fetch-retry-maxtimeout=5000', '--fetch-timeout=20000'];
/** npm's codes for "the registry cannot be reached": the only reason to skip. */
const REGISTRY_UNREACHABLE = /npm (?:error|ERR!) (?:code (?:ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH)\b|network )/;

/** What a user's app does, in plain CommonJS, with nothing from this repository but the tarball. */
const APP_JS = `'use strict';
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { register, registerEndpoint } = require('grpc-etcd-lb');

const etcd = { hosts: [process.env.ETCD_ENDPOINT] };
const protoPath = path.join(path.dirname(require.resolve('grpc-etcd-lb/package.json')), 'protos', 'echo.proto');
const { Echo } = grpc.loadPackageDefinition(protoLoader.loadSync(protoPath)).grpc_etcd_lb.echo;

async function main() {
  register({ etcd });
  const server = new grpc.Server();
  server.addService(Echo.service, {
    unary: (call, callback) => callback(null, { message: call.request.message, server: 'installed-app' }),
    serverStream: call => call.end(),
  });
  const port = await new Promise((resolve, reject) => server.bindAsync('127.0.0.1:0',
    grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  const registration = await registerEndpoint({ service: '${SERVICE}', address: '127.0.0.1:' + port, etcd });
  const client = new Echo('etcd:///${SERVICE}', grpc.credentials.createInsecure(), {
    'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ etcd_weighted_round_robin: {} }] }),
  });
  try {
    const reply = await new Promise((resolve, reject) => client.unary({ message: 'hello' },
      { deadline: Date.now() + 10000 }, (err, r) => (err ? reject(err) : resolve(r))));
    console.log('reply ' + JSON.stringify(reply));
  } finally {
    client.close();
    await registration.close();
    server.forceShutdown();
  }
}

main().then(() => process.exit(0), err => {
  console.error(err);
  process.exit(1);
});
`;

/** The same app asking for ZooKeeper without its optional client installed. */
const ZK_APP_JS = `'use strict';
const grpc = require('@grpc/grpc-js');
const { register, registerEndpoint } = require('grpc-etcd-lb');
register();
registerEndpoint({ service: 'echo', address: '127.0.0.1:50051', zookeeper: { hosts: '127.0.0.1:2181' } }).then(
  () => { console.log('registered?!'); process.exit(1); },
  err => { console.log('error ' + err.message); process.exit(0); });
`;

/** An app on \`kubernetes:///\` with a kubeconfig, without the optional \`yaml\` package. */
const KUBE_APP_JS = `'use strict';
const grpc = require('@grpc/grpc-js');
const { register } = require('grpc-etcd-lb');
register();
const client = new grpc.Client('kubernetes:///echo.default:grpc', grpc.credentials.createInsecure());
client.makeUnaryRequest('/echo.Echo/Unary', x => x, x => x, Buffer.alloc(0), { deadline: Date.now() + 10000 }, err => {
  console.log(err ? 'error ' + err.details : 'answered?!');
  process.exit(0);
});
`;

/** A TypeScript app that touches every part of the public types (the compiler then checks every .d.ts it reaches). */
const TYPES_CHECK_TS = `import * as grpc from '@grpc/grpc-js';
import * as lb from 'grpc-etcd-lb';
import type { RegisterOptions, RegistrationOptions, RetryOptions, BalancerSnapshot, MetricsOptions, LoadReportOptions } from 'grpc-etcd-lb';

const options: RegisterOptions = { etcd: { hosts: ['127.0.0.1:2379'] }, metrics: { perEndpoint: true } satisfies MetricsOptions };
const registration: RegistrationOptions = { service: 'svc', address: '127.0.0.1:50051', zookeeper: { hosts: '127.0.0.1:2181' } };
const retry: RetryOptions = { maxAttempts: 3, hedging: { maxAttempts: 2 } };
const interceptor: grpc.Interceptor = lb.createRetryInterceptor(retry);
const snapshots: BalancerSnapshot[] = lb.inspectBalancers();
const report: LoadReportOptions = {};
export const used = [options, registration, interceptor, snapshots, report, lb.register, lb.registerEndpoint, lb.gracefulShutdown];
`;

/** The repository's TypeScript compiler, run in the app. */
const TSC = require.resolve('typescript/bin/tsc');

interface RunResult { code: number | string | null; stdout: string; stderr: string }

function run(file: string, args: string[], cwd: string, timeoutMs: number, env: NodeJS.ProcessEnv): Promise<RunResult> {
  return new Promise(resolve => {
    execFile(file, args, { cwd, env, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (err.code ?? err.signal ?? -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('installing the npm pack tarball into a new app', function () {
  this.timeout(240_000);
  let dir: string | undefined;
  let app: string;
  let etcd: EtcdServer | undefined;

  before(async function () {
    const { tarball } = packRepo();
    dir = mkdtempSync(join(tmpdir(), 'grpc-etcd-lb-install-'));
    app = join(dir, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), `${JSON.stringify({ name: 'install-check-app', version: '1.0.0', private: true, type: 'commonjs' }, null, 2)}\n`);
    writeFileSync(join(app, 'main.js'), APP_JS);
    writeFileSync(join(app, 'zk.js'), ZK_APP_JS);
    writeFileSync(join(app, 'kube.js'), KUBE_APP_JS);
    writeFileSync(join(app, 'kubeconfig'), 'apiVersion: v1\nkind: Config\ncurrent-context: x\n');
    writeFileSync(join(app, 'types-check.ts'), TYPES_CHECK_TS);
    const install = await run('npm', [
      'install', '--prefix', app, '--omit=optional', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', ...NPM_FETCH_FLAGS,
      tarball, '@grpc/grpc-js@~1.14', '@grpc/proto-loader', '@types/node@20',
    ], app, NPM_INSTALL_TIMEOUT_MS, npmChildEnv());
    if (install.code !== 0) {
      // Offline, npm reports a missing package as ERESOLVE ("Found: @grpc/grpc-js@undefined"): ask the registry itself.
      const ping = await run('npm', ['ping', '--loglevel=error', ...NPM_FETCH_FLAGS], app, 60_000, npmChildEnv());
      if (ping.code !== 0 && REGISTRY_UNREACHABLE.test(ping.stderr)) {
        console.warn(`    skipped: npm cannot reach the registry (npm ping: ${ping.stderr.split('\n')[0]}), so the app cannot install @grpc/grpc-js`);
        this.skip();
      }
    }
    expect(install.code, `npm install failed:\n${install.stderr}`).to.equal(0);
    etcd = await startEtcd();
  });

  after(async function () {
    await etcd?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the app has exactly one @grpc/grpc-js: its own', async function () {
    const ls = await run('npm', ['ls', '@grpc/grpc-js', '--all', '--parseable', '--prefix', app], app, 30_000, npmChildEnv());
    expect(ls.code, ls.stderr).to.equal(0);
    const copies = new Set(ls.stdout.split('\n').filter(line => line.endsWith(join('@grpc', 'grpc-js'))));
    expect([...copies]).to.deep.equal([join(app, 'node_modules', '@grpc', 'grpc-js')]);
  });

  it('a plain JS app registers an endpoint and calls it through etcd:/// with etcd_weighted_round_robin, without a warning', async function () {
    const result = await run(process.execPath, ['main.js'], app, APP_TIMEOUT_MS, { ...process.env, ETCD_ENDPOINT: etcd?.endpoint });
    expect(result.code, `app failed:\n${result.stderr}`).to.equal(0);
    const reply = result.stdout.split('\n').find(line => line.startsWith('reply '));
    expect(reply, result.stdout).to.be.a('string');
    expect(JSON.parse((reply as string).slice('reply '.length))).to.include({ message: 'hello', server: 'installed-app' });
    expect(result.stderr).to.not.contain('grpc-etcd-lb:');
  });

  for (const [module, moduleResolution] of [['commonjs', 'node10'], ['nodenext', 'nodenext'], ['esnext', 'bundler']]) {
    it(`a strict TypeScript app compiles against the published types without @opentelemetry/api (skipLibCheck off, ${module}/${moduleResolution})`, async function () {
      expect(existsSync(join(app, 'node_modules', '@opentelemetry', 'api')), 'the optional peer is absent').to.equal(false);
      const tsconfig = join(app, `tsconfig.${module}.json`);
      writeFileSync(tsconfig, JSON.stringify({
        compilerOptions: { strict: true, skipLibCheck: false, noEmit: true, module, moduleResolution, target: 'ES2022', types: ['node'] },
        files: ['types-check.ts'],
      }));
      const result = await run(process.execPath, [TSC, '-p', tsconfig], app, APP_TIMEOUT_MS, process.env);
      expect(result.code, `tsc failed:\n${result.stdout}${result.stderr}`).to.equal(0);
    });
  }

  it("the README's server and client, pasted into the app as they are (only etcd's port changed), compile, serve and call", async function () {
    const blocks = [...readFileSync(join(REPO_ROOT, 'README.md'), 'utf8').matchAll(/^## A (server|client)\n[\s\S]*?^```ts\n([\s\S]*?)^```/gm)];
    expect(blocks.map(b => b[1])).to.deep.equal(['server', 'client']);
    const etcdHost = etcd!.endpoint.replace(/^https?:\/\//, '');
    for (const [, name, code] of blocks) writeFileSync(join(app, `${name}.ts`), code.replaceAll('127.0.0.1:2379', etcdHost));
    writeFileSync(join(app, 'tsconfig.readme.json'), JSON.stringify({
      compilerOptions: { strict: true, module: 'commonjs', target: 'ES2022', outDir: 'out', types: ['node'], skipLibCheck: false },
      files: ['server.ts', 'client.ts'],
    }));
    const tsc = await run(process.execPath, [TSC, '-p', 'tsconfig.readme.json'], app, APP_TIMEOUT_MS, process.env);
    expect(tsc.code, `tsc failed:\n${tsc.stdout}${tsc.stderr}`).to.equal(0);
    const port = await freePort();
    const server = spawn(process.execPath, ['out/server.js', `127.0.0.1:${port}`], { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] });
    const client = spawn(process.execPath, ['out/client.js'], { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] });
    let clientOut = '';
    client.stdout.on('data', (chunk: Buffer) => { clientOut += chunk.toString(); });
    try {
      await waitFor('the client is answered by the server', () => clientOut.includes(`from 127.0.0.1:${port}`), { timeoutMs: 20_000 });
      const exited = new Promise<number | null>(resolve => server.once('exit', code => resolve(code)));
      server.kill('SIGTERM');
      expect(await exited, 'the server exits 0 after its graceful shutdown').to.equal(0);
    } finally {
      client.kill('SIGKILL');
      server.kill('SIGKILL');
    }
  });

  it('without the optional ZooKeeper client, registering in ZooKeeper is an error naming the package', async function () {
    expect(existsSync(join(app, 'node_modules', 'node-zookeeper-client'))).to.equal(false);
    const result = await run(process.execPath, ['zk.js'], app, APP_TIMEOUT_MS, process.env);
    expect(result.code, `app failed:\n${result.stderr}`).to.equal(0);
    expect(result.stdout).to.contain("error ZooKeeper support needs the optional package 'node-zookeeper-client' (it is not installed): npm install node-zookeeper-client");
  });

  it('without the optional yaml package, a kubernetes:/// channel reading a kubeconfig fails its calls naming the package', async function () {
    expect(existsSync(join(app, 'node_modules', 'yaml'))).to.equal(false);
    const result = await run(process.execPath, ['kube.js'], app, APP_TIMEOUT_MS, { ...process.env, KUBECONFIG: join(app, 'kubeconfig') });
    expect(result.code, `app failed:\n${result.stderr}`).to.equal(0);
    expect(result.stdout).to.contain(`needs the 'yaml' package (an optional dependency of grpc-etcd-lb): npm install yaml`);
  });
});
