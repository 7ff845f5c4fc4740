/**
 * `kubernetes-scale` (issue 25): what one EndpointSlice update costs the client at 10,000
 * endpoints in 100 slices of 100, through the next pick. The event is a watch line as it
 * arrives from the API server (the slice's JSON, built beforehand): parsed, diffed by the
 * backend's `SliceWatch` against its slice, merged into the endpoint table, published, handed
 * to the policy (grpc-js's `ChildLoadBalancerHandler`, fake READY subchannels, see
 * fake-channel.ts), and one pick. Process CPU (user + system) from the line to the pick;
 * grpc-js `round_robin` on the same events in the same run is the baseline.
 */
import { connectivityState as ConnectivityState } from '@grpc/grpc-js';
import { seededRandom } from '../../test/support/wait';
import { nextMacrotask, PolicyHarness } from '../fake-channel';
import { count, median, ms, ratio, round } from '../format';
import { ROUND_ROBIN } from '../policies';
import { type Scenario, type ScenarioContext, type TargetCheck } from '../scenario';
import { SliceWatch } from '../../src/backends/kubernetes/slice-watch';
import { type EndpointSlice } from '../../src/backends/kubernetes/slice-codec';
import { type InformerListener, type SliceSource } from '../../src/backends/kubernetes/slice-informer';
import { ENDPOINT_ATTRIBUTES_KEY } from '../../src/discovery/endpoint-attributes';
import { DEFAULT_RESOLVER_OPTIONS } from '../../src/discovery/resolver-options';

const SLICES = 100;
const PER_SLICE = 100;
const TARGET_US = 5_000;
const PORT = 8080;

type Change = 'ready flip' | 'pod replaced' | 'pod terminating';
const CHANGES: readonly Change[] = ['ready flip', 'pod replaced', 'pod terminating'];

export interface KubernetesScaleRow {
  readonly policy: string;
  readonly change: Change;
  readonly samples: number;
  readonly medianUs: number;
  readonly p90Us: number;
  /** Of the same change, this policy over round_robin's median. */
  readonly ratioToRoundRobin?: number;
  /** Events after which no new picker came. */
  readonly unpublished: number;
}

export interface KubernetesScaleMetrics {
  readonly endpoints: number;
  readonly slices: number;
  /** Idle macrotask + one pick, no event (the floor). */
  readonly floorUs: number;
  readonly rows: readonly KubernetesScaleRow[];
}

/** The slices of one Service, changed by parsing watch lines: the part of `SliceInformer` after the socket. */
class BenchSlices implements SliceSource {
  readonly slices = new Map<string, EndpointSlice>();
  resourceVersion = '1';
  listed = true;
  readonly lastFailure = undefined;
  readonly label = 'bench apps/echo';
  readonly namespace = 'apps';
  readonly service = 'echo';
  private readonly listeners = new Set<InformerListener>();

