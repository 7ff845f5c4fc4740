/**
 * `routing` (issue 27): etcd_ring_hash and tag routing, in-process through
 * grpc-js (`PolicyHarness`: the policy built from its service config over fake
 * READY subchannels), so the figures are the algorithms' own:
 * - ring hash stickiness: 10,000 keys over 10 endpoints, picked twice; one
 *   endpoint removed: which keys moved;
 * - pick cost at 1,000 endpoints (1,024 distinct keys in turn, hooks run),
 *   against grpc-js round_robin in the same run;
 * - bounded load: 5 endpoints, 20 keys, one with 60 % of calls, a closed loop
 *   of 20 calls in flight on a virtual clock (exponential service times,
 *   seeded): busiest endpoint's share / mean, with loadBound 1.25 and without;
 *   how often the other keys' calls stayed on their owner;
 * - tag routing: calls tagged canary / untagged / tagged with an unknown tag
 *   over 3 canary + 7 untagged endpoints, for every policy: calls on a wrong
 *   tag; canaries gone: failed calls (fallback) and, with force, UNAVAILABLE.
 */
import * as grpc from '@grpc/grpc-js';
import { ENDPOINT_ATTRIBUTES_KEY, type EndpointAttributes } from '../../src/discovery/endpoint-attributes';
import { PickResultType, type Endpoint, type PickArgs, type Picker, type PickResult } from '../../src/common/grpc-experimental';
import { seededRandom } from '../../test/support/wait';
import { fakeAddress, PolicyHarness } from '../fake-channel';
import { count, median, ns, percent, ratio, round } from '../format';
import { ROUND_ROBIN } from '../policies';
import { type Scenario, type ScenarioContext, type TargetCheck } from '../scenario';

const HEADER = 'x-user-id';
const RING = 'etcd_ring_hash';
const PICK_TARGET_NS = 150;
const TAG_POLICIES: ReadonlyArray<readonly [string, object]> = [
  ['etcd_weighted_round_robin', {}], ['etcd_weighted_random', {}], ['etcd_least_request', {}], ['etcd_peak_ewma', {}], [RING, { hashHeader: HEADER }],
];

export interface RoutingMetrics {
  readonly stickiness: { readonly keys: number; readonly endpoints: number; readonly stableKeys: number; readonly movedKeys: number; readonly ownedByRemoved: number; readonly movedFromStaying: number };
  readonly pick: { readonly endpoints: number; readonly rounds: number; readonly ns: Readonly<Record<string, number>> };
  readonly bound: {
    readonly calls: number; readonly inFlight: number;
    readonly rows: ReadonlyArray<{ readonly config: string; readonly busiestToMean: number; readonly shares: readonly number[]; readonly othersOnOwner: number }>;
  };
  readonly tags: ReadonlyArray<{ readonly policy: string; readonly calls: number; readonly wrongTag: number; readonly fallbackFailed: number; readonly fallbackWrong: number; readonly forcedUnavailable: number }>;
}

interface FakeEndpoint {
  readonly address: string;
  readonly tag?: string;
}

function harness(policy: string, body: object, endpoints: readonly FakeEndpoint[]): PolicyHarness {
  const h = new PolicyHarness(policy, grpc.connectivityState.READY, body);
  update(h, endpoints);
  if (h.picker === undefined || h.state !== grpc.connectivityState.READY) throw new Error(`bench: ${policy} published no READY picker`);
  return h;
}

function update(h: PolicyHarness, endpoints: readonly FakeEndpoint[]): void {
  const attributes = new Map<string, EndpointAttributes>();
  const list: Endpoint[] = endpoints.map(e => {
    attributes.set(e.address, { weight: 1, priority: 0, metadata: e.tag === undefined ? {} : { tag: e.tag } });
    const [host, port] = e.address.split(':');
    return { addresses: [{ host, port: Number(port) }] };
  });
  h.update(list, { [ENDPOINT_ATTRIBUTES_KEY]: attributes });
}

function args(headers: Record<string, string>): PickArgs {
  const metadata = new grpc.Metadata();
  for (const [k, v] of Object.entries(headers)) metadata.set(k, v);
  return { metadata, extraPickInfo: {} };
}

/** The address a pick went to (hooks run at once), or undefined when it did not complete. */
function pickAddress(picker: Picker, pickArgs: PickArgs): string | undefined {
  const result = picker.pick(pickArgs);
  if (result.pickResultType !== PickResultType.COMPLETE) return undefined;
  result.onCallStarted?.();
  result.onCallEnded?.(grpc.status.OK, '', pickArgs.metadata);
  return result.subchannel!.getAddress();
}

