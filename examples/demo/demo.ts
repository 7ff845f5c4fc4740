/**
 * `npm run demo`: the main job in one command. A throwaway etcd (or ETCD_ENDPOINTS),
 * 4 echo replicas in their own processes with different weights (one slow), and a
 * client on `etcd:///echo` with a load-balancing policy and the retry interceptor
 * under steady load — while a replica is killed, one is added, one leaves
 * gracefully and etcd itself restarts. Exits non-zero if any call failed.
 * With `--registry zookeeper` the same runs on a throwaway ZooKeeper (`zk:///echo`,
 * Curator instances, sessions of 10 s that outlive its restart); with `--registry kubernetes`
 * on `kubernetes:///echo:grpc` against the Kubernetes API server double (registry-kubernetes.ts);
 * with `--registry consul` on the in-process Consul agent double (`consul:///echo`, TTL checks;
 * registry-consul.ts).
 *
 *   npm run demo -- [--duration 40] [--policy etcd_least_request] [--rate 300] [--registry etcd|zookeeper|kubernetes|consul] [--plain] [--metrics-port 9464]
 *
 * With --metrics-port the client's OpenTelemetry metrics are served at
 * http://127.0.0.1:PORT/metrics (Prometheus text) while it runs (prometheus.ts).
 *
 * The events are scaled to the duration (script.ts); durations too short for them are refused.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { inspectBalancers, register } from '../../src';
import { startEtcd, type EtcdServer } from '../../test/support/etcd';
import { startZooKeeper, type ZooKeeperServer } from '../../test/support/zookeeper';
import { startDemoConsul, type DemoConsul } from './registry-consul';
import { killAllReplicas, spawnReplica, type ReplicaProcess } from '../../test/support/replica-process';
import { DemoOutput, count } from './table';
import { LoadStats } from './load-stats';
import { delay, drawEverySecond, msUntil, printSummary, startDemoClient, waitUntil } from './demo-client';
import { servePrometheus, type PrometheusEndpoint } from './prometheus';
import { ETCD_DOWN_MS, MIN_DURATION_S, planScript } from './script';
import { runKubernetesDemo } from './registry-kubernetes';

const POLICIES = ['etcd_least_request', 'etcd_weighted_round_robin', 'etcd_weighted_random', 'etcd_peak_ewma', 'round_robin'];
const SERVICE = 'echo';
const MAX_DURATION_S = 600;
/** How long the client may take to see a change through etcd once it is back. */
const RECOVERY_TIMEOUT_MS = 10_000;
/** Calls go on at least this long after the change was seen, so the table shows them. */
const AFTER_RECOVERY_MS = 1000;
const REGISTRIES = ['etcd', 'zookeeper', 'kubernetes', 'consul'];
const USAGE = `usage: npm run demo -- [--duration S (${MIN_DURATION_S}-${MAX_DURATION_S}, default 40)] [--policy NAME] [--rate CALLS_PER_S] [--registry etcd|zookeeper|kubernetes|consul] [--plain] [--metrics-port PORT]`;

/** A bad command line: reported without a stack, exit code 2. */
class UsageError extends Error {}

function isUsageError(err: unknown): err is Error {
  // parseArgs's own errors (unknown option, missing value) carry ERR_PARSE_ARGS_* codes.
  return err instanceof UsageError || String((err as { code?: unknown })?.code).startsWith('ERR_PARSE_ARGS');
}

