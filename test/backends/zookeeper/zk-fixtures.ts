/** Helpers of the ZooKeeper tests: Curator instance JSON as Spring writes it, a raw second client, echo clients. */
import { hex, zookeeperLibrary, type ZkRawClient as RawClient } from '../../../src/backends/zookeeper/zk-client';
import { SPRING_PAYLOAD_CLASS } from '../../../src/backends/zookeeper/curator-codec';

/** A Curator `ServiceInstance` as Spring Cloud Zookeeper serialises it (metadata is string → string). */
export function springInstance(service: string, id: string, address: string, port: number, metadata: Record<string, string> = {}): string {
  return JSON.stringify({
    name: service, id, address, port, sslPort: null,
    payload: { '@class': SPRING_PAYLOAD_CLASS, id: service, name: service, metadata },
    registrationTimeUTC: Date.now(), serviceType: 'DYNAMIC',
    uriSpec: { parts: [{ value: 'scheme', variable: true }, { value: '://', variable: false }, { value: 'address', variable: true }] },
  });
}

/**
 * A second, independent ZooKeeper client (its own session; not our session code),
 * standing in for a Java service that writes and reads instances.
 */
export interface RawZk {
  readonly client: RawClient;
  create(path: string, data: string, ephemeral?: boolean): Promise<void>;
  set(path: string, data: string): Promise<void>;
  remove(path: string): Promise<void>;
  get(path: string): Promise<{ data: string; ephemeralOwner: string } | undefined>;
  children(path: string): Promise<string[]>;
  close(): void;
}

export async function rawZk(endpoint: string): Promise<RawZk> {
  const client = zookeeperLibrary().createClient(endpoint, { sessionTimeout: 10_000, spinDelay: 100, retries: 0 });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`raw ZooKeeper client: no connection to ${endpoint} in 10 s`)), 10_000);
    client.on('connected', () => {
      clearTimeout(timer);
      resolve();
    });
    client.connect();
  });
  const cb = <T>(fn: (done: (err: Error | null, value?: T) => void) => void): Promise<T> =>
    new Promise<T>((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value as T))));
  return {
    client,
    create: async (path, data, ephemeral = false) => {
      const parent = path.slice(0, path.lastIndexOf('/'));
      if (parent) await cb<string>(done => client.mkdirp(parent, done));
      await cb<string>(done => client.create(path, Buffer.from(data), ephemeral ? 1 : 0, done));
    },
    set: (path, data) => cb<void>(done => client.setData(path, Buffer.from(data), -1, err => done(err))),
    remove: path => cb<void>(done => client.remove(path, -1, err => done(err))),
    get: path => new Promise((resolve, reject) => client.getData(path, undefined, (err, data, stat) => {
      if (err) return err.getCode() === -101 ? resolve(undefined) : reject(err);
      resolve({ data: data?.toString('utf8') ?? '', ephemeralOwner: hex(stat.ephemeralOwner) });
    })),
    children: path => new Promise((resolve, reject) => client.getChildren(path, undefined, (err, children) => {
      if (err) return err.getCode() === -101 ? resolve([]) : reject(err);
      resolve(children);
    })),
    close: () => client.close(),
  };
}
