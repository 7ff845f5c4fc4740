/**
 * Entry point of one echo replica in its own process (spawned by replica-process.ts):
 * starts the echo fixture, optionally registers it in etcd, and obeys IPC commands.
 * Its own process so that `kill -9` is real.
 */
import { gracefulShutdown, registerEndpoint, type Registration } from '../../src';
import { startEchoServer, type EchoBehaviour } from './echo-server';
import type { ReplicaCommand, ReplicaConfig, ReplicaEvent } from './replica-process';

function send(event: ReplicaEvent): void {
  process.send?.(event);
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as ReplicaConfig;
  const echo = await startEchoServer({ ...config.behaviour, address: config.address, name: config.name });
  let registration: Registration | undefined;
  if (config.service) {
    registration = await registerEndpoint({
      service: config.service,
      address: echo.address,
      weight: config.weight,
      priority: config.priority,
      ttlSeconds: config.ttlSeconds,
      etcd: { hosts: config.etcdHosts ?? [] },
    });
  }
  send({ type: 'ready', address: echo.address, pid: process.pid });
  setInterval(() => send({ type: 'stats', calls: echo.calls, inFlight: echo.inFlight }), 250).unref();

  process.on('message', (raw: unknown) => {
    const cmd = raw as ReplicaCommand;
    switch (cmd.type) {
      case 'behaviour':
        echo.setBehaviour(cmd.behaviour as EchoBehaviour);
        break;
      case 'update':
        void registration?.update({ weight: cmd.weight, priority: cmd.priority });
        break;
      case 'shutdown':
        void (async () => {
          if (registration) {
            await gracefulShutdown(echo.server, registration, { deregisterGraceMs: cmd.deregisterGraceMs, drainMs: cmd.drainMs });
          } else {
            await echo.stop(cmd.drainMs);
          }
          process.exit(0);
        })();
        break;
    }
  });
  // The parent going away must not leave an orphan replica behind.
  process.on('disconnect', () => process.exit(0));
}

main().catch((err: unknown) => {
  send({ type: 'error', message: (err as Error).stack ?? String(err) });
  process.exit(1);
});
