/**
 * Real ZooKeeper servers for tests, the demo and the bench: Debian's `zookeeper`
 * package (scripts/ensure-zookeeper.sh) started standalone on a free 127.0.0.1 port
 * with a temp data dir (up in about a second), kill/restart on the same port and data
 * dir (so sessions survive a restart shorter than their timeout), freeze/thaw
 * (SIGSTOP/SIGCONT), stop by PID, and cleanup even when a test fails (root-hooks.ts
 * and the process 'exit' handler below). `zkCli()` runs ZooKeeper's own CLI: another
 * client than ours, for interop checks.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { followChild } from './child-output';
import { freePort } from './ports';

/** The server's classpath: `$ZOOKEEPER_CLASSPATH` or Debian's jars. */
export const ZOOKEEPER_CLASSPATH = process.env.ZOOKEEPER_CLASSPATH ?? '/usr/share/java/zookeeper.jar:/usr/share/java/*';
const ZKCLI = process.env.ZKCLI_BIN ?? '/usr/share/zookeeper/bin/zkCli.sh';
const DEFAULT_READY_TIMEOUT_MS = 30_000;
const MAX_PORT_ATTEMPTS = 5;

export interface ZooKeeperOptions {
  /** Milliseconds per tick. Defaults to 500 (lean tests: session timeouts from 1 s to 10 s). */
  tickTime?: number;
  /** Lower bound of negotiated session timeouts. Defaults to 2 × tickTime (ZooKeeper's own default). */
  minSessionTimeoutMs?: number;
  /** Upper bound. Defaults to 20 × tickTime. */
  maxSessionTimeoutMs?: number;
  /** How long to wait for `ruok` → `imok`. Defaults to 30 s. */
  readyTimeoutMs?: number;
}

export interface ZooKeeperServer {
  readonly port: number;
  /** `127.0.0.1:<port>`, a ZooKeeper connection string. */
  readonly endpoint: string;
  readonly dataDir: string;
  readonly pid: number | undefined;
  isRunning(): boolean;
  /** Sends `signal` (default SIGKILL) and waits for the process to exit. Keeps the data dir. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts again on the same port and data dir; waits for `imok` unless `waitReady` is false. */
  restart(waitReady?: boolean): Promise<void>;
  /** SIGSTOP: the server stops answering (connections stay open). */
  freeze(): void;
  /** SIGCONT. */
  thaw(): void;
  waitReady(timeoutMs?: number): Promise<void>;
  /** Last lines of the server's output. */
  logTail(lines?: number): string;
  /** Stops the process (by its PID) and removes the data dir. Idempotent. */
  destroy(): Promise<void>;
}

const live = new Set<Server>();

class Server implements ZooKeeperServer {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private log: string[] = [];
  private destroyed = false;

  constructor(readonly port: number, private readonly dir: string, private readonly config: string) {}

  get endpoint(): string { return `127.0.0.1:${this.port}`; }
  get dataDir(): string { return join(this.dir, 'data'); }
  get pid(): number | undefined { return this.isRunning() ? this.child?.pid : undefined; }

