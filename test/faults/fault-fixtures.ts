/**
 * Helpers shared by the fault-injection tests: what the resolver published
 * (every state, so an endpoint dropped for a moment is counted), clients with
 * the retry interceptor, and etcd queries that never block the event loop
 * (the servers under load live in this process).
 */
import { execFile } from 'node:child_process';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as grpc from '@grpc/grpc-js';
import { createRetryInterceptor } from '../../src/interceptor/retry-interceptor';
import { type RetryEvent, type RetryOptions } from '../../src/interceptor/retry-options';
import { connectionForTarget, parseEtcdTarget } from '../../src/backends/etcd/target';
import { type EtcdOptions } from '../../src/backends/etcd/connection';
import { DEFAULT_RESOLVER_OPTIONS, type ResolvedResolverOptions } from '../../src/discovery/resolver-options';
import { acquireServiceWatch } from '../../src/backends/etcd/service-watch-registry';
import { type ResolutionState } from '../../src/discovery/discovery-watch';
import { type EndpointAttributes } from '../../src/discovery/endpoint-attributes';
import { inspectBalancers, type BalancerSnapshot } from '../../src/balancer/pool/balancer-diagnostics';
import { ETCDCTL_BIN, type EtcdCluster, type EtcdMember } from '../support/etcd';
import { loadEcho, type EchoClient } from '../support/echo-proto';

/** What one service resolved to over time, as every channel on it saw it. */
export interface ResolutionRecorder {
  /** Addresses in the latest published list (sorted). */
  current(): string[];
  /** Attributes in the latest published list. */
  attributes(): ReadonlyMap<string, EndpointAttributes>;
  /** Lists published (ok states). */
  readonly updates: number;
  /** Every time an address left the list, with when. */
  readonly removals: ReadonlyArray<{ address: string; atMs: number }>;
  /** Every time an address joined the list after the first list, with when. */
  readonly additions: ReadonlyArray<{ address: string; atMs: number }>;
  /** Details of error states (published only while no list was ever obtained). */
  readonly errors: readonly string[];
  /** Removals of `address` since `sinceMs` (Date.now() scale). */
  removalsOf(address: string, sinceMs?: number): number;
  close(): void;
}

/**
 * Subscribes to the shared list+watch of `etcd://<hosts>/<service>`: the very
 * object the channels on that target use (same connection, same options), so
 * this sees each state they are handed, not a second opinion.
 */
export function recordResolution(hosts: string[], service: string, options: ResolvedResolverOptions = DEFAULT_RESOLVER_OPTIONS): ResolutionRecorder {
  const connection = connectionForTarget(parseEtcdTarget({ scheme: 'etcd', authority: hosts.join(','), path: service }));
  if (typeof connection === 'string') throw new Error(connection);
  return recordResolutionOn(connection, service, options);
}

/** As `recordResolution`, on an explicit connection (TLS, auth: what `register({ etcd })` would set). */
export function recordResolutionOn(connection: EtcdOptions, service: string, options: ResolvedResolverOptions = DEFAULT_RESOLVER_OPTIONS): ResolutionRecorder {
  const lease = acquireServiceWatch(connection, service, options);
  let latest = new Set<string>();
  let latestAttributes: ReadonlyMap<string, EndpointAttributes> = new Map();
  let first = true;
  const removals: Array<{ address: string; atMs: number }> = [];
  const additions: Array<{ address: string; atMs: number }> = [];
  const errors: string[] = [];
  let updates = 0;
  const onState = (state: ResolutionState): void => {
    if (!state.ok) {
      errors.push(state.details);
      return;
    }
    updates++;
    const now = Date.now();
    const next = new Set(state.resolved.endpoints.map(e => e.addresses.map(a => ('host' in a ? formatHostPort(a.host, a.port) : a.path)).join(',')));
    for (const address of latest) if (!next.has(address)) removals.push({ address, atMs: now });
    if (!first) for (const address of next) if (!latest.has(address)) additions.push({ address, atMs: now });
    first = false;
    latest = next;
    latestAttributes = state.resolved.attributes;
  };
  const unsubscribe = lease.watch.subscribe(onState);
  if (lease.watch.current) onState(lease.watch.current);
  let closed = false;
  return {
    current: () => [...latest].sort(),
    attributes: () => latestAttributes,
    get updates() { return updates; },
    removals,
    additions,
    errors,
    removalsOf: (address, sinceMs = 0) => removals.filter(r => r.address === address && r.atMs >= sinceMs).length,
    close() {
      if (closed) return;
      closed = true;
      unsubscribe();
      lease.release();
    },
  };
}

function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export { etcdTarget } from '../backends/etcd/resolver-fixtures';

/**
 * A client on `target` with LB config `lbConfig` and the retry interceptor (given
 * `retry` options; `onRetry` events are pushed to `events`), on a private
 * subchannel pool so tests never share connections.
 */
export function retryingClient(target: string, lbConfig: object, events: RetryEvent[] = [], retry: RetryOptions = {}): EchoClient {
  const { Client } = loadEcho();
  const interceptor = createRetryInterceptor({
    ...retry,
    onRetry: e => {
      events.push(e);
      retry.onRetry?.(e);
    },
  });
  return new Client(target, grpc.credentials.createInsecure(), {
    'grpc.service_config': JSON.stringify({ loadBalancingConfig: [lbConfig] }),
    'grpc.use_local_subchannel_pool': 1,
    interceptors: [interceptor],
  });
}

/** The live etcd_* balancer that has `address` among its endpoints (the first one found). */
export function balancerWith(address: string): BalancerSnapshot | undefined {
  return inspectBalancers().find(b => b.endpoints.some(e => e.address === address));
}

/** etcdctl without blocking the event loop; rejects with its stderr. */
export function etcdctlAsync(endpoints: string[], args: string[], timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(ETCDCTL_BIN, [`--endpoints=${endpoints.join(',')}`, ...args], { env: { ...process.env, ETCDCTL_API: '3' }, timeout: timeoutMs },
      (err, stdout, stderr) => (err ? reject(new Error(`etcdctl ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout)));
  });
}

/** The member of `cluster` that leads now, asking the running members (async: see etcdctlAsync). */
export async function currentLeader(cluster: EtcdCluster): Promise<EtcdMember | undefined> {
  const running = cluster.members.filter(m => m.isRunning());
  const out = await etcdctlAsync(running.map(m => m.endpoint), ['--command-timeout=1s', 'endpoint', 'status', '-w', 'json'], 5000).catch(() => '[]');
  let statuses: Array<{ Endpoint: string; Status: { header: { member_id: number | string }; leader: number | string } }>;
  try {
    statuses = JSON.parse(out) as typeof statuses;
  } catch {
    return undefined;
  }
  const lead = statuses.find(s => String(s.Status.header.member_id) === String(s.Status.leader) && String(s.Status.leader) !== '0');
  return lead && running.find(m => lead.Endpoint.endsWith(`:${m.clientPort}`));
}

export { captureGrpcLog } from '../support/grpc-log';

/** Heap used after a full GC, in bytes (exposes `gc` on first use). */
export function heapUsedAfterGc(): number {
  collectGarbage();
  collectGarbage();
  return process.memoryUsage().heapUsed;
}

let gcFunction: (() => void) | undefined;

function collectGarbage(): void {
  if (!gcFunction) {
    setFlagsFromString('--expose-gc');
    gcFunction = runInNewContext('gc') as () => void;
  }
  gcFunction();
}

/** Mebibytes with one decimal, for log lines. */
export function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}
