/**
 * Test helpers for the retry interceptor: a set of echo replicas behind one
 * static `ipv4:` target, and clients on it with a chosen LB policy.
 */
import * as grpc from '@grpc/grpc-js';
import { startEchoServer, type EchoServer, type EchoServerOptions } from '../support/echo-server';
import { loadEcho, unary, type EchoClient } from '../support/echo-proto';
import { waitFor } from '../support/wait';
import { runBounded } from '../support/bounded';

/** Header keys a grpc-js client sends on its own; anything else reaching a server came from us. */
export const STANDARD_KEYS = new Set(['user-agent', 'grpc-accept-encoding', 'accept-encoding', 'te', 'content-type', 'grpc-timeout']);

export interface Replicas {
  servers: EchoServer[];
  /** `ipv4:127.0.0.1:p1,127.0.0.1:p2,...` */
  target: string;
  /** Every metadata key any replica saw (beyond STANDARD_KEYS), with the values seen. */
  foreignKeys: Map<string, Set<string>>;
  /** Values of `grpc-previous-rpc-attempts` seen, in arrival order. */
  previousAttempts: string[];
  totalCalls(): number;
  stop(): Promise<void>;
}

export async function startReplicas(count: number, options: (index: number) => EchoServerOptions = () => ({})): Promise<Replicas> {
  const foreignKeys = new Map<string, Set<string>>();
  const previousAttempts: string[] = [];
  const onCall = (_method: string, metadata: grpc.Metadata): void => {
    for (const [key, value] of Object.entries(metadata.getMap())) {
      if (key === 'grpc-previous-rpc-attempts') previousAttempts.push(String(value));
      if (STANDARD_KEYS.has(key) || key === 'grpc-previous-rpc-attempts' || key.startsWith('x-test-')) continue;
      let values = foreignKeys.get(key);
      if (!values) foreignKeys.set(key, (values = new Set()));
      values.add(String(value));
    }
  };
  const servers = await startServers(count, () => onCall, options);
  return {
    servers,
    target: `ipv4:${servers.map(s => s.address).join(',')}`,
    foreignKeys,
    previousAttempts,
    totalCalls: () => servers.reduce((sum, s) => sum + s.calls, 0),
    stop: async () => { await Promise.all(servers.map(s => s.stop(200))); },
  };
}

/**
 * Starts `count` echo servers named r0, r1, … with `options(i)` and the `onCall` observer
 * `observerFor(name)` gives; if one fails to start, stops those already started.
 */
export async function startServers(
  count: number,
  observerFor: (name: string) => EchoServerOptions['onCall'],
  options: (index: number) => EchoServerOptions = () => ({}),
): Promise<EchoServer[]> {
  const servers: EchoServer[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const name = `r${i}`;
      servers.push(await startEchoServer({ name, onCall: observerFor(name), ...options(i) }));
    }
  } catch (err) {
    for (const s of servers) s.forceStop();
    throw err;
  }
  return servers;
}

/** A client on `target` with LB `policy` and the given interceptors. */
export function clientFor(target: string, policy: string, interceptors: grpc.Interceptor[], extra: grpc.ChannelOptions = {}): EchoClient {
  const { Client } = loadEcho();
  return new Client(target, grpc.credentials.createInsecure(), {
    'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ [policy]: {} }] }),
    // A private subchannel pool: channels of different tests never share connections.
    'grpc.use_local_subchannel_pool': 1,
    interceptors,
    ...extra,
  });
}

/**
 * Makes calls on `client` (replicas must all be healthy) until every replica served
 * one, so the policy has every subchannel READY before a test's measured part; then
 * zeroes the counters.
 */
export async function warmUp(client: EchoClient, replicas: Replicas): Promise<void> {
  await waitFor('every replica to serve a call', async () => {
    await unary(client, 'warm-up').catch(() => undefined);
    return replicas.servers.every(s => s.calls > 0);
  }, { timeoutMs: 20_000 });
  resetCounters(replicas);
}

export function resetCounters(replicas: Replicas): void {
  for (const s of replicas.servers) Object.assign(s, { calls: 0, ok: 0, failed: 0 });
  replicas.foreignKeys.clear();
  replicas.previousAttempts.length = 0;
}

/** Runs `count` calls with at most `concurrency` in flight; resolves to how many succeeded and the errors. */
export function runCalls(count: number, concurrency: number, one: (i: number) => Promise<unknown>): Promise<{ ok: number; errors: grpc.ServiceError[] }> {
  return runBounded<grpc.ServiceError>(count, concurrency, one);
}
