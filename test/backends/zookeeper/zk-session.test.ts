/**
 * The ZooKeeper session against a server that accepts a connection and never answers the
 * connect request (a process starting or stalled): node-zookeeper-client has no handshake
 * timeout of its own, so without our watchdog it would wait on that socket forever.
 */
import { expect } from 'chai';
import { createServer, type Server, type Socket } from 'node:net';
import { ZkSession, type SessionEvent } from '../../../src/backends/zookeeper/zk-session';
import { validateZookeeperOptions } from '../../../src/backends/zookeeper/connection';
import { waitFor } from '../../support/wait';
import { startZooKeeper, type ZooKeeperServer } from '../../support/zookeeper';

describe('ZooKeeper session: a server that never answers the handshake', function () {
  this.timeout(60_000);
  let zk: ZooKeeperServer;
  let session: ZkSession | undefined;
  let silent: Server | undefined;
  const held: Socket[] = [];

  before(async function () {
    zk = await startZooKeeper();
  });

  after(async function () {
    session?.close();
    for (const s of held) s.destroy();
    silent?.close();
    await zk?.destroy();
  });

  it('drops the silent socket and reconnects to the same session once the server is back', async function () {
    const events: SessionEvent[] = [];
    session = new ZkSession(validateZookeeperOptions({ hosts: zk.endpoint }, 'test'), 10_000, () => {});
    session.on(e => events.push(e));
    session.start();
    await waitFor('the first connection', () => session!.connected, { timeoutMs: 10_000 });
    const sessionId = session.sessionId;
    const timeoutMs = session.negotiatedTimeoutMs;

    await zk.kill('SIGKILL');
    await waitFor('the client to see the disconnect', () => !session!.connected, { timeoutMs: 10_000 });
    // Something takes the port, accepts the client's next connection and never answers it.
    const port = Number(zk.endpoint.slice(zk.endpoint.lastIndexOf(':') + 1));
    silent = createServer(socket => held.push(socket));
    await new Promise<void>((resolve, reject) => silent!.once('error', reject).listen(port, '127.0.0.1', resolve));
    await waitFor('the client to connect to the silent listener', () => held.length > 0, { timeoutMs: 5_000, intervalMs: 10 });
    const stalledAt = Date.now();
    silent.close(); // stops listening at once (its callback waits for the held sockets)
    await zk.restart();

    const backMs = await waitFor('the session to reconnect', () => session!.connected, { timeoutMs: timeoutMs, intervalMs: 20 });
    console.log(`      session timeout ${timeoutMs} ms; the client reconnected ${Date.now() - stalledAt} ms after its socket stalled (${backMs} ms after the server was back)`);
    expect(session.sessionId, 'the same session').to.equal(sessionId);
    expect(events.filter(e => e.type === 'expired')).to.deep.equal([]);
  });
});
