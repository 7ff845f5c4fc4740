/**
 * `npm run demo -- --registry kubernetes`: the demo's script on `kubernetes:///echo:grpc`,
 * against the in-process Kubernetes API server double (test/support/kube-apiserver-double.ts:
 * no real cluster can run here). The demo plays the EndpointSlice controller: replica
 * processes (pods, no registration) at 127.0.0.2, .3, … on one port, in two slices; a pod
 * killed is taken out of its slice, a pod leaving turns terminating (draining) before it
 * stops, and the API server itself goes down for a few seconds.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspectBalancers, register } from '../../src';
import { KubeApiServerDouble, endpointSlice, sliceEndpoint } from '../../test/support/kube-apiserver-double';
import { freePort } from '../../test/support/ports';
import { killAllReplicas, spawnReplica, type ReplicaProcess } from '../../test/support/replica-process';
import { DemoOutput, count } from './table';
import { LoadStats } from './load-stats';
import { delay, drawEverySecond, msUntil, printSummary, startDemoClient, waitUntil } from './demo-client';
import { ETCD_DOWN_MS, planScript } from './script';

export interface KubernetesDemoOptions { durationS: number; policy: string; rate: number; plain: boolean }

const NAMESPACE = 'demo';
const SERVICE = 'echo';
const RECOVERY_TIMEOUT_MS = 10_000;
/** How long after a kill -9 the "controller" takes the pod out of its slice (the kubelet noticing). */
const POD_GONE_AFTER_MS = 500;
/** Terminating (draining) before the pod stops: what a preStop hook buys. */
const TERMINATING_GRACE_MS = 1_000;

interface Pod { name: string; ip: string; slice: string; state: 'ready' | 'terminating'; process: ReplicaProcess }

