/**
 * Echo replicas in child processes, for tests, the demo and the bench: a real
 * `kill -9` (the kernel closes the sockets with no GOAWAY or trailers), graceful
 * shutdown through the registry, behaviour changes over IPC.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { EchoBehaviour } from './echo-server';

export interface ReplicaConfig {
  /** Name put in replies. Defaults to the address. */
  name?: string;
  /** Listen address. Defaults to `127.0.0.1:0`. */
  address?: string;
  behaviour?: EchoBehaviour;
  /** Register under this service (in etcd, or ZooKeeper with `zookeeperHosts`) when set. */
  service?: string;
  etcdHosts?: string[];
  /** Register in ZooKeeper (`host:port,…`) instead of etcd. */
  zookeeperHosts?: string;
  /** Register with this Consul agent (`host:port`) instead of etcd. */
  consulAddress?: string;
  weight?: number;
  priority?: number;
  /** Registration metadata (e.g. `{ zone: 'a' }`). */
  metadata?: Record<string, unknown>;
  ttlSeconds?: number;
  /**
   * Report load (ORCA, `loadReportServerOptions`) per call, and out of band too with `outOfBand`;
   * `application_utilization` is the busy share of its `maxConcurrent` slots when it has a limit,
   * else the event loop's. Defaults to none.
   */
  loadReports?: { outOfBand?: boolean };
}

export type ReplicaCommand =
  | { type: 'behaviour'; behaviour: EchoBehaviour }
  | { type: 'update'; weight?: number; priority?: number }
  | { type: 'shutdown'; deregisterGraceMs?: number; drainMs?: number };

/**
 * A client may put a unique id per logical call in this header: a replica counts the ids
 * it sees more than once (one call run twice on one replica, e.g. by a hedge or a retry).
 */
export const CALL_ID_HEADER = 'x-echo-call-id';

export type ReplicaEvent =
  | { type: 'ready'; address: string; pid: number }
  | { type: 'stats'; calls: number; inFlight: number; repeatedCallIds?: number }
  | { type: 'error'; message: string };

export interface ReplicaProcess {
  /** The Node child process (e.g. its `signalCode` after `kill()`). */
  readonly child: ChildProcess;
  readonly name: string;
  readonly address: string;
  readonly pid: number;
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>;
  /** Latest figures the replica reported (every 250 ms); `repeatedCallIds` counts `CALL_ID_HEADER` ids seen twice. */
  readonly stats: { calls: number; inFlight: number; repeatedCallIds: number };
  isRunning(): boolean;
  setBehaviour(behaviour: EchoBehaviour): void;
  update(weights: { weight?: number; priority?: number }): void;
  /** Graceful shutdown through the registry (deregister, grace, drain); resolves on exit. */
  shutdown(options?: { deregisterGraceMs?: number; drainMs?: number }): Promise<void>;
  /** Sends a signal (default SIGKILL) and waits for exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

const MAIN = join(__dirname, 'replica-main.ts');
const START_TIMEOUT_MS = 20_000;
const live = new Set<ChildProcess>();

/** Starts one replica process and waits until it serves (and is registered, when `service` is set). */
export function spawnReplica(config: ReplicaConfig = {}): Promise<ReplicaProcess> {
  const child = fork(MAIN, [JSON.stringify(config)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  live.add(child);
  const exited = new Promise<void>(resolve => child.once('exit', () => {
    live.delete(child);
    resolve();
  }));
  const isRunning = (): boolean => child.exitCode === null && child.signalCode === null;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`replica ${config.name ?? ''} did not start within ${START_TIMEOUT_MS} ms`));
    }, START_TIMEOUT_MS);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`replica ${config.name ?? ''} exited during start (${signal ?? code})`));
    });
    const stats = { calls: 0, inFlight: 0, repeatedCallIds: 0 };
    child.on('message', (raw: unknown) => {
      const event = raw as ReplicaEvent;
      if (event.type === 'stats') {
        stats.calls = event.calls;
        stats.inFlight = event.inFlight;
        stats.repeatedCallIds = event.repeatedCallIds ?? 0;
      } else if (event.type === 'error') {
        clearTimeout(timer);
        reject(new Error(`replica ${config.name ?? ''} failed: ${event.message}`));
      } else if (event.type === 'ready') {
        clearTimeout(timer);
        const command = (cmd: ReplicaCommand): void => {
          if (isRunning() && child.connected) child.send(cmd);
        };
        resolve({
          child,
          name: config.name ?? event.address,
          address: event.address,
          pid: event.pid,
          exited,
          stats,
          isRunning,
          setBehaviour: behaviour => command({ type: 'behaviour', behaviour }),
          update: w => command({ type: 'update', ...w }),
          async shutdown(options = {}) {
            command({ type: 'shutdown', ...options });
            await exited;
          },
          async kill(signal = 'SIGKILL') {
            if (isRunning()) child.kill(signal);
            await exited;
          },
        });
      }
    });
  });
}

/** Kills every replica process still running (root hooks, demo and bench cleanup). */
export async function killAllReplicas(): Promise<void> {
  const children = [...live];
  for (const c of children) c.kill('SIGKILL');
  await Promise.all(children.map(c => (c.exitCode !== null || c.signalCode !== null
    ? Promise.resolve()
    : new Promise<void>(resolve => c.once('exit', () => resolve())))));
}

process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});
