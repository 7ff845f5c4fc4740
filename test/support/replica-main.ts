/**
 * Entry point of one echo replica in its own process (spawned by replica-process.ts):
 * starts the echo fixture, optionally registers it in etcd, and obeys IPC commands.
 * Its own process so that `kill -9` is real.
 */
import { type Metadata } from '@grpc/grpc-js';
import { createLoadReporter, gracefulShutdown, registerEndpoint, type Registration } from '../../src';
import { startEchoServer, type EchoBehaviour } from './echo-server';
import { CALL_ID_HEADER, type ReplicaCommand, type ReplicaConfig, type ReplicaEvent } from './replica-process';

/** Call ids remembered for repeat detection; the set is cleared past this size (the bench's runs stay well below). */
const MAX_REMEMBERED_CALL_IDS = 1_000_000;

function send(event: ReplicaEvent): void {
  process.send?.(event);
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as ReplicaConfig;
  const seenCallIds = new Set<string>();
  let repeatedCallIds = 0;
  const onCall = (_method: string, metadata: Metadata): void => {
    const id = metadata.get(CALL_ID_HEADER)[0];
    if (id === undefined) return;
    const key = String(id);
    if (seenCallIds.has(key)) repeatedCallIds++;
    else if (seenCallIds.size >= MAX_REMEMBERED_CALL_IDS) seenCallIds.clear();
    seenCallIds.add(key);
  };
  // The busy share of its slots when it serves one call at a time (set once the server exists), else the event loop's.
  const slots: { utilization?: () => number | undefined } = {};
  const reporter = config.loadReports ? createLoadReporter({ utilization: () => slots.utilization?.() }) : undefined;
  const echo = await startEchoServer({
    ...config.behaviour, address: config.address, name: config.name, onCall,
    serverOptions: reporter?.serverOptions(),
    configure: server => { if (config.loadReports?.outOfBand) reporter?.serveOutOfBand(server); },
  });
  slots.utilization = () => (echo.behaviour.maxConcurrent !== undefined ? echo.slotUtilization() : undefined);
  let registration: Registration | undefined;
  if (config.service) {
    registration = await registerEndpoint({
      service: config.service,
      address: echo.address,
      weight: config.weight,
      priority: config.priority,
      metadata: config.metadata,
      ttlSeconds: config.ttlSeconds,
      ...(config.consulAddress ? { consul: { address: config.consulAddress } }
        : config.zookeeperHosts ? { zookeeper: { hosts: config.zookeeperHosts } } : { etcd: { hosts: config.etcdHosts ?? [] } }),
    });
  }
  send({ type: 'ready', address: echo.address, pid: process.pid });
  setInterval(() => send({ type: 'stats', calls: echo.calls, inFlight: echo.inFlight, repeatedCallIds }), 250).unref();

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
