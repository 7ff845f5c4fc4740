/**
 * `consul`: how fast a Consul health change reaches the resolver's subscribers (the
 * policies' input) after the blocking query returns, at growing service sizes, against the
 * in-process agent double. Baseline in the same run: `JSON.parse` of the same answer's body,
 * the floor every Consul client pays (Consul answers with the whole list each time).
 */
import { acquireConsulServiceWatch } from '../../src/backends/consul/consul-backend';
import { validateConsulOptions } from '../../src/backends/consul/connection';
import { startConsulAgentDouble } from '../../test/support/consul-agent-double';
import { count, median, ms, ratio } from '../format';
import { type Scenario, type ScenarioContext } from '../scenario';

const TARGET_MS = 50;
const SERVICE = 'bench';
/** Past the resolver's 50 ms coalescing window, so every change is a lone change. */
const QUIET_MS = 80;

export interface ConsulRow {
  readonly instances: number;
  /** Per change: the double's answer sent → the watch's subscribers called. */
  readonly changeMs: readonly number[];
  readonly medianChangeMs: number;
  /** `JSON.parse` of one answer's body (median of the changes' count). */
  readonly parseMs: number;
  readonly bodyBytes: number;
}

export interface ConsulMetrics {
  readonly rows: readonly ConsulRow[];
}

function sizes(context: ScenarioContext): number[] {
  return context.quick ? [10, 1_000] : [10, 1_000, 10_000];
}

function changes(context: ScenarioContext): number {
  return context.quick ? 5 : 11;
}

async function until(what: string, condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`bench consul: ${what} did not happen within ${timeoutMs} ms`);
    await new Promise(resolve => setTimeout(resolve, 5));
  }
}

async function measure(instances: number, changeCount: number): Promise<ConsulRow> {
  const agent = await startConsulAgentDouble();
  try {
    for (let i = 0; i < instances; i++) {
      const port = 10_000 + (i % 50_000);
      const host = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      agent.registerDirect({ ID: `i${i}`, Name: SERVICE, Address: host, Port: port, Check: { TTL: '1h', Status: 'passing' } });
    }
    const body = await (await fetch(`${agent.url}/v1/health/service/${SERVICE}?passing=true`)).text();
    const parses: number[] = [];
    for (let i = 0; i < changeCount; i++) {
      const t0 = performance.now();
      JSON.parse(body);
      parses.push(performance.now() - t0);
    }
    const lease = acquireConsulServiceWatch(validateConsulOptions({ address: agent.address }, 'bench'), SERVICE);
    const seen: Array<{ atMs: number; count: number }> = [];
    lease.watch.subscribe(state => seen.push({ atMs: Date.now(), count: state.ok ? state.resolved.endpoints.length : -1 }));
    const changeMs: number[] = [];
    try {
      await until('the first list', () => lease.watch.current?.ok === true);
      for (let i = 0; i < changeCount; i++) {
        await until('a blocking query', () => agent.requests.at(-1)?.path.includes('index=') === true);
        const answers = agent.healthAnswers.length;
        const critical = i % 2 === 0;
        agent.setCheck('service:i0', critical ? 'critical' : 'passing');
        const want = critical ? instances - 1 : instances;
        await until('the change', () => seen.at(-1)?.count === want);
        const seenAt = seen.at(-1)!.atMs;
        const carrier = agent.healthAnswers.slice(answers).filter(a => a.atMs <= seenAt).at(-1);
        changeMs.push(seenAt - (carrier?.atMs ?? seenAt));
        await new Promise(resolve => setTimeout(resolve, QUIET_MS));
      }
    } finally {
      lease.release();
    }
    return { instances, changeMs, medianChangeMs: median(changeMs), parseMs: Math.round(median(parses) * 100) / 100, bodyBytes: Buffer.byteLength(body) };
  } finally {
    await agent.close();
  }
}

export const consulScenario: Scenario<ConsulMetrics> = {
  name: 'consul',
  title: 'Consul: health change to policy input',
  method: 'The in-process Consul agent double (test/support/consul-agent-double.ts, not a real Consul) holds N passing instances; '
    + 'one resolver watch follows them with blocking health queries. One instance\'s check is failed and passed again in turn; '
    + 'the clock runs from the double sending the answer that carries the change to the watch calling its subscribers (what '
    + 'every channel\'s LB policy receives next, one `setImmediate` later). Baseline in the same run: `JSON.parse` of the same '
    + 'body. Changes are spaced past the 50 ms coalescing window.',

  steps(context) {
    return sizes(context).length;
  },

  async run(context): Promise<ConsulMetrics> {
    const rows: ConsulRow[] = [];
    for (const instances of sizes(context)) {
      context.progress.step(`${count(instances)} instances`);
      rows.push(await measure(instances, changes(context)));
    }
    return { rows };
  },

  tables(m) {
    return [{
      title: 'Consul: answer with a health change → resolver subscribers',
      columns: ['instances', 'answer body', 'median', 'each change', 'JSON.parse of the body', 'median / parse'],
      rows: m.rows.map(r => [
        count(r.instances), `${(r.bodyBytes / 1024).toFixed(0)} KiB`, ms(r.medianChangeMs), r.changeMs.map(ms).join(' / '),
        ms(r.parseMs), ratio(r.parseMs > 0 ? r.medianChangeMs / r.parseMs : undefined),
      ]),
      note: 'Consul answers with the whole list, so parsing is O(instances); only entries whose ModifyIndex moved are decoded again.',
    }];
  },

  plots() {
    return [];
  },

  targets(m) {
    const largest = m.rows.at(-1);
    return [{
      scenario: 'consul',
      what: `health change → policy input after the query returns, ${largest ? count(largest.instances) : '?'} instances (median)`,
      target: `≤ ${TARGET_MS} ms`,
      measured: largest ? ms(largest.medianChangeMs) : 'n/a',
      met: largest ? largest.medianChangeMs <= TARGET_MS : undefined,
    }];
  },
};
