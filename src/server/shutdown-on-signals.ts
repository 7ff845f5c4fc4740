/** SIGTERM/SIGINT → `gracefulShutdown`, for Kubernetes-style rolling updates. */
import { gracefulShutdown, type GracefulShutdownOptions, type ShutdownableServer, type ShutdownResult } from './graceful-shutdown';
import { log, logVerbosity } from '../common/grpc-experimental';
import { type Registration } from '../discovery/registration';
import { type Disposer } from '../discovery/registration-events';

/** Options of `shutdownOnSignals`: the graceful shutdown's, and which signals start it. */
export interface ShutdownOnSignalsOptions extends GracefulShutdownOptions {
  /** Signals that start the shutdown. Defaults to `['SIGTERM', 'SIGINT']`. */
  signals?: NodeJS.Signals[];
  /**
   * Call `process.exit()` once the shutdown is done (0, or 1 if it threw). Defaults to false:
   * a library should not end your process; Node exits by itself unless something of yours
   * still holds the event loop (close it in `onShutdown`, or set this).
   */
  exitProcess?: boolean;
  /** Called when the shutdown finished, with its result or error. Defaults to none. */
  onShutdown?: (result: ShutdownResult | Error) => void;
}

/** The signals `shutdownOnSignals` handles by default. */
export const DEFAULT_SHUTDOWN_SIGNALS: readonly NodeJS.Signals[] = Object.freeze(['SIGTERM', 'SIGINT'] as NodeJS.Signals[]);

/**
 * On the first of `signals`, runs `gracefulShutdown`; a second one forces the server down.
 * Listeners are removed when done. Returns a disposer that removes them without shutting down.
 * `registration` undefined: a server the platform registers (a Kubernetes pod); pass
 * `options.health` so health checks see NOT_SERVING first.
 */
export function shutdownOnSignals(
  server: ShutdownableServer,
  registration: Registration | undefined,
  options: ShutdownOnSignalsOptions = {},
): Disposer {
  const signals = options.signals ?? DEFAULT_SHUTDOWN_SIGNALS;
  if (!Array.isArray(signals) || signals.length === 0 || signals.some(s => typeof s !== 'string' || !s.startsWith('SIG'))) {
    throw new TypeError(`shutdownOnSignals: signals must be a non-empty list like ['SIGTERM'], got ${JSON.stringify(signals)}`);
  }
  let shuttingDown = false;
  const dispose = (): void => {
    for (const s of signals) process.removeListener(s, onSignal);
  };
  function onSignal(signal: NodeJS.Signals): void {
    if (shuttingDown) {
      log(logVerbosity.INFO, `shutdownOnSignals: ${signal} again: forcing the server down`);
      server.forceShutdown();
      return;
    }
    shuttingDown = true;
    log(logVerbosity.INFO, `shutdownOnSignals: ${signal}: shutting ${registration ? `${registration.service} ${registration.address}` : 'the server'} down gracefully`);
    const finish = (result: ShutdownResult | Error): void => {
      dispose();
      try {
        options.onShutdown?.(result);
      } catch {
        // The caller's hook failing must not leave the process half shut down.
      }
      if (options.exitProcess === true) process.exit(result instanceof Error ? 1 : 0);
    };
    gracefulShutdown(server, registration, options).then(finish, (err: unknown) => finish(err instanceof Error ? err : new Error(String(err))));
  }
  for (const s of signals) process.on(s, onSignal);
  return dispose;
}
