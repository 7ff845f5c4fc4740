/**
 * A TCP proxy on loopback that can cut connections on demand (the failure
 * injection etcd3's own tests use): put it between one client and etcd to
 * take only that client offline.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  /** `127.0.0.1:<port>` to connect to instead of the target. */
  readonly address: string;
  /** Connections currently proxied. */
  readonly openConnections: number;
  /** Client connections closed so far (by either side). */
  readonly closedConnections: number;
  /** Destroys every open connection and refuses new ones until `resume()`. */
  cut(): void;
  /**
   * A silent partition: open and new connections stay up but every byte is
   * dropped, until `resume()` (connections blackholed meanwhile stay dead:
   * only the client giving up on them, e.g. by keepalive, ends them).
   */
  blackhole(): void;
  /** Forwards new connections again. */
  resume(): void;
  /** Stops listening and destroys every connection. Idempotent. */
  close(): Promise<void>;
}

const live = new Set<TcpProxy>();

/** Starts a proxy on a free 127.0.0.1 port forwarding to `target` (`host:port`). */
export async function startTcpProxy(target: string): Promise<TcpProxy> {
  const colon = target.lastIndexOf(':');
  const host = target.slice(0, colon);
  const port = Number(target.slice(colon + 1));
  const sockets = new Set<Socket>();
  const pairs = new Set<{ client: Socket; upstream: Socket | undefined }>();
  let mode: 'forward' | 'refuse' | 'blackhole' = 'forward';
  let closed = false;
  let closedConnections = 0;
  const drop = (): void => undefined;

  const server: Server = createServer(client => {
    if (mode === 'refuse') {
      client.destroy();
      return;
    }
    const pair = { client, upstream: mode === 'forward' ? createConnection({ host, port }) : undefined };
    pairs.add(pair);
    sockets.add(client);
    let done = false;
    const teardown = (): void => {
      if (done) return;
      done = true;
      closedConnections++;
      client.destroy();
      pair.upstream?.destroy();
      sockets.delete(client);
      if (pair.upstream) sockets.delete(pair.upstream);
      pairs.delete(pair);
    };
    client.on('error', teardown).on('close', teardown);
    if (!pair.upstream) {
      client.on('data', drop);
      return;
    }
    sockets.add(pair.upstream);
    pair.upstream.on('error', teardown).on('close', teardown);
    client.pipe(pair.upstream);
    pair.upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (!address || typeof address !== 'object') throw new Error('tcp proxy: no address');

  const proxy: TcpProxy = {
    address: `127.0.0.1:${address.port}`,
    get openConnections() { return pairs.size; },
    get closedConnections() { return closedConnections; },
    cut() {
      mode = 'refuse';
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    blackhole() {
      mode = 'blackhole';
      for (const { client, upstream } of pairs) {
        if (!upstream) continue;
        client.unpipe(upstream);
        upstream.unpipe(client);
        // Keep reading (so a close is noticed) and drop everything.
        // unpipe() pauses a stream: resume it so a close is still noticed.
        client.on('data', drop).resume();
        upstream.on('data', drop).resume();
      }
    },
    resume() {
      mode = 'forward';
    },
    async close() {
      if (closed) return;
      closed = true;
      live.delete(proxy);
      proxy.cut();
      await new Promise<void>(resolve => server.close(() => resolve()));
    },
  };
  live.add(proxy);
  return proxy;
}

/** Closes every proxy this process started and has not closed. */
export async function closeAllTcpProxies(): Promise<void> {
  await Promise.all([...live].map(p => p.close()));
}
