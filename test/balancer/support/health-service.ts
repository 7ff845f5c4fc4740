/**
 * An echo server with grpc-health-check's `HealthImplementation`, instrumented:
 * it counts `Watch` streams (opened, open now) as the server sees them, and can
 * make its health service misbehave (fail the first Watch calls, end open ones).
 */
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import { startEchoServer, type EchoServer, type EchoServerOptions } from '../../support/echo-server';

export interface HealthEchoServerOptions extends EchoServerOptions {
  /** Initial statuses by service name. Defaults to `{ '': 'SERVING' }`. */
  statuses?: Record<string, ServingStatus>;
  /** The first this many Watch calls end at once with UNAVAILABLE (a flaky health service). Defaults to 0. */
  failWatches?: number;
}

export interface HealthEchoServer {
  readonly echo: EchoServer;
  readonly health: HealthImplementation;
  readonly address: string;
  /** Watch calls received. */
  readonly watchesOpened: number;
  /** Watch streams open now (opened and not cancelled by the client). */
  readonly activeWatches: number;
  /** Sets the status of `service` ('' = whole server, the default). */
  setStatus(status: ServingStatus, service?: string): void;
  /** Ends every open Watch stream with `code` (the client sees its stream fail). */
  endWatches(code: grpc.status): void;
}

type WatchCall = grpc.ServerWritableStream<{ service: string }, unknown>;
type Handlers = Record<string, (...args: never[]) => void>;

/** An echo server with an instrumented grpc.health.v1 service. */
export async function startHealthEchoServer(options: HealthEchoServerOptions = {}): Promise<HealthEchoServer> {
  const health = new HealthImplementation(options.statuses ?? { '': 'SERVING' });
  const failWatches = options.failWatches ?? 0;
  const open = new Set<WatchCall>();
  let watchesOpened = 0;
  const echo = await startEchoServer({
    ...options,
    configure: server => {
      options.configure?.(server);
      health.addToServer({
        addService(definition, handlers) {
          const watch = (handlers as Handlers).watch as (call: WatchCall) => void;
          server.addService(definition as grpc.ServiceDefinition, {
            ...(handlers as grpc.UntypedServiceImplementation),
            watch: (call: WatchCall) => {
              watchesOpened++;
              if (watchesOpened <= failWatches) {
                call.emit('error', { code: grpc.status.UNAVAILABLE, details: `injected Watch failure ${watchesOpened}` });
                return;
              }
              open.add(call);
              call.on('cancelled', () => open.delete(call));
              watch(call);
            },
          });
        },
      });
    },
  });
  return {
    echo,
    health,
    address: echo.address,
    get watchesOpened() { return watchesOpened; },
    get activeWatches() { return open.size; },
    setStatus(status, service = '') {
      health.setStatus(service, status);
    },
    endWatches(code) {
      for (const call of [...open]) {
        open.delete(call);
        call.emit('error', { code, details: 'injected end of Watch' });
        // HealthImplementation forgets a watcher only on 'cancelled'; without it, it would write to the ended stream.
        call.emit('cancelled');
      }
    },
  };
}
