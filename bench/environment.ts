/**
 * What the scenarios run against, started lazily and stopped once: an etcd
 * (a throwaway one from test/support, or `ETCD_ENDPOINTS`), a pool of echo
 * replicas in their own processes registered under one service, and the bench's
 * clients. Scenarios get the pool back in its default state (no added latency,
 * no failures, weight 1) and may change it; every process and client started
 * here is stopped by `close()`, also after an error or Ctrl-C.
 */
import * as grpc from '@grpc/grpc-js';
import { createRetryInterceptor, endpointKey, register, type RetryOptions } from '../src';
import { etcdctl, startEtcd, type EtcdServer } from '../test/support/etcd';
import { loadEcho, type EchoClient } from '../test/support/echo-proto';
import { type EchoBehaviour } from '../test/support/echo-server';
import { killAllReplicas, spawnReplica, type ReplicaConfig, type ReplicaProcess } from '../test/support/replica-process';
import { closedLoop } from './load';

/** Replicas of the pool, named r1…r5. */
export const POOL_SIZE = 5;
/** Lease TTL of the pool's registrations: long enough that a CPU-starved replica never loses its lease mid-run. */
const POOL_TTL_SECONDS = 10;
const WARM_UP_CONCURRENCY = 32;
/** The echo service, for the grpc-js retryPolicy's method config. */
const ECHO_SERVICE = 'grpc_etcd_lb.echo.Echo';

export interface BenchClientOptions {
  /** The `loadBalancingConfig` entry, e.g. `{ round_robin: {} }`. */
  lbConfig: object;
  /** Adds our retry interceptor with these options (`{}` = defaults). Defaults to none. */
  retryInterceptor?: RetryOptions;
  /**
   * Adds grpc-js's built-in retry (service config `retryPolicy` + `retryThrottling`) with the
   * interceptor's default figures: 3 attempts, 25 ms initial backoff ×2 up to 1 s, UNAVAILABLE,
   * 100 tokens. Defaults to false.
   */
  grpcRetry?: boolean;
}

export class BenchEnvironment {
  /** Service the pool registers under; unique per run so a shared etcd is never confused. */
  readonly service = `grpc-etcd-lb-bench-${process.pid}`;
  private etcd: EtcdServer | undefined;
  private hosts: string[] | undefined;
  private pool: ReplicaProcess[] = [];
  private readonly weights = new Map<string, number>();
  private readonly clients = new Set<EchoClient>();
  private closed = false;

  /**
   * @param note Where to report what was started.
   * @param warmUpMs Load sent through a throwaway client right after the pool starts.
   */
  constructor(private readonly note: (text: string) => void, private readonly warmUpMs: number) {}

  /** etcd client endpoints; starts a throwaway etcd unless `ETCD_ENDPOINTS` is set. Registers our plugin with it. */
  async etcdHosts(): Promise<string[]> {
    if (this.hosts) return this.hosts;
    const external = process.env.ETCD_ENDPOINTS?.split(',').map(s => s.trim()).filter(Boolean) ?? [];
    if (external.length > 0) {
      this.hosts = external;
      this.note(`using etcd at ${external.join(',')} (ETCD_ENDPOINTS)`);
    } else {
      this.etcd = await startEtcd({ name: 'bench' });
      this.hosts = this.etcd.endpoints;
      this.note(`started etcd at ${this.hosts.join(',')} (pid ${this.etcd.pid})`);
    }
    register({ etcd: { hosts: this.hosts } });
    return this.hosts;
  }

  /** `etcd:///<service>`: the pool through our resolver. */
  get etcdTarget(): string {
    return `etcd:///${this.service}`;
  }

  /**
   * The pool, r1…r5 in name order, each serving with default behaviour and
   * registered with weight 1. Starts it on first use; restores defaults after.
   */
  async replicas(): Promise<readonly ReplicaProcess[]> {
    const hosts = await this.etcdHosts();
    if (this.pool.length === 0) {
      this.pool = await Promise.all(Array.from({ length: POOL_SIZE }, (_, i) => this.spawn(`r${i + 1}`, hosts)));
      this.note(`started ${POOL_SIZE} replica processes (pids ${this.pool.map(r => r.pid).join(', ')})`);
      await this.warmUp();
    } else {
      for (const replica of this.pool) replica.setBehaviour({});
      for (const replica of this.pool) if (this.weights.get(replica.name) !== 1) this.setWeight(replica, 1);
    }
    return this.pool;
  }

  setBehaviour(replica: ReplicaProcess, behaviour: EchoBehaviour): void {
    replica.setBehaviour(behaviour);
  }