function measureStickiness(): RoutingMetrics['stickiness'] {
  const endpoints = Array.from({ length: 10 }, (_, i) => ({ address: fakeAddress(i) }));
  const h = harness(RING, { hashHeader: HEADER }, endpoints);
  try {
    const keys = Array.from({ length: 10_000 }, (_, i) => args({ [HEADER]: `user-${i}` }));
    const first = keys.map(a => pickAddress(h.picker!, a));
    const second = keys.map(a => pickAddress(h.picker!, a));
    const stableKeys = first.filter((owner, i) => owner === second[i]).length;
    const removed = endpoints[3].address;
    update(h, endpoints.filter(e => e.address !== removed));
    const after = keys.map(a => pickAddress(h.picker!, a));
    const movedKeys = after.filter((owner, i) => owner !== first[i]).length;
    const movedFromStaying = after.filter((owner, i) => owner !== first[i] && first[i] !== removed).length;
    return { keys: keys.length, endpoints: endpoints.length, stableKeys, movedKeys, ownedByRemoved: first.filter(o => o === removed).length, movedFromStaying };
  } finally {
    h.destroy();
  }
}

type Loop = (picker: Picker, args: readonly PickArgs[], iterations: number, sink: unknown[]) => number;

/** A fresh loop per subject (its own call-site feedback), hooks run as grpc-js runs them. */
function compileLoop(): Loop {
  return new Function('picker', 'args', 'iterations', 'sink', `
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) {
      const a = args[i & 1023];
      const result = picker.pick(a);
      if (result.onCallStarted !== null) result.onCallStarted();
      if (result.onCallEnded !== null) result.onCallEnded(0, '', a.metadata);
      sink[i & 255] = result;
    }
    return Number(process.hrtime.bigint() - start);
  `) as Loop;
}

async function measurePickCost(quick: boolean): Promise<RoutingMetrics['pick']> {
  const size = 1_000;
  const endpoints = Array.from({ length: size }, (_, i) => ({ address: fakeAddress(i), tag: i % 10 === 0 ? 'canary' : undefined }));
  const subjects: Array<[string, string, object]> = [
    [ROUND_ROBIN, ROUND_ROBIN, {}],
    [RING, RING, { hashHeader: HEADER }],
    [`${RING} loadBound 1.25`, RING, { hashHeader: HEADER, loadBound: 1.25 }],
    ['etcd_weighted_round_robin', 'etcd_weighted_round_robin', {}],
    ['etcd_weighted_round_robin + tagRouting', 'etcd_weighted_round_robin', { tagRouting: {} }],
  ];
  const keyArgs = Array.from({ length: 1024 }, (_, i) => args({ [HEADER]: `user-${i}`, 'x-route-tag': i % 2 === 0 ? 'canary' : '' }));
  const driven = subjects.map(([name, policy, body]) => ({ name, h: harness(policy, body, endpoints), loop: compileLoop(), samples: [] as number[] }));
  const rounds = quick ? 5 : 9;
  const iterations = quick ? 200_000 : 1_000_000;
  const sink: unknown[] = new Array(256);
  try {
    for (const d of driven) d.loop(d.h.picker!, keyArgs, iterations / 4, sink);
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < driven.length; k++) {
        const d = driven[(k + r) % driven.length];
        d.samples.push(d.loop(d.h.picker!, keyArgs, iterations, sink) / iterations);
      }
      await new Promise(resolve => setImmediate(resolve));
    }
  } finally {
    for (const d of driven) d.h.destroy();
  }
  return { endpoints: size, rounds, ns: Object.fromEntries(driven.map(d => [d.name, round(median(d.samples), 1)])) };
}

/** A closed loop of `inFlight` calls on a virtual clock: each call lasts Exp(1); when one ends the next starts. */
function measureBound(body: object, label: string, calls: number, inFlight: number, seed: number): RoutingMetrics['bound']['rows'][number] {
  const endpoints = Array.from({ length: 5 }, (_, i) => ({ address: fakeAddress(i) }));
  const keys = Array.from({ length: 20 }, (_, i) => args({ [HEADER]: `key-${i}` }));
  const h = harness(RING, body, endpoints);
  try {
    const owners = keys.map(a => pickAddress(h.picker!, a));
    const random = seededRandom(seed);
    const served = new Map(endpoints.map(e => [e.address, 0]));
    const running: Array<{ endMs: number; result: PickResult; metadata: grpc.Metadata }> = [];
    let now = 0;
    let othersCalls = 0;
    let othersOnOwner = 0;
    const start = (): void => {
      const k = random() < 0.6 ? 0 : 1 + Math.floor(random() * 19);
      const result = h.picker!.pick(keys[k]);
      if (result.pickResultType !== PickResultType.COMPLETE) throw new Error('bench: ring hash pick did not complete');
      result.onCallStarted?.();
      const address = result.subchannel!.getAddress();
      served.set(address, served.get(address)! + 1);
      if (k !== 0) {
        othersCalls++;
        if (address === owners[k]) othersOnOwner++;
      }
      running.push({ endMs: now - Math.log(1 - random()), result, metadata: keys[k].metadata });
    };
    for (let i = 0; i < inFlight; i++) start();
    for (let done = 0; done < calls; done++) {
      let first = 0;
      for (let i = 1; i < running.length; i++) if (running[i].endMs < running[first].endMs) first = i;
      const [call] = running.splice(first, 1);
      now = call.endMs;
      call.result.onCallEnded?.(grpc.status.OK, '', call.metadata);
      start();
    }
    for (const call of running) call.result.onCallEnded?.(grpc.status.OK, '', call.metadata);
    const counts = [...served.values()];
    const total = counts.reduce((a, b) => a + b, 0);
    return { config: label, busiestToMean: round(Math.max(...counts) / (total / counts.length), 3), shares: counts.map(c => round(c / total, 4)), othersOnOwner: round(othersOnOwner / othersCalls, 4) };
  } finally {
    h.destroy();
  }
}

