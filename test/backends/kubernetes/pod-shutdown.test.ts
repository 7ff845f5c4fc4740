/**
 * A pod's SIGTERM with no registration (Kubernetes registers pods itself):
 * `shutdownOnSignals(server, undefined, { health })` goes NOT_SERVING → grace → drain → stop,
 * while the EndpointSlice marks the pod terminating; callers on `kubernetes:///` lose no call.
 */
import { expect } from 'chai';
import { register, createRetryInterceptor, gracefulShutdown, shutdownOnSignals, type ShutdownPhase, type ShutdownResult } from '../../../src';
import { type EchoClient } from '../../support/echo-proto';
import { waitFor } from '../../support/wait';
import { endpointSlice, sliceEndpoint } from '../../support/kube-apiserver-double';
import { makeClient, runCalls, failedCount } from '../../balancer/support/load';
import { startHealthEchoServer, type HealthEchoServer } from '../../balancer/support/health-service';
import { freePort } from '../../support/ports';
import { startKubeFixture, type KubeFixture } from './kube-fixtures';

describe('Kubernetes pod shutdown without a registration (API server double)', function () {
  this.timeout(30_000);
  let kube: KubeFixture;
  let savedKubeconfig: string | undefined;
  let pods: HealthEchoServer[] = [];
  let client: EchoClient | undefined;

  before(async function () {
    kube = await startKubeFixture({ namespace: 'shop' });
    savedKubeconfig = process.env.KUBECONFIG;
    process.env.KUBECONFIG = kube.kubeconfig;
    register();
  });

  after(async function () {
    client?.close();
    await Promise.all(pods.map(p => new Promise<void>(resolve => p.echo.server.tryShutdown(() => resolve()))));
    await kube.remove();
    if (savedKubeconfig === undefined) delete process.env.KUBECONFIG;
    else process.env.KUBECONFIG = savedKubeconfig;
  });

  it('a health option that is not a health service is a TypeError naming it', async function () {
    const server = { tryShutdown: () => undefined, forceShutdown: () => undefined };
    try {
      await gracefulShutdown(server, undefined, { health: {} as never });
      expect.fail('resolved');
    } catch (err) {
      expect(err).to.be.instanceOf(TypeError);
      expect((err as Error).message).to.match(/gracefulShutdown: health must be a HealthImplementation/);
    }
  });

  it('SIGTERM: NOT_SERVING → grace → draining → stopped, no deregistration step, zero failed calls', async function () {
    const port = await freePort();
    pods = [await startHealthEchoServer({ address: `127.0.0.30:${port}`, name: 'old' }), await startHealthEchoServer({ address: `127.0.0.31:${port}`, name: 'new' })];
    const slice = (terminating: boolean) => endpointSlice('shop', 'cart', 'cart-x', {
      ports: [{ name: 'grpc', port }],
      endpoints: [sliceEndpoint('127.0.0.30', 'old', terminating ? 'terminating' : 'ready'), sliceEndpoint('127.0.0.31', 'new')],
    });
    kube.api.applySlice(slice(false));
    client = makeClient('kubernetes:///cart:grpc', { etcd_least_request: { healthCheck: { serviceName: '' } } }, { interceptors: [createRetryInterceptor()] });
    await runCalls(client, 4, 2, () => ({ options: { deadline: Date.now() + 10_000 } }));

    const signal: NodeJS.Signals = 'SIGUSR2';
    const phases: ShutdownPhase[] = [];
    let done: ShutdownResult | Error | undefined;
    shutdownOnSignals(pods[0].echo.server, undefined, {
      signals: [signal], health: pods[0].health, deregisterGraceMs: 500, drainMs: 5_000,
      onPhase: p => phases.push(p), onShutdown: r => { done = r; },
    });
    let failed = 0;
    let ok = 0;
    let running = true;
    const load = (async () => {
      for (let i = 0; running && i < 100_000; i++) {
        const r = await runCalls(client!, 4, 2, () => ({ options: { deadline: Date.now() + 10_000 } }));
        failed += failedCount(r);
        ok += r.ok;
      }
    })();
    // The kubelet sends SIGTERM as the EndpointSlice controller marks the pod terminating.
    process.kill(process.pid, signal);
    kube.api.applySlice(slice(true));
    await waitFor('the shutdown to finish', () => done !== undefined, { timeoutMs: 15_000 });
    running = false;
    await load;
    expect(done).to.not.be.instanceOf(Error);
    expect(phases).to.deep.equal(['not-serving', 'grace', 'draining', 'stopped']);
    expect(ok).to.be.greaterThan(10);
    expect(failed).to.equal(0);
  });
});
