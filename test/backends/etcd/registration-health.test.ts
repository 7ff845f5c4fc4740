/**
 * The whole health story on real parts: replicas registered in a real etcd
 * with `registerEndpoint({ health })`, a client on `etcd:///<service>` with a
 * health-checking etcd_* policy, flips through `registration.setServing`, and
 * `gracefulShutdown` under load.
 */
import { expect } from 'chai';
import { performance } from 'node:perf_hooks';
import { Etcd3 } from 'etcd3';
import { register } from '../../../src/register';
import { getDefaultEtcdOptions, setDefaultEtcdOptions } from '../../../src/backends/etcd/connection';
import { registerEndpoint } from '../../../src/register';
import { type Registration } from '../../../src/discovery/registration';
import { gracefulShutdown, type ShutdownPhase } from '../../../src/server/graceful-shutdown';
import { startEtcd, type EtcdServer } from '../../support/etcd';
import { type EchoClient } from '../../support/echo-proto';
import { waitFor } from '../../support/wait';
import { startHealthEchoServer, type HealthEchoServer } from '../../balancer/support/health-service';
import { balancerFor, failedCount, makeClient, runCalls } from '../../balancer/support/load';

const SERVICE = 'test/health-e2e';

interface Replica {
  server: HealthEchoServer;
  registration: Registration;
  /** performance.now() of the last call that reached the server. */
  lastCallAt: number;
}

