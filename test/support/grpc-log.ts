import * as grpc from '@grpc/grpc-js';

/**
 * Collects grpc-js log lines (our components' warnings) instead of printing them,
 * so a test can count them; trace lines still print when GRPC_TRACE is set.
 * `restore()` puts the console back (call it in afterEach too).
 */
export function captureGrpcLog(): { readonly lines: string[]; restore(): void } {
  const lines: string[] = [];
  const tracing = process.env.GRPC_TRACE !== undefined;
  grpc.setLogger({
    error: (...args: unknown[]) => {
      const line = args.join(' ');
      // grpc-js trace lines look like 'D 2026-… | v1.14.7 123 | etcd_resolver | …'.
      if (!line.includes(' | ')) lines.push(line);
      else if (tracing) console.error(line);
    },
  } as unknown as Partial<Console>);
  return { lines, restore: () => grpc.setLogger(console) };
}

/** Runs `fn` with grpc-js logging captured (a test that provokes errors on purpose keeps the output clean). */
export function quietly<T>(fn: () => T): T {
  const log = captureGrpcLog();
  try {
    return fn();
  } finally {
    log.restore();
  }
}
