import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import { etcdctl, runningEtcdCount, startEtcd, startEtcdCluster } from './etcd';
import { startEchoServer } from './echo-server';
import { loadEcho, unary } from './echo-proto';
import { seededRandom, waitFor } from './wait';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('test support: real etcd', function () {
  this.timeout(60_000);

  it('starts on free loopback ports, answers put/get, and leaves no process or data dir', async () => {
    const etcd = await startEtcd();
    const pid = etcd.pid!;
    expect(etcd.endpoints[0]).to.match(/^127\.0\.0\.1:\d+$/);
    expect(etcd.clientPort).to.not.equal(2379);
    const client = new Etcd3({ hosts: etcd.endpoints });
    try {
      await client.put('support/k').value('v1');
      expect(await client.get('support/k').string()).to.equal('v1');
      expect(etcdctl(etcd.endpoints, ['get', '--print-value-only', 'support/k']).trim()).to.equal('v1');
    } finally {
      client.close();
      await etcd.destroy();
    }
    expect(isAlive(pid)).to.equal(false);
    const { existsSync } = await import('node:fs');
    expect(existsSync(etcd.dataDir)).to.equal(false);
  });

  it('keeps data across kill -9 and restart() on the same ports', async () => {
    const etcd = await startEtcd();
    try {
      etcdctl(etcd.endpoints, ['put', 'durable', 'yes']);
      const oldPid = etcd.pid!;
      await etcd.kill('SIGKILL');
      expect(etcd.isRunning()).to.equal(false);
      expect(isAlive(oldPid)).to.equal(false);
      await etcd.restart();
      expect(etcd.pid).to.not.equal(oldPid);
      expect(etcdctl(etcd.endpoints, ['get', '--print-value-only', 'durable']).trim()).to.equal('yes');
    } finally {
      await etcd.destroy();
    }
  });

  it('reports the tail of the log when etcd cannot start', async () => {
    let error: Error | undefined;
    try {
      await startEtcd({ extraArgs: ['--no-such-flag'], healthTimeoutMs: 5000 });
    } catch (err) {
      error = err as Error;
    }
    expect(error?.message).to.match(/exited before it was healthy/);
    expect(error?.message).to.match(/no-such-flag/);
  });

  it('runs a 3-member cluster that still answers with one member down', async () => {
    const cluster = await startEtcdCluster(3);
    const pids = cluster.members.map(m => m.pid!);
    try {
      const leader = await cluster.leader();
      await leader.kill('SIGKILL');
      const rest = cluster.members.filter(m => m !== leader).map(m => m.endpoint);
      // A new leader is elected within a few election timeouts (500 ms each here).
      const electedMs = await waitFor('a write after the leader died', () => {
        etcdctl(rest, ['put', 'quorum', 'ok']);
        return true;
      }, { timeoutMs: 15_000, intervalMs: 100 });
      console.log(`      write accepted ${electedMs} ms after the leader was killed`);
      expect(etcdctl(rest, ['get', '--print-value-only', 'quorum']).trim()).to.equal('ok');
      await leader.restart();
      expect(etcdctl([leader.endpoint], ['get', '--print-value-only', 'quorum']).trim()).to.equal('ok');
    } finally {
      await cluster.destroy();
    }
    expect(pids.filter(isAlive)).to.deep.equal([]);
    expect(runningEtcdCount()).to.equal(0);
  });
});

describe('test support: echo server fixture', () => {
  it('serves, adds latency, fails at a seeded rate, and names the replica', async () => {
    const server = await startEchoServer({ name: 'r1', random: seededRandom(42) });
    const { Client } = loadEcho();
    const client = new Client(server.address, grpc.credentials.createInsecure());
    try {
      const reply = await unary(client, 'ping');
      expect(reply).to.include({ message: 'ping', server: 'r1' });

      server.setBehaviour({ failRate: 1, failCode: grpc.status.RESOURCE_EXHAUSTED, pushbackMs: 25 });
      const err = await unary(client).then(() => undefined, (e: grpc.ServiceError) => e);
      expect(err?.code).to.equal(grpc.status.RESOURCE_EXHAUSTED);
      expect(err?.metadata.get('grpc-retry-pushback-ms')).to.deep.equal(['25']);

      server.setBehaviour({ failRate: 0.5 });
      const results = await Promise.allSettled(Array.from({ length: 200 }, () => unary(client)));
      const failures = results.filter(r => r.status === 'rejected').length;
      expect(failures).to.be.within(60, 140);
      expect(server.calls).to.equal(202);
      expect(server.inFlight).to.equal(0);
    } finally {
      client.close();
      await server.stop();
    }
  });

  it('holdNext(n) holds exactly the next n calls in the handler; release() lets them answer normally', async () => {
    const server = await startEchoServer({ name: 'r1' });
    const { Client } = loadEcho();
    const client = new Client(server.address, grpc.credentials.createInsecure());
    try {
      const hold = server.holdNext(2);
      const held = [unary(client, 'a'), unary(client, 'b')];
      await waitFor('two calls held', () => hold.held === 2, { timeoutMs: 5000 });
      expect((await unary(client, 'c')).message).to.equal('c'); // the third is not held
      expect([server.inFlight, hold.taken]).to.deep.equal([2, 2]);
      hold.release();
      expect((await Promise.all(held)).map(r => r.message).sort()).to.deep.equal(['a', 'b']);
      expect([server.inFlight, hold.held]).to.deep.equal([0, 0]);
    } finally {
      client.close();
      server.forceStop();
    }
  });

  it('hangs calls until the client gives up', async () => {
    const server = await startEchoServer({ hang: true });
    const { Client } = loadEcho();
    const client = new Client(server.address, grpc.credentials.createInsecure());
    try {
      const err = await unary(client, 'x', { deadline: Date.now() + 200 }).then(() => undefined, (e: grpc.ServiceError) => e);
      expect(err?.code).to.equal(grpc.status.DEADLINE_EXCEEDED);
    } finally {
      client.close();
      server.forceStop();
    }
  });
});