  /** Updates the replica's registered weight (our resolver sees it through the watch). */
  setWeight(replica: ReplicaProcess, weight: number): void {
    this.weights.set(replica.name, weight);
    replica.update({ weight });
  }

  /**
   * Replaces a pool replica that was killed: a new process with the same name on a new port.
   * The dead one's key is deleted (as its lease would expire) so later scenarios see 5 live replicas.
   */
  async replace(dead: ReplicaProcess): Promise<ReplicaProcess> {
    const index = this.pool.indexOf(dead);
    if (index < 0) throw new Error(`bench: replica ${dead.name} is not in the pool`);
    const hosts = await this.etcdHosts();
    await dead.kill('SIGKILL');
    etcdctl(hosts, ['del', endpointKey(this.service, dead.address)]);
    const fresh = await this.spawn(dead.name, hosts);
    this.pool[index] = fresh;
    return fresh;
  }

  /** A replica outside the pool, registered under the pool's service (discovery). The caller stops it. */
  async spawnExtra(name: string, config: Omit<ReplicaConfig, 'name' | 'service' | 'etcdHosts'> = {}): Promise<ReplicaProcess> {
    return spawnReplica({ ttlSeconds: POOL_TTL_SECONDS, ...config, name, service: this.service, etcdHosts: await this.etcdHosts() });
  }

  /** `ipv4:` target of these replicas, in order: grpc-js's static resolver, no etcd involved. */
  staticTarget(replicas: readonly ReplicaProcess[]): string {
    return `ipv4:${replicas.map(r => r.address).join(',')}`;
  }

  /** A client with its own channel and connections (local subchannel pool), closed by `close()` or `closeClient`. */
  client(target: string, options: BenchClientOptions): EchoClient {
    if (this.closed) throw new Error('bench: environment already closed');
    const serviceConfig: Record<string, unknown> = { loadBalancingConfig: [options.lbConfig] };
    if (options.grpcRetry) {
      serviceConfig.methodConfig = [{
        name: [{ service: ECHO_SERVICE }],
        retryPolicy: { maxAttempts: 3, initialBackoff: '0.025s', maxBackoff: '1s', backoffMultiplier: 2, retryableStatusCodes: ['UNAVAILABLE'] },
      }];
      serviceConfig.retryThrottling = { maxTokens: 100, tokenRatio: 1 };
    }
    const channelOptions: grpc.ClientOptions = {
      'grpc.service_config': JSON.stringify(serviceConfig),
      'grpc.use_local_subchannel_pool': 1,
    };
    if (options.retryInterceptor) channelOptions.interceptors = [createRetryInterceptor(options.retryInterceptor)];
    const { Client } = loadEcho();
    const client = new Client(target, grpc.credentials.createInsecure(), channelOptions);
    this.clients.add(client);
    return client;
  }

  /** Resolves when the client's channel is READY (some replica connected). */
  ready(client: EchoClient, timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      client.waitForReady(Date.now() + timeoutMs, err => (err ? reject(new Error(`bench: channel not ready within ${timeoutMs} ms: ${err.message}`)) : resolve()));
    });
  }

  closeClient(client: EchoClient): void {
    client.close();
    this.clients.delete(client);
  }

  /** Closes every client, kills every replica process, stops the etcd it started. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    for (const client of this.clients) client.close();
    this.clients.clear();
    this.pool = [];
    await killAllReplicas();
    await this.etcd?.destroy();
    this.etcd = undefined;
  }

  /**
   * Load before anything is measured: the first configuration measured in a fresh process
   * would otherwise pay for the JIT compilation of the whole call path, client and replicas
   * (measured here: round_robin's closed-loop calls/s rise about 4× over the first 5-6 s).
   */
  private async warmUp(): Promise<void> {
    const client = this.client(this.staticTarget(this.pool), { lbConfig: { round_robin: {} } });
    try {
      await this.ready(client);
      await closedLoop(client, { concurrency: WARM_UP_CONCURRENCY, durationMs: 1, warmupMs: this.warmUpMs });
    } finally {
      this.closeClient(client);
    }
  }

  private spawn(name: string, hosts: string[]): Promise<ReplicaProcess> {
    this.weights.set(name, 1);
    // Load reports (per call and out of band) for grpc-js's weighted_round_robin, the load-aware peer.
    return spawnReplica({ name, service: this.service, etcdHosts: hosts, weight: 1, ttlSeconds: POOL_TTL_SECONDS, loadReports: { outOfBand: true } });
  }
}