interface Options { durationS: number; policy: string; rate: number; registry: 'etcd' | 'zookeeper' | 'kubernetes' | 'consul'; plain: boolean; metricsPort: number | undefined }

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '40' },
      policy: { type: 'string', default: 'etcd_least_request' },
      rate: { type: 'string', default: '300' },
      registry: { type: 'string', default: 'etcd' },
      plain: { type: 'boolean', default: false },
      'metrics-port': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    console.log(`policies: ${POLICIES.join(', ')}`);
    process.exit(0);
  }
  const durationS = Number(values.duration);
  const rate = Number(values.rate);
  if (!Number.isFinite(durationS) || durationS > MAX_DURATION_S) {
    throw new UsageError(`--duration must be ${MIN_DURATION_S}..${MAX_DURATION_S} seconds, got ${values.duration}`);
  }
  if (durationS < MIN_DURATION_S) {
    throw new UsageError(`--duration ${values.duration} is too short: the minimum is ${MIN_DURATION_S} s, the scripted events ` +
      `(kill -9, a join, a graceful shutdown, an etcd restart and the recovery after it) need that long`);
  }
  if (!Number.isFinite(rate) || rate < 1 || rate > 5000) throw new UsageError(`--rate must be 1..5000 calls/s, got ${values.rate}`);
  if (!POLICIES.includes(values.policy)) throw new UsageError(`--policy must be one of ${POLICIES.join(', ')}, got ${values.policy}`);
  if (!REGISTRIES.includes(values.registry)) throw new UsageError(`--registry must be one of ${REGISTRIES.join(', ')}, got ${values.registry}`);
  const metricsPort = values['metrics-port'] === undefined ? undefined : Number(values['metrics-port']);
  if (metricsPort !== undefined && !(Number.isInteger(metricsPort) && metricsPort >= 1 && metricsPort <= 65535)) {
    throw new UsageError(`--metrics-port must be a TCP port 1..65535, got ${values['metrics-port']}`);
  }
  return { durationS, policy: values.policy, rate, registry: values.registry as Options['registry'], plain: values.plain || !process.stdout.isTTY, metricsPort };
}

