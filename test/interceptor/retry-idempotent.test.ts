/**
 * The commit point: a replica that dies after sending response headers (before its
 * response message) fails the call, as gRFC A6 commits on headers — unless the
 * method is named idempotent, in which case the attempt is retried elsewhere.
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { createRetryInterceptor } from '../../src/interceptor/retry-interceptor';
import { loadEcho, type EchoReply, type EchoRequest } from '../support/echo-proto';
import { startEchoServer, type EchoServer } from '../support/echo-server';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';
import { waitFor } from '../support/wait';

interface Outcome { code: grpc.status; server: string; headersSeen: number; details?: string }

describe('retry interceptor: isIdempotent moves the commit point to the first message', function () {
  this.timeout(30_000);
  let doomed: grpc.Server | undefined;
  let good: EchoServer | undefined;
  let proxy: TcpProxy | undefined;
  let reached = 0;

  beforeEach(async () => {
    reached = 0;
    const { service } = loadEcho();
    doomed = new grpc.Server();
    doomed.addService(service, {
      // Sends response headers, then never answers: the test kills the server meanwhile.
      Unary: (call: grpc.ServerUnaryCall<EchoRequest, EchoReply>) => {
        reached++;
        call.sendMetadata(new grpc.Metadata());
      },
      ServerStream: (call: grpc.ServerWritableStream<EchoRequest, EchoReply>) => call.end(),
    });
    const port = await new Promise<number>((resolve, reject) =>
      doomed!.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    // Cutting the proxy drops the connection the way a crashed replica does (a server
    // shutdown would cancel the call instead).
    proxy = await startTcpProxy(`127.0.0.1:${port}`);
    good = await startEchoServer({ name: 'good' });
    // pick_first over [doomed, good]: the first attempt goes to doomed, a retry to good once doomed is gone.
    target = `ipv4:${proxy.address},${good.address}`;
  });
  let target = '';

  afterEach(async () => {
    await proxy?.close();
    doomed?.forceShutdown();
    await good?.stop();
  });

  async function callThroughDoomed(isIdempotent?: (method: string) => boolean, maxAttempts = 3): Promise<Outcome> {
    const { Client } = loadEcho();
    const client = new Client(target, grpc.credentials.createInsecure(), {
      interceptors: [createRetryInterceptor({ isIdempotent, initialBackoffMs: 1, maxAttempts })],
    });
    try {
      const outcome: Outcome = { code: -1 as grpc.status, server: '', headersSeen: 0 };
      const done = new Promise<void>(resolve => {
        const call = client.unary({ message: 'x' }, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (err, reply) => {
          outcome.code = err ? err.code : grpc.status.OK;
          if (err) outcome.details = err.details;
          outcome.server = reply?.server ?? '';
          resolve();
        });
        call.on('metadata', () => { outcome.headersSeen++; });
      });
      await waitFor('the call to reach the doomed replica, which sent its headers', () => reached === 1, { timeoutMs: 10_000 });
      await new Promise(resolve => setTimeout(resolve, 20)); // let the headers cross loopback before the kill
      proxy!.cut();
      await done;
      return outcome;
    } finally {
      client.close();
    }
  }

  it('without it: the call is committed after headers and fails with the replica', async () => {
    const outcome = await callThroughDoomed();
    console.log(`      not idempotent: ${JSON.stringify(outcome)}`);
    expect(outcome.code).to.equal(grpc.status.UNAVAILABLE);
    expect(outcome.headersSeen).to.equal(1);
    // The original details first, then why it was not retried.
    expect(outcome.details).to.match(/^\S.* \(not retried: the call was committed when the server sent headers\/a message, so the server may have processed it; mark the method idempotent with isIdempotent, or use idempotency keys\)$/);
    expect(outcome.details!.startsWith(' (not retried')).to.equal(false);
  });

  it('without it and with no attempt left: the details are grpc-js\'s alone (nothing would have been retried)', async () => {
    const outcome = await callThroughDoomed(undefined, 1);
    expect(outcome.code).to.equal(grpc.status.UNAVAILABLE);
    expect(outcome.details).to.not.include('not retried');
  });

  it('with it: the attempt is retried on another replica, and only the served attempt\'s headers are shown', async () => {
    const outcome = await callThroughDoomed(method => method.endsWith('/Unary'));
    console.log(`      idempotent: ${JSON.stringify(outcome)}`);
    expect(outcome).to.deep.equal({ code: grpc.status.OK, server: 'good', headersSeen: 1 });
  });

  it('a throwing isIdempotent counts as false', async () => {
    const outcome = await callThroughDoomed(() => { throw new Error('boom'); });
    expect(outcome.code).to.equal(grpc.status.UNAVAILABLE);
  });
});
