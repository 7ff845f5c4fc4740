/** Helpers of the Kubernetes tests: the API server double behind a kubeconfig, echo servers on one port across loopback IPs (one slice port for all, as in a cluster). */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeApiServerDouble, type KubeApiDoubleOptions } from '../../support/kube-apiserver-double';
import { startEchoServer, type EchoServer, type EchoServerOptions } from '../../support/echo-server';
import { freePort } from '../../support/ports';
import { type EchoClient } from '../../support/echo-proto';
import { makeClient } from '../../balancer/support/load';
import { register } from '../../../src';
import type * as grpc from '@grpc/grpc-js';

export interface KubeFixture {
  readonly api: KubeApiServerDouble;
  readonly dir: string;
  /** A kubeconfig naming the double, context namespace `namespace`, bearer `token`. */
  readonly kubeconfig: string;
  remove(): Promise<void>;
}

export function kubeconfigText(server: string, options: { namespace?: string; token?: string; tokenFile?: string; extraUser?: string } = {}): string {
  const user = options.extraUser ?? (options.tokenFile ? `tokenFile: ${options.tokenFile}` : options.token ? `token: ${options.token}` : '{}');
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: double',
    '  cluster:',
    `    server: ${server}`,
    'users:',
    '- name: tester',
    '  user:',
    `    ${user.split('\n').join('\n    ')}`,
    'contexts:',
    '- name: test',
    '  context:',
    '    cluster: double',
    '    user: tester',
    ...(options.namespace ? [`    namespace: ${options.namespace}`] : []),
    'current-context: test',
    '',
  ].join('\n');
}

export async function startKubeFixture(options: KubeApiDoubleOptions & { namespace?: string; token?: string } = {}): Promise<KubeFixture> {
  const api = new KubeApiServerDouble(options);
  await api.start();
  const dir = mkdtempSync(join(tmpdir(), 'grpc-etcd-lb-kube-'));
  const kubeconfig = join(dir, 'config');
  writeFileSync(kubeconfig, kubeconfigText(api.url, { namespace: options.namespace, token: options.token }));
  return {
    api,
    dir,
    kubeconfig,
    remove: async () => {
      await api.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `count` echo servers on one port, at 127.0.0.2, 127.0.0.3, …, named `p0`, `p1`, … */
export async function startPods(count: number, options: EchoServerOptions = {}, firstIp = 2): Promise<{ port: number; servers: EchoServer[]; ips: string[] }> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const servers: EchoServer[] = [];
    try {
      for (let i = 0; i < count; i++) servers.push(await startEchoServer({ ...options, address: `127.0.0.${firstIp + i}:${port}`, name: `p${i}` }));
      return { port, servers, ips: servers.map((_, i) => `127.0.0.${firstIp + i}`) };
    } catch (err) {
      await Promise.all(servers.map(s => new Promise<void>(resolve => s.server.tryShutdown(() => resolve()))));
      if (attempt >= 5) throw err;
    }
  }
}

/** What `useKubeSuite` gives its tests (`kube` and `pods` are set once its `before` ran). */
export interface KubeSuite {
  kube: KubeFixture;
  pods: { port: number; servers: EchoServer[]; ips: string[] };
  /** A fresh Service name per call: watches of earlier tests do not interfere. */
  next(): string;
  /** A client closed after the test. */
  client(target: string, lb?: object, options?: grpc.ChannelOptions): EchoClient;
  /** Closes the clients made so far (done after each test). */
  closeClients(): void;
}

/**
 * Mocha hooks for a suite on one API server double: KUBECONFIG points at its kubeconfig
 * (restored after), `register()` is called, `podCount` pods start; clients close after
 * each test. `configure` may rewrite the kubeconfig before `register()`.
 */
export function useKubeSuite(setup: {
  fixture: Parameters<typeof startKubeFixture>[0];
  podCount: number;
  podOptions?: EchoServerOptions;
  firstIp?: number;
  servicePrefix: string;
  configure?: (kube: KubeFixture) => void;
}): KubeSuite {
  const clients: EchoClient[] = [];
  let saved: string | undefined;
  let service = 0;
  const suite: KubeSuite = {
    kube: undefined as unknown as KubeFixture,
    pods: undefined as unknown as KubeSuite['pods'],
    next: () => `${setup.servicePrefix}${++service}`,
    client: (target, lb = { etcd_weighted_round_robin: {} }, options = {}) => {
      const c = makeClient(target, lb, options);
      clients.push(c);
      return c;
    },
    closeClients: () => {
      for (const c of clients.splice(0)) c.close();
    },
  };
  before(async function () {
    suite.kube = await startKubeFixture(setup.fixture);
    setup.configure?.(suite.kube);
    saved = process.env.KUBECONFIG;
    process.env.KUBECONFIG = suite.kube.kubeconfig;
    register();
    suite.pods = await startPods(setup.podCount, setup.podOptions, setup.firstIp);
  });
  afterEach(() => suite.closeClients());
  after(async function () {
    await Promise.all((suite.pods?.servers ?? []).map(s => new Promise<void>(resolve => s.server.tryShutdown(() => resolve()))));
    await suite.kube?.remove();
    if (saved === undefined) delete process.env.KUBECONFIG;
    else process.env.KUBECONFIG = saved;
  });
  return suite;
}
