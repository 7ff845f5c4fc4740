import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { CallLoad, resolveCallLoadOptions } from '../../../src/balancer/pool/call-load';
import { attachSteering } from '../../../src/balancer/call-steering';
import { EndpointState } from '../../../src/balancer/pool/endpoint-state';
import { LeastRequestScheduler } from '../../../src/balancer/schedulers/least-request-scheduler';
import { fixedTierView, Tier } from '../../../src/balancer/tiers/tier';
import { TieredPicker } from '../../../src/balancer/tiers/tiered-picker';
import { type TierScheduler } from '../../../src/balancer/schedulers/pick-strategy';
import { WeightedRandomScheduler } from '../../../src/balancer/schedulers/weighted-random-scheduler';
import { WeightedRoundRobinScheduler } from '../../../src/balancer/schedulers/weighted-round-robin-scheduler';
import { PickResultType, type PickArgs, type PickResult, type SubchannelInterface } from '../../../src/common/grpc-experimental';
import { seededRandom } from '../../support/wait';

const clockMs = 0;
const loadOptions = resolveCallLoadOptions({ nowMs: () => clockMs });

/** An endpoint whose child always completes picks on a fake subchannel with its address. */
function endpoint(address: string): EndpointState {
  const state = new EndpointState(address, [address], new CallLoad(loadOptions));
  const subchannel = { getAddress: () => address } as unknown as SubchannelInterface;
  const picker = {
    pick: (): PickResult => ({ pickResultType: PickResultType.COMPLETE, subchannel, status: null, onCallStarted: null, onCallEnded: null }),
  };
  state.child = { startConnecting() {}, exitIdle() {}, destroy() {}, getPicker: () => picker };
  return state;
}

function tier(priority: number, endpoints: EndpointState[], scheduler: (eps: EndpointState[]) => TierScheduler): Tier {
  return Tier.of(priority, endpoints, scheduler(endpoints));
}

/** A picker over fixed tiers (the balancer hands it its live `TierSet` instead). */
function tieredPicker(tiers: Tier[], tracksCalls: boolean, nowMs: () => number): TieredPicker {
  const byAddress = new Map(tiers.flatMap(t => t.endpoints.map(e => [e.key, e] as const)));
  return new TieredPicker(fixedTierView(tiers), address => byAddress.get(address), tracksCalls, nowMs);
}

const roundRobin = (eps: EndpointState[]): TierScheduler => new WeightedRoundRobinScheduler(eps.map(() => 1), () => 0);

function args(metadata = new grpc.Metadata()): PickArgs {
  return { metadata: metadata.clone(), extraPickInfo: {} };
}

function address(result: PickResult): string {
  return result.subchannel!.getAddress();
}