  on(listener: InformerListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** One watch line: `{"type":"MODIFIED","object":…}`. */
  receive(line: string): void {
    const event = JSON.parse(line) as { object: EndpointSlice };
    const name = event.object.metadata!.name!;
    this.slices.set(name, event.object);
    this.resourceVersion = event.object.metadata!.resourceVersion!;
    for (const listener of this.listeners) listener.changed([name]);
  }
}

interface PodState { ip: string; pod: string; state: 'ready' | 'terminating' }

function sliceObject(index: number, pods: readonly PodState[], rv: number): EndpointSlice {
  return {
    metadata: { name: `echo-${index}`, resourceVersion: String(rv) },
    addressType: 'IPv4',
    ports: [{ name: 'grpc', port: PORT, protocol: 'TCP' }],
    endpoints: pods.map(p => ({
      addresses: [p.ip],
      conditions: { ready: p.state === 'ready', serving: true, terminating: p.state === 'terminating' },
      zone: `zone-${index % 3}`,
      nodeName: `node-${index}`,
      targetRef: { kind: 'Pod', name: p.pod, namespace: 'apps' },
    })),
  };
}

function stats(samples: readonly number[]): { medianUs: number; p90Us: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  return { medianUs: round(median(sorted), 1), p90Us: round(sorted[Math.min(sorted.length - 1, Math.ceil(0.9 * sorted.length) - 1)], 1) };
}

async function measurePolicy(policy: string, samples: number, seed: number): Promise<{ rows: KubernetesScaleRow[]; floorUs: number }> {
  const random = seededRandom(seed);
  const source = new BenchSlices();
  const pods: PodState[][] = [];
  let rv = 1;
  let nextIp = 0;
  const newPod = (): PodState => {
    const n = nextIp++;
    return { ip: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`, pod: `echo-${n}`, state: 'ready' };
  };
  for (let s = 0; s < SLICES; s++) {
    pods.push(Array.from({ length: PER_SLICE }, newPod));
    source.slices.set(`echo-${s}`, sliceObject(s, pods[s], ++rv));
  }
  const harness = new PolicyHarness(policy, ConnectivityState.READY);
  const watch = new SliceWatch('echo.apps:grpc', source, 'grpc', { ...DEFAULT_RESOLVER_OPTIONS }, () => {}, () => {});
  watch.subscribe(state => {
    if (state.ok) harness.update(state.resolved.endpoints, { [ENDPOINT_ATTRIBUTES_KEY]: state.resolved.attributes });
  });
  try {
    watch.start();
    for (let turn = 0; turn < 200 && harness.pickOnce() !== 'complete'; turn++) await new Promise(resolve => setTimeout(resolve, 5));
    if (harness.pickOnce() !== 'complete') throw new Error(`bench kubernetes-scale: ${policy} published no READY picker over ${SLICES * PER_SLICE} endpoints`);
    const floor: number[] = [];
    for (let k = 0; k < Math.max(5, samples); k++) floor.push((await harness.cpuOfEvent(() => {}, false)).cpuUs);
    const rows: KubernetesScaleRow[] = [];
    for (const change of CHANGES) {
      const costs: number[] = [];
      let unpublished = 0;
      for (let k = 0; k < samples; k++) {
        const s = Math.floor(random() * SLICES);
        const i = Math.floor(random() * PER_SLICE);
        const pod = pods[s][i];
        if (change === 'ready flip') pod.state = pod.state === 'ready' ? 'terminating' : 'ready';
        else if (change === 'pod terminating') pod.state = 'terminating';
        else pods[s][i] = newPod();
        const line = JSON.stringify({ type: 'MODIFIED', object: sliceObject(s, pods[s], ++rv) });
        // Past the coalescing window: each change is a lone one, delivered at once.
        await new Promise(resolve => setTimeout(resolve, DEFAULT_RESOLVER_OPTIONS.coalesceWindowMs + 5));
        const { cpuUs, published } = await harness.cpuOfEvent(() => source.receive(line));
        if (!published) unpublished++;
        costs.push(cpuUs);
        if (change === 'pod terminating') pods[s][i] = newPod();
      }
      rows.push({ policy, change, samples: costs.length, ...stats(costs), unpublished });
    }
    return { rows, floorUs: stats(floor).medianUs };
  } finally {
    watch.close();
    harness.destroy();
  }
}

export async function measureKubernetesScale(context: Pick<ScenarioContext, 'policies' | 'progress' | 'seed' | 'quick'>): Promise<KubernetesScaleMetrics> {
  const samples = context.quick ? 10 : 30;
  const rows: KubernetesScaleRow[] = [];
  const floors: number[] = [];
  for (const policy of [ROUND_ROBIN, ...context.policies]) {
    context.progress.step(`${count(SLICES * PER_SLICE)} endpoints in ${SLICES} slices: ${policy}`);
    const measured = await measurePolicy(policy, samples, context.seed);
    floors.push(measured.floorUs);
    for (const row of measured.rows) {
      const base = rows.find(r => r.policy === ROUND_ROBIN && r.change === row.change);
      rows.push(base ? { ...row, ratioToRoundRobin: round(row.medianUs / base.medianUs, 2) } : row);
    }
    await nextMacrotask();
  }
  return { endpoints: SLICES * PER_SLICE, slices: SLICES, floorUs: round(median(floors), 1), rows };
}

const us = (value: number): string => (value >= 1000 ? ms(value / 1000) : `${value.toFixed(0)} µs`);

export const kubernetesScaleScenario: Scenario<KubernetesScaleMetrics> = {
  name: 'kubernetes-scale',
  title: 'Kubernetes: one EndpointSlice update at 10,000 endpoints',
  method: `${count(SLICES * PER_SLICE)} endpoints in ${SLICES} EndpointSlices of ${PER_SLICE}. Each event is one slice's MODIFIED watch line `
    + '(built beforehand, as it arrives from the API server): parsed, diffed against the previous slice by the backend\'s `SliceWatch`, '
    + 'merged into the endpoint table, published, handed to the policy (grpc-js `ChildLoadBalancerHandler`, fake READY subchannels), '
    + 'and one pick. Charged: process CPU (user + system) from the line to that pick. Events are spaced past the 50 ms coalescing window. '
    + 'Changes: one endpoint flipping ready ↔ terminating, one pod replaced by a new one (new address), one pod turning terminating.',
  steps: context => 1 + context.policies.length,
  run: context => measureKubernetesScale(context),
  tables: metrics => [{
    title: `CPU per slice update, ${count(metrics.endpoints)} endpoints in ${metrics.slices} slices (floor: ${us(metrics.floorUs)})`,
    columns: ['policy', 'change', 'median', 'p90', 'vs round_robin', 'samples', 'no new picker'],
    rows: metrics.rows.map(r => [r.policy, r.change, us(r.medianUs), us(r.p90Us), r.ratioToRoundRobin === undefined ? '—' : ratio(r.ratioToRoundRobin), String(r.samples), String(r.unpublished)]),
    note: 'Target (issue 25): ≤ 5 ms of client CPU per slice update through the next pick.',
  }],
  plots: () => [],
  targets: metrics => metrics.rows.filter(r => r.policy !== ROUND_ROBIN).map((r): TargetCheck => ({
    scenario: 'kubernetes-scale',
    what: `${r.policy}: one slice update (${r.change}) at ${count(metrics.endpoints)} endpoints, through the next pick`,
    target: `≤ ${us(TARGET_US)}`,
    measured: us(r.medianUs),
    met: r.medianUs <= TARGET_US && r.unpublished === 0,
    note: r.unpublished > 0 ? `${r.unpublished} event(s) published no new picker` : undefined,
  })),
};
