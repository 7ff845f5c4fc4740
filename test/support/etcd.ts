/**
 * Real etcd processes for tests, the demo and the bench: free 127.0.0.1 ports,
 * a temp data dir, health with a deadline, and cleanup even when a test fails
 * (see root-hooks.ts and the process 'exit' handler below).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { followChild } from './child-output';
import { freePort } from './ports';

const DEFAULT_HEALTH_TIMEOUT_MS = 15_000;
const LOG_TAIL_LINES = 30;
const MAX_PORT_ATTEMPTS = 5;

/** Path of the etcd binary: `$ETCD_BIN` or `etcd` on PATH. */
export const ETCD_BIN = process.env.ETCD_BIN ?? 'etcd';
/** Path of etcdctl, next to `$ETCD_BIN` when that is set. */
export const ETCDCTL_BIN = process.env.ETCD_BIN
  ? join(process.env.ETCD_BIN, '..', 'etcdctl')
  : 'etcdctl';

export interface EtcdMemberOptions {
  /** Member name. Defaults to `n1`. */
  name?: string;
  /** Extra command-line flags. Defaults to none. */
  extraArgs?: string[];
  /** How long to wait for /health. Defaults to 15 s. */
  healthTimeoutMs?: number;
}

export interface EtcdMember {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  /** `127.0.0.1:<clientPort>`. */
  readonly endpoint: string;
  readonly dataDir: string;
  /** PID of the running process, or undefined while stopped. */
  readonly pid: number | undefined;
  isRunning(): boolean;
  /** Sends `signal` (default SIGKILL) and waits for the process to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** SIGTERM, then SIGKILL after 5 s; waits for exit. Keeps the data dir. */
  stop(): Promise<void>;
  /** Starts again on the same ports and data dir; waits for health if `waitHealthy` (default true). */
  restart(waitHealthy?: boolean): Promise<void>;
  /** Waits until this member answers /health with `true`. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** Last lines of this member's output, for error messages. */
  logTail(lines?: number): string;
}

export interface EtcdServer extends EtcdMember {
  /** Client endpoints, `host:port`, as etcd3's `hosts` option takes them. */
  readonly endpoints: string[];
  /** Stops the process and removes the data dir. Idempotent. */
  destroy(): Promise<void>;
}

export interface EtcdCluster {
  readonly members: EtcdMember[];
  readonly endpoints: string[];
  /** The member that currently leads, found with `etcdctl endpoint status`. */
  leader(): Promise<EtcdMember>;
  /** Stops every member and removes the data dirs. Idempotent. */
  destroy(): Promise<void>;
}

interface MemberSpec {
  name: string;
  clientPort: number;
  peerPort: number;
  dataDir: string;
  initialCluster: string;
  clusterToken: string;
  extraArgs: string[];
}

const live = new Set<Member>();

class Member implements EtcdMember {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private log: string[] = [];
  private destroyed = false;

  constructor(private readonly spec: MemberSpec) {}

  get name(): string { return this.spec.name; }
  get clientPort(): number { return this.spec.clientPort; }
  get peerPort(): number { return this.spec.peerPort; }
  get endpoint(): string { return `127.0.0.1:${this.spec.clientPort}`; }
  get dataDir(): string { return this.spec.dataDir; }
  get pid(): number | undefined { return this.isRunning() ? this.child?.pid : undefined; }

  isRunning(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  start(): void {
    if (this.destroyed) throw new Error(`etcd ${this.name}: already destroyed`);
    if (this.isRunning()) throw new Error(`etcd ${this.name}: already running (pid ${this.child?.pid})`);
    const s = this.spec;
    const peerUrl = `http://127.0.0.1:${s.peerPort}`;
    const clientUrl = `http://127.0.0.1:${s.clientPort}`;
    const args = [
      '--name', s.name,
      '--data-dir', s.dataDir,
      '--listen-client-urls', clientUrl,
      '--advertise-client-urls', clientUrl,
      '--listen-peer-urls', peerUrl,
      '--initial-advertise-peer-urls', peerUrl,
      '--initial-cluster', s.initialCluster,
      '--initial-cluster-token', s.clusterToken,
      '--initial-cluster-state', 'new',
      '--heartbeat-interval', '50',
      '--election-timeout', '500',
      '--log-level', 'warn',
      ...s.extraArgs,
    ];
    const child = spawn(ETCD_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    live.add(this);
    this.exited = followChild(child, this.log);
  }

  async waitHealthy(timeoutMs = DEFAULT_HEALTH_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer yet';
    while (Date.now() < deadline) {
      if (!this.isRunning()) {
        throw new Error(`etcd ${this.name} exited before it was healthy (${this.exitDescription()}):\n${this.logTail()}`);
      }
      try {
        const res = await fetch(`http://${this.endpoint}/health`, { signal: AbortSignal.timeout(1000) });
        const body = (await res.json()) as { health?: string };
        if (body.health === 'true' && this.isRunning()) return;
        last = JSON.stringify(body);
      } catch (err) {
        last = (err as Error).message;
      }
      await delay(25);
    }
    throw new Error(`etcd ${this.name} not healthy after ${timeoutMs} ms (last: ${last}):\n${this.logTail()}`);
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.isRunning()) return;
    this.child?.kill(signal);
    await this.exited;
  }

  async stop(): Promise<void> {
    if (!this.isRunning()) return;
    this.child?.kill('SIGTERM');
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }

  async restart(waitHealthy = true): Promise<void> {
    await this.kill('SIGKILL');
    this.start();
    if (waitHealthy) await this.waitHealthy();
  }

  logTail(lines = LOG_TAIL_LINES): string {
    return this.log.slice(-lines).join('\n');
  }

  addressInUse(): boolean {
    return this.log.some(l => l.includes('address already in use'));
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    await this.kill('SIGKILL');
    this.destroyed = true;
    live.delete(this);
    rmSync(this.spec.dataDir, { recursive: true, force: true });
  }

  /** Synchronous last-resort cleanup for process exit. */
  destroySync(): void {
    if (this.isRunning()) this.child?.kill('SIGKILL');
    rmSync(this.spec.dataDir, { recursive: true, force: true });
  }

  private exitDescription(): string {
    return this.child?.signalCode ? `signal ${this.child.signalCode}` : `exit code ${this.child?.exitCode}`;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms));
}

function makeDataDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `etcd-test-${name}-`));
}

async function launch(specs: MemberSpec[], healthTimeoutMs: number): Promise<Member[]> {
  const members = specs.map(s => new Member(s));
  for (const m of members) m.start();
  try {
    await Promise.all(members.map(m => m.waitHealthy(healthTimeoutMs)));
    return members;
  } catch (err) {
    await Promise.all(members.map(m => m.destroy()));
    if (members.some(m => m.addressInUse())) throw new PortInUseError((err as Error).message);
    throw err;
  }
}

class PortInUseError extends Error {}

async function withFreshPorts<T>(attempt: () => Promise<T>): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof PortInUseError) || i >= MAX_PORT_ATTEMPTS) throw err;
    }
  }
}

/** Starts one etcd member on free loopback ports with a fresh data dir. */
export async function startEtcd(options: EtcdMemberOptions = {}): Promise<EtcdServer> {
  const name = options.name ?? 'n1';
  const [member] = await withFreshPorts(async () => {
    const clientPort = await freePort();
    const peerPort = await freePort();
    return launch([{
      name,
      clientPort,
      peerPort,
      dataDir: makeDataDir(name),
      initialCluster: `${name}=http://127.0.0.1:${peerPort}`,
      clusterToken: `t-${process.pid}-${clientPort}`,
      extraArgs: options.extraArgs ?? [],
    }], options.healthTimeoutMs ?? DEFAULT_HEALTH_TIMEOUT_MS);
  });
  return Object.assign(member, { endpoints: [member.endpoint] }) as Member & EtcdServer;
}

/** Starts an etcd cluster of `size` members (static bootstrap) and waits until each is healthy. */
export async function startEtcdCluster(size = 3, options: Omit<EtcdMemberOptions, 'name'> = {}): Promise<EtcdCluster> {
  const members = await withFreshPorts(async () => {
    const ports: Array<{ clientPort: number; peerPort: number }> = [];
    for (let i = 0; i < size; i++) ports.push({ clientPort: await freePort(), peerPort: await freePort() });
    const initialCluster = ports.map((p, i) => `m${i}=http://127.0.0.1:${p.peerPort}`).join(',');
    const token = `c-${process.pid}-${ports[0].clientPort}`;
    return launch(ports.map((p, i) => ({
      name: `m${i}`,
      ...p,
      dataDir: makeDataDir(`m${i}`),
      initialCluster,
      clusterToken: token,
      extraArgs: options.extraArgs ?? [],
    })), options.healthTimeoutMs ?? DEFAULT_HEALTH_TIMEOUT_MS);
  });
  return {
    members,
    endpoints: members.map(m => m.endpoint),
    async leader(): Promise<EtcdMember> {
      const running = members.filter(m => m.isRunning());
      const out = etcdctl(running.map(m => m.endpoint), ['endpoint', 'status', '-w', 'json']);
      const statuses = JSON.parse(out) as Array<{ Endpoint: string; Status: { header: { member_id: number }; leader: number } }>;
      const lead = statuses.find(s => String(s.Status.header.member_id) === String(s.Status.leader));
      const member = lead && members.find(m => lead.Endpoint.endsWith(`:${m.clientPort}`));
      if (!member) throw new Error(`no leader among ${running.map(m => m.name).join(', ')}: ${out}`);
      return member;
    },
    async destroy(): Promise<void> {
      await Promise.all(members.map(m => m.destroy()));
    },
  };
}

/** Runs etcdctl (API v3) against `endpoints`; returns stdout, throws with stderr on failure. */
export function etcdctl(endpoints: string[], args: string[], input?: string): string {
  const res = spawnSync(ETCDCTL_BIN, [`--endpoints=${endpoints.join(',')}`, '--command-timeout=5s', ...args], {
    env: { ...process.env, ETCDCTL_API: '3' },
    input,
    encoding: 'utf8',
    timeout: 15_000,
  });
  if (res.status !== 0) {
    throw new Error(`etcdctl ${args.join(' ')} failed (${res.status ?? res.signal}): ${res.stderr || res.error?.message}`);
  }
  return res.stdout;
}

/** Stops every etcd started by this process and removes its data dir. */
export async function destroyAllEtcd(): Promise<void> {
  await Promise.all([...live].map(m => m.destroy()));
}

/** Number of etcd processes this process started that are still running. */
export function runningEtcdCount(): number {
  return [...live].filter(m => m.isRunning()).length;
}

process.once('exit', () => {
  for (const m of live) m.destroySync();
});
