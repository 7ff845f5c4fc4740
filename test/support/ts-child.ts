/** Runs a TypeScript file in a fresh Node process (for process-wide state such as register()). */
import { execFile } from 'node:child_process';

export interface TsChildResult {
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `file` under tsx with `env` added to this process's; resolves with its output, rejects (with stderr) when it fails. */
export function runTsChild(file: string, env: NodeJS.ProcessEnv = {}, timeoutMs = 30_000, args: readonly string[] = []): Promise<TsChildResult> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete childEnv[k];
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--require', 'tsx/cjs', file, ...args], { env: childEnv, timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} failed: ${err.message}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

/** The last line of a child's stdout, parsed as JSON (children print their result last). */
export function lastJsonLine<T>(stdout: string): T {
  return JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as T;
}

/** The child's side: runs `main`, prints its result as the last line (JSON) and exits 0, or prints the error and exits 1. */
export function runChildMain(main: () => Promise<unknown>): void {
  main().then(
    result => {
      process.stdout.write(`${JSON.stringify(result)}\n`);
      process.exit(0);
    },
    (err: unknown) => {
      process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