function measureTags(): RoutingMetrics['tags'] {
  const endpoints: FakeEndpoint[] = Array.from({ length: 10 }, (_, i) => ({ address: fakeAddress(i), tag: i < 3 ? 'canary' : undefined }));
  const canaries = new Set(endpoints.filter(e => e.tag === 'canary').map(e => e.address));
  const perKind = 10_000;
  return TAG_POLICIES.map(([policy, body]) => {
    const h = harness(policy, { ...body, tagRouting: {} }, endpoints);
    const forced = harness(policy, { ...body, tagRouting: { force: true } }, endpoints.filter(e => e.tag === undefined));
    try {
      let wrongTag = 0;
      for (let i = 0; i < perKind; i++) {
        const canary = pickAddress(h.picker!, args({ [HEADER]: `u${i}`, 'x-route-tag': 'canary' }));
        const plain = pickAddress(h.picker!, args({ [HEADER]: `u${i}` }));
        const unknown = pickAddress(h.picker!, args({ [HEADER]: `u${i}`, 'x-route-tag': 'blue' }));
        if (canary === undefined || !canaries.has(canary)) wrongTag++;
        if (plain === undefined || canaries.has(plain)) wrongTag++;
        if (unknown === undefined || canaries.has(unknown)) wrongTag++;
      }
      update(h, endpoints.filter(e => e.tag === undefined));
      let fallbackFailed = 0;
      let fallbackWrong = 0;
      let forcedUnavailable = 0;
      for (let i = 0; i < perKind; i++) {
        const a = args({ [HEADER]: `u${i}`, 'x-route-tag': 'canary' });
        const address = pickAddress(h.picker!, a);
        if (address === undefined) fallbackFailed++;
        else if (canaries.has(address)) fallbackWrong++;
        const result = forced.picker!.pick(a);
        if (result.pickResultType === PickResultType.TRANSIENT_FAILURE && result.status?.code === grpc.status.UNAVAILABLE && result.status.details.includes("'canary'")) forcedUnavailable++;
      }
      return { policy, calls: 3 * perKind, wrongTag, fallbackFailed, fallbackWrong, forcedUnavailable: forcedUnavailable / perKind };
    } finally {
      h.destroy();
      forced.destroy();
    }
  });
}

