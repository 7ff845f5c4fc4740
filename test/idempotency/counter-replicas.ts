/** Counter replicas in child processes (test/support/idempotent-replica-main.ts): started, killed by PID, their execution logs read. */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CounterReplicaConfig, CounterReplicaEvent } from '../support/idempotent-replica-main';

const MAIN = join(__dirname, '..', 'support', 'idempotent-replica-main.ts');
const START_TIMEOUT_MS = 20_000;
const live = new Set<ChildProcess>();

export interface CounterReplica {
  readonly config: CounterReplicaConfig;
  readonly address: string;
  readonly pid: number;
  /** SIGKILL (by this child's PID) and wait for the exit. */
  kill(): Promise<void>;
  /** The execution log: keys run (`E`) and keys whose status left the interceptor (`D`). */
  log(): { executed: string[]; done: Set<string> };
}

export function spawnCounterReplica(config: CounterReplicaConfig): Promise<CounterReplica> {
  const child = fork(MAIN, [JSON.stringify(config)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  live.add(child);
  const exited = new Promise<void>(resolve => child.once('exit', () => {
    live.delete(child);
    resolve();
  }));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`counter replica ${config.name} did not start within ${START_TIMEOUT_MS} ms`));
    }, START_TIMEOUT_MS);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`counter replica ${config.name} exited during start (${signal ?? code})`));
    });
    child.on('message', (raw: unknown) => {
      const event = raw as CounterReplicaEvent;
      clearTimeout(timer);
      if (event.type === 'error') {
        reject(new Error(`counter replica ${config.name} failed: ${event.message}`));
        return;
      }
      resolve({
        config,
        address: event.address,
        pid: event.pid,
        async kill() {
          if (child.exitCode === null && child.signalCode === null) process.kill(event.pid, 'SIGKILL');
          await exited;
        },
        log() {
          const executed: string[] = [];
          const done = new Set<string>();
          const text = existsSync(config.execLog) ? readFileSync(config.execLog, 'utf8') : '';
          for (const line of text.split('\n')) {
            if (line.startsWith('E ')) executed.push(line.slice(2));
            else if (line.startsWith('D ')) done.add(line.slice(2));
          }
          return { executed, done };
        },
      });
    });
  });
}

/** Kills every counter replica still running (after hooks). */
export async function killAllCounterReplicas(): Promise<void> {
  const children = [...live];
  await Promise.all(children.map(c => new Promise<void>(resolve => {
    if (c.exitCode !== null || c.signalCode !== null) {
      resolve();
      return;
    }
    c.once('exit', () => resolve());
    if (c.pid !== undefined) process.kill(c.pid, 'SIGKILL');
  })));
}

process.once('exit', () => {
  for (const c of live) if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) process.kill(c.pid, 'SIGKILL');
});
