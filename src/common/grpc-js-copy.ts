/** Detects two copies of @grpc/grpc-js (e.g. a linked clone): `register()` would plug into the wrong one. */
import { realpathSync } from 'node:fs';
import { dirname } from 'node:path';
import { log, logVerbosity } from './grpc-experimental';

const GRPC_JS = '@grpc/grpc-js';

let checked = false;

/**
 * Warns once when the grpc-js resolved from the main module's or working directory is
 * not ours. A warning, not a throw: bundlers and monorepos have legitimate layouts where
 * these differ, and a startup check must never break a working app. Idempotent.
 */
export function warnIfSeparateGrpcJs(): void {
  if (checked) return;
  checked = true;
  try {
    const ours = grpcJsRoot(undefined);
    if (ours === undefined) return;
    const mainDir = require.main?.filename === undefined ? undefined : dirname(require.main.filename);
    for (const dir of [mainDir, process.cwd()]) {
      const theirs = dir === undefined ? undefined : grpcJsRoot(dir);
      if (dir !== undefined && theirs !== undefined && theirs !== ours) {
        log(logVerbosity.ERROR, separateCopyMessage(ours, theirs, dir));
        return;
      }
    }
  } catch {
    // Diagnostics only: never let the check itself fail register().
  }
}

function separateCopyMessage(ours: string, theirs: string, from: string): string {
  return [
    `grpc-etcd-lb: the app's ${GRPC_JS} is not the copy register() registered into.`,
    `  registered into: ${ours}`,
    `  the app's copy:  ${theirs} (resolved from ${from})`,
    `Channels made from the app's copy do not know the 'etcd' scheme nor the etcd_* policies: calls fail with ` +
      `"14 UNAVAILABLE: Failed to parse DNS address dns:etcd:///…", or the etcd_* policy falls back to pick_first.`,
    `Fix: install grpc-etcd-lb from its \`npm pack\` tarball or a git URL, not as a symlink (\`npm install ../grpc-etcd-lb\`), ` +
      `and let the app install ${GRPC_JS}; \`npm ls ${GRPC_JS} --all --parseable\` should print one path (else try \`npm dedupe\`).`,
  ].join('\n');
}

/** Real path of the `@grpc/grpc-js` package root, as resolved from `fromDir` (undefined: from this module). */
function grpcJsRoot(fromDir: string | undefined): string | undefined {
  const options = fromDir === undefined ? undefined : { paths: [fromDir] };
  let manifest: unknown;
  try {
    manifest = require.resolve(`${GRPC_JS}/package.json`, options);
  } catch {
    return undefined;
  }
  // Bundlers replace require.resolve with module ids: nothing to compare then.
  return typeof manifest === 'string' ? dirname(realpathSync(manifest)) : undefined;
}
