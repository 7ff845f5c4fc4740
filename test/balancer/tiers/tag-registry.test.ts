/**
 * An endpoint's tag is its registration `metadata.tag`, through the real
 * registries: etcd (`Metadata.tag` in the Go naming value) and ZooKeeper (the
 * Curator payload's metadata).
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { register, registerEndpoint, type Registration } from '../../../src';
import { type EchoClient } from '../../support/echo-proto';
import { startEchoServer, type EchoServer } from '../../support/echo-server';
import { startEtcd, type EtcdServer } from '../../support/etcd';
import { startZooKeeper, type ZooKeeperServer } from '../../support/zookeeper';
import { failedCount, makeClient, runCalls, waitForEndpoints } from '../support/load';

function tagged(tag: string | undefined): grpc.Metadata {
  const metadata = new grpc.Metadata();
  if (tag !== undefined) metadata.set('x-route-tag', tag);
  return metadata;
}

describe('tag routing with tags from etcd and ZooKeeper registrations', function () {
  this.timeout(90_000);
  let etcd: EtcdServer | undefined;
  let zk: ZooKeeperServer | undefined;
  let servers: EchoServer[] = [];
  const registrations: Registration[] = [];
  const clients: EchoClient[] = [];

  before(async () => {
    register();
    [etcd, zk, servers] = await Promise.all([startEtcd(), startZooKeeper(), Promise.all(['canary', 'stable'].map(name => startEchoServer({ name })))]);
  });

  after(async () => {
    for (const c of clients) c.close();
    await Promise.all(registrations.map(r => r.close()));
    await Promise.all(servers.map(s => s.stop(100)));
    await Promise.all([etcd?.destroy(), zk?.destroy()]);
  });

  for (const backend of ['etcd', 'zookeeper'] as const) {
    it(`${backend}: calls tagged canary reach only the replica registered with metadata.tag canary, untagged ones only the other`, async () => {
      const service = `tags/${backend}`;
      const connection = backend === 'etcd' ? { etcd: { hosts: etcd!.endpoints } } : { zookeeper: { hosts: zk!.endpoint } };
      registrations.push(...await Promise.all(servers.map(s => registerEndpoint({
        service, address: s.address, ttlSeconds: 10, metadata: s.name === 'canary' ? { tag: 'canary' } : {}, ...connection,
      }))));
      const target = backend === 'etcd' ? `etcd://${etcd!.endpoint}/${service}` : `zk://${zk!.endpoint}/${service}`;
      const client = makeClient(target, { etcd_least_request: { tagRouting: {} } });
      clients.push(client);
      await runCalls(client, 1, 1, () => ({ options: { deadline: Date.now() + 10_000 } }));
      await waitForEndpoints(servers.map(s => s.address));
      const canary = await runCalls(client, 60, 4, () => ({ metadata: tagged('canary') }));
      const plain = await runCalls(client, 60, 4, () => ({ metadata: tagged(undefined) }));
      expect(failedCount(canary) + failedCount(plain)).to.equal(0);
      expect(canary.byServer.get('canary')).to.equal(60);
      expect(plain.byServer.get('stable')).to.equal(60);
    });
  }
});
