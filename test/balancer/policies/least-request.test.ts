import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { type EchoServer, type EchoServerOptions } from '../../support/echo-server';
import { type EchoClient } from '../../support/echo-proto';
import { seededRandom, waitFor } from '../../support/wait';
import { EtcdLeastRequestConfig } from '../../../src/balancer/policies/least-request';
import { named, useBalancerHarness, warmUp } from '../support/harness';
import { balancerFor, failedCount, pct, runCalls } from '../support/load';
import { quietly } from '../../support/grpc-log';

describe('etcd_least_request', function () {
  this.timeout(60_000);
  const { serve, connect } = useBalancerHarness();
  // The running test's (set by start).
  let servers: EchoServer[] = [];
  let client: EchoClient | undefined;

  async function start(count: number, lbConfig: object, configure: (i: number) => EchoServerOptions = () => ({})): Promise<string[]> {
    servers = await serve(named('lr', count), configure);
    const addresses = servers.map(s => s.address);
    ({ client } = connect(addresses, lbConfig));
    await warmUp(client, servers);
    return addresses;
  }

  it('validates choiceCount and healthCheck, naming itself and the bad value', () => {
    expect(EtcdLeastRequestConfig.createFromJson({}).toJsonObject()).to.deep.equal({ etcd_least_request: { choiceCount: 2 } });
    expect(EtcdLeastRequestConfig.createFromJson({ choiceCount: 0, healthCheck: {} }).toJsonObject())
      .to.deep.equal({ etcd_least_request: { choiceCount: 0, healthCheck: { serviceName: '' } } });
    for (const bad of [-1, 1.5, '2', Number.NaN]) {
      expect(() => quietly(() => EtcdLeastRequestConfig.createFromJson({ choiceCount: bad }))).to.throw(/^choiceCount must be an integer in \[0, 1000000\], got /);
    }
  });

  it('keeps a replica slowed by 20 ms well below its 1/5 share under concurrent load', async () => {
    await start(5, { etcd_least_request: {} }, i => ({ latencyMs: i === 0 ? 20 : 0 }));
    const result = await runCalls(client!, 4000, 20);
    expect(failedCount(result)).to.equal(0);
    const slowShare = servers[0].calls / 4000;
    console.log(`      least_request, 1 of 5 replicas +20 ms, 4,000 calls at concurrency 20: slow replica ${pct(servers[0].calls, 4000)}; others ${servers.slice(1).map(s => pct(s.calls, 4000)).join(' ')}`);
    expect(slowShare).to.be.lessThan(0.1);
  });

  it('brings every counter back to exactly 0 after 10,000 mixed calls (success, error, cancel, deadline)', async () => {
    const random = seededRandom(11);
    const addresses = await start(4, { etcd_least_request: { choiceCount: 0 } }, i => ({ latencyMs: [0, 2, 5, 8][i], failRate: i === 1 ? 0.5 : 0, random }));
    const kinds = seededRandom(12);
    let cancelled = 0;
    let neverStarted = 0;
    // Per-call credentials that take 30 ms: a call cancelled meanwhile was picked but never starts (no grpc-js hook says so).
    const slowCredentials = grpc.credentials.createFromMetadataGenerator((_params, callback) => {
      setTimeout(() => callback(null, new grpc.Metadata()), 30);
    });
    const result = await runCalls(client!, 10_000, 24, index => {
      const kind = Math.floor(kinds() * 5);
      if (kind === 1) return { options: { deadline: Date.now() + 3 } };
      if (kind === 2) return { afterStart: call => { cancelled++; call.cancel(); } };
      if (kind === 3) return { afterStart: call => { cancelled++; setTimeout(() => call.cancel(), 1 + Math.floor(kinds() * 5)); } };
      if (kind === 4 && index >= 9_000) {
        return { options: { credentials: slowCredentials }, afterStart: call => { neverStarted++; setTimeout(() => call.cancel(), 5); } };
      }
      return {};
    });
    const codes = [...result.failed].map(([code, n]) => `${grpc.status[code]}=${n}`).join(' ');
    const pendingAtEnd = balancerFor(addresses)!.endpoints.reduce((sum, e) => sum + e.pendingPicks, 0);
    console.log(`      mixed 10,000 calls: ok=${result.ok} ${codes} (cancel requested on ${cancelled}, ${neverStarted} picked but never started; ${pendingAtEnd} un-started picks outstanding at the end)`);
    expect(pendingAtEnd).to.be.greaterThan(0);
    expect(result.failed.get(grpc.status.CANCELLED) ?? 0).to.be.greaterThan(1000);
    expect(result.failed.get(grpc.status.DEADLINE_EXCEEDED) ?? 0).to.be.greaterThan(100);
    expect(result.failed.get(grpc.status.UNAVAILABLE) ?? 0).to.be.greaterThan(100);
    const settledMs = await waitFor('all counters at 0', () => {
      const snapshot = balancerFor(addresses);
      return snapshot !== undefined && snapshot.endpoints.every(e => e.activeCalls === 0 && e.pendingPicks === 0);
    }, { timeoutMs: 10_000 });
    const snapshot = balancerFor(addresses)!;
    console.log(`      counters at 0 ${settledMs} ms after the last call ended (un-started picks expire after 1-2 s)`);
    expect(snapshot.endpoints.map(e => e.activeCalls + e.pendingPicks)).to.deep.equal([0, 0, 0, 0]);
  });

  it('gives a replica that always fails instantly far less than its 1/4 share of first attempts', async () => {
    await start(4, { etcd_least_request: {} }, i => ({ latencyMs: i === 0 ? 0 : 2, failRate: i === 0 ? 1 : 0 }));
    const result = await runCalls(client!, 4000, 16);
    const share = servers[0].calls / 4000;
    console.log(`      least_request, 1 of 4 replicas failing instantly (UNAVAILABLE), 4,000 calls at concurrency 16: failing replica got ${pct(servers[0].calls, 4000)} (failed calls ${failedCount(result)}); others ${servers.slice(1).map(s => pct(s.calls, 4000)).join(' ')}`);
    expect(share).to.be.lessThan(0.25);
    expect(share).to.be.lessThan(0.1);
  });

  it('works as the child of outlier_detection, which ejects a replica failing every call', async () => {
    const addresses = await start(4, {
      outlier_detection: {
        interval: { seconds: 0, nanos: 300_000_000 },
        base_ejection_time: { seconds: 30, nanos: 0 },
        max_ejection_percent: 50,
        failure_percentage_ejection: { threshold: 50, enforcement_percentage: 100, minimum_hosts: 2, request_volume: 3 },
        child_policy: [{ etcd_least_request: {} }],
      },
    }, i => ({ failRate: i === 0 ? 1 : 0, latencyMs: 1 }));
    let calls = 0;
    const ejectedAfterMs = await waitFor('failing replica ejected', async () => {
      await runCalls(client!, 100, 8);
      calls += 100;
      return balancerFor(addresses)?.endpoints.find(e => e.address === servers[0].address)?.state === 'TRANSIENT_FAILURE';
    }, { timeoutMs: 20_000 });
    console.log(`      outlier_detection ejected the failing replica after ${ejectedAfterMs} ms (${calls} calls, it served ${servers[0].calls})`);
    const before = servers[0].calls;
    const after = await runCalls(client!, 500, 8);
    expect(failedCount(after)).to.equal(0);
    expect(servers[0].calls).to.equal(before);
  });
});