  isRunning(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  start(): void {
    if (this.destroyed) throw new Error('zookeeper: already destroyed');
    if (this.isRunning()) throw new Error(`zookeeper: already running (pid ${this.child?.pid})`);
    const child = spawn('java', [
      `-Dzookeeper.log.dir=${this.dir}`, '-Dzookeeper.root.logger=WARN,CONSOLE', '-Xms32m', '-Xmx256m', '-XX:+UseSerialGC',
      '-XX:TieredStopAtLevel=1', '-cp', ZOOKEEPER_CLASSPATH,
      'org.apache.zookeeper.server.quorum.QuorumPeerMain', this.config,
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    live.add(this);
    this.exited = followChild(child, this.log);
  }

  async waitReady(timeoutMs = DEFAULT_READY_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer yet';
    while (Date.now() < deadline) {
      if (!this.isRunning()) throw new Error(`zookeeper exited before it was ready:\n${this.logTail()}`);
      last = await fourLetterWord(this.port, 'ruok').catch((err: Error) => err.message);
      if (last === 'imok') return;
      await delay(50);
    }
    throw new Error(`zookeeper not ready after ${timeoutMs} ms (last: ${last}):\n${this.logTail()}`);
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.isRunning()) return;
    if (signal === 'SIGKILL' || signal === 'SIGTERM') this.thaw();
    this.child?.kill(signal);
    await this.exited;
  }

  async restart(waitReady = true): Promise<void> {
    await this.kill('SIGKILL');
    this.start();
    if (waitReady) await this.waitReady();
  }

  freeze(): void {
    if (this.isRunning()) process.kill(this.child!.pid!, 'SIGSTOP');
  }

  thaw(): void {
    if (this.isRunning()) process.kill(this.child!.pid!, 'SIGCONT');
  }

  logTail(lines = 30): string {
    return this.log.slice(-lines).join('\n');
  }

  addressInUse(): boolean {
    return this.log.some(l => l.includes('Address already in use'));
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    await this.kill('SIGKILL');
    this.destroyed = true;
    live.delete(this);
    rmSync(this.dir, { recursive: true, force: true });
  }

  destroySync(): void {
    if (this.isRunning()) {
      process.kill(this.child!.pid!, 'SIGCONT');
      this.child?.kill('SIGKILL');
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Sends a four-letter word (`ruok`, `stat`, `mntr`) and resolves to the answer. */
export function fourLetterWord(port: number, word: string, timeoutMs = 1000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`${word}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('connect', () => socket.write(word));
    socket.on('data', chunk => chunks.push(chunk));
    socket.on('error', err => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('utf8').trim());
    });
  });
}

/** Starts a standalone ZooKeeper on a free loopback port with a fresh data dir. */
export async function startZooKeeper(options: ZooKeeperOptions = {}): Promise<ZooKeeperServer> {
  const tickTime = options.tickTime ?? 500;
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'zk-test-'));
    mkdirSync(join(dir, 'data'));
    const lines = [
      `tickTime=${tickTime}`,
      `dataDir=${join(dir, 'data')}`,
      `clientPort=${port}`,
      'clientPortAddress=127.0.0.1',
      'admin.enableServer=false',
      '4lw.commands.whitelist=ruok,stat,mntr,cons',
      // Container nodes left empty are removed after this many ms (ZooKeeper's default is 60 s).
      'znode.container.checkIntervalMs=1000',
      `minSessionTimeout=${options.minSessionTimeoutMs ?? 2 * tickTime}`,
      `maxSessionTimeout=${options.maxSessionTimeoutMs ?? 20 * tickTime}`,
    ];
    const config = join(dir, 'zoo.cfg');
    writeFileSync(config, `${lines.join('\n')}\n`);
    const server = new Server(port, dir, config);
    server.start();
    try {
      await server.waitReady(options.readyTimeoutMs);
      return server;
    } catch (err) {
      const inUse = server.addressInUse();
      await server.destroy();
      if (!inUse || attempt >= MAX_PORT_ATTEMPTS) throw err;
    }
  }
}

/**
 * Runs ZooKeeper's CLI (`zkCli.sh`, a Java client: not ours) with one command, one
 * argument per element (`['create', '/x', json]`); returns its stdout.
 */
export function zkCli(endpoint: string, command: string[]): string {
  const res = spawnSync('bash', [ZKCLI, '-server', endpoint, ...command], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, CLIENT_JVMFLAGS: '-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Dzookeeper.root.logger=ERROR,CONSOLE' },
  });
  if (res.status !== 0) throw new Error(`zkCli ${command.join(' ')} failed (${res.status ?? res.signal}): ${res.stderr || res.error?.message}`);
  return res.stdout;
}

/** Stops every ZooKeeper started by this process and removes its data dir. */
export async function destroyAllZooKeepers(): Promise<void> {
  await Promise.all([...live].map(s => s.destroy()));
}

/** Number of ZooKeeper processes this process started that are still running. */
export function runningZooKeeperCount(): number {
  return [...live].filter(s => s.isRunning()).length;
}

function delay(ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms));
}

process.once('exit', () => {
  for (const s of live) s.destroySync();
});