describe('health end to end: registry health + etcd resolver + health-checking policy', function () {
  this.timeout(60_000);
  let etcd: EtcdServer;
  let savedDefault: ReturnType<typeof getDefaultEtcdOptions>;
  let replicas: Replica[] = [];
  let client: EchoClient | undefined;
  let observer: Etcd3 | undefined;

  before(async () => {
    etcd = await startEtcd();
    savedDefault = getDefaultEtcdOptions();
    // `etcd:///svc` resolves through the default connection; restored in after().
    setDefaultEtcdOptions({ hosts: etcd.endpoints });
    register();
  });

  after(async () => {
    setDefaultEtcdOptions(savedDefault);
    await etcd.destroy();
  });

  afterEach(async () => {
    client?.close();
    observer?.close();
    await Promise.all(replicas.map(async r => {
      await r.registration.close();
      await r.server.echo.stop(100);
    }));
    client = observer = undefined;
    replicas = [];
  });

  async function startReplicas(count: number, service: string): Promise<Replica[]> {
    const started = await Promise.all(Array.from({ length: count }, async (_, i) => {
      const replica = { lastCallAt: 0 } as Replica;
      // NOT_SERVING until registered: the registration says SERVING after its first put.
      replica.server = await startHealthEchoServer({
        name: `r${i}`, latencyMs: 2, statuses: { '': 'NOT_SERVING', [service]: 'NOT_SERVING' },
        onCall: () => { replica.lastCallAt = performance.now(); },
      });
      replica.registration = await registerEndpoint({ service, address: replica.server.address, ttlSeconds: 2, health: replica.server.health, etcd: { hosts: etcd.endpoints } });
      return replica;
    }));
    replicas.push(...started);
    return started;
  }

  function connect(service: string, addresses: string[]): Promise<number> {
    client = makeClient(`etcd:///${service}`, { etcd_least_request: { healthCheck: { serviceName: service } } });
    return waitFor('every replica READY and healthy', async () => {
      await runCalls(client!, 1, 1);
      return balancerFor(addresses)?.endpoints.every(e => e.state === 'READY') ?? false;
    });
  }

  /** Calls in chunks of 40 at concurrency 8 until stopped; `chunks` counts finished chunks. */
  function startLoad(c: EchoClient): { stop: () => Promise<number>; chunks: () => number } {
    let running = true;
    let failed = 0;
    let chunks = 0;
    const loop = (async () => {
      while (running) {
        failed += failedCount(await runCalls(c, 40, 8));
        chunks++;
      }
    })();
    return {
      stop: async () => { running = false; await loop; return failed; },
      chunks: () => chunks,
    };
  }

  it('setServing(false) under load: the replica gets no call once the client has seen it, keeps its key, and gets traffic again after setServing(true)', async () => {
    const service = `${SERVICE}/flip`;
    const started = await startReplicas(3, service);
    const addresses = started.map(r => r.server.address);
    await connect(service, addresses);
    const [flipped, ...others] = started;
    const load = startLoad(client!);
    let failed = -1;
    try {
      await waitFor('load on every replica', () => started.every(r => r.server.echo.calls > 20));
      const atFlip = flipped.server.echo.calls;
      flipped.registration.setServing(false);
      const seenMs = await waitFor('client sees NOT_SERVING', () => balancerFor(addresses)?.endpoints.find(e => e.address === flipped.server.address)?.state === 'TRANSIENT_FAILURE', { intervalMs: 1 });
      const chunkAtSeen = load.chunks();
      await waitFor('calls picked before it was seen have ended', () => load.chunks() >= chunkAtSeen + 1);
      const settled = flipped.server.echo.calls;
      const othersAt = others.reduce((n, r) => n + r.server.echo.calls, 0);
      await waitFor('600 more calls on the others', () => others.reduce((n, r) => n + r.server.echo.calls, 0) >= othersAt + 600);
      expect(flipped.server.echo.calls).to.equal(settled);
      expect(balancerFor(addresses)?.endpoints.length, 'still resolved: setServing leaves the etcd key').to.equal(3);

      flipped.registration.setServing(true);
      const backMs = await waitFor('traffic back', () => flipped.server.echo.calls >= settled + 20);
      failed = await load.stop();
      console.log(`      etcd:/// + setServing: NOT_SERVING seen ${seenMs} ms after the flip; calls reaching the replica after the flip ${settled - atFlip}, after it was seen 0 (of 600+); traffic back ${backMs} ms after setServing(true); failed calls ${failed}`);
    } finally {
      await load.stop();
    }
    expect(failed).to.equal(0);
  });

  interface ShutdownFigures {
    failed: number;
    forced: boolean;
    /** performance.now() of: the replica's last call, each phase start, the delete event at an independent watcher. */
    lastCallAt: number;
    phaseAt: Map<ShutdownPhase, number>;
    deleteSeenAt: number;
    activeWatchesAfter: number;
    line: string;
  }

  /** Three replicas under load; gracefulShutdown of the first. */
  async function shutdownUnderLoad(service: string, notServingGraceMs: number | undefined): Promise<ShutdownFigures> {
    const started = await startReplicas(3, service);
    const addresses = started.map(r => r.server.address);
    await connect(service, addresses);
    const leaving = started[0];

    // An independent watcher of the key: when a discovery client can first see it gone.
    observer = new Etcd3({ hosts: etcd.endpoints });
    let deleteSeenAt = Number.POSITIVE_INFINITY;
    const watcher = await observer.watch().key(leaving.registration.key).create();
    watcher.on('delete', () => { deleteSeenAt = performance.now(); });

    const load = startLoad(client!);
    const phaseAt = new Map<ShutdownPhase, number>();
    try {
      await waitFor('steady load on every replica', () => started.every(r => r.server.echo.calls > 100));
      const result = await gracefulShutdown(leaving.server.echo.server, leaving.registration, {
        notServingGraceMs,
        deregisterGraceMs: 500,
        drainMs: 5_000,
        onPhase: phase => phaseAt.set(phase, performance.now()),
      });
      await waitFor('the key deletion seen by the watcher', () => deleteSeenAt < Number.POSITIVE_INFINITY);
      const othersAt = started.slice(1).reduce((n, r) => n + r.server.echo.calls, 0);
      await waitFor('300 more calls on the others', () => started.slice(1).reduce((n, r) => n + r.server.echo.calls, 0) >= othersAt + 300);
      const failed = await load.stop();
      const notServingAt = phaseAt.get('not-serving')!;
      const ms = (t: number): string => (t - notServingAt).toFixed(1);
      const line = `notServingGraceMs ${notServingGraceMs ?? 'default (200 with health)'}, times after NOT_SERVING: last call on the replica ${ms(leaving.lastCallAt)} ms, `
        + `revoke sent ${ms(phaseAt.get('deregistering')!)} ms, revoke acknowledged ${ms(phaseAt.get('grace')!)} ms, delete seen by a watcher ${ms(deleteSeenAt)} ms; `
        + `forced ${result.forced}; failed calls ${failed}; the replica served ${leaving.server.echo.calls} calls`;
      return { failed, forced: result.forced, lastCallAt: leaving.lastCallAt, phaseAt, deleteSeenAt, activeWatchesAfter: leaving.server.activeWatches, line };
    } finally {
      await load.stop();
      await watcher.cancel();
    }
  }

  it('gracefulShutdown under load, default options: zero failed calls, and the replica gets its last call before its etcd key is deleted', async () => {
    // With `health`, notServingGraceMs defaults to 200 ms: clients see NOT_SERVING first.
    const f = await shutdownUnderLoad(`${SERVICE}/graceful`, undefined);
    console.log(`      gracefulShutdown, ${f.line}`);
    expect(f.failed).to.equal(0);
    // Stronger than "before the key is deleted": before the revoke is even sent.
    expect(f.lastCallAt, 'last call on the replica vs. the revoke').to.be.at.most(f.phaseAt.get('deregistering')!);
    expect(f.forced, 'Watch streams must not hold up the drain').to.equal(false);
    expect(f.activeWatchesAfter).to.equal(0);
  });

  it('gracefulShutdown with notServingGraceMs 0: still zero failed calls (ordering then a race, reported not asserted)', async () => {
    const f = await shutdownUnderLoad(`${SERVICE}/graceful-zero`, 0);
    const deletedAt = Math.min(f.phaseAt.get('grace')!, f.deleteSeenAt);
    console.log(`      gracefulShutdown, ${f.line}; last call ${f.lastCallAt <= deletedAt ? 'before' : 'AFTER'} the key deletion`);
    expect(f.failed).to.equal(0);
    expect(f.forced).to.equal(false);
  });

  it('gracefulShutdown rejects a bad notServingGraceMs, naming it, before touching anything', async () => {
    let touched = false;
    const server = { tryShutdown: () => { touched = true; }, forceShutdown: () => { touched = true; } };
    const registration = { setServing: () => { touched = true; } } as unknown as Registration;
    const error = await gracefulShutdown(server, registration, { notServingGraceMs: -1 }).then(() => undefined, (err: Error) => err);
    expect(error?.message).to.equal('gracefulShutdown: notServingGraceMs must be a number of milliseconds ≥ 0, got -1');
    expect(touched).to.equal(false);
  });
});
