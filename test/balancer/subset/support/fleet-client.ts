/** Client processes for the fleet tests: real `kill -9`, per-window reports over IPC (see fleet-client-main.ts). */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export interface FleetClientConfig {
  name: string;
  service: string;
  etcdHosts: string[];
  loadBalancingConfig: object[];
  zone?: string;
  /** Channels on the target in this process (one registry announcement however many). Defaults to 1. */
  channels?: number;
  /** One call started every this many ms. Defaults to 10. */
  callIntervalMs?: number;
}

export type FleetClientEvent =
  | { type: 'ready'; pid: number }
  | {
    type: 'window'; servers: Record<string, number>; calls: number; failed: number; lastError: string;
    view: { selfIndex: number | undefined; clientCount: number; zones: Record<string, number> } | undefined;
  };

export type WindowReport = Extract<FleetClientEvent, { type: 'window' }>;

export interface FleetClient {
  readonly name: string;
  readonly pid: number;
  /** Reports received, newest last. */
  readonly windows: WindowReport[];
  /** Replica names that answered in the last `count` windows. */
  recentServers(count: number): Set<string>;
  /** Number of reports received so far (a mark for `callsSince`). */
  readonly received: number;
  /** Successful calls per replica name in the reports received after `mark`. */
  callsSince(mark: number): Map<string, number>;
  readonly latest: WindowReport | undefined;
  isRunning(): boolean;
  /** Closes channels and the registry subscription, then exits. */
  close(): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

const MAIN = join(__dirname, 'fleet-client-main.ts');
const live = new Set<ChildProcess>();

export function spawnFleetClient(config: FleetClientConfig): Promise<FleetClient> {
  const child = fork(MAIN, [JSON.stringify(config)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  live.add(child);
  const exited = new Promise<void>(resolve => child.once('exit', () => {
    live.delete(child);
    resolve();
  }));
  const isRunning = (): boolean => child.exitCode === null && child.signalCode === null;
  const windows: WindowReport[] = [];
  let received = 0;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`fleet client ${config.name} did not start within 20 s`));
    }, 20_000);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`fleet client ${config.name} exited during start (${signal ?? code})`));
    });
    child.on('message', (raw: unknown) => {
      const event = raw as FleetClientEvent;
      if (event.type === 'window') {
        windows.push(event);
        received++;
        if (windows.length > 400) windows.splice(0, 200);
        return;
      }
      clearTimeout(timer);
      resolve({
        name: config.name,
        pid: event.pid,
        windows,
        get latest() { return windows[windows.length - 1]; },
        get received() { return received; },
        callsSince(mark) {
          const calls = new Map<string, number>();
          const recent = windows.slice(Math.max(0, windows.length - (received - mark)));
          for (const w of recent) for (const [server, n] of Object.entries(w.servers)) calls.set(server, (calls.get(server) ?? 0) + n);
          return calls;
        },
        recentServers(count) {
          return new Set(windows.slice(-count).flatMap(w => Object.keys(w.servers)));
        },
        isRunning,
        async close() {
          if (isRunning() && child.connected) child.send({ type: 'close' });
          await exited;
        },
        async kill(signal = 'SIGKILL') {
          if (isRunning()) child.kill(signal);
          await exited;
        },
      });
    });
  });
}

/** Kills every fleet client still running. */
export async function killAllFleetClients(): Promise<void> {
  const children = [...live];
  for (const c of children) c.kill('SIGKILL');
  await Promise.all(children.map(c => (c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise<void>(r => c.once('exit', () => r())))));
}

process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});
