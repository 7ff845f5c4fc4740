/**
 * A single etcd serving clients over TLS only (`https://localhost:<port>`), for
 * tests of secured connections: free loopback ports, a temp data dir, health
 * checked over TLS against the given CA, cleanup on destroy and at process exit.
 * (test/support/etcd.ts covers plain-text members and clusters.)
 *
 * Clients reach it by name, not by IP: grpc-js (1.14) sends its target host as the
 * TLS ServerName, and an IP there is not permitted by RFC 6066 — Node warns once per
 * process (DEP0123). etcd3's auth client takes no channel options, so
 * `grpc.ssl_target_name_override` cannot avoid it; a DNS name can.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ETCD_BIN } from './etcd';
import { freePort } from './ports';

export interface TlsEtcdOptions {
  /** Server certificate and key (PEM files) for `localhost` (test/support/tls.ts makes one). */
  certFile: string;
  keyFile: string;
  /** CA (PEM file) that signed the certificate: used to check health. */
  caFile: string;
  /** How long to wait for /health. Defaults to 15 s. */
  healthTimeoutMs?: number;
}

export interface TlsEtcd {
  /** `localhost:<port>`. */
  readonly endpoint: string;
  /** `['https://localhost:<port>']`: etcd3 `hosts` (and etcdctl `--endpoints`) with TLS on. */
  readonly hosts: string[];
  isRunning(): boolean;
  logTail(lines?: number): string;
  /** Stops the process and removes the data dir. Idempotent. */
  destroy(): Promise<void>;
}

const live = new Set<{ child: ChildProcess; dataDir: string }>();

/** Starts etcd with client TLS and waits until /health answers over TLS. */
export async function startTlsEtcd(options: TlsEtcdOptions): Promise<TlsEtcd> {
  const clientPort = await freePort();
  const peerPort = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'etcd-test-tls-'));
  const clientUrl = `https://localhost:${clientPort}`;
  const listenUrls = (await loopbackAddressesOfLocalhost()).map(ip => `https://${ip.includes(':') ? `[${ip}]` : ip}:${clientPort}`);
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const child = spawn(ETCD_BIN, [
    '--name', 'tls1', '--data-dir', dataDir,
    '--listen-client-urls', listenUrls.join(','), '--advertise-client-urls', clientUrl,
    '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl, '--initial-cluster', `tls1=${peerUrl}`,
    '--initial-cluster-token', `tls-${process.pid}-${clientPort}`,
    '--cert-file', options.certFile, '--key-file', options.keyFile,
    '--heartbeat-interval', '50', '--election-timeout', '500', '--log-level', 'warn',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  const entry = { child, dataDir };
  live.add(entry);
  const log: string[] = [];
  const append = (chunk: Buffer): void => {
    log.push(...chunk.toString('utf8').split('\n').filter(l => l.length > 0));
    if (log.length > 500) log.splice(0, log.length - 200);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const exited = new Promise<void>(resolve => {
    child.once('exit', () => resolve());
    child.once('error', err => { log.push(`spawn error: ${err.message}`); resolve(); });
  });
  const isRunning = (): boolean => child.exitCode === null && child.signalCode === null;
  const logTail = (lines = 30): string => log.slice(-lines).join('\n');
  let destroyed = false;
  const server: TlsEtcd = {
    endpoint: `localhost:${clientPort}`,
    hosts: [clientUrl],
    isRunning,
    logTail,
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      if (isRunning()) child.kill('SIGKILL');
      await exited;
      live.delete(entry);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  const ca = readFileSync(options.caFile);
  const timeoutMs = options.healthTimeoutMs ?? 15_000;
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (!isRunning()) {
      await server.destroy();
      throw new Error(`TLS etcd exited before it was healthy:\n${logTail()}`);
    }
    try {
      if (await healthy(clientPort, ca)) return server;
      last = 'health false';
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise(resolve => setTimeout(resolve, 25));
  }
  await server.destroy();
  throw new Error(`TLS etcd not healthy after ${timeoutMs} ms (last: ${last}):\n${logTail()}`);
}

/**
 * The loopback addresses `localhost` resolves to here (127.0.0.1, and ::1 where
 * /etc/hosts lists it): etcd listens on each, so a client trying them in either
 * order connects on the first.
 */
async function loopbackAddressesOfLocalhost(): Promise<string[]> {
  const addresses = [...new Set((await lookup('localhost', { all: true })).map(a => a.address))];
  const loopback = addresses.filter(ip => ip === '127.0.0.1' || ip === '::1');
  if (loopback.length !== addresses.length || !loopback.includes('127.0.0.1')) {
    throw new Error(`TLS etcd: 'localhost' must resolve to loopback addresses including 127.0.0.1, got ${addresses.join(', ')}`);
  }
  return loopback;
}

function healthy(port: number, ca: Buffer): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/health', ca, timeout: 1000 }, res => {
      let body = '';
      res.on('data', (chunk: Buffer) => { body += chunk.toString(); });
      res.on('end', () => resolve(body.includes('"health":"true"')));
    });
    req.on('timeout', () => req.destroy(new Error('health check timed out')));
    req.on('error', reject);
    req.end();
  });
}

process.once('exit', () => {
  for (const { child, dataDir } of live) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
});
