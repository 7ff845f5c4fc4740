/** Graceful shutdown in the order that loses no call: NOT_SERVING, deregister, wait, drain, force. */
import { log, logVerbosity } from '../common/grpc-experimental';
import { type Registration } from '../discovery/registration';
import { type HealthStatusSetter } from '../discovery/registration-options';

/** The part of a grpc-js `Server` that shutting down needs. */
export interface ShutdownableServer {
  /** Stops accepting; calls the callback when in-flight calls have ended. */
  tryShutdown(callback: (error?: Error) => void): void;
  /** Cancels what is left. */
  forceShutdown(): void;
}

/** The steps of `gracefulShutdown`, in order, as `onPhase` reports them. */
export type ShutdownPhase =
  /** Health set to NOT_SERVING: health-checking clients stop picking this server. */
  | 'not-serving'
  /** Lease revoked / key deleted: discovery clients drop this server. */
  | 'deregistering'
  /** Waiting `deregisterGraceMs` for clients to see the deregistration; calls are still served. */
  | 'grace'
  /** `server.tryShutdown`: no new connections or streams, in-flight calls finish. */
  | 'draining'
  /** The server is down. */
  | 'stopped';

/** Options of `gracefulShutdown` (and `shutdownOnSignals`). */
export interface GracefulShutdownOptions {
  /**
   * Time between NOT_SERVING and deregistration, for health-checking clients to stop picking
   * this server first. Defaults to 200 when the registration reports health, else 0.
   */
  notServingGraceMs?: number;
  /** Time between deregistration and `tryShutdown`, for discovery clients to see the key go. Defaults to 1,000. */
  deregisterGraceMs?: number;
  /** Time in-flight calls get to finish after `tryShutdown` before `forceShutdown`. Defaults to 10,000. */
  drainMs?: number;
  /** Called as each phase starts (for logs and tests); a throw is ignored. Defaults to none. */
  onPhase?: (phase: ShutdownPhase) => void;
  /**
   * The server's health service, set to NOT_SERVING (`''`) at the start, for a shutdown with no
   * registration (Kubernetes: the platform registers the pod). With a registration, its own
   * `health` is used. Defaults to none.
   */
  health?: HealthStatusSetter;
}

/** The defaults of `GracefulShutdownOptions` (`notServingGraceMs` applies with `health`; 0 without it). */
export const DEFAULT_GRACEFUL_SHUTDOWN_OPTIONS: Readonly<Required<Pick<GracefulShutdownOptions, 'notServingGraceMs' | 'deregisterGraceMs' | 'drainMs'>>> = Object.freeze({
  notServingGraceMs: 200,
  deregisterGraceMs: 1_000,
  drainMs: 10_000,
});

/** How a graceful shutdown ended. */
export interface ShutdownResult {
  /** True when `drainMs` ran out and the remaining calls were cancelled by `forceShutdown`. */
  forced: boolean;
  /** Total time taken. */
  elapsedMs: number;
}

const inProgress = new WeakMap<ShutdownableServer, Promise<ShutdownResult>>();

/**
 * Shuts `server` down gracefully; again for the same server returns the same promise.
 * Rejects only on invalid options, never for registry trouble (reported through `onError`).
 * With `registration` undefined (the platform registers the server, as Kubernetes does), the
 * steps are NOT_SERVING (`options.health`), `deregisterGraceMs` for clients to stop picking
 * this server, drain, stop.
 */
export function gracefulShutdown(
  server: ShutdownableServer,
  registration: Registration | undefined,
  options: GracefulShutdownOptions = {},
): Promise<ShutdownResult> {
  let notServingGraceMs: number;
  let deregisterGraceMs: number;
  let drainMs: number;
  try {
    notServingGraceMs = nonNegativeMs(
      options.notServingGraceMs ?? (registration?.reportsHealth === true ? DEFAULT_GRACEFUL_SHUTDOWN_OPTIONS.notServingGraceMs : 0),
      'notServingGraceMs');
    deregisterGraceMs = nonNegativeMs(options.deregisterGraceMs ?? DEFAULT_GRACEFUL_SHUTDOWN_OPTIONS.deregisterGraceMs, 'deregisterGraceMs');
    drainMs = nonNegativeMs(options.drainMs ?? DEFAULT_GRACEFUL_SHUTDOWN_OPTIONS.drainMs, 'drainMs');
    if (options.health !== undefined && (options.health === null || typeof options.health.setStatus !== 'function')) {
      throw new TypeError(`gracefulShutdown: health must be a HealthImplementation from grpc-health-check (an object with setStatus), got ${String(options.health)}`);
    }
  } catch (err) {
    return Promise.reject(err as Error);
  }
  const existing = inProgress.get(server);
  if (existing) return existing;
  const phase = (p: ShutdownPhase): void => {
    try {
      options.onPhase?.(p);
    } catch {
      // A logging hook must not break the shutdown.
    }
  };
  const who = registration ? `gracefulShutdown: ${registration.service} ${registration.address}` : 'gracefulShutdown';
  const run = async (): Promise<ShutdownResult> => {
    const start = Date.now();
    const since = (): string => `${Date.now() - start} ms`;
    phase('not-serving');
    registration?.setServing(false);
    options.health?.setStatus('', 'NOT_SERVING');
    if (registration?.reportsHealth === true || options.health) log(logVerbosity.INFO, `${who}: health NOT_SERVING`);
    if (notServingGraceMs > 0) await new Promise<void>(resolve => setTimeout(resolve, notServingGraceMs).unref());
    if (registration) {
      phase('deregistering');
      await registration.close();
      log(logVerbosity.INFO, `${who}: deregistered (${registration.key}) at ${since()}; draining in ${deregisterGraceMs} ms`);
    }
    phase('grace');
    if (deregisterGraceMs > 0) await new Promise<void>(resolve => setTimeout(resolve, deregisterGraceMs).unref());
    phase('draining');
    const drainStart = Date.now();
    const forced = await drain(server, drainMs);
    log(logVerbosity.INFO, forced
      ? `${who}: calls still in flight after drainMs ${drainMs}: cancelled (forceShutdown)`
      : `${who}: in-flight calls drained in ${Date.now() - drainStart} ms`);
    phase('stopped');
    log(logVerbosity.INFO, `${who}: stopped after ${since()}`);
    return { forced, elapsedMs: Date.now() - start };
  };
  const promise = run();
  inProgress.set(server, promise);
  return promise;
}

/** `tryShutdown`, then `forceShutdown` after `drainMs`; resolves to whether it had to force. */
function drain(server: ShutdownableServer, drainMs: number): Promise<boolean> {
  return new Promise<boolean>(resolve => {
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      server.forceShutdown();
      resolve(true);
    }, drainMs);
    timer.unref();
    server.tryShutdown(() => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(false);
    });
  });
}

function nonNegativeMs(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new TypeError(`gracefulShutdown: ${name} must be a number of milliseconds ≥ 0, got ${JSON.stringify(value) ?? String(value)}`);
  }
  return value;
}