export const routingScenario: Scenario<RoutingMetrics> = {
  name: 'routing',
  title: 'Routing: ring hash (bounded load) and tag routing',
  method: 'In-process: each policy is built through grpc-js from its service config over fake READY subchannels (`PolicyHarness`), '
    + 'so the figures are the algorithms\' own. Ring hash: 10,000 keys (`x-user-id: user-<i>`) over 10 endpoints, picked twice, then '
    + 'again after one endpoint is removed. Pick cost: 1,000 endpoints, 1,024 distinct keys (and tags) in turn, the pick\'s call hooks '
    + 'run at once, median of rounds that alternate the subjects, against grpc-js round_robin in the same run. Bounded load: 5 endpoints, '
    + '20 keys, key-0 carrying 60 % of calls, a closed loop of 20 calls in flight on a virtual clock (service times Exp(1), seeded). '
    + 'Tag routing: 3 endpoints tagged canary, 7 untagged; 10,000 calls each tagged canary, untagged and tagged blue per policy; '
    + 'then the canaries are removed (fallback), and with `force: true` the canary calls must fail UNAVAILABLE naming the tag.',

  steps() {
    return 4;
  },

  async run(context: ScenarioContext): Promise<RoutingMetrics> {
    context.progress.step('ring hash stickiness and movement');
    const stickiness = measureStickiness();
    context.progress.step('pick cost at 1,000 endpoints');
    const pick = await measurePickCost(context.quick);
    context.progress.step('bounded load');
    const calls = context.quick ? 20_000 : 100_000;
    const bound = {
      calls, inFlight: 20,
      rows: [
        measureBound({ hashHeader: HEADER, loadBound: 1.25 }, 'loadBound 1.25', calls, 20, context.seed),
        measureBound({ hashHeader: HEADER }, 'no bound', calls, 20, context.seed),
      ],
    };
    context.progress.step('tag routing');
    return { stickiness, pick, bound, tags: measureTags() };
  },

  tables(m) {
    const s = m.stickiness;
    return [{
      title: `ring hash: ${count(s.keys)} keys over ${s.endpoints} endpoints`,
      columns: ['figure', 'value'],
      rows: [
        ['keys on the same endpoint on a second pass', `${count(s.stableKeys)} of ${count(s.keys)}`],
        ['keys moved when one endpoint is removed', `${count(s.movedKeys)} (${percent(s.movedKeys / s.keys, 2)}); it owned ${count(s.ownedByRemoved)}`],
        ['keys moved whose endpoint stayed', count(s.movedFromStaying)],
      ],
    }, {
      title: `ns per pick (call hooks included) at ${count(m.pick.endpoints)} endpoints, and ratio to round_robin`,
      columns: ['policy', 'ns', 'ratio'],
      rows: Object.entries(m.pick.ns).map(([name, value]) => [name, ns(value), ratio(value / m.pick.ns[ROUND_ROBIN])]),
      note: `median of ${m.pick.rounds} rounds; 1,024 distinct keys in turn (their hashes cached after the first use).`,
    }, {
      title: `bounded load: 5 endpoints, 20 keys (one with 60 % of calls), ${m.bound.inFlight} in flight, ${count(m.bound.calls)} calls`,
      columns: ['config', 'busiest / mean', 'shares', 'other keys\' calls on their owner'],
      rows: m.bound.rows.map(r => [r.config, ratio(r.busiestToMean), r.shares.map(x => percent(x, 1)).join(' / '), percent(r.othersOnOwner, 1)]),
    }, {
      title: 'tag routing: 3 canary + 7 untagged endpoints',
      columns: ['policy', 'calls on a wrong tag', 'canaries gone: failed', 'canaries gone: on a canary', 'force: UNAVAILABLE naming the tag'],
      rows: m.tags.map(t => [t.policy, `${t.wrongTag} of ${count(t.calls)}`, String(t.fallbackFailed), String(t.fallbackWrong), percent(t.forcedUnavailable, 0)]),
    }];
  },

  plots() {
    return [];
  },

  targets(m) {
    const s = m.stickiness;
    const ringNs = m.pick.ns[RING];
    const bounded = m.bound.rows.find(r => r.config === 'loadBound 1.25');
    const unbounded = m.bound.rows.find(r => r.config === 'no bound');
    const tagWrong = m.tags.reduce((n, t) => n + t.wrongTag + t.fallbackWrong, 0);
    const tagFailed = m.tags.reduce((n, t) => n + t.fallbackFailed, 0);
    const checks: TargetCheck[] = [
      { scenario: 'routing', what: 'ring hash: every key on one endpoint while the set is stable', target: '100 %', measured: percent(s.stableKeys / s.keys, 2), met: s.stableKeys === s.keys },
      {
        scenario: 'routing', what: 'ring hash: keys moved when 1 of 10 endpoints is removed', target: '≤ 11 %, only its own',
        measured: `${percent(s.movedKeys / s.keys, 2)}; ${s.movedFromStaying} of other endpoints`, met: s.movedKeys / s.keys <= 0.11 && s.movedFromStaying === 0,
      },
      { scenario: 'routing', what: 'ring hash: ns per pick at 1,000 endpoints', target: `≤ ${PICK_TARGET_NS} ns`, measured: `${ns(ringNs)} (round_robin ${ns(m.pick.ns[ROUND_ROBIN])})`, met: ringNs <= PICK_TARGET_NS },
      { scenario: 'routing', what: 'bounded load 1.25: busiest / mean', target: '≤ 1.6×', measured: ratio(bounded?.busiestToMean), met: bounded !== undefined && bounded.busiestToMean <= 1.6 },
      { scenario: 'routing', what: 'no bound: busiest / mean', target: '≥ 3×', measured: ratio(unbounded?.busiestToMean), met: unbounded !== undefined && unbounded.busiestToMean >= 3 },
      { scenario: 'routing', what: 'tag routing: calls on a wrong tag', target: '0', measured: String(tagWrong), met: tagWrong === 0 },
      { scenario: 'routing', what: 'tag routing: failed calls on fallback to untagged', target: '0', measured: String(tagFailed), met: tagFailed === 0 },
    ];
    return checks;
  },
};
