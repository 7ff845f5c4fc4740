/**
 * What the retry budget counts, on real grpc-js servers (gRFC A6: failed and successful
 * RPCs): a hedge costs nothing by itself, an answer that is not a failure of the replica
 * (NOT_FOUND) neither takes nor gives, and a call takes at most one token however many of
 * its attempts fail.
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { createRetryInterceptor } from '../../src/interceptor/retry-interceptor';
import { type HedgeEvent } from '../../src/interceptor/hedging-options';
import { type RetryEvent } from '../../src/interceptor/retry-options';
import { type EchoClient } from '../support/echo-proto';
import { waitFor } from '../support/wait';
import { callWithId, recordingSuite, startRecordingReplicas, warmUpRecording } from './hedge-fixtures';
import { clientFor, runCalls } from './replicas';

const UNARY = '/grpc_etcd_lb.echo.Echo/Unary';

describe('retry interceptor: what the retry budget counts', function () {
  this.timeout(60_000);
  const suite = recordingSuite();
  const warmUp = (c: EchoClient): Promise<void> => warmUpRecording(c, suite.replicas!);

  it('hedged reads that answer NOT_FOUND keep hedges and retries on (60 calls, every one hedged)', async () => {
    const replicas = suite.replicas = await startRecordingReplicas(3);
    const hedges: HedgeEvent[] = [];
    const c = clientFor(replicas.target, 'etcd_least_request', [createRetryInterceptor({
      isIdempotent: method => method === UNARY,
      hedging: { delayMs: 2, maxHedgeRatio: 1 },
      initialBackoffMs: 0,
      maxBackoffMs: 0,
      onHedge: e => hedges.push(e),
    })]);
    suite.clients.push(c);
    await warmUp(c);
    hedges.length = 0;
    for (const s of replicas.servers) s.setBehaviour({ latencyMs: 20, failRate: 1, failCode: grpc.status.NOT_FOUND });
    const reads = await runCalls(60, 1, i => callWithId(c, `nf${i}`));
    await waitFor('every attempt to end', () => replicas.inFlight() === 0);
    expect(reads.errors.map(e => e.code)).to.deep.equal(new Array<grpc.status>(60).fill(grpc.status.NOT_FOUND));
    const hedgesOnReads = hedges.length;
    // Then every replica fails: the next call must still be retried (maxAttempts 3).
    for (const s of replicas.servers) s.setBehaviour({ failRate: 1 });
    const outage = await callWithId(c, 'after').then(() => grpc.status.OK, (e: grpc.ServiceError) => e.code);
    await waitFor('every attempt to end', () => replicas.inFlight() === 0);
    // Its retries may start as retries or, when the hedge delay passed first, as 'failure' hedges.
    const attempts = replicas.byCall().get('after')?.length ?? 0;
    console.log(`      60 hedged NOT_FOUND reads: ${hedgesOnReads} hedges; the next failing call: ${attempts} attempts`);
    expect(outage).to.equal(grpc.status.UNAVAILABLE);
    expect(hedgesOnReads).to.equal(60);
    expect(attempts).to.equal(3);
  });

  it('a call whose retries also fail takes one token: 3 of 4 replicas failing, 150 calls, none fails', async () => {
    const replicas = suite.replicas = await startRecordingReplicas(4);
    const retries: RetryEvent[] = [];
    const c = clientFor(replicas.target, 'etcd_weighted_round_robin', [createRetryInterceptor({
      maxAttempts: 4, initialBackoffMs: 0, maxBackoffMs: 0, onRetry: e => retries.push(e),
    })]);
    suite.clients.push(c);
    await warmUp(c);
    for (const s of replicas.servers.slice(0, 3)) s.setBehaviour({ failRate: 1 });
    const { errors } = await runCalls(150, 1, i => callWithId(c, `c${i}`));
    console.log(`      150 calls, 3 of 4 replicas failing: ${errors.length} failed, ${retries.length} retries`);
    expect(errors.map(e => e.message)).to.deep.equal([]);
  });

  it('a total outage still stops retries after maxTokens / 2 failed calls', async () => {
    const replicas = suite.replicas = await startRecordingReplicas(3);
    const retries: RetryEvent[] = [];
    const c = clientFor(replicas.target, 'etcd_weighted_round_robin', [createRetryInterceptor({
      initialBackoffMs: 0, maxBackoffMs: 0, onRetry: e => retries.push(e),
    })]);
    suite.clients.push(c);
    await warmUp(c);
    for (const s of replicas.servers) s.setBehaviour({ failRate: 1 });
    const { ok } = await runCalls(200, 1, i => callWithId(c, `o${i}`));
    console.log(`      total outage, 200 calls: ${retries.length} retries, ${replicas.arrivals.length} attempts`);
    expect(ok).to.equal(0);
    // One token per call: 49 calls are retried twice (maxAttempts 3) while tokens stay above
    // half (99..51); the 50th leaves 50 and is not; then one attempt per call.
    expect(retries.length).to.equal(98);
    expect(replicas.arrivals.length).to.equal(298);
  });
});