export async function runKubernetesDemo(opts: KubernetesDemoOptions): Promise<number> {
  const script = planScript(opts.durationS);
  const out = new DemoOutput(!opts.plain);
  let t0 = Date.now();
  const elapsedS = (): number => (Date.now() - t0) / 1000;
  const say = (text: string): void => out.banner(elapsedS(), text);

  const api = new KubeApiServerDouble({ tokens: ['demo-token'], bookmarkIntervalMs: 1_000 });
  await api.start();
  const dir = mkdtempSync(join(tmpdir(), 'grpc-etcd-lb-demo-kube-'));
  const kubeconfig = join(dir, 'config');
  writeFileSync(kubeconfig, [
    'apiVersion: v1', 'kind: Config', 'current-context: demo',
    'clusters: [{name: double, cluster: {server: "' + api.url + '"}}]',
    'users: [{name: demo, user: {token: demo-token}}]',
    `contexts: [{name: demo, context: {cluster: double, user: demo, namespace: ${NAMESPACE}}}]`, '',
  ].join('\n'));
  out.line(`started the Kubernetes API server double at ${api.url} (a test double, not a cluster); kubeconfig ${kubeconfig}`);

  const port = await freePort();
  const pods = new Map<string, Pod>();
  const stats = new LoadStats();
  const states = new Map<string, string>();
  /** The EndpointSlice controller: writes every slice from the pods. */
  const publish = (slice: string): void => {
    const endpoints = [...pods.values()].filter(p => p.slice === slice).map(p => sliceEndpoint(p.ip, p.name, p.state, slice === 'echo-a' ? 'zone-a' : 'zone-b'));
    api.applySlice(endpointSlice(NAMESPACE, SERVICE, slice, { ports: [{ name: 'grpc', port, protocol: 'TCP' }], endpoints }));
  };
  let nextIp = 2;
  const spawn = async (name: string, slice: string, latencyMs = 0): Promise<Pod> => {
    const ip = `127.0.0.${nextIp++}`;
    const process = await spawnReplica({ name, address: `${ip}:${port}`, behaviour: { latencyMs } });
    const pod: Pod = { name, ip, slice, state: 'ready', process };
    pods.set(name, pod);
    stats.names.set(process.address, name);
    states.set(name, 'up');
    publish(slice);
    return pod;
  };
  await Promise.all([spawn('r1', 'echo-a'), spawn('r2', 'echo-a'), spawn('r3', 'echo-b'), spawn('r4-slow', 'echo-b', 25)]);
  out.line(`4 pods in 2 EndpointSlices of Service ${NAMESPACE}/${SERVICE} (port grpc=${port}; r4-slow adds 25 ms); ` +
    `client: kubernetes:///${SERVICE}:grpc + ${opts.policy} + retry interceptor, ${opts.rate} calls/s`);

  process.env.KUBECONFIG = kubeconfig;
  register();
  t0 = Date.now();
  const { client, load } = startDemoClient(`kubernetes:///${SERVICE}:grpc`, opts.policy, opts.rate, stats);
  const drawTimer = drawEverySecond(out, stats, elapsedS, opts.durationS, () => [...states.keys()].sort().map(name => ({
    name,
    weight: pods.get(name)?.state === 'terminating' ? 0 : 1,
    state: states.get(name) ?? '?',
    inFlight: pods.get(name)?.process.isRunning() ? pods.get(name)?.process.stats.inFlight ?? 0 : 0,
  })));
  const cleanup = async (): Promise<void> => {
    load.halt();
    clearInterval(drawTimer);
    client.close();
    await killAllReplicas();
    await api.stop();
    rmSync(dir, { recursive: true, force: true });
  };

  const results: string[] = [];
  const at = (seconds: number): Promise<void> => waitUntil(t0 + seconds * 1000);
  try {
    await at(script.killS);
    const victim = pods.get('r2')!;
    await victim.process.kill('SIGKILL');
    states.set('r2', 'killed');
    say(`kill -9 r2 (pid ${victim.process.pid}): its in-flight calls fail over; the controller takes it out of its slice in ${POD_GONE_AFTER_MS} ms`);
    await delay(POD_GONE_AFTER_MS);
    pods.delete('r2');
    publish(victim.slice);

    await at(script.joinS);
    const joined = await spawn('r5-new', 'echo-b');
    const joinedAt = Date.now();
    states.set('r5-new', 'new');
    say('r5-new is ready: the controller adds it to slice echo-b');

    await at(script.leaveS);
    const leaving = pods.get('r3')!;
    leaving.state = 'terminating';
    publish(leaving.slice);
    states.set('r3', 'terminating');
    states.set('r5-new', 'up');
    say(`r3 gets SIGTERM: its endpoint turns serving + terminating (draining, weight 0) for ${TERMINATING_GRACE_MS} ms, then it drains and stops`);
    const leftAt = Date.now();
    await delay(TERMINATING_GRACE_MS);
    await leaving.process.shutdown({ drainMs: 5000 });
    pods.delete('r3');
    publish(leaving.slice);
    states.set('r3', 'gone');

    await at(script.etcdKillS);
    const before = stats.totalCalls;
    const from = Date.now();
    await api.stop();
    say('the API server goes down: clients keep their last good endpoint list; calls go on');
    await delay(ETCD_DOWN_MS);
    await api.start();
    const to = Date.now();
    const servedAtRestart = stats.totalCalls - stats.totalFailed;
    const r6 = await spawn('r6-after', 'echo-a');
    const addedAt = Date.now();
    say(`the API server is back after ${((to - from) / 1000).toFixed(1)} s; r6-after added to slice echo-a must now reach the client`);
    const seenMs = await msUntil(() => inspectBalancers().some(b => b.endpoints.some(e => e.address === r6.process.address)), addedAt, RECOVERY_TIMEOUT_MS);
    const seen = inspectBalancers().some(b => b.endpoints.some(e => e.address === r6.process.address));
    say(seen ? `the client saw r6-after ${seenMs} ms after its slice was updated: the watch resumed` : 'the client did not see r6-after');
    await delay(1000);
    await waitUntil(t0 + script.endS * 1000);
    await load.stop();

    results.push(`kill -9 r2: ${count(stats.replica('r2').retried, 'in-flight attempt')} retried on another pod`);
    const firstNew = stats.replica('r5-new').firstServedAt;
    results.push(`new pod r5-new: first call served ${firstNew ? firstNew - joinedAt : 'never'} ms after its slice was updated (${joined.ip})`);
    const lastR3 = stats.replica('r3').lastServedAt;
    results.push(`terminating r3: last call served ${lastR3 ? Math.max(0, lastR3 - leftAt) : 0} ms after it turned terminating, none failed`);
    results.push(`API server down ${((to - from) / 1000).toFixed(1)} s: ${count(stats.totalCalls - before, 'call')} served meanwhile`);
    results.push(seen
      ? `API server back: recovered, r6-after seen by the client ${seenMs} ms after its slice changed; ${count(stats.totalCalls - stats.totalFailed - servedAtRestart, 'call')} served since`
      : `API server back: NOT recovered within ${RECOVERY_TIMEOUT_MS} ms`);
  } finally {
    await cleanup();
  }
  return printSummary(out, stats, results);
}