describe('TieredPicker (tiers, skip hook, call accounting)', () => {
  const [a, b, c, s1] = ['10.0.0.1:1', '10.0.0.2:1', '10.0.0.3:1', '10.0.1.1:1'].map(endpoint);

  it('sends all traffic to the first tier', () => {
    const picker = tieredPicker([tier(0, [a, b], roundRobin), tier(1, [s1], roundRobin)], false, () => 0);
    const seen = new Set(Array.from({ length: 20 }, () => address(picker.pick(args()))));
    expect([...seen].sort()).to.deep.equal([a.key, b.key]);
  });

  it('with steering.tried = {A}: avoids A while B is READY, sets lastPicked, uses A when it is the only one', () => {
    const metadata = new grpc.Metadata();
    const steering = attachSteering(metadata);
    steering.tried.add(a.key);
    const picker = tieredPicker([tier(0, [a, b], roundRobin)], false, () => 0);
    for (let i = 0; i < 10; i++) {
      expect(address(picker.pick(args(metadata)))).to.equal(b.key);
      expect(steering.lastPicked).to.equal(b.key);
    }
    const alone = tieredPicker([tier(0, [a], roundRobin)], false, () => 0);
    expect(address(alone.pick(args(metadata)))).to.equal(a.key);
    expect(steering.lastPicked).to.equal(a.key);
  });

  it('prefers an untried endpoint of the active tier, then of the next tier, then reuses the active tier', () => {
    const metadata = new grpc.Metadata();
    const steering = attachSteering(metadata);
    const picker = tieredPicker([tier(0, [a, b], roundRobin), tier(1, [s1, c], roundRobin)], false, () => 0);
    steering.tried.add(a.key);
    expect(address(picker.pick(args(metadata)))).to.equal(b.key);
    steering.tried.add(b.key);
    const next = new Set(Array.from({ length: 10 }, () => address(picker.pick(args(metadata)))));
    expect([...next].sort()).to.deep.equal([c.key, s1.key].sort());
    steering.tried.add(s1.key).add(c.key);
    const reused = new Set(Array.from({ length: 10 }, () => address(picker.pick(args(metadata)))));
    expect([...reused].sort()).to.deep.equal([a.key, b.key]);
    // Addresses of no current endpoint are ignored; flags are reset after each pick.
    steering.tried.clear();
    steering.tried.add('192.0.2.1:9');
    const plain = new Set(Array.from({ length: 10 }, () => address(picker.pick(args(metadata)))));
    expect([...plain].sort()).to.deep.equal([a.key, b.key]);
  });

  it('counts picks into the endpoint load and back to 0 through the hooks', () => {
    const lrEndpoints = [endpoint('10.0.2.1:1'), endpoint('10.0.2.2:1')];
    const picker = tieredPicker([tier(0, lrEndpoints, eps => new LeastRequestScheduler(eps, [1, 1], 2, seededRandom(1)))], true, () => clockMs);
    const results = Array.from({ length: 10 }, () => picker.pick(args()));
    expect(lrEndpoints.map(e => e.load.outstanding(clockMs))).to.deep.equal([5, 5]);
    results.forEach((r, i) => {
      r.onCallStarted!();
      r.onCallEnded!(i % 2 === 0 ? grpc.status.OK : grpc.status.CANCELLED, '', new grpc.Metadata());
    });
    expect(lrEndpoints.map(e => e.load.outstanding(clockMs))).to.deep.equal([0, 0]);
  });

  it('measures pick cost (no assertion on speed)', () => {
    const n = 100;
    const eps = Array.from({ length: n }, (_, i) => endpoint(`10.1.${i >> 8}.${i & 255}:1`));
    const weights = eps.map((_, i) => 1 + (i % 7));
    const cases: [string, TierScheduler, boolean][] = [
      ['etcd_weighted_round_robin', new WeightedRoundRobinScheduler(weights, () => 0), false],
      ['etcd_weighted_random', new WeightedRandomScheduler(weights, Math.random), false],
      ['etcd_least_request', new LeastRequestScheduler(eps, weights, 2, Math.random), true],
    ];
    const line: string[] = [];
    for (const [name, scheduler, tracks] of cases) {
      const picker = tieredPicker([Tier.of(0, eps, scheduler)], tracks, () => performance.now());
      const pickArgs = args();
      const picks = 200_000;
      const run = (count: number): void => {
        for (let i = 0; i < count; i++) {
          const r = picker.pick(pickArgs);
          if (tracks) {
            r.onCallStarted!();
            r.onCallEnded!(grpc.status.OK, '', pickArgs.metadata);
          }
        }
      };
      run(10_000);
      const start = process.hrtime.bigint();
      run(picks);
      line.push(`${name} ${(Number(process.hrtime.bigint() - start) / picks).toFixed(0)} ns`);
    }
    console.log(`      pick cost, ${n} endpoints, incl. fake child pick and hooks for least_request: ${line.join(', ')}`);
    expect(eps.every(e => e.load.outstanding(performance.now()) === 0)).to.equal(true);
  });
});
