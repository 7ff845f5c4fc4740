/**
 * `node-zookeeper-client`, an optional pure-JS dependency loaded only when ZooKeeper is
 * used, so etcd-only installs never need it. Only the API we use is typed (it ships none).
 */

/** ZooKeeper's `Stat` as the client decodes it (zxids and the owner are 8-byte big-endian Buffers). */
export interface ZkStat {
  readonly czxid: Buffer;
  readonly mzxid: Buffer;
  readonly version: number;
  readonly ephemeralOwner: Buffer;
  readonly numChildren: number;
}

export interface ZkEvent {
  readonly type: number;
  readonly name: string;
  readonly path: string;
}

export interface ZkException extends Error {
  getCode(): number;
}

export type ZkWatcher = (event: ZkEvent) => void;
type Callback<T extends unknown[]> = (error: ZkException | null, ...results: T) => void;

export interface ZkRawClient {
  connect(): void;
  close(): void;
  getSessionId(): Buffer;
  getSessionTimeout(): number;
  getState(): { name: string; code: number };
  on(event: 'connected' | 'disconnected' | 'expired' | 'authenticationFailed' | 'connectedReadOnly', listener: () => void): this;
  removeAllListeners(): this;
  exists(path: string, watcher: ZkWatcher | undefined, callback: Callback<[ZkStat | null]>): void;
  getChildren(path: string, watcher: ZkWatcher | undefined, callback: Callback<[string[], ZkStat]>): void;
  getData(path: string, watcher: ZkWatcher | undefined, callback: Callback<[Buffer | null, ZkStat]>): void;
  create(path: string, data: Buffer | null, mode: number, callback: Callback<[string]>): void;
  setData(path: string, data: Buffer | null, version: number, callback: Callback<[ZkStat]>): void;
  remove(path: string, version: number, callback: Callback<[]>): void;
  mkdirp(path: string, callback: Callback<[string]>): void;
}

export interface ZkLibrary {
  createClient(connectionString: string, options: { sessionTimeout: number; spinDelay: number; retries: number }): ZkRawClient;
  readonly CreateMode: { readonly PERSISTENT: number; readonly EPHEMERAL: number };
  readonly Event: { readonly NODE_CREATED: number; readonly NODE_DELETED: number; readonly NODE_DATA_CHANGED: number; readonly NODE_CHILDREN_CHANGED: number };
  readonly Exception: {
    readonly NO_NODE: number; readonly NODE_EXISTS: number; readonly BAD_VERSION: number;
    readonly CONNECTION_LOSS: number; readonly SESSION_EXPIRED: number; readonly NOT_EMPTY: number;
  };
}

/** The npm package of the ZooKeeper client (an optional dependency of this package). */
export const ZOOKEEPER_CLIENT_PACKAGE = 'node-zookeeper-client';

let library: ZkLibrary | undefined;

/** Loads the client on first use; when missing, throws naming the package. `load` is replaceable for tests. */
// eslint-disable-next-line @typescript-eslint/no-require-imports
export function zookeeperLibrary(load: (name: string) => unknown = name => require(name)): ZkLibrary {
  if (library) return library;
  try {
    library = load(ZOOKEEPER_CLIENT_PACKAGE) as ZkLibrary;
  } catch (err) {
    const cause = (err as NodeJS.ErrnoException)?.code === 'MODULE_NOT_FOUND' ? 'it is not installed' : (err as Error).message;
    throw new Error(`ZooKeeper support needs the optional package '${ZOOKEEPER_CLIENT_PACKAGE}' (${cause}): ` +
      `npm install ${ZOOKEEPER_CLIENT_PACKAGE} (an install with --omit=optional or --no-optional leaves it out)`);
  }
  return library;
}

/** The code of a client error (`Exception.NO_NODE`…), or undefined for other errors. */
export function zkErrorCode(err: unknown): number | undefined {
  return typeof (err as ZkException)?.getCode === 'function' ? (err as ZkException).getCode() : undefined;
}

/** A Buffer zxid / session id as hex (`0x…`), the way ZooKeeper's own tools print them. */
export function hex(id: Buffer | null | undefined): string {
  return id ? `0x${id.toString('hex').replace(/^0+(?=.)/, '')}` : '0x0';
}
