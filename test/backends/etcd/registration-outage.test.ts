import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { registerEndpoint } from '../../../src/register';
import { type Registration } from '../../../src/discovery/registration';
import { type LostEvent, type RegisteredEvent } from '../../../src/discovery/registration-events';
import { startEtcd, type EtcdServer } from '../../support/etcd';
import { startEchoServer, type EchoServer } from '../../support/echo-server';
import { loadEcho, type EchoClient } from '../../support/echo-proto';
import { startSteadyLoad, type SteadyLoad } from '../../support/steady-load';
import { waitFor } from '../../support/wait';
import { EtcdObserver } from './registry-fixtures';

const TTL_SECONDS = 2;

describe('registry: etcd killed (-9) for longer than 2×TTL, then restarted', function () {
  this.timeout(40_000);

  let etcd: EtcdServer | undefined;
  let echo: EchoServer | undefined;
  let client: EchoClient | undefined;
  let observer: EtcdObserver | undefined;
  let registration: Registration | undefined;
  let load: SteadyLoad | undefined;

  afterEach(async () => {
    await load?.stop();
    client?.close();
    await registration?.close();
    observer?.close();
    echo?.forceStop();
    await etcd?.destroy();
  });

  it('comes back by itself, reports whether the lease was kept, and the server never stalls', async () => {
    etcd = await startEtcd();
    echo = await startEchoServer({ name: 'outage' });
    observer = new EtcdObserver(etcd.endpoints);
    const { Client } = loadEcho();
    client = new Client(echo.address, grpc.credentials.createInsecure());
    registration = await registerEndpoint({
      service: 'test/outage', address: echo.address, ttlSeconds: TTL_SECONDS, etcd: { hosts: etcd.endpoints },
    });
    const lost: LostEvent[] = [];
    const registered: RegisteredEvent[] = [];
    let errors = 0;
    registration.onLost(e => lost.push(e));
    registration.onRegistered(e => registered.push(e));
    registration.onError(() => errors++);
    const leaseBefore = registration.leaseId;
    const key = registration.key;

    load = startSteadyLoad(client, { concurrency: 4, phase: 'before' });
    await waitFor('calls to flow', () => load!.ok > 50, { timeoutMs: 5000 });

    load.phase('etcd down');
    const killedAt = Date.now();
    await etcd.kill('SIGKILL');
    const lostMs = await waitFor('the loss to be noticed', () => lost.length > 0, { timeoutMs: 5000 * TTL_SECONDS });
    expect([lost[0].reason, lost[0].leaseId]).to.deep.equal(['unreachable', leaseBefore]);
    expect(registration.state).to.equal('lost');
    // Draining during the outage: update() waits for etcd and lands once it is back.
    const drained = registration.update({ weight: 0 });
    // Stay down for longer than 2×TTL: etcd3's own Lease would have given up here.
    await waitFor('2.5×TTL of outage', () => Date.now() - killedAt >= 2500 * TTL_SECONDS, { timeoutMs: 10_000, intervalMs: 50 });

    load.phase('etcd restarting');
    await etcd.restart();
    const healthyAt = Date.now();
    load.phase('etcd back');
    const keyBackMs = await waitFor('the key to be back', async () => (await observer!.get(key)) !== undefined, { timeoutMs: 10_000, intervalMs: 20 });
    const registeredMs = await waitFor('onRegistered', () => registered.length > 0, { timeoutMs: 10_000 });
    const event = registered[0];
    const drainedMs = await waitFor('the update to land', () => drained.then(() => true), { timeoutMs: 10_000 });
    expect(JSON.parse((await observer.get(key))!.value).Metadata.weight).to.equal(0);
    console.log(`      loss noticed ${lostMs} ms after kill; down ${healthyAt - killedAt} ms; key present ${keyBackMs} ms after etcd healthy; `
      + `onRegistered ${registeredMs} ms after healthy, leaseKept=${event.leaseKept}, downtime ${event.downtimeMs} ms; `
      + `update made during the outage landed ${drainedMs} ms later; ${errors} errors reported`);
    // One loop with backoff (≥ 50 ms between attempts), not a retry storm.
    expect(errors).to.be.lessThan((healthyAt - killedAt) / 50);

    // From 2 s after etcd is healthy, the key is there continuously, under the lease the registration reports.
    await waitFor('2 s after healthy', () => Date.now() - healthyAt >= 2000, { timeoutMs: 10_000, intervalMs: 20 });
    const watchUntil = Date.now() + 3000 * TTL_SECONDS;
    let polls = 0;
    while (Date.now() < watchUntil) {
      const kv = await observer.get(key);
      expect(kv, `key missing at ${Date.now() - healthyAt} ms after healthy`).to.not.equal(undefined);
      expect(kv!.lease).to.equal(registration.leaseId);
      polls++;
      await new Promise(resolve => setTimeout(resolve, 50));
    }
    expect(registered).to.have.length(1);
    expect(event.leaseId).to.equal(registration.leaseId);
    expect(event.leaseKept).to.equal(registration.leaseId === leaseBefore);
    expect(registration.state).to.equal('registered');

    const totals = await load.stop();
    console.log(`      per phase ${JSON.stringify(totals.byPhase)}; key polled ${polls}×`);
    expect(totals.failures).to.deep.equal([]);
    expect(totals.byPhase['etcd down'].maxLatencyMs).to.be.lessThan(1000);
    for (const [phase, t] of Object.entries(totals.byPhase)) expect(t.maxLatencyMs, `max latency while ${phase}`).to.be.lessThan(1000);
  });
});
