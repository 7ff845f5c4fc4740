/** Output and exit of a server process started by test support (etcd, ZooKeeper). */
import { type ChildProcess } from 'node:child_process';

/**
 * Appends `child`'s stdout/stderr lines to `log` (keeping it bounded) and resolves when
 * the process exits or could not be spawned (noted in `log`).
 */
export function followChild(child: ChildProcess, log: string[]): Promise<void> {
  const append = (chunk: Buffer): void => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.length > 0) log.push(line);
    }
    if (log.length > 500) log.splice(0, log.length - 200);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  return new Promise(resolve => {
    child.once('exit', () => resolve());
    child.once('error', err => {
      log.push(`spawn error: ${err.message}`);
      resolve();
    });
  });
}
