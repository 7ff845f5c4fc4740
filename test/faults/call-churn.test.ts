/**
 * Fault injection: 100,000 calls through the whole client stack (etcd resolver,
 * the three etcd_* pickers, the retry interceptor) with cancels, short deadlines
 * and failing attempts mixed in. Nothing may leak: every outstanding counter
 * back to 0, no listener-leak warning, heap flat between the first and the last
 * stretch of calls.
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { register } from '../../src/register';
import { registerEndpoint } from '../../src/register';
import { type Registration } from '../../src/discovery/registration';
import { type RetryEvent } from '../../src/interceptor/retry-options';
import { inspectBalancers } from '../../src/balancer/pool/balancer-diagnostics';
import { startEtcd, type EtcdServer } from '../support/etcd';
import { startEchoServer, type EchoServer } from '../support/echo-server';
import { type EchoClient } from '../support/echo-proto';
import { seededRandom, waitFor } from '../support/wait';
import { etcdTarget, heapUsedAfterGc, mib, recordResolution, retryingClient, type ResolutionRecorder } from './fault-fixtures';

const SERVICE = 'faults/churn';
const TOTAL_CALLS = 100_000;
const STRETCH = 10_000;
const CONCURRENCY_PER_CLIENT = 24;
const POLICIES = ['etcd_least_request', 'etcd_weighted_round_robin', 'etcd_weighted_random'];

type CallKind = 'plain' | 'cancel-at-once' | 'cancel-soon' | 'short-deadline';

/** Outcomes by call kind: `OK` or the status code name → count. */
type Outcomes = Record<CallKind, Record<string, number>>;

/** What each kind may end with. Plain calls must all succeed. */
const ALLOWED: Record<CallKind, readonly string[]> = {
  'plain': ['OK'],
  'cancel-at-once': ['CANCELLED'],
  'cancel-soon': ['OK', 'CANCELLED'],
  // A retry that cannot finish before the deadline is not started: the caller gets the real failure.
  'short-deadline': ['OK', 'DEADLINE_EXCEEDED', 'UNAVAILABLE'],
};

/**
 * Node's HTTP/2 rapid-reset guard (nghttp2 ≥ 1.57: a burst of 1,000 RST_STREAM,
 * then 33/s, per connection) makes a grpc-js server drop a connection that
 * receives more, with GOAWAY(INTERNAL_ERROR): calls in flight on it end with
 * INTERNAL 'Received RST_STREAM with code 2 … Session closed with error code 2',
 * and those already answered with headers cannot be retried (gRFC A6 commit).
 * Measured here with 3 channels and 30 % of calls reset on the wire: 5-90 plain
 * calls failed per run. So the resets (cancel-soon, short-deadline: ~17,000)
 * are spread over 2 channels per policy × 4 replicas = 24 connections, ~700
 * each, well inside the guard. (Cancel-at-once never reaches the wire.)
 */
const CHANNELS_PER_POLICY = 2;