async function main(): Promise<number> {
  const opts = parseOptions();
  if (opts.registry === 'kubernetes') return runKubernetesDemo(opts);
  const script = planScript(opts.durationS);
  const out = new DemoOutput(!opts.plain);
  let t0 = Date.now();
  const elapsedS = (): number => (Date.now() - t0) / 1000;
  const say = (text: string): void => out.banner(elapsedS(), text);

  // The registry: etcd, or ZooKeeper with --registry zookeeper. `store` is what the restart event kills.
  let etcd: EtcdServer | undefined;
  let zookeeper: ZooKeeperServer | undefined;
  let consul: DemoConsul | undefined;
  const external = process.env.ETCD_ENDPOINTS?.split(',').map(s => s.trim()).filter(Boolean);
  let hosts: string[];
  if (opts.registry === 'consul') {
    consul = await startDemoConsul();
    hosts = [consul.address];
    out.line(`started an in-process Consul agent double at ${consul.address} (a test double, not Consul)`);
  } else if (opts.registry === 'zookeeper') {
    // Only this mode needs a JVM and ZooKeeper (~200 MB from Debian): `npm run demo` (etcd) never installs them.
    execFileSync('bash', [join(__dirname, '..', '..', 'scripts', 'ensure-zookeeper.sh')], { stdio: 'inherit' });
    zookeeper = await startZooKeeper();
    hosts = [zookeeper.endpoint];
    out.line(`started a throwaway ZooKeeper at ${zookeeper.endpoint} (pid ${zookeeper.pid})`);
  } else if (external && external.length > 0) {
    hosts = external;
    out.line(`using etcd at ${hosts.join(',')} (ETCD_ENDPOINTS); the etcd-restart event is skipped`);
  } else {
    etcd = await startEtcd({ name: 'demo' });
    hosts = etcd.endpoints;
    out.line(`started a throwaway etcd at ${hosts.join(',')} (pid ${etcd.pid})`);
  }
  const store: EtcdServer | ZooKeeperServer | DemoConsul | undefined = etcd ?? zookeeper ?? consul;
  const storeName = consul ? 'the Consul agent' : zookeeper ? 'ZooKeeper' : 'etcd';
  const scheme = consul ? 'consul' : zookeeper ? 'zk' : 'etcd';
  // ZooKeeper: sessions of 10 s outlive its restart (down 3 s + the restart), so nothing is lost.
  const ttlSeconds = zookeeper ? 10 : 3;
  const registryHosts = consul ? { consulAddress: consul.address } : zookeeper ? { zookeeperHosts: zookeeper.endpoint } : { etcdHosts: hosts };

  const stats = new LoadStats();
  const replicas = new Map<string, ReplicaProcess>();
  const weights = new Map<string, number>();
  const states = new Map<string, string>();
  const spawn = async (name: string, weight: number, latencyMs = 0): Promise<ReplicaProcess> => {
    const r = await spawnReplica({ name, service: SERVICE, ...registryHosts, weight, ttlSeconds, behaviour: { latencyMs } });
    replicas.set(name, r);
    stats.names.set(r.address, name);
    weights.set(name, weight);
    states.set(name, 'up');
    return r;
  };
  await Promise.all([spawn('r1', 1), spawn('r2', 2), spawn('r3', 3), spawn('r4-slow', 2, 25)]);
  out.line(`4 replicas registered in ${storeName} as '${SERVICE}' (r4-slow adds 25 ms); client: ${scheme}:///${SERVICE} + ${opts.policy} + retry interceptor, ${opts.rate} calls/s`);

  // The MeterProvider goes in before register() and the channel: instruments are bound when components are created.
  let prometheus: PrometheusEndpoint | undefined;
  if (opts.metricsPort !== undefined) {
    prometheus = await servePrometheus(opts.metricsPort);
    out.line(`metrics: ${prometheus.url} (OpenTelemetry, Prometheus text format)`);
  }
  register({ ...(consul ? { consul: { address: consul.address } } : zookeeper ? { zookeeper: { hosts: zookeeper.endpoint } } : { etcd: { hosts } }), metrics: { perEndpoint: opts.metricsPort !== undefined } });
  t0 = Date.now();
  const { client, load } = startDemoClient(`${scheme}:///${SERVICE}`, opts.policy, opts.rate, stats);
  const drawTimer = drawEverySecond(out, stats, elapsedS, opts.durationS, () => [...weights.keys()].sort().map(name => ({
    name,
    weight: weights.get(name) ?? 0,
    state: states.get(name) ?? '?',
    inFlight: replicas.get(name)?.isRunning() ? replicas.get(name)?.stats.inFlight ?? 0 : 0,
  })));

  const results: string[] = [];
  const at = (seconds: number): Promise<void> => waitUntil(t0 + seconds * 1000);
  const cleanup = async (): Promise<void> => {
    load.halt();
    clearInterval(drawTimer);
    client.close();
    await prometheus?.stop();
    await killAllReplicas();
    await store?.destroy();
  };
  process.once('SIGINT', () => {
    void cleanup().then(() => process.exit(130));
  });

  try {
    await at(script.killS);
    const victim = replicas.get('r2')!;
    const killedAt = Date.now();
    await victim.kill('SIGKILL');
    states.set('r2', 'killed');
    say(`kill -9 r2 (pid ${victim.pid}): its in-flight calls fail over to other replicas`);
    // Routed around = the balancer no longer counts r2 as READY (new calls cannot go there).
    const routedAroundMs = await msUntil(() => !isReadyInBalancer(victim.address), killedAt, 10_000);

    await at(script.joinS);
    const joinStart = Date.now();
    await spawn('r5-new', 2);
    states.set('r5-new', 'new');
    const registeredAt = Date.now();
    say(`r5-new registered in ${storeName} (weight 2, took ${registeredAt - joinStart} ms incl. process start)`);

    await at(script.leaveS);
    const leaving = replicas.get('r3')!;
    states.set('r3', 'draining');
    states.set('r5-new', 'up');
    say('r3 shuts down gracefully: deregister → clients drop it → drain → exit');
    const leftAt = Date.now();
    await leaving.shutdown({ deregisterGraceMs: 1000, drainMs: 5000 });
    states.set('r3', 'gone');

    let etcdDown: { from: number; to: number; calls: number; servedAtRestart: number; changeSeenMs: number | undefined } | undefined;
    let endAt = t0 + script.endS * 1000;
    if (store) {
      await at(script.etcdKillS);
      const before = stats.totalCalls;
      const from = Date.now();
      await store.kill('SIGKILL');
      say(`${storeName} kill -9: clients keep their last good endpoint list; calls go on`);
      await delay(ETCD_DOWN_MS);
      await store.restart();
      const to = Date.now();
      const servedAtRestart = stats.totalCalls - stats.totalFailed;
      say(`${storeName} restarted after ${((to - from) / 1000).toFixed(1)} s; r1's weight 1 → 3 must now reach the client through ${storeName}`);
      // Recovery = a change made after the restart reaches the client: leases and watches resumed.
      const r1 = replicas.get('r1')!;
      r1.update({ weight: 3 });
      const changeMs = await msUntil(() => weightInBalancer(r1.address) === 3, to, RECOVERY_TIMEOUT_MS);
      const changeSeenMs = weightInBalancer(r1.address) === 3 ? changeMs : undefined;
      if (changeSeenMs === undefined) {
        say(`the client did not see r1's new weight within ${RECOVERY_TIMEOUT_MS} ms of ${storeName}'s restart`);
      } else {
        weights.set('r1', 3);
        say(`the client saw r1's new weight ${changeSeenMs} ms after ${storeName} was back: watches and ${consul ? 'registrations' : zookeeper ? 'sessions' : 'leases'} resumed`);
      }
      etcdDown = { from, to, calls: stats.totalCalls - before, servedAtRestart, changeSeenMs };
      endAt = Math.max(endAt, Date.now() + AFTER_RECOVERY_MS);
    }

    await waitUntil(endAt);
    await load.stop();
    clearInterval(drawTimer);

    results.push(`kill -9 r2: routed around ${routedAroundMs} ms after the kill; ` +
      `${count(stats.replica('r2').retried, 'in-flight attempt')} retried on another replica`);
    const firstNew = stats.replica('r5-new').firstServedAt;
    results.push(`new replica r5-new: first call served ${firstNew ? firstNew - registeredAt : 'never'} ms after it was registered`);
    const lastR3 = stats.replica('r3').lastServedAt;
    results.push(`graceful shutdown of r3: last call served ${lastR3 ? Math.max(0, lastR3 - leftAt) : 0} ms after shutdown began, none failed`);
    if (etcdDown) {
      results.push(`${storeName} down ${((etcdDown.to - etcdDown.from) / 1000).toFixed(1)} s: ${count(etcdDown.calls, 'call')} served meanwhile`);
      const servedSince = count(stats.totalCalls - stats.totalFailed - etcdDown.servedAtRestart, 'call');
      results.push(etcdDown.changeSeenMs === undefined
        ? `${storeName} back: NOT recovered, r1's weight change not seen within ${RECOVERY_TIMEOUT_MS} ms; ${servedSince} served since`
        : `${storeName} back: recovered, r1's weight change seen by the client ${etcdDown.changeSeenMs} ms after the restart; ${servedSince} served since`);
    }
  } finally {
    await cleanup();
  }

  return printSummary(out, stats, results);
}

/** The weight of `address` in the first live etcd_* balancer that has it. */
function weightInBalancer(address: string): number | undefined {
  for (const b of inspectBalancers()) {
    const endpoint = b.endpoints.find(e => e.address === address);
    if (endpoint) return endpoint.weight;
  }
  return undefined;
}

/** Whether any live etcd_* balancer in this process has `address` READY. */
function isReadyInBalancer(address: string): boolean {
  return inspectBalancers().some(b => b.endpoints.some(e => e.address === address && e.state === 'READY'));
}


main().then(
  code => process.exit(code),
  async (err: unknown) => {
    if (isUsageError(err)) {
      console.error(`demo: ${err.message}\n${USAGE}`);
      process.exit(2);
    }
    console.error(`demo failed: ${(err as Error).stack ?? String(err)}`);
    await killAllReplicas();
    process.exit(2);
  },
);
