/**
 * An echo replica in its own Node process, so a test can `kill -9` it: the
 * kernel then closes its sockets with no goodbye (no GOAWAY, no trailers).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export interface ReplicaProcess {
  readonly child: ChildProcess;
  readonly address: string;
  /** SIGKILL and wait for the exit. */
  kill(): Promise<void>;
}

const ECHO_SERVER_MODULE = join(__dirname, '..', 'support', 'echo-server.ts');
const running = new Set<ChildProcess>();

/** Starts `startEchoServer({ name, latencyMs })` in a child process and resolves once it listens. */
export function startReplicaProcess(name: string, latencyMs = 0, timeoutMs = 20_000): Promise<ReplicaProcess> {
  const script = `
    const { startEchoServer } = require(${JSON.stringify(ECHO_SERVER_MODULE)});
    startEchoServer({ name: ${JSON.stringify(name)}, latencyMs: ${Number(latencyMs)} }).then(s => process.stdout.write('LISTENING ' + s.address + '\\n'));
    process.stdin.on('end', () => process.exit(0)); // parent gone: do not linger
    process.stdin.resume();
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  running.add(child);
  const exited = new Promise<void>(resolve => child.once('exit', () => { running.delete(child); resolve(); }));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`replica process ${name} did not listen within ${timeoutMs} ms`)); }, timeoutMs);
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /LISTENING (\S+)\n/.exec(out);
      if (!match) return;
      clearTimeout(timer);
      resolve({
        child,
        address: match[1],
        kill: async () => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
          await exited;
        },
      });
    });
    child.once('exit', code => { clearTimeout(timer); reject(new Error(`replica process ${name} exited (${code}) before listening`)); });
  });
}

/** SIGKILLs every replica process still running (afterEach safety net). */
export async function killAllReplicaProcesses(): Promise<void> {
  const exits = [...running].map(c => new Promise<void>(resolve => { c.once('exit', () => resolve()); c.kill('SIGKILL'); }));
  await Promise.all(exits);
}