describe('faults: 100,000 calls with cancels, deadlines and failing attempts', function () {
  this.timeout(180_000);
  let etcd: EtcdServer | undefined;
  let servers: EchoServer[] = [];
  let registrations: Registration[] = [];
  let clients: EchoClient[] = [];
  let recorder: ResolutionRecorder | undefined;
  const warnings: Error[] = [];
  const onWarning = (w: Error): void => { warnings.push(w); };

  before(() => register());

  afterEach(async () => {
    process.off('warning', onWarning);
    for (const c of clients) c.close();
    recorder?.close();
    await Promise.all(registrations.map(r => r.close()));
    await Promise.all(servers.map(s => s.stop(100)));
    await etcd?.destroy();
    clients = [];
    registrations = [];
    servers = [];
  });

  it('leaves every outstanding counter at 0, no listener-leak warning, heap flat', async () => {
    process.on('warning', onWarning);
    etcd = await startEtcd();
    const random = seededRandom(90);
    servers = await Promise.all([
      startEchoServer({ name: 'c0' }),
      startEchoServer({ name: 'c1', latencyMs: 1 }),
      startEchoServer({ name: 'c2', failRate: 0.1, random }),
      startEchoServer({ name: 'c3', latencyMs: 3 }),
    ]);
    registrations = await Promise.all(servers.map(s => registerEndpoint({ service: SERVICE, address: s.address, ttlSeconds: 2, etcd: { hosts: etcd!.endpoints } })));
    recorder = recordResolution(etcd.endpoints, SERVICE);
    const events: RetryEvent[] = [];
    clients = POLICIES.flatMap(policy => Array.from({ length: CHANNELS_PER_POLICY }, () => retryingClient(etcdTarget(SERVICE, etcd!.endpoints), { [policy]: {} }, events, { random: seededRandom(91) })));
    await waitFor('every policy to reach every replica', async () => {
      await Promise.all(clients.map(c => callOnce(c, {}).catch(() => undefined)));
      const balancers = inspectBalancers().filter(b => b.endpoints.length === servers.length && b.endpoints.every(e => servers.some(s => s.address === e.address)));
      return balancers.length === clients.length && balancers.every(b => b.endpoints.every(e => e.state === 'READY'));
    }, { timeoutMs: 20_000, intervalMs: 50 });

    const kinds = seededRandom(92);
    const outcomes: Outcomes = { 'plain': {}, 'cancel-at-once': {}, 'cancel-soon': {}, 'short-deadline': {} };
    let heapAfterFirstStretch = 0;
    const started = Date.now();
    for (let done = 0; done < TOTAL_CALLS; done += STRETCH) {
      await runStretch(clients, STRETCH, kinds, outcomes);
      if (done === 0) heapAfterFirstStretch = heapUsedAfterGc();
    }
    const elapsedMs = Date.now() - started;
    const heapAtEnd = heapUsedAfterGc();

    const settleMs = await waitFor('every counter at 0', () => {
      const ours = inspectBalancers().filter(b => b.endpoints.some(e => servers.some(s => s.address === e.address)));
      return ours.length === clients.length && ours.every(b => b.endpoints.every(e => e.activeCalls === 0 && e.pendingPicks === 0));
    }, { timeoutMs: 10_000, intervalMs: 20 });
    await waitFor('servers idle', () => servers.every(s => s.inFlight === 0), { timeoutMs: 5000 });
    const total = Object.values(outcomes).reduce((n, byCode) => n + Object.values(byCode).reduce((a, b) => a + b, 0), 0);
    const retriedCodes = countBy(events.map(e => grpc.status[e.status.code]));
    console.log(`      ${total} calls in ${(elapsedMs / 1000).toFixed(1)} s (${Math.round(total / (elapsedMs / 1000))}/s): ${JSON.stringify(outcomes)}; `
      + `${events.length} retries ${JSON.stringify(retriedCodes)}`);
    console.log(`      counters at 0 ${settleMs} ms after the last call; heap after GC ${mib(heapAfterFirstStretch)} after 10,000 calls, ${mib(heapAtEnd)} after 100,000; `
      + `process warnings: ${JSON.stringify(warnings.map(w => w.name))}`);

    expect(total).to.equal(TOTAL_CALLS);
    for (const kind of Object.keys(outcomes) as CallKind[]) {
      const unexpected = Object.keys(outcomes[kind]).filter(code => !ALLOWED[kind].includes(code));
      expect(unexpected, `${kind} calls ended with ${JSON.stringify(outcomes[kind])}`).to.deep.equal([]);
    }
    expect(outcomes['cancel-at-once'].CANCELLED).to.be.greaterThan(10_000);
    expect(outcomes['short-deadline'].DEADLINE_EXCEEDED).to.be.greaterThan(1000);
    expect(outcomes['cancel-soon'].CANCELLED).to.be.greaterThan(1000);
    // c2 fails 10 % of its attempts: about 1 in 40 calls is retried.
    expect(retriedCodes.UNAVAILABLE).to.be.greaterThan(1000);
    expect(warnings.filter(w => w.name === 'MaxListenersExceededWarning').map(w => w.message)).to.deep.equal([]);
    expect(heapAtEnd - heapAfterFirstStretch, 'heap growth over 90,000 calls').to.be.lessThan(16 * 1048576);
    expect(recorder.removals).to.deep.equal([]);
  });
});

function countBy(values: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const v of values) counts[v] = (counts[v] ?? 0) + 1;
  return counts;
}

/** One call with `options`; `cancelAfterMs` 0 cancels at once, undefined never. */
function callOnce(client: EchoClient, options: Partial<grpc.CallOptions>, cancelAfterMs?: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const call = client.unary({ message: 'churn' }, new grpc.Metadata(), options, err => (err ? reject(err) : resolve()));
    if (cancelAfterMs === 0) call.cancel();
    else if (cancelAfterMs !== undefined) setTimeout(() => call.cancel(), cancelAfterMs);
  });
}

/** `count` calls spread over the clients (CONCURRENCY_PER_CLIENT lanes each), of kinds drawn from `kinds`. */
async function runStretch(clients: EchoClient[], count: number, kinds: () => number, outcomes: Outcomes): Promise<void> {
  let next = 0;
  const lane = async (client: EchoClient): Promise<void> => {
    while (next < count) {
      next++;
      const draw = kinds();
      let kind: CallKind = 'plain';
      let options: Partial<grpc.CallOptions> = { deadline: Date.now() + 10_000 };
      let cancelAfterMs: number | undefined;
      if (draw < 0.15) {
        kind = 'cancel-at-once';
        cancelAfterMs = 0;
      } else if (draw < 0.25) {
        kind = 'cancel-soon';
        cancelAfterMs = 1 + Math.floor(kinds() * 4);
      } else if (draw < 0.32) {
        kind = 'short-deadline';
        options = { deadline: Date.now() + 1 + Math.floor(kinds() * 5) };
      }
      let code = 'OK';
      try {
        await callOnce(client, options, cancelAfterMs);
      } catch (err) {
        code = grpc.status[(err as grpc.ServiceError).code] ?? String((err as grpc.ServiceError).code);
      }
      outcomes[kind][code] = (outcomes[kind][code] ?? 0) + 1;
    }
  };
  await Promise.all(clients.flatMap(c => Array.from({ length: CONCURRENCY_PER_CLIENT }, () => lane(c))));
}
