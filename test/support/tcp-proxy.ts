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
  /** Destroys every open connection and refuses new ones until `resume()`. */
  cut(): void;
  /** Accepts connections again. */
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
  let refusing = false;
  let closed = false;

  const server: Server = createServer(client => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = createConnection({ host, port });
    sockets.add(client);
    sockets.add(upstream);
    const teardown = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', teardown).on('close', teardown);
    upstream.on('error', teardown).on('close', teardown);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (!address || typeof address !== 'object') throw new Error('tcp proxy: no address');

  const proxy: TcpProxy = {
    address: `127.0.0.1:${address.port}`,
    get openConnections() { return sockets.size / 2; },
    cut() {
      refusing = true;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    resume() {
      refusing = false;
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
