/**
 * This repository's `npm pack` tarball, made once per test process and shared by the
 * package and install tests (packing runs `prepack`, i.e. the build, which is
 * the slow part). Removed when the process exits.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REPO_ROOT = join(__dirname, '..', '..');

export interface PackedTarball {
  /** Absolute path of the `.tgz`. */
  readonly tarball: string;
  /** Paths inside the package, as `npm pack --json` lists them. */
  readonly files: string[];
}

let packed: PackedTarball | Error | undefined;
let packDir: string | undefined;

/**
 * The environment for an npm child of a test: without what npm sets for the script
 * it is running (`npm test`), e.g. `npm_config_local_prefix`, which would point a
 * nested npm at this repository instead of its working directory.
 */
export function npmChildEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^npm_(config_local_prefix|package_|lifecycle_|command$)/i.test(key)) env[key] = value;
  }
  return env;
}

/**
 * Runs `npm pack` of this repository the first time; later calls return the same
 * tarball, or throw the same error (a failed build is not retried).
 */
export function packRepo(): PackedTarball {
  packed ??= pack();
  if (packed instanceof Error) throw packed;
  return packed;
}

function pack(): PackedTarball | Error {
  packDir = mkdtempSync(join(tmpdir(), 'grpc-etcd-lb-pack-'));
  try {
    const out = execFileSync('npm', ['pack', '--json', '--loglevel=error', '--pack-destination', packDir], {
      cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: npmChildEnv(),
    });
    const [{ filename, files }] = JSON.parse(out.slice(out.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>;
    return { tarball: join(packDir, filename), files: files.map(f => f.path) };
  } catch (err) {
    // tsc reports on stdout: without it, a failed prepack says only "code 2".
    const { stdout, stderr } = err as { stdout?: string; stderr?: string };
    return new Error(`npm pack failed: ${(err as Error).message}\n${stdout ?? ''}${stderr ?? ''}`);
  }
}

process.once('exit', () => {
  if (packDir) rmSync(packDir, { recursive: true, force: true });
});
