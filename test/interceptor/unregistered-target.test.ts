/**
 * A channel made before `register()` resolves `etcd:///svc` with grpc-js's DNS resolver,
 * which fails with "Failed to parse DNS address dns:etcd:///svc": the interceptor says, once,
 * what that means. `dns:etcd:` targets give the same failure whether or not we are registered.
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { createRetryInterceptor } from '../../src/interceptor/retry-interceptor';
import { unary } from '../support/echo-proto';
import { clientFor } from './replicas';

describe('retry interceptor: a target used before register()', function () {
  this.timeout(20_000);
  const logged: string[] = [];

  beforeEach(() => {
    logged.length = 0;
    grpc.setLogger({ error: (...args: unknown[]) => logged.push(args.map(String).join(' ')) } as unknown as Console);
  });
  afterEach(() => grpc.setLogger(console));

  async function failedCalls(target: string, calls: number): Promise<grpc.ServiceError[]> {
    const client = clientFor(target, 'round_robin', [createRetryInterceptor({ initialBackoffMs: 0, maxBackoffMs: 0 })]);
    const errors: grpc.ServiceError[] = [];
    try {
      for (let i = 0; i < calls; i++) await unary(client, 'x').catch((err: grpc.ServiceError) => errors.push(err));
    } finally {
      client.close();
    }
    return errors;
  }

  for (const target of ['dns:etcd:///svc', 'dns:zk:///svc', 'dns:zk://127.0.0.1:2181/svc']) {
    it(`${target}: the DNS failure reaches the caller unchanged, and one ERROR says register() came too late`, async () => {
      const errors = await failedCalls(target, 3);
      expect(errors.map(e => e.code)).to.deep.equal([grpc.status.UNAVAILABLE, grpc.status.UNAVAILABLE, grpc.status.UNAVAILABLE]);
      expect(errors[0].details).to.match(/^(Failed to parse DNS address|Name resolution failed for target) dns:/);
      const ours = logged.filter(line => line.includes('register() must be called before creating the channel'));
      expect(ours).to.have.length(1);
      expect(ours[0]).to.include(target);
    });
  }

  it('a DNS target of someone else gets no such log (the same DNS failure)', async () => {
    const errors = await failedCalls('dns:foo:///svc', 1);
    expect(errors.map(e => e.details)).to.deep.equal(['Failed to parse DNS address dns:foo:///svc']);
    expect(logged.filter(line => line.includes('register()'))).to.deep.equal([]);
  });
});
