/**
 * One client process of a fleet test (spawned by fleet-client.ts): a channel on
 * `etcd:///<service>` with the configured policy, calling steadily, and reporting
 * every 250 ms which replicas answered (by name) since the last report, its failed
 * calls, and its client registry view.
 */
import * as grpc from '@grpc/grpc-js';
import { register } from '../../../../src/register';
import { getDefaultEtcdOptions } from '../../../../src/backends/etcd/connection';
import { clientRegistrySource } from '../../../../src/backends/etcd/client-registry';
import { type ClientRegistryView } from '../../../../src/discovery/client-registry-source';
import { DEFAULT_RESOLVER_OPTIONS } from '../../../../src/discovery/resolver-options';
import { loadEcho } from '../../../support/echo-proto';
import { type FleetClientConfig, type FleetClientEvent } from './fleet-client';

function send(event: FleetClientEvent): void {
  process.send?.(event);
}

function main(): void {
  const config = JSON.parse(process.argv[2] ?? '{}') as FleetClientConfig;
  register({ etcd: { hosts: config.etcdHosts }, ...(config.zone ? { locality: { zone: config.zone } } : {}) });
  const { Client } = loadEcho();
  const channels = Array.from({ length: config.channels ?? 1 }, () => new Client(`etcd:///${config.service}`, grpc.credentials.createInsecure(), {
    'grpc.service_config': JSON.stringify({ loadBalancingConfig: config.loadBalancingConfig }),
  }));
  // The same registry entry the channels' policies share (same connection, service): its view, for the parent.
  let view: ClientRegistryView | undefined;
  const fleet = clientRegistrySource(getDefaultEtcdOptions()!, config.service, () => DEFAULT_RESOLVER_OPTIONS).subscribe(v => { view = v; });
  let window: Record<string, number> = {};
  let calls = 0;
  let failed = 0;
  let lastError = '';
  let turn = 0;
  const call = (): void => {
    const client = channels[turn++ % channels.length];
    client.unary({ message: config.name }, new grpc.Metadata(), { deadline: Date.now() + 5_000 }, (err, reply) => {
      calls++;
      if (err) {
        failed++;
        lastError = err.message;
        return;
      }
      window[reply!.server] = (window[reply!.server] ?? 0) + 1;
    });
  };
  const calling = setInterval(call, config.callIntervalMs ?? 10);
  setInterval(() => {
    const current = view ?? fleet.view;
    send({
      type: 'window', servers: window, calls, failed, lastError,
      view: current ? { selfIndex: current.selfIndex, clientCount: current.clientCount, zones: Object.fromEntries(current.zoneCounts) } : undefined,
    });
    window = {};
  }, 250);
  process.on('message', (raw: unknown) => {
    if ((raw as { type?: string }).type !== 'close') return;
    clearInterval(calling);
    fleet.release();
    for (const c of channels) c.close();
    // Let the registry revoke its lease (close deletes the key first) before exiting.
    setTimeout(() => process.exit(0), 1_000);
  });
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready', pid: process.pid });
}

main();
